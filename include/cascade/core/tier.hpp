#pragma once
/// @file
/// @brief What a tier is: the `Tier` concepts, the per-call `Context` and a tier's `Outcome`.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/stream_sink.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/engine/config.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace cascade {

/// @brief What one attempt of a fallible tier ends in: an answer, or the failure as plain data for the
/// chain's classify policy.
using Outcome = boost::system::result<Completion, Observation>;

/// @brief `value()` on an `Outcome` holding an Observation throws `system_error`: its transport error, or
/// `server_error` for a response.
[[noreturn]] inline void throw_exception_from_error(Observation const& o, boost::source_location const& loc) {
    auto ec = o.transport ? o.transport : make_error_code(Fault::server_error);
    boost::throw_exception(boost::system::system_error(ec, o.status ? "HTTP " + std::to_string(o.status) : o.detail), loc);
}

/// @brief A failed attempt's Outcome: a response the tier could not use.
inline Outcome failed_response(int status, Headers headers, std::string body, std::string detail = {}) {
    Observation o;
    o.status = status;
    o.headers = std::move(headers);
    o.body = std::move(body);
    o.detail = std::move(detail);
    return Outcome(boost::system::in_place_error, std::move(o));
}

/// @brief A failed attempt's Outcome: no response (a transport error, or a `Fault` the tier names itself).
inline Outcome failed_without_response(boost::system::error_code ec, std::string detail = {}) {
    Observation o;
    o.transport = ec;
    o.detail = std::move(detail);
    return Outcome(boost::system::in_place_error, std::move(o));
}

/// @brief A streamed attempt that ended without an answer: the sink stopped it (its start refused inside
/// the hold-back: `rejected`), no delta came in time (first token or stall: `timeout`), or the transport's
/// error as it is.
inline Outcome stream_failure(StreamSink const* sink, bool stopped_by_sink, boost::system::error_code ec) {
    if (sink && stopped_by_sink && !sink->refusal().empty())
        return failed_without_response(Fault::rejected, "the stream's start was refused: " + std::string(sink->refusal()));
    if (sink && ec == boost::beast::error::timeout &&
        std::chrono::steady_clock::now() + std::chrono::milliseconds(5) >= sink->next_by())
        return failed_without_response(Fault::timeout, sink->started() ? "the stream stalled" : "no first token in time");
    return failed_without_response(ec);
}

/// @brief Usage of an answer whose provider reported none (a stream without a usage chunk): the
/// request's estimate in, about four characters a token out; marked `estimated`.
inline Usage estimate_usage(Request const& req, std::string_view text) {
    Usage u;
    u.prompt_tokens = static_cast<std::uint32_t>(std::min<std::size_t>(req.estimated_prompt_tokens(), 0xffffffffu));
    u.completion_tokens = static_cast<std::uint32_t>(std::min<std::size_t>((text.size() + 3) / 4, 0xffffffffu));
    u.estimated = true;
    return u;
}

/// @brief Per-attempt context a chain hands to a tier.
struct Context {
    /// The key to use (index into the tier's pool), or `no_key`.
    int key = no_key;
    /// End of the chain's time budget in steady-clock time (what sockets' timers use);
    /// `time_point::max()` when there is none. A tier that declares `honours_deadline` ends its attempt by then.
    Clock::time_point deadline = Clock::time_point::max();
    /// The request's trail; a nested chain appends its own attempts here.
    std::vector<Attempt>* trail = nullptr;
    /// The wall-clock time of the attempt for prices that depend on the time of day (`Prices::cost`). Left
    /// default (meaning now) under the steady clock; a clock with `utc_now()` (`ManualClock`) sets it, so a
    /// simulated day is priced by its simulated hours.
    std::chrono::system_clock::time_point utc{};
    /// Set while a chain streams the request (`BasicChain::stream`): a tier that can stream hands its text
    /// deltas here as they arrive (see `StreamSink`); others ignore it and answer whole. Null otherwise.
    StreamSink* sink = nullptr;

    /// @brief Time left before the deadline (`milliseconds::max()` without one, zero when past).
    std::chrono::milliseconds remaining(Clock::time_point now = Clock::now()) const noexcept {
        if (deadline == Clock::time_point::max()) return std::chrono::milliseconds::max();
        if (now >= deadline) return std::chrono::milliseconds{0};
        return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    }
};

/// @brief A tier that may fail: `attempt` returns `awaitable<Outcome>`, `name()` names it in stats.
///
/// Optional members the chain uses when present:
/// - `std::size_t key_count() const`: keys in its pool (default 1, keyless). Zero means unconfigured:
///   the tier is skipped with `Fault::unconfigured`.
/// - `KeyLimits key_limits() const`: budgets of each quota group.
/// - `std::string quota_group(int key) const`: the quota group of `key` (keys of one organization share
///   its limits); default: each key its own.
/// - `std::string label(int key) const`: label of an attempt with `key` (default: name, plus the key's
///   number from 1 when the pool has more than one key).
/// - `std::string key_id(int key) const`: a stable, non-secret name of `key` for shared state.
/// - `Verdict refine(Verdict v, Observation const& o) const`: adjusts the classify policy's verdict on
///   one of its failures (Vertex rests a region that is down rather than leaving the tier).
/// - `static constexpr bool honours_deadline = true`: every attempt ends by `Context::deadline` on its
///   own (the built-in providers pass it to their transport). The chain then arms no timer of its own.
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

/// The quota group of `key`: the tier's `quota_group(key)`, or the key alone. Empty names are the key alone.
template <class T>
std::string quota_group_of(T const& t, int key) {
    if constexpr (requires { { t.quota_group(key) } -> std::convertible_to<std::string>; }) {
        std::string g = t.quota_group(key);
        if (!g.empty()) return "group:" + g;
    }
    return "key:" + std::to_string(key);
}

template <class T>
inline constexpr bool refines_v = requires(T const& t, Verdict v, Observation const& o) {
    { t.refine(std::move(v), o) } -> std::same_as<Verdict>;
};

template <class T>
inline constexpr bool honours_deadline_v = [] {
    if constexpr (requires { T::honours_deadline; })
        return bool(T::honours_deadline);
    else
        return false;
}();

} // namespace detail
} // namespace cascade
