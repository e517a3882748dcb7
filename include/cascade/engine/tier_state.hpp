#pragma once
/// @file
/// @brief `TierState`: the cooldowns, budgets and circuit of one tier, its keys and their quota groups.
///
/// Plain code over plain state: every call takes `now`; nothing here reads a clock, does I/O or locks.
/// It is not synchronised: the chain holds its lock around every call that is not marked lock-free.

#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/engine/config.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace cascade {

/// @brief What `TierState::admit` decided.
struct Admission {
    bool allowed = true;
    /// The circuit was open and this request is its one probe.
    bool probe = false;
    /// When not allowed: how long until the circuit lets a probe through (zero: a probe is out).
    std::chrono::milliseconds open_for{0};
};

/// @brief What `TierState::pick_key` decided.
struct KeyPick {
    /// The key to use, or nullopt with `why` (`unconfigured` or `exhausted`).
    std::optional<std::size_t> key;
    Fault why = Fault::exhausted;
    /// Tokens reserved from the key's group budgets (the difference is given back on success).
    std::uint32_t reserved_tokens = 0;
};

/// @brief What `TierState::recheck` found before a retry on the same key.
enum class Recheck {
    same_key,   ///< nothing changed: retry
    next_key,   ///< the key (or its group) is cooling down or disabled: try the tier's next key
    next_tier,  ///< the tier's circuit is open: leave the tier
};

/// @brief What a failure changed, for other instances and for the operator.
struct Change {
    /// The key's group cooled, or the key was disabled.
    bool key = false;
    /// The circuit was closed and is now open.
    bool opened = false;
};

/// @brief One key as the chain sees it (a copy): its own standing and its quota group's.
struct KeyState {
    /// Until when the key's group rests (the epoch when it does not).
    Clock::time_point cool_until{};
    bool disabled = false;
    /// When the key's group was last limited.
    Clock::time_point last_limited{};
    /// Tokens and requests of the group's shared lease left (budgets reserved in the shared state; see
    /// `lease_budgets`): meaningful when leases are on.
    double lease_tokens = 0.0;
    double lease_requests = 0.0;
    /// The group's per-minute token and request budgets left (meaningful when limited).
    double tokens = 0.0;
    double requests = 0.0;
    /// The key's quota group.
    std::size_t group = 0;
};

/// @brief Cooldowns, budgets and circuit of one tier.
///
/// Keys belong to quota groups (by default each key its own): a rate limit, a budget and a cooldown
/// apply to the whole group, since a provider that limits an organization limits all of its keys. A key
/// refused as unauthorized is disabled alone.
class TierState {
public:
    TierState() = default;
    TierState(std::size_t keys, KeyLimits limits, CircuitConfig cfg) { configure(keys, {}, limits, cfg); }

    /// @brief Sets the tier up: `keys` keys, key i in quota group `groups[i]` (empty: each key its own).
    void configure(std::size_t keys, std::vector<std::size_t> const& groups, KeyLimits limits, CircuitConfig cfg);

    std::size_t key_count() const noexcept { return keys_.size(); }
    std::size_t group_count() const noexcept { return groups_.size(); }
    std::size_t group_of(std::size_t key) const { return keys_.at(key).group; }
    KeyLimits const& limits() const noexcept { return limits_; }
    /// True when groups are budgeted by tokens (per minute or per day).
    bool key_limits_tokens() const noexcept { return limits_.tokens(); }
    KeyState key(std::size_t i) const;
    CircuitConfig const& config() const noexcept { return cfg_; }
    bool circuit_open(Clock::time_point now) const noexcept { return open_ && now < open_until_; }
    /// @brief Open, whether or not its break is over (a probe may be due).
    bool is_open() const noexcept { return open_; }
    /// @brief When the circuit lets the next probe through (meaningful while open).
    Clock::time_point open_until() const noexcept { return open_until_; }

    /// @brief Lock-free. True while nothing restricts this tier: no budgets, circuit closed, no key
    /// cooling or disabled. Then any key may be used without consulting the rest of the state.
    bool quiet() const noexcept { return quiet_.load(std::memory_order_relaxed); }

    /// @brief Lock-free. Whether `on_success` would change anything (a budget to reconcile, failures to
    /// forget, a circuit to close). A stale answer only delays forgetting a failure.
    bool success_changes_state() const noexcept { return dirty_.load(std::memory_order_relaxed); }

    /// @brief May a request go to this tier now? An open circuit lets exactly one probe through once its
    /// break has passed; other requests are turned away while the probe is out.
    Admission admit(Clock::time_point now);

    /// @brief The next key for a request of `tokens` estimated tokens, skipping keys tried already (bit i
    /// of `tried`), disabled, cooling down (their group) or without budget. Reserves the budget it takes.
    KeyPick pick_key(Clock::time_point now, std::uint32_t tokens, std::uint64_t tried, KeyOrder order, std::size_t rotation = 0);

    /// @brief A request on `key` succeeded, using `used_tokens` where `reserved` had been reserved.
    ///
    /// Only the probe's success closes an open circuit: a request sent before the circuit opened (before
    /// a 1010 arrived, say) may still succeed afterwards, and says nothing about the provider now.
    void on_success(std::optional<std::size_t> key, std::uint32_t reserved, std::uint32_t used_tokens, bool probe);

    /// @brief A request on `key` that reserved `tokens` never reached the provider: its budgets (and its
    /// lease) get back the tokens and the request.
    void refund(std::size_t key, std::uint32_t tokens);

    /// @brief A request on `key` failed with `v`: cool its group or disable it, open the circuit, count
    /// failures. A cancelled probe hands the probe to the next request.
    Change on_failure(std::optional<std::size_t> key, Verdict const& v, Clock::time_point now, bool probe);

    /// @brief May a request whose attempt on `key` failed try that key again now? Not when, meanwhile,
    /// the key or its group was cooled or disabled, or the circuit opened (a failed probe re-opens it too).
    Recheck recheck(std::size_t key, Clock::time_point now) const noexcept;

    /// @brief The earliest instant, not before `now`, at which waiting makes a request of `tokens`
    /// estimated tokens possible here: a cooldown or a circuit's break ending, a budget refilling. Nullopt
    /// when waiting cannot help (no key, every key disabled, a probe out, a request larger than a budget).
    std::optional<Clock::time_point> usable_at(Clock::time_point now, std::uint32_t tokens) const;

    /// @brief What other instances learned (shared state): key `i` cools until `until` (or is disabled).
    /// Keeps the later of the local and the shared cooldown.
    void merge_shared_key(std::size_t i, Clock::time_point until, bool disabled);

    /// @brief Another instance opened this tier's circuit until `until`; the news arrived at `now` (which
    /// counts as the open's time: news arrives in the order it was published).
    void merge_shared_circuit(Clock::time_point until, Clock::time_point now);

    /// @brief Another instance's probe closed this tier's circuit at `at`: a circuit opened before then
    /// closes (one opened since, on newer news, stays open).
    void merge_shared_close(Clock::time_point at);

    /// @brief Budgets shared by several instances: besides its own budgets, a group may only spend what
    /// it leased from the shared state (`add_lease`). Off by default.
    void lease_budgets(bool on) noexcept { leased_ = on && limits_.any(); }
    bool leases() const noexcept { return leased_; }

    /// @brief The quota groups, in key order, whose keys could take a request of `tokens` estimated
    /// tokens now but for their lease; empty when a key can take it already (or none could even with a
    /// lease). A reservation for one of them is what the request needs.
    std::vector<std::size_t> groups_short_of_lease(Clock::time_point now, std::uint32_t tokens);

    /// @brief The budgets a reservation for a request of `tokens` on `group` must get, in the order tokens
    /// a minute, requests a minute, tokens a day, requests a day; zero for an unlimited one. An answer that
    /// used more than its lease left the lease negative: the next reservation pays that too, so the shared
    /// budgets learn every token spent.
    std::array<double, 4> lease_need(std::size_t group, std::uint32_t tokens) const noexcept;
    /// @brief Each budget's capacity and period, in the same order (capacity zero: unlimited).
    std::array<double, 4> capacities() const noexcept;
    std::array<Clock::duration, 4> periods() const noexcept;

    /// @brief The shared state granted `group` these budgets.
    void add_lease(std::size_t group, std::array<double, 4> const& granted);

    /// @brief Opens the circuit until `now + d`.
    void open_circuit(Clock::time_point now, std::chrono::milliseconds d);

    /// @brief Lock-free. Remembers the latency of an answer (the last 64), for the tier's p95.
    void note_latency(std::chrono::microseconds latency) noexcept;
    /// @brief Lock-free. The 95th percentile of the remembered latencies, and how many there are.
    std::pair<std::chrono::microseconds, std::size_t> latency_p95() const noexcept;

private:
    // A budget refilled continuously: `capacity` a `period`.
    struct Bucket {
        double level = 0.0;
        double capacity = 0.0;
        Clock::duration period{};
        bool limited() const noexcept { return capacity > 0.0; }
    };
    struct Group {
        Clock::time_point cool_until{};
        Clock::time_point last_limited{};
        Clock::time_point refilled{};  // the epoch until first use
        std::array<Bucket, 4> buckets{};  // tokens a minute, requests a minute, tokens a day, requests a day
        std::array<double, 4> lease{};    // what the group may spend of the shared budgets, same order
    };
    struct Key {
        std::size_t group = 0;
        bool disabled = false;
    };
    static constexpr std::size_t tokens_minute = 0, requests_minute = 1, tokens_day = 2, requests_day = 3;

    bool usable(std::size_t i, Clock::time_point now, std::uint32_t tokens, bool with_lease = true);
    bool leased_enough(Group const& g, std::uint32_t tokens) const noexcept;
    void refill(Group& g, Clock::time_point now) const noexcept;
    std::optional<Clock::time_point> budget_ready(Group const& g, Clock::time_point now, std::uint32_t tokens) const;
    std::chrono::milliseconds default_cooldown(Fault f) const noexcept;
    void update_dirty() noexcept;
    void update_quiet(Clock::time_point now) noexcept;
    static Clock::time_point later(Clock::time_point now, std::chrono::milliseconds d) noexcept;

    std::vector<Key> keys_;
    std::vector<Group> groups_;
    KeyLimits limits_;
    CircuitConfig cfg_;
    bool open_ = false;
    bool probing_ = false;
    bool leased_ = false;
    Clock::time_point open_until_{};
    Clock::time_point opened_at_{};
    int consecutive_failures_ = 0;
    std::atomic<bool> dirty_{false};
    std::atomic<bool> quiet_{false};
    std::array<std::atomic<std::uint32_t>, 64> latencies_{};
    std::atomic<std::uint32_t> latency_count_{0};
};

} // namespace cascade

#include <cascade/engine/impl/tier_state.hpp>
