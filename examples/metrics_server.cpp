// `GET /metrics` in front of a chain: the Prometheus text exposition of cascade::server::PrometheusObserver
// (answers by label, attempts, faults, skips, tokens, cost, latency histograms) plus each tier's circuit
// state, for a Prometheus server to scrape.
//
// The chain runs over an in-process tier ("local", two keys: labels local1 and local2) and a template, so
// the example needs no network: at start-up it asks a few questions, some answered by the local tier and
// some failing over to the template, and prints how many each label answered. Listens on 127.0.0.1 only.
//
//   ./build/examples/example_metrics_server 9464 &
//   curl http://127.0.0.1:9464/metrics
//
// argv[1]: the port (0: any free one; the server prints "listening on <port>").

#include <cascade/cascade.hpp>
#include <cascade/server/prometheus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

// An in-process tier standing in for a provider: a prompt that starts with "fail" gets a 503 (the chain
// then falls over to the template); any other prompt is answered.
struct LocalModel {
    std::string_view name() const noexcept { return "local"; }
    std::size_t key_count() const noexcept { return 2; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const& req, cascade::Context&) {
        if (req.prompt().rfind("fail", 0) == 0) co_return cascade::failed_response(503, {}, "overloaded, try later");
        cascade::Completion c;
        c.text = "local answer to: " + req.prompt();
        c.model = "local-model";
        c.usage = {12, 30};
        c.cost_usd = 0.0001;
        c.finish_reason = "stop";
        co_return cascade::Outcome(std::move(c));
    }
};

// No retry: a 503 goes straight to the next tier, so the start-up counts are easy to follow.
using Policies = cascade::DefaultPolicies::with_observe<cascade::server::PrometheusObserver>::with_retry<cascade::NoRetry>;
using MetricsChain = cascade::BasicChain<Policies, LocalModel, cascade::Template>;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> warm_up(MetricsChain& chain) {
    std::map<std::string, int> answered;
    for (std::string_view prompt : {"hello", "fail now", "what is cascade", "fail again", "bye"}) {
        auto req = cascade::Request::chat("You are terse.", std::string(prompt));
        cascade::Completion c = co_await chain.complete(req);
        ++answered[c.label];
    }
    for (auto const& [label, n] : answered) std::cout << "answered " << label << ' ' << n << '\n';
}

asio::awaitable<void> serve(beast::tcp_stream stream, MetricsChain& chain) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        stream.expires_after(60s);
        auto [ec, n] = co_await http::async_read(stream, buffer, req, tuple_awaitable);
        if (ec) break;
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.keep_alive(req.keep_alive());
        std::string_view target(req.target().data(), req.target().size());
        if (target.substr(0, target.find('?')) == "/metrics" && req.method() == http::verb::get) {
            res.set(http::field::content_type, cascade::server::prometheus_content_type);
            auto gauges = cascade::server::circuit_gauges(chain);
            chain.observer().render(res.body(), gauges);
        } else {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "text/plain");
            res.body() = "try GET /metrics\n";
        }
        res.prepare_payload();
        stream.expires_after(30s);
        auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
        if (wec || !req.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor, MetricsChain& chain) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), serve(beast::tcp_stream(std::move(socket)), chain), asio::detached);
    }
}

asio::awaitable<void> start(asio::ip::tcp::acceptor& acceptor, MetricsChain& chain) {
    co_await warm_up(chain);
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: a test reads it
    co_await listen(acceptor, chain);
}

int main(int argc, char** argv) {
    unsigned short port = 9464;
    if (argc > 1) {
        char* end = nullptr;
        long p = std::strtol(argv[1], &end, 10);
        if (*end != '\0' || p < 0 || p > 65535) {
            std::cerr << "usage: " << argv[0] << " <port, 0 for any>\n";
            return 2;
        }
        port = static_cast<unsigned short>(p);
    }
    asio::io_context io;
    MetricsChain chain(io.get_executor(), cascade::ChainConfig{}, LocalModel{},
                       cascade::Template{[](cascade::Request const&) { return std::string("Please try again in a minute."); }});
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) {
        acceptor.close();
        io.stop();
    });
    asio::co_spawn(io, start(acceptor, chain), asio::detached);
    io.run();
}
