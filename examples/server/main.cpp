// An OpenAI-compatible server on cascade: clients written for the OpenAI SDKs talk to a chain as they
// would to OpenAI.
//
//   POST /v1/chat/completions  whole answers and `stream: true` server-sent events; the answer's tier label
//                              in the `x-cascade-label` header (whole answers)
//   GET  /v1/models            the chains served: "cascade-default" and "cascade-cheap"
//   GET  /metrics              Prometheus text (cascade::server::PrometheusObserver, circuit gauges)
//   GET  /healthz              200 "ok"
//
// A request's `model` picks a chain when it names one; any other model is sent upstream as the model to
// ask for (Request::model), through "cascade-default". Errors come in OpenAI's shape, so the SDKs raise
// their usual classes. Each chain: an OpenAI-compatible upstream tier, a backup upstream tier (skipped
// unless CASCADE_EXAMPLE_BACKUP_UPSTREAM is set), then a template.
//
//   export CASCADE_EXAMPLE_UPSTREAM=http://127.0.0.1:11434/v1 CASCADE_EXAMPLE_MODEL=llama3.2
//   ./build/examples/example_server 8080 &
//   curl http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json'
//        -d '{"model":"cascade-default","messages":[{"role":"user","content":"Hello"}]}'
//
// argv[1]: the port (0: any free one; the server prints "listening on <port>"); argv[2] or
// CASCADE_EXAMPLE_UPSTREAM: the upstream's base URL. More settings: config.hpp; docs/server.md.

#include "config.hpp"
#include "http.hpp"
#include "openai_api.hpp"

#include <cascade/cascade.hpp>
#include <cascade/server/openai_sse.hpp>
#include <cascade/server/prometheus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <array>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using app::http_io::Response;

// Both chains report into one PrometheusObserver, so that /metrics shows each metric family once: the
// second chain's tiers are numbered after the first's (their names differ, so their series do too).
struct SharedMetrics {
    cascade::server::PrometheusObserver* to = nullptr;
    std::size_t first_tier = 0;

    void on_attempt(cascade::AttemptEvent const& e) {
        if (!to) return;
        auto moved = e;
        moved.tier += first_tier;
        to->on_attempt(moved);
    }
    void on_stream(cascade::StreamEvent const& e) {
        if (!to) return;
        auto moved = e;
        moved.tier += first_tier;
        to->on_stream(moved);
    }
};

using Policies = cascade::DefaultPolicies::with_observe<SharedMetrics>;
using ServedChain = cascade::BasicChain<Policies, cascade::OpenAICompatible, cascade::OpenAICompatible, cascade::Template>;

// A chain and the model name it is served under.
struct Served {
    std::string name;
    ServedChain chain;
};

class Router {
public:
    Router(std::vector<Served>& chains, cascade::server::PrometheusObserver& metrics, bool log_answers)
        : chains_(chains), metrics_(metrics), created_(app::unix_now()), log_answers_(log_answers) {
        for (auto const& s : chains_) names_.push_back(s.name);
    }

    Response too_large(unsigned version) const {
        return error(app::ApiError{413, "The request body is larger than 1 MiB", "invalid_request_error", {}, "request_too_large"},
                     version, false);
    }

    asio::awaitable<bool> handle(beast::tcp_stream& stream, app::http_io::Request& req) {
        auto const path = app::http_io::path_of(req);
        bool const keep_alive = req.keep_alive();
        auto const method = req.method();
        if (path == "/v1/chat/completions") {
            if (method == http::verb::post) co_return co_await chat(stream, req);
            auto res = not_allowed("POST", req);
            co_return co_await app::http_io::write(stream, res);
        }
        Response res;
        if (path == "/v1/models") {
            res = method == http::verb::get
                      ? app::http_io::make_response(http::status::ok, "application/json", app::models_body(names_, created_), req.version(), keep_alive)
                      : not_allowed("GET", req);
        } else if (path == "/metrics") {
            if (method == http::verb::get) {
                std::vector<cascade::server::Gauge> gauges;
                for (auto& s : chains_)
                    for (auto& g : cascade::server::circuit_gauges(s.chain)) gauges.push_back(std::move(g));
                res = app::http_io::make_response(http::status::ok, cascade::server::prometheus_content_type, metrics_.render(gauges),
                                                  req.version(), keep_alive);
            } else {
                res = not_allowed("GET", req);
            }
        } else if (path == "/healthz") {
            res = method == http::verb::get ? app::http_io::make_response(http::status::ok, "text/plain", "ok", req.version(), keep_alive)
                                            : not_allowed("GET", req);
        } else {
            std::string message = "Unknown request URL: ";
            message += std::string_view(req.method_string().data(), req.method_string().size());
            message += ' ';
            message += path;
            message += ". Please check the URL for typos; this server serves /v1/chat/completions, /v1/models, /metrics and /healthz.";
            res = error(app::ApiError{404, std::move(message), "invalid_request_error", {}, "unknown_url"}, req.version(), keep_alive);
        }
        co_return co_await app::http_io::write(stream, res);
    }

private:
    static Response error(app::ApiError const& e, unsigned version, bool keep_alive) {
        return app::http_io::make_response(static_cast<http::status>(e.status), "application/json", app::error_body(e), version, keep_alive);
    }

    static Response not_allowed(char const* allow, app::http_io::Request const& req) {
        std::string message = "Method ";
        message += std::string_view(req.method_string().data(), req.method_string().size());
        message += " is not allowed on ";
        message += app::http_io::path_of(req);
        message += "; use ";
        message += allow;
        auto res = error(app::ApiError{405, std::move(message), "invalid_request_error", {}, "method_not_allowed"}, req.version(), req.keep_alive());
        res.set(http::field::allow, allow);
        return res;
    }

    // The chain the call's model names; any other model goes upstream through the first chain.
    Served& pick(app::ChatCall& call) {
        for (auto& s : chains_)
            if (s.name == call.model) return s;
        if (!call.model.empty()) call.req.model = call.model;
        return chains_.front();
    }

    asio::awaitable<bool> chat(beast::tcp_stream& stream, app::http_io::Request& req) {
        auto parsed = app::parse_chat(req.body());
        if (auto const* problem = std::get_if<app::ApiError>(&parsed)) {
            auto res = error(*problem, req.version(), req.keep_alive());
            co_return co_await app::http_io::write(stream, res);
        }
        auto& call = std::get<app::ChatCall>(parsed);
        Served& served = pick(call);
        std::string const model = call.model.empty() ? served.name : call.model;
        if (call.stream) co_return co_await streamed(stream, req, served, call, model);
        co_return co_await whole(stream, req, served, call, model);
    }

    asio::awaitable<bool> whole(beast::tcp_stream& stream, app::http_io::Request const& req, Served& served, app::ChatCall& call,
                                std::string const& model) {
        auto answer = co_await served.chain.complete(call.req);
        auto res = reply(answer, served.name, model, req);
        co_return co_await app::http_io::write(stream, res);
    }

    // An infallible chain (one ending in a template, as both here) always answers; a fallible one may not.
    Response reply(cascade::Completion const& c, std::string const&, std::string const& model, app::http_io::Request const& req) const {
        return answered(c, model, req);
    }
    Response reply(cascade::Result const& r, std::string const& chain, std::string const& model, app::http_io::Request const& req) const {
        return r ? answered(*r, model, req) : failed(r.error(), chain, req);
    }

    Response answered(cascade::Completion const& c, std::string const& model, app::http_io::Request const& req) const {
        auto res = app::http_io::make_response(http::status::ok, "application/json", app::completion_body(c, model), req.version(), req.keep_alive());
        res.set("x-cascade-label", c.label);  // which tier answered: a tier's label, never a key
        // One write per line (stderr is unbuffered: each << would be a system call of its own).
        if (log_answers_) std::clog << ("complete from " + c.label + "\n");
        return res;
    }

    static Response failed(cascade::Failure const& f, std::string const& chain, app::http_io::Request const& req) {
        std::clog << (chain + " failed: " + f.message() + "\n");  // the trail holds labels and key indices, no key
        return error(app::failure_error(f), req.version(), req.keep_alive());
    }

    // The stream's header goes out with its first delta, so a stream that fails before any text (only a
    // fallible chain can) is still answered with a 502/503 the SDKs raise, not with an event.
    asio::awaitable<bool> streamed(beast::tcp_stream& stream, app::http_io::Request const& req, Served& served, app::ChatCall& call,
                                   std::string const& model) {
        auto s = served.chain.stream(call.req);
        auto first = co_await s.next();
        if (!first && s.result().end == cascade::StreamEnd::failed) {
            auto const& r = s.result();
            cascade::Failure f;
            f.code = r.error;
            f.trail = r.completion.trail;
            f.http_status = f.trail.empty() ? 0 : f.trail.back().http_status;
            auto res = failed(f, served.name, req);
            co_return co_await app::http_io::write(stream, res);
        }
        app::http_io::EventStream out(stream);
        cascade::server::OpenAISseWriter writer(app::response_id(), model, app::unix_now(), call.include_usage);
        if (!co_await out.begin(req.version(), req.keep_alive())) co_return false;
        if (!co_await out.send(writer.first())) co_return false;
        if (first) {
            if (!co_await out.send(writer.delta(*first))) co_return false;
            while (auto d = co_await s.next())
                if (!co_await out.send(writer.delta(*d))) co_return false;
        }
        auto const& r = s.result();
        if (log_answers_)
            std::clog << ("stream " + std::string(cascade::to_string(r.end)) + " from " + r.completion.label + ", " + std::to_string(r.deltas) +
                          " deltas" + (r.error ? " (" + r.error.message() + ")" : std::string()) + "\n");
        if (!co_await out.send(writer.end(r))) co_return false;
        co_return co_await out.finish();
    }

    std::vector<Served>& chains_;
    cascade::server::PrometheusObserver& metrics_;
    std::vector<std::string> names_;
    std::int64_t created_;
    bool log_answers_;
};

cascade::ChainConfig chain_config(std::string name) {
    cascade::ChainConfig c;
    c.name = std::move(name);
    return c;
}

int main(int argc, char** argv) {
    auto cfg = app::config_from(argc, argv);
    if (!cfg) {
        std::cerr << "usage: " << argv[0] << " <port, 0 for any> [upstream base URL]"
                  << " (CASCADE_EXAMPLE_THREADS: 1 to 64; CASCADE_EXAMPLE_LOG: answers or none)\n";
        return 2;
    }
    auto apology = [](cascade::Request const&) { return std::string("The assistant is unavailable right now. Please try again in a minute."); };

    // The concurrency hint: with 1, Asio's scheduler takes its one-thread paths (docs/server.md).
    asio::io_context io(static_cast<int>(cfg->threads));
    cascade::server::PrometheusObserver metrics;
    std::vector<Served> chains;
    chains.push_back(Served{"cascade-default", ServedChain(io.get_executor(), chain_config("cascade-default"),
                                                           cascade::OpenAICompatible(app::upstream_tier(*cfg, "upstream", cfg->model)),
                                                           cascade::OpenAICompatible(app::backup_tier(*cfg, "backup", cfg->model)),
                                                           cascade::Template{apology})});
    // The cheap chain: for the example the same upstream under another name (in practice a cheaper model or
    // provider); its template is named apart so that its metrics are too.
    chains.push_back(Served{"cascade-cheap", ServedChain(io.get_executor(), chain_config("cascade-cheap"),
                                                         cascade::OpenAICompatible(app::upstream_tier(*cfg, "cheap", cfg->cheap_model)),
                                                         cascade::OpenAICompatible(app::backup_tier(*cfg, "cheap-backup", cfg->cheap_model)),
                                                         cascade::Template{apology, "cheap-fallback-template"})});
    std::size_t first_tier = 0;
    for (auto& s : chains) {
        s.chain.observer() = SharedMetrics{&metrics, first_tier};
        first_tier += 3;  // each chain: upstream, backup, template
    }
    Router router(chains, metrics, cfg->log_answers);

    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address(cfg->host), cfg->port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) {
        acceptor.close();
        io.stop();
    });
    // Connections run on the io_context's own executor (see http_io::listen): the upstream tiers' HTTP
    // clients are created there, shared by every connection, on no connection's strand.
    asio::co_spawn(io, app::http_io::listen(acceptor, io.get_executor(), router, cfg->body_limit), asio::detached);
    asio::co_spawn(io, app::http_io::tick_every_second(), asio::detached);  // the kernel timer re-armed once a second
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: a test reads it
    std::clog << "upstream " << cfg->upstream << ", " << (cfg->keys.empty() ? std::string("keyless") : std::to_string(cfg->keys.size()) + " key(s)")
              << std::endl;
    std::vector<std::thread> more;
    for (unsigned i = 1; i < cfg->threads; ++i) more.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : more) t.join();
}
