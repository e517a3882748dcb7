#pragma once
/// @file
/// @brief The observe policy: every attempt and skip is reported to it; `Stats` keeps per-tier tables.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace cascade {

/// @brief One attempt (or skip) as the chain reports it. Never holds a key.
struct AttemptEvent {
    /// Position of the tier in its chain, and its name (`groq`, `deepseek`, `fallback-template`).
    std::size_t tier = 0;
    std::string_view tier_name;
    /// What was tried (`groq3`).
    std::string_view label;
    int key = no_key;
    /// Empty on success.
    boost::system::error_code fault;
    int http_status = 0;
    /// True when the tier was skipped without a request (circuit open, every key cooling, no key).
    bool skipped = false;
    /// Started beside a slower attempt by the hedge policy (its cost counts like any other).
    bool hedged = false;
    std::chrono::microseconds latency{0};
    Usage usage;
    double cost_usd = 0.0;
};

/// @brief How one stream (`BasicChain::stream`) ended, reported once when it ends. Never holds a key.
struct StreamEvent {
    /// The tier whose text reached the caller (the answer's, or the cut attempt's); for a stream that
    /// delivered nothing, the chain's tier count.
    std::size_t tier = 0;
    std::string_view tier_name;
    std::string_view label;
    /// `complete`, `incomplete`, `failed` or `cancelled` (see `StreamEnd`): 0, 1, 2, 3.
    std::uint8_t end = 0;
    /// Whether any text reached the caller.
    bool committed = false;
    /// From the call of `stream` to the first delta delivered.
    std::chrono::microseconds time_to_first_token{0};
    std::size_t deltas = 0;
};

/// @brief An observe policy receives every attempt and skip.
///
/// Optional: `p.on_stream(e)` with `e` a `StreamEvent const&`, once per stream when it ends.
///
/// Requirement: `p.on_attempt(e)` with `e` an `AttemptEvent const&`; called from several threads at once,
/// so it must synchronise its own state. Keep it fast: it runs on the request path.
template <class P>
concept ObservePolicy = requires(P& p, AttemptEvent const& e) {
    { p.on_attempt(e) };
};

/// @brief Ignores every event.
struct NoObserve {
    void on_attempt(AttemptEvent const&) noexcept {}
};

/// @brief Fans every event out to two observers, e.g. `Both<Stats, server::PrometheusObserver>`: the
/// table for logs and the metrics for a scraper. `on_stream` reaches each that has it.
/// @code
/// using Observed = cascade::DefaultPolicies::with_observe<cascade::Both<cascade::Stats, cascade::server::PrometheusObserver>>;
/// std::cout << chain.observer().first().table();
/// @endcode
template <ObservePolicy A, ObservePolicy B>
class Both {
public:
    void on_attempt(AttemptEvent const& e) {
        a_.on_attempt(e);
        b_.on_attempt(e);
    }
    void on_stream(StreamEvent const& e) {
        if constexpr (requires { a_.on_stream(e); }) a_.on_stream(e);
        if constexpr (requires { b_.on_stream(e); }) b_.on_stream(e);
    }
    A& first() noexcept { return a_; }
    A const& first() const noexcept { return a_; }
    B& second() noexcept { return b_; }
    B const& second() const noexcept { return b_; }

private:
    A a_;
    B b_;
};

/// @brief Counters of one tier.
struct TierStats {
    std::string name;
    std::uint64_t attempts = 0;  ///< requests actually made (skips not included)
    std::uint64_t hits = 0;      ///< attempts that produced the answer returned
    std::uint64_t skips = 0;     ///< times the tier was passed over without a request
    std::uint64_t hedges = 0;    ///< attempts started beside a slower one (counted in `attempts` too)
    std::array<std::uint64_t, fault_count> faults{};  ///< failed attempts and skips by Fault value
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    double cost_usd = 0.0;
    std::chrono::microseconds latency_total{0};
    std::uint64_t streams = 0;             ///< streams whose text came from this tier
    std::uint64_t streams_incomplete = 0;  ///< of those, cut after their text reached the caller
    std::chrono::microseconds first_token_total{0};  ///< summed time to first token of those streams

    std::uint64_t fault_count_of(Fault f) const noexcept { return faults[static_cast<std::size_t>(f)]; }
};

/// @brief The default observer: per-tier hits, faults by class, tokens, cost and latency.
class Stats {
public:
    Stats() = default;
    Stats(Stats const&) = delete;
    Stats& operator=(Stats const&) = delete;

    void on_attempt(AttemptEvent const& e) {
        std::lock_guard lock(mutex_);
        if (tiers_.size() <= e.tier) tiers_.resize(e.tier + 1);
        auto& t = tiers_[e.tier];
        if (t.name.empty()) t.name = std::string(e.tier_name);
        if (e.skipped) {
            ++t.skips;
        } else {
            ++t.attempts;
            if (e.hedged) ++t.hedges;
            t.latency_total += e.latency;
            t.prompt_tokens += e.usage.prompt_tokens;
            t.completion_tokens += e.usage.completion_tokens;
            t.cost_usd += e.cost_usd;
        }
        if (e.fault) {
            auto v = static_cast<std::size_t>(e.fault.value());
            if (e.fault.category() == fault_category() && v < fault_count) ++t.faults[v];
        } else if (!e.skipped) {
            ++t.hits;
        }
    }

    void on_stream(StreamEvent const& e) {
        if (!e.committed) return;
        std::lock_guard lock(mutex_);
        if (tiers_.size() <= e.tier) tiers_.resize(e.tier + 1);
        auto& t = tiers_[e.tier];
        if (t.name.empty()) t.name = std::string(e.tier_name);
        ++t.streams;
        if (e.end == 1) ++t.streams_incomplete;
        t.first_token_total += e.time_to_first_token;
    }

    /// @brief A copy of the per-tier table, in tier order.
    std::vector<TierStats> snapshot() const {
        std::lock_guard lock(mutex_);
        return tiers_;
    }

    /// @brief Prints the table: tier, attempts, hits, skips, faults by class, tokens, cost, mean latency.
    friend std::ostream& operator<<(std::ostream& os, Stats const& s) { return os << s.table(); }

    std::string table() const {
        auto rows = snapshot();
        std::string out;
        char line[256];
        std::snprintf(line, sizeof line, "%-22s %8s %6s %6s %9s %9s %10s %9s  %s\n", "tier", "attempts", "hits",
                      "skips", "tok_in", "tok_out", "cost_usd", "mean_ms", "faults");
        out += line;
        for (auto const& t : rows) {
            double mean_ms = t.attempts ? static_cast<double>(t.latency_total.count()) / 1000.0 / static_cast<double>(t.attempts) : 0.0;
            std::snprintf(line, sizeof line, "%-22s %8llu %6llu %6llu %9llu %9llu %10.6f %9.2f  ", t.name.c_str(),
                          static_cast<unsigned long long>(t.attempts), static_cast<unsigned long long>(t.hits),
                          static_cast<unsigned long long>(t.skips), static_cast<unsigned long long>(t.prompt_tokens),
                          static_cast<unsigned long long>(t.completion_tokens), t.cost_usd, mean_ms);
            out += line;
            bool any = false;
            for (std::size_t f = 1; f < fault_count; ++f) {
                if (!t.faults[f]) continue;
                if (any) out += ' ';
                out += to_string(static_cast<Fault>(f));
                out += '=';
                out += std::to_string(t.faults[f]);
                any = true;
            }
            if (!any) out += '-';
            out += '\n';
        }
        bool streamed = false;
        for (auto const& t : rows) streamed |= t.streams > 0;
        if (!streamed) return out;
        std::snprintf(line, sizeof line, "%-22s %8s %10s %11s\n", "streams from", "streams", "incomplete", "mean_ttft_ms");
        out += line;
        for (auto const& t : rows) {
            if (!t.streams) continue;
            double ttft = static_cast<double>(t.first_token_total.count()) / 1000.0 / static_cast<double>(t.streams);
            std::snprintf(line, sizeof line, "%-22s %8llu %10llu %11.2f\n", t.name.c_str(), static_cast<unsigned long long>(t.streams),
                          static_cast<unsigned long long>(t.streams_incomplete), ttft);
            out += line;
        }
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<TierStats> tiers_;
};

} // namespace cascade
