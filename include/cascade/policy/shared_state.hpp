#pragma once
/// @file
/// @brief The shared-state policy: what one instance learns about keys and providers (cooldowns, blocks,
/// circuits) is published so that every instance skips it too, and budgets are reserved for all of them.

#include <cascade/engine/clock.hpp>

#include <boost/asio/awaitable.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade {

/// @brief One key as the shared state knows it.
struct SharedKeyState {
    /// Until when the key (its quota group) cools down (the epoch when it does not).
    std::chrono::system_clock::time_point cool_until{};
    bool disabled = false;
};

/// @brief One tier as the shared state knows it.
struct SharedTierState {
    /// Until when the tier's circuit is open (the epoch when it is not known open).
    std::chrono::system_clock::time_point circuit_until{};
    /// When another instance's probe closed the circuit (the epoch when none did).
    std::chrono::system_clock::time_point circuit_closed_at{};
    /// In the order of the key ids asked for.
    std::vector<SharedKeyState> keys;
};

/// @brief Budgets are indexed in this order: tokens a minute, requests a minute, tokens a day, requests a day.
using Budgets = std::array<double, 4>;

/// @brief A request's ask for budget of one quota group, shared by every instance.
struct LeaseAsk {
    /// The group's stable, non-secret name (its quota group's name, or its first key's id).
    std::string group;
    /// What the request needs of each budget (zero: that budget is unlimited).
    Budgets need{};
    /// Each budget's capacity (zero: unlimited) and the period it refills over.
    Budgets capacity{};
    std::array<std::chrono::milliseconds, 4> period{};
};

/// @brief What the shared state answered to a reservation.
struct LeaseGrant {
    enum class Kind {
        granted,  ///< `asks[index]` got `amounts` (at least its need): the request may go
        refused,  ///< no group has its need left: the tier is over budget for every instance
        unknown,  ///< the store did not answer: each instance goes on with its own budgets alone
    } kind = Kind::unknown;
    std::size_t index = 0;
    Budgets amounts{};
};

/// @brief A shared-state policy tells every instance what one learned (cooldowns, blocks, circuits), and
/// reserves budgets that every instance spends.
///
/// Requirements (all may be called from several threads; failures are swallowed, never a chain failure):
/// - `s.generation()` -> `std::uint64_t`, cheap and lock-free: it changes whenever what `snapshot` returns
///   may have; a request that finds it unchanged reads nothing else;
/// - `s.snapshot(tier, key_ids)` -> `std::optional<SharedTierState>` (nullopt: nothing known);
/// - `s.push_key(tier, key_id, until, disabled)`, `s.push_circuit(tier, until)` (until the epoch: closed)
///   -> `void`: they return at once; the news reaches the store in the background;
/// - `s.reserve(tier, asks)` -> `awaitable<LeaseGrant>`: atomically reserves, for the first ask that fits,
///   at least its need.
/// Key ids are stable, non-secret names of keys (a provider derives them from a hash of the key).
template <class S>
concept SharedStatePolicy = requires(S& s, std::string const& tier, std::vector<std::string> const& ids,
                                     std::string const& id, std::chrono::system_clock::time_point t,
                                     std::vector<LeaseAsk> const& asks) {
    { s.generation() } -> std::same_as<std::uint64_t>;
    { s.snapshot(tier, ids) } -> std::same_as<std::optional<SharedTierState>>;
    { s.push_key(tier, id, t, true) } -> std::same_as<void>;
    { s.push_circuit(tier, t) } -> std::same_as<void>;
    { s.reserve(tier, asks) } -> std::same_as<boost::asio::awaitable<LeaseGrant>>;
};

/// @brief State stays in this process: the default.
struct LocalState {};

template <class S>
inline constexpr bool shares_state = !std::same_as<S, LocalState>;

/// @brief Converts between the shared (wall-clock) and the local (steady) time of a deadline.
inline Clock::time_point to_steady(std::chrono::system_clock::time_point t) {
    if (t == std::chrono::system_clock::time_point{}) return {};
    auto now_sys = std::chrono::system_clock::now();
    auto now_steady = Clock::now();
    if (t <= now_sys) return now_steady;
    return now_steady + std::chrono::duration_cast<Clock::duration>(t - now_sys);
}

/// @brief The steady-clock time of a wall-clock instant, past ones included (when something happened).
inline Clock::time_point to_steady_past(std::chrono::system_clock::time_point t) {
    auto now_sys = std::chrono::system_clock::now();
    auto now_steady = Clock::now();
    return now_steady - std::chrono::duration_cast<Clock::duration>(now_sys - t);
}

/// A wall-clock deadline for a steady one; "practically never" (beyond ten years) is clamped to ten years.
inline std::chrono::system_clock::time_point to_system(Clock::time_point t) {
    auto now_steady = Clock::now();
    auto now_sys = std::chrono::system_clock::now();
    constexpr auto cap = std::chrono::hours(24 * 365 * 10);
    if (t <= now_steady) return now_sys;
    if (t - now_steady > cap) return now_sys + cap;
    return now_sys + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - now_steady);
}

} // namespace cascade
