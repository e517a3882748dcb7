#pragma once
/// @file
/// @brief `sim::simulate`: runs simulated traffic through a real chain on a `ManualClock` and tallies who
/// answered, what it cost, how long it took and which limits tripped (`Report`).
///
/// @code
/// cascade::ManualClock clock;
/// cascade::sim::ModelledTier groq{groq_cfg, clock}, deepseek{deepseek_cfg, clock};
/// using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;
/// cascade::BasicChain<Simulated, cascade::sim::ModelledTier, cascade::sim::ModelledTier, cascade::Template> chain{io.get_executor(), groq, deepseek, tpl};
/// chain.clock() = clock;
/// auto report = cascade::sim::simulate(io, chain, clock, load, series_by_label);
/// @endcode

#include <cascade/core/completion.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/sim/load.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cascade::sim {

/// @brief Answers of one series (a tier, `cache`, `fallback-template`, or `failed` for a fallible chain).
struct SeriesTally {
    std::string name;
    std::uint64_t answers = 0;
    double cost_usd = 0.0;
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    /// Answers of it that cost nothing.
    std::uint64_t free_answers = 0;
};

/// @brief How often one modelled account refused (or spoiled) an attempt for one reason.
struct TripRow {
    std::string tier;
    std::string limit;
    std::uint64_t count = 0;
};

/// @brief What the chain saw of one tier: attempts, skips and faults by class (from its `Stats`).
struct ChainRow {
    std::string tier;
    std::uint64_t attempts = 0;
    std::uint64_t skips = 0;
    std::vector<std::pair<std::string, std::uint64_t>> faults;
};

/// @brief The outcome of a simulation.
struct Report {
    std::string name;
    double days = 0.0;
    std::uint64_t requests = 0;
    std::vector<SeriesTally> series;
    /// `per_hour[s][h]`: answers of series `s` in simulated hour `h`.
    std::vector<std::vector<std::uint64_t>> per_hour;
    /// Total cost at the end of each simulated hour.
    std::vector<double> cumulative_cost_usd;
    double total_cost_usd = 0.0;
    /// Answered by an LLM or the cache at no cost.
    std::uint64_t free_answers = 0;
    std::uint64_t template_answers = 0;
    std::uint64_t cached_answers = 0;
    std::uint64_t failed = 0;
    /// Latency of `complete()` in simulated time, over every request.
    double p50_ms = 0.0, p99_ms = 0.0, mean_ms = 0.0;
    std::vector<TripRow> trips;
    std::vector<ChainRow> chain;
    /// Real time the simulation took.
    double wall_seconds = 0.0;

    double share(std::uint64_t n) const noexcept { return requests ? static_cast<double>(n) / static_cast<double>(requests) : 0.0; }
    double cost_per_1000() const noexcept { return requests ? total_cost_usd * 1000.0 / static_cast<double>(requests) : 0.0; }
    /// The cost of 30 days at this traffic.
    double cost_per_month() const noexcept { return days > 0.0 ? total_cost_usd / days * 30.0 : 0.0; }
};

namespace detail {

template <class Chain>
struct Simulation {
    boost::asio::io_context& io;
    Chain& chain;
    ManualClock clock;
    LoadConfig const& load;
    std::vector<Arrival> const& arrivals;
    std::function<std::size_t(Completion const&)> series_of;
    Report& report;
    Clock::time_point start;
    std::vector<double> latencies_ms;
    std::vector<double> cost_per_hour;
    Clock::duration warmup{0};
    std::function<void()> on_measure;
    std::size_t done = 0;

    void record(std::size_t s, Arrival const& a, double cost, bool is_free, Usage u, Clock::duration took) {
        auto const hour = static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::hours>(a.at - warmup).count());
        auto& t = report.series[s];
        ++t.answers;
        t.cost_usd += cost;
        t.prompt_tokens += u.prompt_tokens;
        t.completion_tokens += u.completion_tokens;
        if (is_free) ++t.free_answers;
        if (hour < cost_per_hour.size()) {
            ++report.per_hour[s][hour];
            cost_per_hour[hour] += cost;
        }
        latencies_ms.push_back(std::chrono::duration<double, std::milli>(took).count());
        ++done;
    }

    boost::asio::awaitable<void> one(std::size_t i) {
        Arrival const& a = arrivals[i];
        Request const req = request_for(a, load);
        auto const t0 = clock.now();
        auto r = co_await chain.complete(req);
        auto const took = clock.now() - t0;
        if (a.at < warmup) {  // traffic of the warm-up: it used the budgets, it is not reported
            ++done;
            co_return;
        }
        if constexpr (std::is_same_v<decltype(r), Completion>) {
            finish(a, r, took);
        } else if (r) {
            finish(a, *r, took);
        } else {
            ++report.failed;
            record(report.series.size() - 1, a, 0.0, false, Usage{}, took);
        }
    }

    void finish(Arrival const& a, Completion const& c, Clock::duration took) {
        std::size_t const s = series_of(c);
        if (s >= report.series.size()) throw std::logic_error("simulate: series_of returned an index out of range");
        bool const cached = c.origin == Origin::cache || c.origin == Origin::shared;
        double const cost = cached ? 0.0 : c.cost_usd;  // a cached answer's cost is the one paid when it was stored
        bool const is_free = cost == 0.0 && c.origin != Origin::fallback;
        if (is_free) ++report.free_answers;
        if (c.origin == Origin::fallback) ++report.template_answers;
        if (cached) ++report.cached_answers;
        record(s, a, cost, is_free, cached ? Usage{} : c.usage, took);  // a cached answer used no tokens upstream
    }

    boost::asio::awaitable<void> feed() {
        bool measuring = false;
        for (std::size_t i = 0; i < arrivals.size(); ++i) {
            co_await clock.wait_until(start + arrivals[i].at);
            if (!measuring && arrivals[i].at >= warmup) {
                measuring = true;
                if (on_measure) on_measure();
            }
            boost::asio::co_spawn(io, one(i), boost::asio::detached);
        }
    }
};

inline double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0.0;
    auto const k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) - (p > 0.0 ? 1 : 0);
    auto const at = v.begin() + static_cast<std::ptrdiff_t>(std::min(k, v.size() - 1));
    std::nth_element(v.begin(), at, v.end());
    return *at;
}

} // namespace detail

/// @brief Runs `load` through `chain` on `io` (which must run nothing else), in the simulated time of
/// `clock` (the chain's and its modelled tiers' clock). `series` names the report's series; `series_of`
/// says which one an answer belongs to. A fallible chain's failures are counted in a last series,
/// `failed`, which this adds. Throws `std::logic_error` if the simulation stalls (a tier that waits on
/// something other than the clock).
/// `on_measure` runs when the warm-up ends (before the first measured request), e.g. to note counters.
template <class Chain>
Report simulate(boost::asio::io_context& io, Chain& chain, ManualClock clock, LoadConfig const& load, std::vector<std::string> series,
                std::function<std::size_t(Completion const&)> series_of, std::function<void()> on_measure = {}) {
    auto const wall0 = std::chrono::steady_clock::now();
    auto const arrivals = sim::arrivals(load);
    auto const warmup = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(load.warmup_days * 86'400.0));
    Report report;
    report.days = load.days;
    report.requests = static_cast<std::uint64_t>(std::count_if(arrivals.begin(), arrivals.end(), [&](Arrival const& a) { return a.at >= warmup; }));
    if constexpr (!Chain::infallible) series.push_back("failed");
    for (auto& s : series) report.series.push_back(SeriesTally{std::move(s)});
    auto const hours = static_cast<std::size_t>(std::ceil(load.days * 24.0));
    report.per_hour.assign(report.series.size(), std::vector<std::uint64_t>(hours, 0));

    // The measured days start at load.start_utc; a warm-up runs the days before it.
    clock.set_utc(load.start_utc - std::chrono::duration_cast<std::chrono::system_clock::duration>(warmup));
    detail::Simulation<Chain> sim{io, chain, clock, load, arrivals, std::move(series_of), report, clock.now(), {}, std::vector<double>(hours, 0.0), warmup, std::move(on_measure)};
    sim.latencies_ms.reserve(arrivals.size());
    boost::asio::co_spawn(io, sim.feed(), boost::asio::detached);
    while (sim.done < arrivals.size()) {
        io.restart();
        io.poll();
        if (sim.done >= arrivals.size()) break;
        if (!clock.advance_to_next()) {
            io.restart();
            if (io.poll() == 0 && clock.waiting() == 0) throw std::logic_error("simulate: stalled with requests unanswered and nothing waiting on the clock");
        }
    }
    io.restart();
    io.poll();

    double sum = 0.0;
    for (double c : sim.cost_per_hour) report.cumulative_cost_usd.push_back(sum += c);
    for (auto const& t : report.series) report.total_cost_usd += t.cost_usd;
    double lat_sum = 0.0;
    for (double l : sim.latencies_ms) lat_sum += l;
    report.mean_ms = sim.latencies_ms.empty() ? 0.0 : lat_sum / static_cast<double>(sim.latencies_ms.size());
    report.p50_ms = detail::percentile(sim.latencies_ms, 0.50);
    report.p99_ms = detail::percentile(sim.latencies_ms, 0.99);
    report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    return report;
}

} // namespace cascade::sim
