#pragma once
/// @file
/// @brief The hedge policy: when an attempt is slow, start the next key or tier beside it; the first
/// accepted answer wins and the others are cancelled. Off by default (`NoHedge`).

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <optional>

namespace cascade {

/// @brief What a hedge policy is asked when an attempt starts.
struct HedgeContext {
    /// Position of the attempt's tier in its chain.
    std::size_t tier = 0;
    /// The 95th percentile of the tier's recent answer latencies, and how many answers it is taken from.
    std::chrono::microseconds p95{0};
    std::size_t samples = 0;
    /// Attempts of this request in flight, this one included.
    int in_flight = 1;
};

/// @brief How much hedging a chain allows.
struct HedgeBudget {
    /// Attempts in flight at once for one request, besides the first.
    int max_extra = 1;
    /// The share of requests that may be hedged over the long run (a bucket earning this much per request).
    double max_ratio = 0.1;
    /// Hedges the bucket holds at most (and starts with).
    double burst = 10.0;
};

/// @brief A hedge policy decides after how long a slow attempt gets company, and how much of it.
///
/// Requirements: `p.delay(ctx)` with `ctx` a `HedgeContext const&` returns
/// `std::optional<std::chrono::milliseconds>` (nullopt: do not hedge this attempt); `p.budget()` returns a
/// `HedgeBudget`; `P::enabled` is a `static constexpr bool`. Both may be called from several threads.
template <class P>
concept HedgePolicy = requires(P const& p, HedgeContext const& ctx) {
    { p.delay(ctx) } -> std::same_as<std::optional<std::chrono::milliseconds>>;
    { p.budget() } -> std::same_as<HedgeBudget>;
    { P::enabled } -> std::convertible_to<bool>;
};

/// @brief Never hedges: one attempt at a time. The default; the chain then spawns nothing.
struct NoHedge {
    static constexpr bool enabled = false;
    std::optional<std::chrono::milliseconds> delay(HedgeContext const&) const { return std::nullopt; }
    HedgeBudget budget() const { return {0, 0.0, 0.0}; }
};

/// @brief Hedges an attempt that has not answered after `delay`, or, with `delay` zero, after its tier's
/// observed p95 latency (`fallback_delay` until `min_samples` answers have been seen).
struct Hedge {
    static constexpr bool enabled = true;
    /// After how long a slow attempt gets company. Zero: the tier's p95 latency.
    std::chrono::milliseconds fixed_delay{0};
    /// With `fixed_delay` zero: answers a tier must have given before its p95 is trusted.
    std::size_t min_samples = 20;
    /// With `fixed_delay` zero and too few samples: the delay used meanwhile.
    std::chrono::milliseconds fallback_delay{2'000};
    /// A floor under the p95, so that a tier answering in microseconds is not hedged at once.
    std::chrono::milliseconds min_delay{50};
    /// How much hedging: extra attempts in flight, share of requests, burst.
    HedgeBudget limits{};

    std::optional<std::chrono::milliseconds> delay(HedgeContext const& ctx) const {
        if (fixed_delay.count() > 0) return fixed_delay;
        if (ctx.samples < min_samples) return fallback_delay;
        return std::max(min_delay, std::chrono::ceil<std::chrono::milliseconds>(ctx.p95));
    }
    HedgeBudget budget() const { return limits; }
};

static_assert(HedgePolicy<NoHedge> && HedgePolicy<Hedge>);

} // namespace cascade
