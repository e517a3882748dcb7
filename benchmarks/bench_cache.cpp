// Cache hit latency of each backend through the chain, and single-flight throughput.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_BENCHMARKS=ON
//   cmake --build build/bench -j2 --target bench_cache && build/bench/benchmarks/bench_cache
// The Redis benchmarks start a private redis-server on a free 127.0.0.1 port.

#include <cascade/cache/memory.hpp>
#include <cascade/cache/redis.hpp>
#include <cascade/cache/sqlite.hpp>
#include <cascade/cascade.hpp>

#include "../tests/support/redis_server.hpp"
#include "../tests/support/scripted_tier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
using cascade::test::ScriptedTier;
using cascade::test::Step;

namespace {

template <class ChainT>
void hit_loop(benchmark::State& state, asio::io_context& io, ChainT& chain) {
    auto req = cascade::Request::chat("You write reports.", "Summarise the quarter in three lines.");
    auto loop = [&]() -> asio::awaitable<void> {
        auto warm = co_await chain.complete(req);  // the miss that fills the cache
        benchmark::DoNotOptimize(warm);
        for (auto _ : state) {
            auto c = co_await chain.complete(req);
            if (c.label != "cache") state.SkipWithError("expected a cache hit");
            benchmark::DoNotOptimize(c);
        }
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
}

void BM_hit_memory(benchmark::State& state) {
    asio::io_context io;
    ScriptedTier tier("llm");
    cascade::BasicChain<cascade::DefaultPolicies::with_cache<cascade::MemoryCache>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), tier, cascade::Template{});
    hit_loop(state, io, chain);
}
BENCHMARK(BM_hit_memory);

void BM_hit_sqlite(benchmark::State& state) {
    asio::io_context io;
    ScriptedTier tier("llm");
    cascade::BasicChain<cascade::DefaultPolicies::with_cache<cascade::SqliteCache>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), tier, cascade::Template{});
    std::string path = "/tmp/cascade-bench-" + std::to_string(::getpid()) + ".db";
    if (auto err = chain.cache().open(path); !err.empty()) {
        state.SkipWithError(err.c_str());
        return;
    }
    hit_loop(state, io, chain);
    chain.cache().close();
    for (auto s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
}
BENCHMARK(BM_hit_sqlite);

void BM_hit_redis(benchmark::State& state) {
    cascade::test::RedisServer server;
    asio::io_context io;
    ScriptedTier tier("llm");
    cascade::BasicChain<cascade::DefaultPolicies::with_cache<cascade::RedisCache>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), tier, cascade::Template{});
    cascade::RedisCacheConfig cfg;
    cfg.server.port = server.port();
    if (auto err = chain.cache().configure(io.get_executor(), cfg); !err.empty()) {
        state.SkipWithError(err.c_str());
        return;
    }
    hit_loop(state, io, chain);
}
BENCHMARK(BM_hit_redis)->UseRealTime();

// N identical requests at once against a tier that takes 5 ms: one upstream call serves all of them.
void BM_single_flight(benchmark::State& state) {
    auto const n = static_cast<int>(state.range(0));
    std::int64_t upstream = 0, answered = 0;
    for (auto _ : state) {
        asio::io_context io(2);
        ScriptedTier tier("llm");
        tier.otherwise(Step::ok("shared").after(std::chrono::milliseconds(5)));
        cascade::BasicChain<cascade::DefaultPolicies::with_cache<cascade::MemoryCache>, ScriptedTier, cascade::Template> chain(
            io.get_executor(), tier, cascade::Template{});
        auto req = cascade::Request::chat("sys", "the same prompt");
        std::atomic<int> done{0};
        auto one = [&]() -> asio::awaitable<void> {
            auto c = co_await chain.complete(req);
            benchmark::DoNotOptimize(c);
            ++done;
        };
        for (int i = 0; i < n; ++i) asio::co_spawn(io, one(), asio::detached);
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        upstream += tier.total_calls();
        answered += done.load();
    }
    state.counters["upstream/batch"] = static_cast<double>(upstream) / static_cast<double>(state.iterations());
    state.counters["answers/s"] = benchmark::Counter(static_cast<double>(answered), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_single_flight)->Arg(100)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
