#pragma once
/// @file
/// @brief The retry policy: whether and when to try the same key again after a failed attempt.

#include <cascade/core/verdict.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <optional>

namespace cascade {

/// @brief What a retry policy is asked about one failed attempt.
struct RetryContext {
    Verdict const* verdict = nullptr;
    /// Retries of this key already made for this request (0 before the first retry).
    int retries_done = 0;
    /// Time left in the chain's budget (`milliseconds::max()` when there is none).
    std::chrono::milliseconds remaining = std::chrono::milliseconds::max();
    /// A uniform random number in [0, 1) for jitter, supplied by the chain.
    double jitter = 0.5;
};

/// @brief A retry policy decides whether to retry the same key, and after how long.
///
/// Requirement: `p.next_delay(ctx)` with `ctx` a `RetryContext const&` returns
/// `std::optional<std::chrono::milliseconds>`: a delay to wait before retrying the same key, or
/// `std::nullopt` to stop retrying (the chain then tries the next key or leaves the tier). It must never
/// return a delay at or past `ctx.remaining`.
template <class P>
concept RetryPolicy = requires(P const& p, RetryContext const& ctx) {
    { p.next_delay(ctx) } -> std::same_as<std::optional<std::chrono::milliseconds>>;
};

/// @brief Exponential backoff with jitter for transient failures, honouring the verdict's retry-after.
///
/// Rate limits are not retried on the same key: the next key is the retry. Only verdicts with
/// `retry_same` (5xx, timeouts, resets) are retried, at most `max_retries` times.
struct Backoff {
    /// Retries per key per request (the first attempt is not counted).
    int max_retries = 2;
    /// Delay before the first retry; doubles for each further retry.
    std::chrono::milliseconds base_delay{200};
    /// Upper bound of one delay (before honouring a retry-after).
    std::chrono::milliseconds max_delay{5000};
    /// Spread delays over [delay/2, delay) so that many clients do not retry in lockstep.
    bool use_jitter = true;

    std::optional<std::chrono::milliseconds> next_delay(RetryContext const& ctx) const {
        if (!ctx.verdict || !ctx.verdict->retry_same || ctx.retries_done >= max_retries) return std::nullopt;
        auto delay = base_delay;
        for (int i = 0; i < ctx.retries_done && delay < max_delay; ++i) delay *= 2;
        delay = std::min(delay, max_delay);
        if (use_jitter) {
            auto half = delay.count() / 2;
            delay = std::chrono::milliseconds(half + static_cast<long long>(ctx.jitter * static_cast<double>(delay.count() - half)));
        }
        // A server that said when to come back is believed over our own guess.
        delay = std::max(delay, ctx.verdict->cool_for.value_or(std::chrono::milliseconds{0}));
        if (delay >= ctx.remaining) return std::nullopt;
        return delay;
    }
};

/// @brief Never retries the same key; failures go straight to the next key or tier.
struct NoRetry {
    std::optional<std::chrono::milliseconds> next_delay(RetryContext const&) const { return std::nullopt; }
};

} // namespace cascade
