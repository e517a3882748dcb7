// A request through the chain to the loopback upstream, against the same request made with a bare Beast
// client (one keep-alive connection, no pool, no classification, no JSON): added latency per request,
// and requests per second with many requests in flight on two threads.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_BENCHMARKS=ON
//   cmake --build build/bench -j2 --target bench_transport && build/bench/benchmarks/bench_transport

#include <cascade/cascade.hpp>

#include "../tests/support/loopback.hpp"
#include "../tests/support/wire.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr char const* path = "/openai/v1/chat/completions";

struct Upstream {
    cascade::test::Loopback up;
    Upstream() { up.otherwise(path, cascade::test::wire::groq_ok("a short answer", 86, 220)); }
};

cascade::ProviderConfig groq_config(cascade::test::Loopback const& up) {
    auto cfg = cascade::Groq<5>::defaults();
    cfg.base_url = up.base_url("/openai/v1");
    cfg.keys.emplace_back("gsk_bench_key");
    cfg.key_limits = {};
    return cfg;
}

std::string const body = cascade::openai::request_body(cascade::Request::chat("You write reports.", "Summarise the quarter."),
                                                       "llama-3.3-70b-versatile");

// The baseline: Beast directly, one connection kept alive, the answer read as a string.
asio::awaitable<std::size_t> bare_request(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer) {
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::authorization, "Bearer gsk_bench_key");
    req.body() = body;
    req.prepare_payload();
    co_await http::async_write(stream, req, asio::use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, asio::use_awaitable);
    co_return res.body().size();
}

void BM_bare_beast_sequential(benchmark::State& state) {
    Upstream u;
    asio::io_context io;
    auto loop = [&]() -> asio::awaitable<void> {
        boost::beast::tcp_stream stream(io);
        co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), u.up.port()), asio::use_awaitable);
        boost::beast::flat_buffer buffer;
        for (auto _ : state) benchmark::DoNotOptimize(co_await bare_request(stream, buffer));
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
}
BENCHMARK(BM_bare_beast_sequential)->UseRealTime();

void BM_chain_sequential(benchmark::State& state) {
    Upstream u;
    asio::io_context io;
    cascade::Chain<cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cascade::Groq<5>(groq_config(u.up)), cascade::Template{});
    auto req = cascade::Request::chat("You write reports.", "Summarise the quarter.");
    auto loop = [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
            auto c = co_await chain.complete(req);
            if (c.label != "groq1") state.SkipWithError("the chain did not answer from groq1");
            benchmark::DoNotOptimize(c);
        }
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
}
BENCHMARK(BM_chain_sequential)->UseRealTime();

// `state.range(0)` requests in flight at once, on an io_context run by two threads.
void BM_bare_beast_concurrent(benchmark::State& state) {
    Upstream u;
    auto const workers = state.range(0);
    std::int64_t done_total = 0;
    for (auto _ : state) {
        asio::io_context io(2);
        std::atomic<std::int64_t> done{0};
        auto worker = [&]() -> asio::awaitable<void> {
            boost::beast::tcp_stream stream(io);
            co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), u.up.port()), asio::use_awaitable);
            boost::beast::flat_buffer buffer;
            for (int i = 0; i < 50; ++i) {
                co_await bare_request(stream, buffer);
                ++done;
            }
        };
        for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(), asio::detached);
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        done_total += done;
    }
    state.counters["req/s"] = benchmark::Counter(static_cast<double>(done_total), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_bare_beast_concurrent)->Arg(16)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_chain_concurrent(benchmark::State& state) {
    Upstream u;
    auto const workers = state.range(0);
    std::int64_t done_total = 0;
    // One chain for the whole run, as a server has (its pool stays warm between iterations).
    asio::io_context io(2);
    auto cfg = groq_config(u.up);
    cfg.http.max_idle_per_origin = static_cast<std::size_t>(workers);
    cascade::Chain<cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
    for (auto _ : state) {
        std::atomic<std::int64_t> done{0};
        auto worker = [&]() -> asio::awaitable<void> {
            auto req = cascade::Request::chat("You write reports.", "Summarise the quarter.");
            for (int i = 0; i < 50; ++i) {
                co_await chain.complete(req);
                ++done;
            }
        };
        for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(), asio::detached);
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        io.restart();
        done_total += done;
    }
    state.counters["req/s"] = benchmark::Counter(static_cast<double>(done_total), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_chain_concurrent)->Arg(16)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
