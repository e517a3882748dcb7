#pragma once
/// @file
/// @brief Cooldown, budget and circuit state of one tier and its keys, fed by verdicts.
///
/// Plain code over plain state (no I/O, no clock of its own): the chain passes `now` in and carries out
/// what it decides. Not synchronised: the chain holds a lock around every call.

#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace cascade {

using Clock = std::chrono::steady_clock;

/// @brief Per-key budgets a provider enforces; zero means unlimited.
struct KeyLimits {
    /// Tokens per minute (Groq free tier: 6000). Requests are budgeted by estimated tokens.
    std::uint32_t tokens_per_minute = 0;
    /// Requests per minute (Groq free tier: 30).
    std::uint32_t requests_per_minute = 0;
};

/// @brief In which order a tier's keys are tried.
enum class KeyOrder {
    sequential,              ///< always from the first key: the seed's behaviour, keeps later keys fresh
    round_robin,             ///< start one further each request: spreads load evenly
    least_recently_limited,  ///< the key whose last limit is oldest first
};

/// @brief When a tier's circuit opens without a provider-wide verdict.
struct CircuitConfig {
    /// Consecutive failed attempts (any transient fault) that open the circuit; 0 disables it.
    int failure_threshold = 5;
    /// How long an opened circuit stays open before one probe is let through.
    std::chrono::milliseconds break_for{30'000};
    // Cooldowns used when a verdict carries none, that is when the response did not say how long to wait
    // (no retry-after, no reset header, no "try again in"). The only source of these defaults: the
    // default classifier sets `Verdict::cool_for` only from what the response says.
    /// A key's rest after a 429 that says nothing about when.
    std::chrono::milliseconds rate_limited_cooldown{60'000};
    /// A provider-wide rate limit that says nothing (Cloudflare 1015 on the caller's IP): circuit open time.
    std::chrono::milliseconds edge_rate_limited_cooldown{30'000};
    /// An IP-level block (Cloudflare 1010/1020, challenge pages; they last hours): circuit open time.
    std::chrono::milliseconds blocked_cooldown{3'600'000};
    /// A key's rest when its credits or quota ran out (402, insufficient_quota).
    std::chrono::milliseconds quota_cooldown{3'600'000};
};

/// @brief What `TierState::admit` decided.
struct Admission {
    bool allowed = true;
    /// The circuit was open and this request is its one probe.
    bool probe = false;
    /// When not allowed: how long until the circuit lets a probe through.
    std::chrono::milliseconds open_for{0};
};

/// @brief What `TierState::pick_key` decided.
struct KeyPick {
    /// The key to use, or nullopt with `why` (`unconfigured` or `exhausted`).
    std::optional<std::size_t> key;
    Fault why = Fault::exhausted;
    /// Tokens reserved from the key's budget (give back the difference on completion).
    std::uint32_t reserved_tokens = 0;
};

/// @brief What `TierState::recheck` found before a retry on the same key.
enum class Recheck {
    same_key,   ///< nothing changed: retry
    next_key,   ///< the key is cooling down or disabled: try the tier's next key
    next_tier,  ///< the tier's circuit is open: leave the tier
};

/// @brief State of one key.
struct KeyState {
    Clock::time_point cool_until{};
    bool disabled = false;
    Clock::time_point last_limited{};
    /// Tokens all instances used on this key in the current minute (from shared state); -1 when unknown.
    double shared_tokens_used = -1.0;
    double tokens = 0.0;    ///< token bucket level (starts full)
    double requests = 0.0;  ///< request bucket level (starts full)
    Clock::time_point refilled{};  ///< last refill; the epoch until first use
};

/// @brief Cooldowns, budgets and circuit of one tier. Sans-io: every call takes `now`.
class TierState {
public:
    TierState() = default;
    TierState(std::size_t keys, KeyLimits limits, CircuitConfig cfg) { configure(keys, limits, cfg); }

    void configure(std::size_t keys, KeyLimits limits, CircuitConfig cfg) {
        KeyState fresh;
        fresh.tokens = limits.tokens_per_minute;
        fresh.requests = limits.requests_per_minute;
        keys_.assign(keys, fresh);
        limits_ = limits;
        cfg_ = cfg;
        quiet_.store(keys > 0, std::memory_order_relaxed);
        update_dirty();
    }

    std::size_t key_count() const noexcept { return keys_.size(); }
    /// True when keys are budgeted by tokens per minute.
    bool key_limits_tokens() const noexcept { return limits_.tokens_per_minute != 0; }
    KeyState const& key(std::size_t i) const { return keys_.at(i); }
    CircuitConfig const& config() const noexcept { return cfg_; }
    bool circuit_open(Clock::time_point now) const noexcept { return open_ && now < open_until_; }

    /// @brief What other instances learned (shared state): key `i` cools until `until` (or is disabled),
    /// and all instances used `tokens_used` of its budget this minute (negative: unknown). Keeps the later
    /// of the local and the shared cooldown.
    void merge_shared_key(std::size_t i, Clock::time_point until, bool disabled, double tokens_used) {
        if (i >= keys_.size()) return;
        auto& k = keys_[i];
        if (until > k.cool_until) k.cool_until = until;
        if (disabled) k.disabled = true;
        k.shared_tokens_used = tokens_used;
        if (disabled || until > Clock::time_point{}) quiet_.store(false, std::memory_order_relaxed);
    }

    /// @brief Another instance opened this tier's circuit until `until`.
    void merge_shared_circuit(Clock::time_point until) {
        if (until <= open_until_ && open_) return;
        open_ = true;
        probing_ = false;
        open_until_ = until;
        update_dirty();
    }

    /// @brief When the circuit lets the next probe through (meaningful while open).
    Clock::time_point open_until() const noexcept { return open_until_; }

    /// @brief May a request go to this tier now? An open circuit lets exactly one probe through once its
    /// break has passed; other requests are turned away while the probe is out.
    Admission admit(Clock::time_point now) {
        if (!open_) return {};
        if (now < open_until_)
            return {false, false, std::chrono::ceil<std::chrono::milliseconds>(open_until_ - now)};
        if (probing_) return {false, false, std::chrono::milliseconds{0}};
        probing_ = true;
        update_dirty();
        return {true, true, std::chrono::milliseconds{0}};
    }

    /// @brief The next key to use for a request of `tokens` estimated tokens, skipping keys tried already
    /// (bit i of `tried`), cooling down, disabled, or without budget. Reserves budget on the key picked.
    KeyPick pick_key(Clock::time_point now, std::uint32_t tokens, std::uint64_t tried, KeyOrder order,
                     std::size_t rotation = 0) {
        KeyPick pick;
        if (keys_.empty()) {
            pick.why = Fault::unconfigured;
            return pick;
        }
        std::size_t const n = keys_.size();
        auto usable = [&](std::size_t i) {
            if (i < 64 && (tried >> i) & 1u) return false;
            auto& k = keys_[i];
            if (k.disabled || now < k.cool_until) return false;
            if (limits_.tokens_per_minute || limits_.requests_per_minute) refill(k, now);
            if (limits_.tokens_per_minute && k.tokens < static_cast<double>(tokens)) return false;
            if (limits_.tokens_per_minute && k.shared_tokens_used >= 0.0 &&
                k.shared_tokens_used + static_cast<double>(tokens) > static_cast<double>(limits_.tokens_per_minute))
                return false;
            if (limits_.requests_per_minute && k.requests < 1.0) return false;
            return true;
        };
        std::optional<std::size_t> chosen;
        if (order == KeyOrder::least_recently_limited) {
            for (std::size_t i = 0; i < n; ++i)
                if (usable(i) && (!chosen || keys_[i].last_limited < keys_[*chosen].last_limited)) chosen = i;
        } else {
            std::size_t start = order == KeyOrder::round_robin ? rotation % n : 0;
            for (std::size_t j = 0; j < n && !chosen; ++j)
                if (usable((start + j) % n)) chosen = (start + j) % n;
        }
        update_quiet(now);
        if (!chosen) return pick;
        auto& k = keys_[*chosen];
        if (limits_.tokens_per_minute) {
            k.tokens -= tokens;
            pick.reserved_tokens = tokens;
        }
        if (limits_.requests_per_minute) k.requests -= 1.0;
        pick.key = chosen;
        return pick;
    }

    /// @brief Whether `on_success` would change anything (a budget to reconcile, failures to forget, a
    /// circuit to close). Safe to call without the lock: a stale answer only delays forgetting a failure.
    bool success_changes_state() const noexcept { return dirty_.load(std::memory_order_relaxed); }

    /// @brief True while nothing restricts this tier: no budgets, circuit closed, no key cooling or
    /// disabled. Then any key may be used without consulting the state (the chain's lock-free fast path).
    bool quiet() const noexcept { return quiet_.load(std::memory_order_relaxed); }

    /// @brief A request on `key` succeeded, using `used_tokens` where `reserved` had been reserved.
    ///
    /// Only the probe's success closes an open circuit: a request sent before the circuit opened (before
    /// a 1010 arrived, say) may still succeed afterwards, and says nothing about the provider now.
    void on_success(std::optional<std::size_t> key, std::uint32_t reserved, std::uint32_t used_tokens, bool probe) {
        if (key && *key < keys_.size() && limits_.tokens_per_minute && used_tokens)
            keys_[*key].tokens += static_cast<double>(reserved) - static_cast<double>(used_tokens);
        consecutive_failures_ = 0;
        if (probe) {
            open_ = false;
            probing_ = false;
        }
        update_dirty();
    }

    /// @brief May a request whose attempt on `key` failed try that key again now? Not when, meanwhile,
    /// the key was cooled or disabled, or the circuit opened (a failed probe re-opens it too).
    Recheck recheck(std::size_t key, Clock::time_point now) const noexcept {
        if (open_) return Recheck::next_tier;
        if (key < keys_.size() && (keys_[key].disabled || now < keys_[key].cool_until)) return Recheck::next_key;
        return Recheck::same_key;
    }

    /// @brief A request on `key` failed with `v`: cool or disable the key, open the circuit, count failures.
    void on_failure(std::optional<std::size_t> key, Verdict const& v, Clock::time_point now, bool probe) {
        on_failure_impl(key, v, now, probe);
        update_dirty();
        update_quiet(now);
    }

private:
    void on_failure_impl(std::optional<std::size_t> key, Verdict const& v, Clock::time_point now, bool probe) {
        if (v.fault == Fault::cancelled) {
            if (probe) probing_ = false;  // the probe never finished: let the next request probe
            return;
        }
        if (v.scope == Scope::key && key && *key < keys_.size()) {
            auto& k = keys_[*key];
            k.last_limited = now;
            if (v.fault == Fault::unauthorized) {
                k.disabled = true;
            } else {
                // The later of the rests asked for: a shorter answer to a request sent earlier does not
                // shorten a rest the provider asked for since.
                k.cool_until = std::max(k.cool_until, later(now, v.cool_for.count() > 0 ? v.cool_for : default_cooldown(v.fault)));
                // The provider told us the budget is spent: empty the bucket so it refills from zero.
                if (v.fault == Fault::rate_limited && limits_.tokens_per_minute) k.tokens = std::min(k.tokens, 0.0);
            }
        }
        if (v.scope == Scope::provider) {
            open_circuit(now, v.cool_for.count() > 0 ? v.cool_for
                              : v.fault == Fault::rate_limited ? cfg_.edge_rate_limited_cooldown
                                                               : default_cooldown(v.fault));
            return;
        }
        if (v.scope == Scope::attempt && is_transient(v.fault)) {
            ++consecutive_failures_;
            if (probe || (cfg_.failure_threshold > 0 && consecutive_failures_ >= cfg_.failure_threshold))
                open_circuit(now, cfg_.break_for);
        } else if (probe) {
            // A probe that failed for a permanent, request-specific reason says nothing about the provider.
            probing_ = false;
            open_ = false;
        }
    }

public:
    /// @brief Opens the circuit until `now + d`.
    void open_circuit(Clock::time_point now, std::chrono::milliseconds d) {
        open_ = true;
        probing_ = false;
        open_until_ = later(now, d);
        consecutive_failures_ = 0;
        update_dirty();
    }

private:
    void update_dirty() noexcept {
        dirty_.store(limits_.tokens_per_minute != 0 || open_ || probing_ || consecutive_failures_ != 0,
                     std::memory_order_relaxed);
        if (open_ || probing_ || limits_.tokens_per_minute || limits_.requests_per_minute)
            quiet_.store(false, std::memory_order_relaxed);
    }

    // Quiet again once every cooldown has passed; only called under the chain's lock.
    void update_quiet(Clock::time_point now) noexcept {
        bool q = !keys_.empty() && !open_ && !probing_ && !limits_.tokens_per_minute && !limits_.requests_per_minute;
        for (auto const& k : keys_)
            if (k.disabled || now < k.cool_until) q = false;
        quiet_.store(q, std::memory_order_relaxed);
    }

    std::chrono::milliseconds default_cooldown(Fault f) const noexcept {
        switch (f) {
        case Fault::rate_limited: return cfg_.rate_limited_cooldown;
        case Fault::blocked: return cfg_.blocked_cooldown;
        case Fault::quota_exhausted: return cfg_.quota_cooldown;
        default: return cfg_.break_for;
        }
    }

    // now + d without overflowing the clock for "practically forever" cooldowns.
    static Clock::time_point later(Clock::time_point now, std::chrono::milliseconds d) noexcept {
        auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
        return d >= room ? Clock::time_point::max() : now + d;
    }

    void refill(KeyState& k, Clock::time_point now) const noexcept {
        if (k.refilled == Clock::time_point{} || now <= k.refilled) {
            if (k.refilled == Clock::time_point{}) k.refilled = now;
            return;
        }
        double minutes = std::chrono::duration<double, std::ratio<60>>(now - k.refilled).count();
        k.tokens = std::min<double>(limits_.tokens_per_minute, k.tokens + minutes * limits_.tokens_per_minute);
        k.requests = std::min<double>(limits_.requests_per_minute, k.requests + minutes * limits_.requests_per_minute);
        k.refilled = now;
    }

    std::vector<KeyState> keys_;
    KeyLimits limits_;
    CircuitConfig cfg_;
    bool open_ = false;
    bool probing_ = false;
    Clock::time_point open_until_{};
    int consecutive_failures_ = 0;
    std::atomic<bool> dirty_{false};
    std::atomic<bool> quiet_{false};
};

} // namespace cascade
