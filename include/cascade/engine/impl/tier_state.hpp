#pragma once
// Definitions of TierState (engine/tier_state.hpp).

#include <cascade/engine/tier_state.hpp>  // the face: this file holds its definitions

#include <algorithm>
#include <limits>
#include <map>

namespace cascade {

inline void TierState::configure(std::size_t keys, std::vector<std::size_t> const& groups, KeyLimits limits, CircuitConfig cfg) {
    limits_ = limits;
    cfg_ = cfg;
    keys_.assign(keys, Key{});
    // Groups are numbered in order of first appearance, whatever numbers the caller used.
    std::map<std::size_t, std::size_t> index;
    for (std::size_t k = 0; k < keys; ++k) {
        std::size_t name = k < groups.size() ? groups[k] : std::numeric_limits<std::size_t>::max() - k;
        auto [it, inserted] = index.try_emplace(name, index.size());
        keys_[k].group = it->second;
    }
    Group fresh;
    auto minute = std::chrono::duration_cast<Clock::duration>(std::chrono::minutes(1));
    auto day = std::chrono::duration_cast<Clock::duration>(std::chrono::hours(24));
    fresh.buckets[tokens_minute] = {double(limits.tokens_per_minute), double(limits.tokens_per_minute), minute};
    fresh.buckets[requests_minute] = {double(limits.requests_per_minute), double(limits.requests_per_minute), minute};
    fresh.buckets[tokens_day] = {double(limits.tokens_per_day), double(limits.tokens_per_day), day};
    fresh.buckets[requests_day] = {double(limits.requests_per_day), double(limits.requests_per_day), day};
    groups_.assign(index.size(), fresh);
    open_ = probing_ = false;
    open_until_ = {};
    consecutive_failures_ = 0;
    quiet_.store(keys > 0 && !limits.any(), std::memory_order_relaxed);
    update_dirty();
}

inline KeyState TierState::key(std::size_t i) const {
    auto const& k = keys_.at(i);
    auto const& g = groups_[k.group];
    KeyState s;
    s.cool_until = g.cool_until;
    s.disabled = k.disabled;
    s.last_limited = g.last_limited;
    s.lease_tokens = g.lease[tokens_minute];
    s.lease_requests = g.lease[requests_minute];
    s.tokens = g.buckets[tokens_minute].level;
    s.requests = g.buckets[requests_minute].level;
    s.group = k.group;
    return s;
}

inline Admission TierState::admit(Clock::time_point now) {
    if (!open_) return {};
    if (now < open_until_) return {false, false, std::chrono::ceil<std::chrono::milliseconds>(open_until_ - now)};
    if (probing_) return {false, false, std::chrono::milliseconds{0}};
    probing_ = true;
    update_dirty();
    return {true, true, std::chrono::milliseconds{0}};
}

inline void TierState::refill(Group& g, Clock::time_point now) const noexcept {
    if (g.refilled == Clock::time_point{} || now <= g.refilled) {
        if (g.refilled == Clock::time_point{}) g.refilled = now;
        return;
    }
    auto elapsed = now - g.refilled;
    for (auto& b : g.buckets)
        if (b.limited())
            b.level = std::min(b.capacity, b.level + b.capacity * std::chrono::duration<double>(elapsed).count() /
                                                         std::chrono::duration<double>(b.period).count());
    g.refilled = now;
}

inline bool TierState::leased_enough(Group const& g, std::uint32_t tokens) const noexcept {
    if (!leased_) return true;
    double const need[4] = {double(tokens), 1.0, double(tokens), 1.0};
    for (std::size_t b = 0; b < 4; ++b)
        if (g.buckets[b].limited() && g.lease[b] < need[b]) return false;
    return true;
}

inline bool TierState::usable(std::size_t i, Clock::time_point now, std::uint32_t tokens, bool with_lease) {
    auto const& k = keys_[i];
    if (k.disabled) return false;
    auto& g = groups_[k.group];
    if (now < g.cool_until) return false;
    if (!limits_.any()) return true;
    refill(g, now);
    double const need[4] = {double(tokens), 1.0, double(tokens), 1.0};
    for (std::size_t b = 0; b < 4; ++b)
        if (g.buckets[b].limited() && g.buckets[b].level < need[b]) return false;
    return !with_lease || leased_enough(g, tokens);
}

inline std::vector<std::size_t> TierState::groups_short_of_lease(Clock::time_point now, std::uint32_t tokens) {
    std::vector<std::size_t> out;
    if (!leased_ || open_) return out;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        if (!usable(i, now, tokens, false)) continue;
        if (leased_enough(groups_[keys_[i].group], tokens)) return {};
        if (std::find(out.begin(), out.end(), keys_[i].group) == out.end()) out.push_back(keys_[i].group);
    }
    return out;
}

inline std::array<double, 4> TierState::lease_need(std::size_t group, std::uint32_t tokens) const noexcept {
    auto cap = capacities();
    double const need[4] = {double(tokens), 1.0, double(tokens), 1.0};
    std::array<double, 4> out{};
    for (std::size_t b = 0; b < 4; ++b) {
        double const owed = group < groups_.size() ? std::max(0.0, -groups_[group].lease[b]) : 0.0;
        out[b] = cap[b] > 0.0 ? need[b] + owed : 0.0;
    }
    return out;
}

inline std::array<double, 4> TierState::capacities() const noexcept {
    return {double(limits_.tokens_per_minute), double(limits_.requests_per_minute), double(limits_.tokens_per_day),
            double(limits_.requests_per_day)};
}

inline std::array<Clock::duration, 4> TierState::periods() const noexcept {
    auto minute = std::chrono::duration_cast<Clock::duration>(std::chrono::minutes(1));
    auto day = std::chrono::duration_cast<Clock::duration>(std::chrono::hours(24));
    return {minute, minute, day, day};
}

inline void TierState::add_lease(std::size_t group, std::array<double, 4> const& granted) {
    if (group >= groups_.size()) return;
    for (std::size_t b = 0; b < 4; ++b) groups_[group].lease[b] += granted[b];
}

inline KeyPick TierState::pick_key(Clock::time_point now, std::uint32_t tokens, std::uint64_t tried, KeyOrder order, std::size_t rotation) {
    KeyPick pick;
    if (keys_.empty()) {
        pick.why = Fault::unconfigured;
        return pick;
    }
    std::size_t const n = keys_.size();
    auto candidate = [&](std::size_t i) { return !(i < 64 && (tried >> i) & 1u) && usable(i, now, tokens); };
    std::optional<std::size_t> chosen;
    if (order == KeyOrder::least_recently_limited) {
        for (std::size_t i = 0; i < n; ++i)
            if (candidate(i) && (!chosen || groups_[keys_[i].group].last_limited < groups_[keys_[*chosen].group].last_limited))
                chosen = i;
    } else {
        std::size_t start = order == KeyOrder::round_robin ? rotation % n : 0;
        for (std::size_t j = 0; j < n && !chosen; ++j)
            if (candidate((start + j) % n)) chosen = (start + j) % n;
    }
    update_quiet(now);
    if (!chosen) return pick;
    auto& g = groups_[keys_[*chosen].group];
    double const take[4] = {double(tokens), 1.0, double(tokens), 1.0};
    for (std::size_t b = 0; b < 4; ++b)
        if (g.buckets[b].limited()) {
            g.buckets[b].level -= take[b];
            if (leased_) g.lease[b] -= take[b];
        }
    if (limits_.tokens()) pick.reserved_tokens = tokens;
    pick.key = chosen;
    return pick;
}

inline void TierState::on_success(std::optional<std::size_t> key, std::uint32_t reserved, std::uint32_t used_tokens, bool probe) {
    if (key && *key < keys_.size() && limits_.tokens() && used_tokens) {
        auto& g = groups_[keys_[*key].group];
        for (std::size_t b : {tokens_minute, tokens_day})
            if (g.buckets[b].limited()) {
                g.buckets[b].level += double(reserved) - double(used_tokens);
                if (leased_) g.lease[b] += double(reserved) - double(used_tokens);
            }
    }
    consecutive_failures_ = 0;
    if (probe) {
        open_ = false;
        probing_ = false;
    }
    update_dirty();
}

inline void TierState::refund(std::size_t key, std::uint32_t tokens) {
    if (key >= keys_.size() || !limits_.any()) return;
    auto& g = groups_[keys_[key].group];
    double const back[4] = {double(tokens), 1.0, double(tokens), 1.0};
    for (std::size_t b = 0; b < 4; ++b)
        if (g.buckets[b].limited()) {
            g.buckets[b].level = std::min(g.buckets[b].capacity, g.buckets[b].level + back[b]);
            if (leased_) g.lease[b] += back[b];
        }
}

inline Recheck TierState::recheck(std::size_t key, Clock::time_point now) const noexcept {
    if (open_) return Recheck::next_tier;
    if (key < keys_.size() && (keys_[key].disabled || now < groups_[keys_[key].group].cool_until)) return Recheck::next_key;
    return Recheck::same_key;
}

inline Change TierState::on_failure(std::optional<std::size_t> key, Verdict const& v, Clock::time_point now, bool probe) {
    Change change;
    bool const was_open = open_;
    if (v.fault == Fault::cancelled) {
        if (probe) probing_ = false;  // the probe never finished: let the next request probe
    } else if (v.scope == Scope::provider) {
        auto d = v.cool_for                        ? *v.cool_for
                 : v.fault == Fault::rate_limited  ? cfg_.edge_rate_limited_cooldown
                                                   : default_cooldown(v.fault);
        open_circuit(now, d);
    } else {
        if (v.scope == Scope::key && key && *key < keys_.size()) {
            auto& k = keys_[*key];
            auto& g = groups_[k.group];
            g.last_limited = now;
            if (v.fault == Fault::unauthorized) {
                k.disabled = true;
            } else {
                // The later of the rests asked for: a shorter answer to a request sent earlier does not
                // shorten a rest the provider asked for since.
                g.cool_until = std::max(g.cool_until, later(now, v.cool_for ? *v.cool_for : default_cooldown(v.fault)));
                // The provider says the minute's budget is spent: empty it so it refills from zero.
                if (v.fault == Fault::rate_limited && g.buckets[tokens_minute].limited())
                    g.buckets[tokens_minute].level = std::min(g.buckets[tokens_minute].level, 0.0);
            }
            change.key = true;
        }
        if (v.scope == Scope::attempt && is_transient(v.fault)) {
            ++consecutive_failures_;
            if (probe || (cfg_.failure_threshold > 0 && consecutive_failures_ >= cfg_.failure_threshold)) open_circuit(now, cfg_.break_for);
        } else if (probe) {
            // A probe that failed for a request-specific reason says nothing about the provider.
            probing_ = false;
            open_ = false;
        }
    }
    change.opened = open_ && !was_open;
    update_dirty();
    update_quiet(now);
    return change;
}

inline std::optional<Clock::time_point> TierState::budget_ready(Group const& g, Clock::time_point now, std::uint32_t tokens) const {
    // A lease grows only by a reservation, which waiting here does not make.
    if (!leased_enough(g, tokens)) return std::nullopt;
    Group probe = g;
    refill(probe, now);
    double const need[4] = {double(tokens), 1.0, double(tokens), 1.0};
    Clock::time_point ready = now;
    for (std::size_t b = 0; b < 4; ++b) {
        auto const& bucket = probe.buckets[b];
        if (!bucket.limited() || bucket.level >= need[b]) continue;
        if (need[b] > bucket.capacity) return std::nullopt;  // never fits
        auto wait = std::chrono::duration<double>(bucket.period) * ((need[b] - bucket.level) / bucket.capacity);
        ready = std::max(ready, now + std::chrono::ceil<Clock::duration>(wait));
    }
    return ready;
}

inline std::optional<Clock::time_point> TierState::usable_at(Clock::time_point now, std::uint32_t tokens) const {
    if (keys_.empty()) return std::nullopt;
    if (open_) {
        if (probing_) return std::nullopt;
        return std::max(now, open_until_);
    }
    std::optional<Clock::time_point> best;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        if (keys_[i].disabled) continue;
        auto const& g = groups_[keys_[i].group];
        auto ready = budget_ready(g, std::max(now, g.cool_until), tokens);
        if (ready && (!best || *ready < *best)) best = ready;
    }
    return best;
}

inline void TierState::merge_shared_key(std::size_t i, Clock::time_point until, bool disabled) {
    if (i >= keys_.size()) return;
    auto& k = keys_[i];
    auto& g = groups_[k.group];
    if (until > g.cool_until) g.cool_until = until;
    if (disabled) k.disabled = true;
    if (disabled || until > Clock::time_point{}) quiet_.store(false, std::memory_order_relaxed);
}

inline void TierState::merge_shared_circuit(Clock::time_point until, Clock::time_point now) {
    if (until <= open_until_ && open_) return;
    if (!open_) opened_at_ = now;
    open_ = true;
    probing_ = false;
    open_until_ = until;
    update_dirty();
}

inline void TierState::merge_shared_close(Clock::time_point at) {
    if (!open_ || opened_at_ > at) return;
    open_ = false;
    probing_ = false;
    consecutive_failures_ = 0;
    update_dirty();
}

inline void TierState::open_circuit(Clock::time_point now, std::chrono::milliseconds d) {
    open_ = true;
    probing_ = false;
    opened_at_ = now;
    open_until_ = later(now, d);
    consecutive_failures_ = 0;
    update_dirty();
}

inline void TierState::note_latency(std::chrono::microseconds latency) noexcept {
    auto n = latency_count_.fetch_add(1, std::memory_order_relaxed);
    auto us = std::clamp<std::int64_t>(latency.count(), 0, std::numeric_limits<std::uint32_t>::max());
    latencies_[n % latencies_.size()].store(static_cast<std::uint32_t>(us), std::memory_order_relaxed);
}

inline std::pair<std::chrono::microseconds, std::size_t> TierState::latency_p95() const noexcept {
    std::size_t n = std::min<std::size_t>(latency_count_.load(std::memory_order_relaxed), latencies_.size());
    if (n == 0) return {std::chrono::microseconds{0}, 0};
    std::array<std::uint32_t, 64> copy{};
    for (std::size_t i = 0; i < n; ++i) copy[i] = latencies_[i].load(std::memory_order_relaxed);
    auto at = copy.begin() + static_cast<std::ptrdiff_t>((n * 95 + 99) / 100 - 1);
    std::nth_element(copy.begin(), at, copy.begin() + static_cast<std::ptrdiff_t>(n));
    return {std::chrono::microseconds(*at), n};
}

inline std::chrono::milliseconds TierState::default_cooldown(Fault f) const noexcept {
    switch (f) {
    case Fault::rate_limited: return cfg_.rate_limited_cooldown;
    case Fault::blocked: return cfg_.blocked_cooldown;
    case Fault::quota_exhausted: return cfg_.quota_cooldown;
    case Fault::model_unavailable: return cfg_.model_unavailable_cooldown;
    case Fault::overloaded: return cfg_.overloaded_cooldown;
    default: return cfg_.break_for;
    }
}

inline void TierState::update_dirty() noexcept {
    dirty_.store(limits_.tokens() || open_ || probing_ || consecutive_failures_ != 0, std::memory_order_relaxed);
    if (open_ || probing_ || limits_.any()) quiet_.store(false, std::memory_order_relaxed);
}

// Quiet again once every cooldown has passed; only called under the chain's lock.
inline void TierState::update_quiet(Clock::time_point now) noexcept {
    bool q = !keys_.empty() && !open_ && !probing_ && !limits_.any();
    for (auto const& k : keys_)
        if (k.disabled) q = false;
    for (auto const& g : groups_)
        if (now < g.cool_until) q = false;
    quiet_.store(q, std::memory_order_relaxed);
}

// now + d without overflowing the clock for "practically forever" cooldowns.
inline Clock::time_point TierState::later(Clock::time_point now, std::chrono::milliseconds d) noexcept {
    auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    return d >= room ? Clock::time_point::max() : now + d;
}

} // namespace cascade
