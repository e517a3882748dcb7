// The 12-question security audit: the product cascade came out of, on cascade.
//
//   GET  /                 the questionnaire (language from ?lang= or Accept-Language)
//   POST /api/audit        {"lang": "ru", "answers": {"q1": "...", ...}} -> score, breakdown, vulnerabilities,
//                          provider, cost_usd, report_url (a link signed with HMAC that expires)
//   GET  /report/<id>?...  the report, Markdown rendered by CommonMark (raw HTML dropped), model output escaped
//   GET  /metrics          Prometheus text: audits, answers by provider label, cost, latency
//   GET  /healthz          200 "ok"
//
// The report is written by Groq (5 keys) -> DeepSeek -> Vertex Gemini Pro (regions) -> a template in the
// visitor's language; answers under 400 characters are refused and the next tier asked. Identical audits
// are answered from the SQLite cache by (prompt, language). Settings: config.hpp. With no keys at all:
//
//   build/examples/cascade-audit --dev      # every report from the template, http://127.0.0.1:8080/

#include "config.hpp"
#include "pages.hpp"
#include "rate_limit.hpp"
#include "store.hpp"

#include "../server/http.hpp"
#include "../server/openai_api.hpp"

#include <audit/audit.hpp>

#include <cascade/cascade.hpp>
#include <cascade/cache/sqlite.hpp>
#include <cascade/security/hmac.hpp>
#include <cascade/server/prometheus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using app::http_io::Response;

using Observed = cascade::Both<cascade::Stats, cascade::server::PrometheusObserver>;
using Policies = cascade::DefaultPolicies::with_accept<cascade::MinLength<400>>::with_cache<cascade::SqliteCache>::with_observe<Observed>;
using AuditChain = cascade::BasicChain<Policies, cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro, cascade::Template>;

namespace {

std::string query_param(std::string_view target, std::string_view name) {
    auto const q = target.find('?');
    if (q == std::string_view::npos) return {};
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto const amp = rest.find('&');
        auto const pair = rest.substr(0, amp);
        auto const eq = pair.find('=');
        if (pair.substr(0, eq) == name && eq != std::string_view::npos) return std::string(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

// Requests by route and status, for /metrics.
class Counters {
public:
    void add(std::string route, int status) {
        std::lock_guard lock(mutex_);
        ++counts_[{std::move(route), status}];
    }
    void render(std::string& out) const {
        namespace pm = cascade::server::prometheus;
        std::lock_guard lock(mutex_);
        pm::append_header(out, "audit_http_requests_total", "counter", "HTTP requests by route and status.");
        for (auto const& [k, n] : counts_) {
            auto const status = std::to_string(k.second);
            pm::append_sample_start(out, "audit_http_requests_total", {{"route", k.first}, {"status", status}});
            pm::append_value(out, n);
            out += '\n';
        }
    }

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, std::uint64_t> counts_;
};

class App {
public:
    App(audit::Config cfg, audit::Questionnaire const& q, AuditChain& chain, audit::ReportStore& store)
        : cfg_(std::move(cfg)), q_(q), chain_(chain), store_(store), limiter_(cfg_.rate_per_minute, cfg_.rate_burst) {}

    Response too_large(unsigned version) {
        counters_.add("audit", 413);
        return json_error(http::status::payload_too_large, "The request body is larger than " + std::to_string(cfg_.body_limit / 1024) + " KiB",
                          version, false);
    }

    asio::awaitable<bool> handle(beast::tcp_stream& stream, app::http_io::Request& req) {
        std::string_view const target(req.target().data(), req.target().size());
        auto const path = app::http_io::path_of(req);
        Response res;
        std::string route;
        if (path == "/" && req.method() == http::verb::get) {
            route = "page";
            res = page(req, target);
        } else if (path == "/api/audit") {
            route = "audit";
            if (req.method() != http::verb::post) res = json_error(http::status::method_not_allowed, "Use POST with a JSON body", req.version(), req.keep_alive());
            else res = co_await audit(stream, req);
        } else if (path.starts_with("/report/") && req.method() == http::verb::get) {
            route = "report";
            res = report(req, target);
        } else if (path == "/metrics" && req.method() == http::verb::get) {
            route = "metrics";
            std::string body = chain_.observer().second().render(cascade::server::circuit_gauges(chain_));
            counters_.render(body);
            res = app::http_io::make_response(http::status::ok, cascade::server::prometheus_content_type, std::move(body), req.version(), req.keep_alive());
        } else if (path == "/healthz") {
            route = "healthz";
            res = app::http_io::make_response(http::status::ok, "text/plain", "ok", req.version(), req.keep_alive());
        } else {
            route = "other";
            res = app::http_io::make_response(http::status::not_found, "text/plain; charset=utf-8", "Not found", req.version(), req.keep_alive());
        }
        counters_.add(route, static_cast<int>(res.result_int()));
        co_return co_await app::http_io::write(stream, res);
    }

private:
    static Response json_error(http::status status, std::string message, unsigned version, bool keep_alive) {
        json::object o{{"error", std::move(message)}};
        return app::http_io::make_response(status, "application/json", json::serialize(o), version, keep_alive);
    }

    audit::Lang lang_of(app::http_io::Request const& req, std::string_view target) const {
        if (auto l = audit::parse_lang(query_param(target, "lang"))) return *l;
        auto const al = req[http::field::accept_language];
        return audit::lang_from_accept_language(std::string_view(al.data(), al.size()));
    }

    Response page(app::http_io::Request const& req, std::string_view target) const {
        auto res = app::http_io::make_response(http::status::ok, "text/html; charset=utf-8", audit::questionnaire_page(q_, lang_of(req, target)),
                                               req.version(), req.keep_alive());
        res.set("Content-Security-Policy", audit::page_csp);
        return res;
    }

    asio::awaitable<Response> audit(beast::tcp_stream& stream, app::http_io::Request const& req) {
        beast::error_code ec;
        auto const peer = stream.socket().remote_endpoint(ec);
        std::string const client = ec ? std::string("unknown") : peer.address().to_string();
        if (long wait = limiter_.take(client)) {
            auto res = json_error(http::status::too_many_requests,
                                  "Too many audits from this address: try again in " + std::to_string(wait) + " s", req.version(), req.keep_alive());
            res.set(http::field::retry_after, std::to_string(wait));
            co_return res;
        }
        auto parsed = audit::parse_answers(q_, req.body());
        if (auto const* e = std::get_if<audit::AnswersError>(&parsed)) co_return json_error(http::status::bad_request, e->message, req.version(), req.keep_alive());
        audit::Answers const answers = std::get<audit::Answers>(std::move(parsed));
        audit::Score const score = audit::score(q_, answers);
        audit::Prompt const prompt = audit::build_prompt(q_, answers, score);
        cascade::Request creq = cascade::Request::chat(prompt.system, prompt.user);
        creq.max_tokens = 3000;
        creq.tags.push_back("lang=" + std::string(audit::code(answers.lang)));
        creq.tags.push_back(audit::answers_tag(answers));
        cascade::Completion const c = co_await chain_.complete(creq);

        bool const cached = c.origin == cascade::Origin::cache;
        std::string const provider = cached ? c.cached_label : c.label;
        double const cost = cached ? 0.0 : c.cost_usd;
        audit::StoredReport stored{audit::ReportStore::new_id(), std::string(audit::code(answers.lang)), score.total, provider, cost, c.text, app::unix_now()};
        if (!store_.put(stored)) co_return json_error(http::status::internal_server_error, "The report could not be stored", req.version(), req.keep_alive());
        std::clog << "audit " << stored.id.substr(0, 8) << "… " << stored.lang << " score " << score.total << " from " << provider
                  << (cached ? " (cache)" : "") << std::endl;

        json::array breakdown;
        for (auto const& a : score.breakdown)
            breakdown.push_back(json::object{{"area", a.area}, {"name", q_.area(a.area)->name.in(answers.lang)}, {"points", a.points}, {"max", a.max}});
        json::array vulns;
        for (auto const& v : score.vulnerabilities) vulns.push_back(json::object{{"id", v}, {"title", q_.vulnerability(v)->title.in(answers.lang)}});
        json::object body{{"score", score.total},
                          {"breakdown", std::move(breakdown)},
                          {"vulnerabilities", std::move(vulns)},
                          {"provider", provider},
                          {"cached", cached},
                          {"cost_usd", cost},
                          {"report_url", cfg_.public_url + cascade::sign_url("/report/" + stored.id, app::unix_now() + cfg_.link_ttl_seconds, cfg_.secret)}};
        co_return app::http_io::make_response(http::status::ok, "application/json", json::serialize(body), req.version(), req.keep_alive());
    }

    Response report(app::http_io::Request const& req, std::string_view target) {
        auto html = [&](http::status s, std::string body) {
            auto res = app::http_io::make_response(s, "text/html; charset=utf-8", std::move(body), req.version(), req.keep_alive());
            res.set("Content-Security-Policy", audit::report_csp);
            return res;
        };
        auto const check = cascade::verify_url(target, cfg_.secret);
        if (check != cascade::UrlCheck::valid)
            return html(http::status::forbidden, audit::message_page(check == cascade::UrlCheck::expired ? "This report link has expired."
                                                                                                        : "This report link is not valid."));
        auto const path = app::http_io::path_of(req);
        auto stored = store_.get(std::string(path.substr(8)));
        if (!stored) return html(http::status::not_found, audit::message_page("There is no such report."));
        return html(http::status::ok, audit::report_page(q_, *stored));
    }

    audit::Config cfg_;
    audit::Questionnaire const& q_;
    AuditChain& chain_;
    audit::ReportStore& store_;
    audit::RateLimiter limiter_;
    Counters counters_;
};

} // namespace

int main(int argc, char** argv) {
    try {
        auto cfg = audit::config_from(argc, argv, CASCADE_AUDIT_QUESTIONS);
        auto const questionnaire = audit::Questionnaire::load_file(cfg.questions);
        audit::ReportStore store(cfg.db);

        asio::io_context io(2);
        // The last tier: the report rebuilt from the answers the request carries in its tag.
        auto render = [&questionnaire](cascade::Request const& r) {
            if (auto answers = audit::answers_from_tags(questionnaire, r.tags))
                return audit::template_report(questionnaire, *answers, audit::score(questionnaire, *answers));
            return std::string("The report could not be written right now. Please try again later.");
        };
        cascade::ChainConfig chain_cfg;
        chain_cfg.name = "audit";
        AuditChain chain(io.get_executor(), chain_cfg, cascade::Groq<5>{}, cascade::DeepSeek{}, cascade::VertexPro{}, cascade::Template{render});
        if (auto err = chain.cache().open(cfg.db); !err.empty()) throw std::runtime_error(err);
        App app(cfg, questionnaire, chain, store);

        asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address(cfg.host), cfg.port});
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) {
            acceptor.close();
            io.stop();
        });
        asio::co_spawn(io, app::http_io::listen(acceptor, io.get_executor(), app, cfg.body_limit), asio::detached);
        std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: a test reads it
        if (cfg.dev) std::clog << "development mode: the example signing secret is in use" << std::endl;
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
    } catch (audit::ConfigError const& e) {
        std::cerr << "cascade-audit: " << e.what() << "\n";
        return 2;
    } catch (std::exception const& e) {
        std::cerr << "cascade-audit: " << e.what() << "\n";
        return 1;
    }
}
