// What the chain costs over awaiting the same in-process tier directly: with and without a deadline, one
// failover step, the hedged driver, a hedge that fires; a runtime-polymorphic chain (a vector of virtual
// tiers) for comparison; heap allocations per request.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_BENCHMARKS=ON
//   cmake --build build/bench -j2 --target bench_chain && build/bench/benchmarks/bench_chain

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <vector>

namespace asio = boost::asio;

// --- Counting every heap allocation ----------------------------------------------------------------
// The C allocation functions are interposed, not only operator new: Asio allocates coroutine frames with
// aligned_alloc, which operator new never sees.

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}

extern "C" void* malloc(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t m) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(n, m);
}
extern "C" void* realloc(void* p, std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
extern "C" void* aligned_alloc(std::size_t a, std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
extern "C" int posix_memalign(void** out, std::size_t a, std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}

namespace {

// Answers at once, without suspending: what remains is the cost of the machinery around it. It ends by
// any deadline, as the built-in providers do by passing it to their transport.
struct InstantTier {
    static constexpr bool honours_deadline = true;
    std::string_view name() const noexcept { return "instant"; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const&, cascade::Context&) {
        cascade::Completion c;
        c.text = "answer";
        c.label = "instant";
        c.usage = {10, 20};
        co_return cascade::Outcome(std::move(c));
    }
};

// The same tier without the declaration: the chain then guards a deadline with a timer of its own.
struct UnguardedTier {
    std::string_view name() const noexcept { return "unguarded"; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const& r, cascade::Context& c) { return InstantTier{}.attempt(r, c); }
};

// Key 1 waits on the manual clock until cancelled; key 2 answers at once: a hedge that fires.
struct SlowFirstKey {
    cascade::ManualClock clock;
    std::string_view name() const noexcept { return "slow-first"; }
    std::size_t key_count() const noexcept { return 2; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const& r, cascade::Context& c) {
        if (c.key == 0) {
            auto ec = co_await clock.wait_until(clock.now() + std::chrono::hours(1));
            co_return cascade::failed_without_response(ec ? ec : boost::system::error_code(cascade::Fault::timeout));
        }
        co_return co_await InstantTier{}.attempt(r, c);
    }
};

// Fails at once with a request-scoped fault: the cost of one failover step.
struct FailingTier {
    std::string_view name() const noexcept { return "failing"; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const&, cascade::Context&) {
        co_return cascade::failed_without_response(cascade::Fault::bad_request);
    }
};

// The runtime-polymorphic alternative: a vector of virtual tiers tried in order.
struct VirtualTier {
    virtual ~VirtualTier() = default;
    virtual asio::awaitable<cascade::Outcome> attempt(cascade::Request const&, cascade::Context&) = 0;
};
template <class T>
struct VirtualAdapter final : VirtualTier {
    T tier;
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const& r, cascade::Context& c) override {
        return tier.attempt(r, c);
    }
};
struct VirtualChain {
    std::vector<std::unique_ptr<VirtualTier>> tiers;
    asio::awaitable<cascade::Outcome> complete(cascade::Request const& r) {
        cascade::Context ctx;
        cascade::Observation last;
        for (auto& t : tiers) {
            auto out = co_await t->attempt(r, ctx);
            if (out) co_return out;
            last = out.error();
        }
        co_return cascade::Outcome(boost::system::in_place_error, std::move(last));
    }
};

// Runs `body(req)` once per benchmark iteration inside one coroutine, and reports allocations per request.
template <class Body>
void run_loop(benchmark::State& state, Body body) {
    asio::io_context io;
    auto req = cascade::Request::chat("system", "prompt");
    std::uint64_t allocs = 0;
    auto loop = [&]() -> asio::awaitable<void> {
        // Warm Asio's per-thread frame cache before counting.
        for (int i = 0; i < 16; ++i) co_await body(req);
        auto before = g_allocs.load();
        for (auto _ : state) {
            auto r = co_await body(req);
            benchmark::DoNotOptimize(r);
        }
        allocs = g_allocs.load() - before;
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
    state.counters["allocs/req"] = benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
}

void BM_direct_tier(benchmark::State& state) {
    InstantTier tier;
    cascade::Context ctx;
    run_loop(state, [&](cascade::Request const& r) { return tier.attempt(r, ctx); });
}
BENCHMARK(BM_direct_tier);

void BM_chain_first_tier_answers(benchmark::State& state) {
    asio::io_context io;
    cascade::Chain<InstantTier, cascade::Template> chain(io.get_executor(), InstantTier{}, cascade::Template{});
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_first_tier_answers);

void BM_chain_first_tier_answers_no_stats(benchmark::State& state) {
    asio::io_context io;
    cascade::BasicChain<cascade::DefaultPolicies::with_observe<cascade::NoObserve>, InstantTier, cascade::Template> chain(
        io.get_executor(), InstantTier{}, cascade::Template{});
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_first_tier_answers_no_stats);

// A deadline, the way a production server runs it: the tier ends by it itself (as the providers do).
void BM_chain_with_deadline(benchmark::State& state) {
    asio::io_context io;
    cascade::ChainConfig cfg;
    cfg.deadline = std::chrono::seconds(30);
    cascade::Chain<InstantTier, cascade::Template> chain(io.get_executor(), cfg, InstantTier{}, cascade::Template{});
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_with_deadline);

// A deadline over a tier that does not declare it ends by it: the chain's own timer races the pipeline.
void BM_chain_with_deadline_guarded(benchmark::State& state) {
    asio::io_context io;
    cascade::ChainConfig cfg;
    cfg.deadline = std::chrono::seconds(30);
    cascade::Chain<UnguardedTier, cascade::Template> chain(io.get_executor(), cfg, UnguardedTier{}, cascade::Template{});
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_with_deadline_guarded);

// The hedged driver when the first attempt answers before the hedge delay: the attempt is spawned on a
// strand of the request's own and reports on a channel, and the hedge timer is armed and cancelled.
void BM_chain_hedging_on_first_answers(benchmark::State& state) {
    asio::io_context io;
    using Hedged = cascade::DefaultPolicies::with_hedge<cascade::Hedge>;
    cascade::BasicChain<Hedged, InstantTier, cascade::Template> chain(io.get_executor(), InstantTier{}, cascade::Template{});
    chain.hedge_policy().fixed_delay = std::chrono::seconds(10);
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_hedging_on_first_answers);

// A hedge that fires: key 1 hangs, the hedge delay passes (on a manual clock), key 2 answers, key 1 is
// cancelled. What a hedged request costs in machinery beyond the attempts themselves.
void BM_chain_hedge_fires(benchmark::State& state) {
    asio::io_context io;
    using Hedged = cascade::DefaultPolicies::with_hedge<cascade::Hedge>::with_clock<cascade::ManualClock>;
    SlowFirstKey tier;
    cascade::BasicChain<Hedged, SlowFirstKey, cascade::Template> chain(io.get_executor(), tier, cascade::Template{});
    chain.clock() = tier.clock;
    chain.hedge_policy().fixed_delay = std::chrono::milliseconds(100);
    chain.hedge_policy().limits.max_ratio = 1.0;
    auto req = cascade::Request::chat("system", "prompt");
    std::uint64_t allocs = 0, hedged = 0;
    auto one = [&] {
        bool done = false;
        asio::co_spawn(io, chain.complete(req), [&](std::exception_ptr, cascade::Completion c) {
            done = true;
            hedged += c.trail.size() == 1;  // key 1's attempt, cancelled: the hedge answered
        });
        while (!done) {
            io.restart();
            io.poll();
            if (!done) tier.clock.advance_to_next();
        }
    };
    for (int i = 0; i < 16; ++i) one();
    auto before = g_allocs.load();
    hedged = 0;
    for (auto _ : state) one();
    allocs = g_allocs.load() - before;
    state.counters["allocs/req"] = benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(state.iterations()));
    state.counters["hedged"] = benchmark::Counter(static_cast<double>(hedged) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_chain_hedge_fires);

void BM_chain_one_failover(benchmark::State& state) {
    asio::io_context io;
    cascade::BasicChain<cascade::DefaultPolicies::with_retry<cascade::NoRetry>, FailingTier, InstantTier, cascade::Template> chain(
        io.get_executor(), FailingTier{}, InstantTier{}, cascade::Template{});
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_chain_one_failover);

void BM_virtual_chain_first_tier_answers(benchmark::State& state) {
    VirtualChain chain;
    chain.tiers.push_back(std::make_unique<VirtualAdapter<InstantTier>>());
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_virtual_chain_first_tier_answers);

void BM_virtual_chain_one_failover(benchmark::State& state) {
    VirtualChain chain;
    chain.tiers.push_back(std::make_unique<VirtualAdapter<FailingTier>>());
    chain.tiers.push_back(std::make_unique<VirtualAdapter<InstantTier>>());
    run_loop(state, [&](cascade::Request const& r) { return chain.complete(r); });
}
BENCHMARK(BM_virtual_chain_one_failover);

} // namespace

BENCHMARK_MAIN();
