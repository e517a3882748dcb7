#pragma once
/// @file
/// @brief What a tier is: the `Tier` concepts, the per-call `Context` and a tier's `Outcome`.

#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/policy/circuit.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cascade {

/// @brief What one attempt of a fallible tier ends in: an answer, or a verdict on why not.
using Outcome = boost::system::result<Completion, Verdict>;

/// @brief `value()` on an `Outcome` holding a Verdict throws `system_error` with its fault.
[[noreturn]] inline void throw_exception_from_error(Verdict const& v, boost::source_location const& loc) {
    boost::throw_exception(boost::system::system_error(make_error_code(v.fault), v.detail), loc);
}

/// @brief Per-attempt context a chain hands to a tier.
struct Context {
    /// The key to use (index into the tier's pool), or `no_key`.
    int key = no_key;
    /// End of the chain's time budget; `time_point::max()` when there is none.
    Clock::time_point deadline = Clock::time_point::max();
    /// The request's trail; a nested chain appends its own attempts here.
    std::vector<Attempt>* trail = nullptr;

    /// @brief The chain's classify policy, for tiers that see raw responses.
    Verdict classify(Observation const& obs) const { return classify_fn(classify_self, obs); }

    /// @brief Time left before the deadline (`milliseconds::max()` without one, zero when past).
    std::chrono::milliseconds remaining(Clock::time_point now = Clock::now()) const noexcept {
        if (deadline == Clock::time_point::max()) return std::chrono::milliseconds::max();
        if (now >= deadline) return std::chrono::milliseconds{0};
        return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    }

    // Set by the chain; a type-erased reference to its classify policy.
    Verdict (*classify_fn)(void const*, Observation const&) = nullptr;
    void const* classify_self = nullptr;
};

/// @brief A tier that may fail: `attempt` returns `awaitable<Outcome>`, `name()` names it in stats.
///
/// Optional members the chain uses when present:
/// - `std::size_t key_count() const`: keys in its pool (default 1, keyless). Zero means unconfigured:
///   the tier is skipped with `Fault::unconfigured`.
/// - `KeyLimits key_limits() const`: per-key token and request budgets.
/// - `std::string label(int key) const`: label of an attempt with `key` (default: name, plus the key's
///   number from 1 when the pool has more than one key).
template <class T>
concept FallibleTier = requires(T& t, Request const& r, Context& c) {
    { t.attempt(r, c) } -> std::same_as<boost::asio::awaitable<Outcome>>;
    { t.name() } -> std::convertible_to<std::string_view>;
};

/// @brief A tier that cannot fail (`static constexpr bool infallible = true`): `attempt` returns a
/// `Completion` directly or `awaitable<Completion>`. A chain ending in one returns `Completion`.
template <class T>
concept InfallibleTier = requires(T& t, Request const& r, Context& c) {
    requires T::infallible == true;
    { t.name() } -> std::convertible_to<std::string_view>;
    requires std::same_as<decltype(t.attempt(r, c)), Completion> ||
                 std::same_as<decltype(t.attempt(r, c)), boost::asio::awaitable<Completion>>;
};

/// @brief Anything a chain can hold: a fallible or an infallible tier (a chain is itself a tier).
template <class T>
concept Tier = FallibleTier<T> || InfallibleTier<T>;

namespace detail {

template <class T>
std::size_t key_count_of(T const& t) {
    if constexpr (requires { { t.key_count() } -> std::convertible_to<std::size_t>; })
        return t.key_count();
    else
        return 1;
}

template <class T>
KeyLimits key_limits_of(T const& t) {
    if constexpr (requires { { t.key_limits() } -> std::convertible_to<KeyLimits>; })
        return t.key_limits();
    else
        return {};
}

template <class T>
std::string label_of(T const& t, int key) {
    if constexpr (requires { { t.label(key) } -> std::convertible_to<std::string>; }) {
        return t.label(key);
    } else {
        std::string s(t.name());
        if (key != no_key && key_count_of(t) > 1) s += std::to_string(key + 1);
        return s;
    }
}

/// A stable, non-secret name of key `key` for shared state: the tier's `key_id(key)` when it has one.
template <class T>
std::string key_id_of(T const& t, int key) {
    if constexpr (requires { { t.key_id(key) } -> std::convertible_to<std::string>; })
        return t.key_id(key);
    else
        return std::to_string(key);
}

} // namespace detail
} // namespace cascade
