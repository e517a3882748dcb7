// How long the simulator takes for a day of traffic through the real chain against modelled providers
// (docs/economics.md; the goal: a day of 10,000 requests in under 10 seconds on the project's 2-core machine).
// The scenario is the shipped seed chain (Groq, DeepSeek, Vertex, template) at the given requests a day,
// with the cache on and off; a warm-up day runs first, as the shipped scenario says.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_BENCHMARKS=ON
//   cmake --build build/bench -j2 --target bench_simulate && build/bench/benchmarks/bench_simulate

#include <cascade/sim/run_scenario.hpp>

#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

cascade::sim::Scenario seed_chain(std::int64_t per_day, bool cache) {
    std::ifstream in(CASCADE_SOURCE_DIR "/examples/simulate/scenarios/seed-chain.json", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    auto s = cascade::sim::parse_scenario(text.str());
    s.load.requests_per_day = static_cast<std::uint32_t>(per_day);
    s.cache = cache;
    return s;
}

void BM_simulate_day(benchmark::State& state) {
    auto const s = seed_chain(state.range(0), state.range(1) != 0);
    std::uint64_t requests = 0;
    for (auto _ : state) {
        auto r = cascade::sim::run_scenario(s);
        requests += r.requests;
        benchmark::DoNotOptimize(r.total_cost_usd);
    }
    // The warm-up day runs as many requests again as the measured day.
    state.counters["requests/s"] = benchmark::Counter(static_cast<double>(requests) * 2.0, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_simulate_day)->ArgsProduct({{1'000, 10'000}, {0, 1}})->ArgNames({"per_day", "cache"})->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
