#pragma once
/// @file
/// @brief The shared-state policy: what one instance learns about keys and providers (cooldowns, blocks,
/// token use) is published so that every instance skips it too.

#include <cascade/engine/clock.hpp>

#include <boost/asio/awaitable.hpp>

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
    /// Until when the key cools down (the epoch when it does not).
    std::chrono::system_clock::time_point cool_until{};
    bool disabled = false;
    /// Tokens all instances used on the key in the current minute; negative when unknown.
    double tokens_used = -1.0;
};

/// @brief One tier as the shared state knows it.
struct SharedTierState {
    /// Until when the tier's circuit is open (the epoch when it is closed).
    std::chrono::system_clock::time_point circuit_until{};
    /// In the order of the key ids asked for.
    std::vector<SharedKeyState> keys;
};

/// @brief A shared-state policy publishes and reads cooldowns, blocks and token use.
///
/// Requirements (all may be called from several threads; failures are swallowed, never a chain failure):
/// - `s.pull(tier, key_ids)` -> `awaitable<std::optional<SharedTierState>>` (nullopt: nothing known or
///   the store is unreachable);
/// - `s.push_key(tier, key_id, until, disabled)`, `s.push_circuit(tier, until)`,
///   `s.push_tokens(tier, key_id, tokens)` -> `awaitable<void>`.
/// Key ids are stable, non-secret names of keys (a provider derives them from a hash of the key).
template <class S>
concept SharedStatePolicy = requires(S& s, std::string const& tier, std::vector<std::string> const& ids,
                                     std::string const& id, std::chrono::system_clock::time_point t) {
    { s.pull(tier, ids) } -> std::same_as<boost::asio::awaitable<std::optional<SharedTierState>>>;
    { s.push_key(tier, id, t, true) } -> std::same_as<boost::asio::awaitable<void>>;
    { s.push_circuit(tier, t) } -> std::same_as<boost::asio::awaitable<void>>;
    { s.push_tokens(tier, id, std::uint32_t{}) } -> std::same_as<boost::asio::awaitable<void>>;
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
