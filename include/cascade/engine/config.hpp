#pragma once
/// @file
/// @brief The settings the engine decides by: key budgets (`KeyLimits`), key order (`KeyOrder`), and when
/// circuits open and how long silent failures rest (`CircuitConfig`). Every member has a documented default.

#include <chrono>
#include <cstdint>

namespace cascade {

/// @brief The budgets a provider enforces on one quota group (by default each key is its own group);
/// zero means unlimited.
///
/// Groq's free tier for `llama-3.3-70b-versatile` (console.groq.com/docs/rate-limits, read 2026-08): 30
/// requests and 12,000 tokens a minute, 1,000 requests and 100,000 tokens a day, per organization and model.
/// Requests are budgeted by `Request::estimated_tokens()` and reconciled with the usage the answer reports.
struct KeyLimits {
    /// Tokens per minute.
    std::uint32_t tokens_per_minute = 0;
    /// Requests per minute.
    std::uint32_t requests_per_minute = 0;
    /// Tokens per day (a rolling 24 hours, refilled continuously).
    std::uint32_t tokens_per_day = 0;
    /// Requests per day (a rolling 24 hours, refilled continuously).
    std::uint32_t requests_per_day = 0;

    bool any() const noexcept { return tokens_per_minute || requests_per_minute || tokens_per_day || requests_per_day; }
    bool tokens() const noexcept { return tokens_per_minute || tokens_per_day; }
};

/// @brief In which order a tier's keys are tried.
enum class KeyOrder {
    sequential,              ///< always from the first key: the seed's behaviour, keeps later keys fresh
    round_robin,             ///< start one further each request: spreads load evenly
    least_recently_limited,  ///< the key whose last limit is oldest first
};

/// @brief When a tier's circuit opens, and how long failures that do not say rest.
///
/// The cooldowns apply when a verdict's `cool_for` is empty, which with the default classifier means the
/// response did not say how long to wait (no retry-after, reset header, "try again in" or `RetryInfo`).
/// These members are the only source of those defaults.
struct CircuitConfig {
    /// Consecutive failed attempts (any transient fault) that open the circuit; 0 disables it.
    int failure_threshold = 5;
    /// How long an opened circuit stays open before one probe is let through.
    std::chrono::milliseconds break_for{30'000};
    /// A key's rest (its quota group's) after a 429 that says nothing about when.
    std::chrono::milliseconds rate_limited_cooldown{60'000};
    /// A provider-wide rate limit that says nothing (Cloudflare 1015 on the caller's IP): circuit open time.
    std::chrono::milliseconds edge_rate_limited_cooldown{30'000};
    /// An IP-level block (Cloudflare 1010/1020, challenge pages; they last hours): circuit open time.
    std::chrono::milliseconds blocked_cooldown{3'600'000};
    /// A key's rest (its quota group's) when its credits or quota ran out (402, insufficient_quota).
    std::chrono::milliseconds quota_cooldown{3'600'000};
    /// A retired or unknown model (404 model_not_found, "decommissioned"): circuit open time. It will not
    /// come back by itself; the chain says so once in its log.
    std::chrono::milliseconds model_unavailable_cooldown{24 * 3'600'000};
    /// A provider over capacity as a whole (Anthropic's 529 `overloaded_error`, "over capacity", a model
    /// still loading) that says nothing: circuit open time. Short: overload passes, and the next tier answers
    /// meanwhile.
    std::chrono::milliseconds overloaded_cooldown{10'000};
};

} // namespace cascade
