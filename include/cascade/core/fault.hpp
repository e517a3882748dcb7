#pragma once
/// @file
/// @brief The closed set of failure classes (`Fault`) as a Boost.System / std error category.

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace cascade {

/// @brief Why an attempt, a tier or a whole chain did not produce an accepted answer.
///
/// Values are stable (they index per-fault tables) and never zero: a zero error_code means success.
enum class Fault : int {
    rate_limited = 1,     ///< 429 and friends: this key is cooling down
    blocked,              ///< an IP/edge block (Cloudflare 1010/1020): every key of the provider is blocked
    quota_exhausted,      ///< credits or quota are gone (402, insufficient_quota): a long cooldown
    unauthorized,         ///< the key was refused (401): the key is disabled
    bad_request,          ///< the provider refused the request itself (400, 404, 422)
    context_too_long,     ///< prompt + completion exceed the model or the request size limit
    server_error,         ///< 5xx, overload, capacity: transient
    timeout,              ///< an attempt ran past its own timeout
    network,              ///< connection refused or reset, TLS failure, truncated body
    malformed_response,   ///< a 2xx whose body could not be understood
    empty,                ///< a 2xx with no text
    rejected,             ///< the accept policy refused the answer (too short, safety finish)
    cancelled,            ///< the caller cancelled; never a reason to fall back
    unconfigured,         ///< the tier has no key or no endpoint configured
    deadline_exceeded,    ///< the chain's one time budget ran out
    circuit_open,         ///< the tier was skipped without an attempt: its circuit is open
    exhausted,            ///< every key of the tier is cooling down, disabled or over budget
    model_unavailable,    ///< the model is retired or unknown to the provider: the tier's circuit opens for long
    overloaded,           ///< the provider as a whole is over capacity (529, "overloaded", a model loading): leave the tier for a short while
};

/// Number of Fault values plus one (index 0 is unused), for per-fault tables.
inline constexpr std::size_t fault_count = static_cast<std::size_t>(Fault::overloaded) + 1;

/// @brief Coarse classes the policies test: can waiting help?
enum class Condition : int {
    transient = 1,  ///< the same request may succeed later (rate limits, 5xx, timeouts, network)
    permanent,      ///< retrying the same thing will not help (bad request, unauthorized, blocked, quota)
};

/// @brief Short stable name of a fault, e.g. `"rate_limited"`.
constexpr std::string_view to_string(Fault f) noexcept {
    switch (f) {
    case Fault::rate_limited: return "rate_limited";
    case Fault::blocked: return "blocked";
    case Fault::quota_exhausted: return "quota_exhausted";
    case Fault::unauthorized: return "unauthorized";
    case Fault::bad_request: return "bad_request";
    case Fault::context_too_long: return "context_too_long";
    case Fault::server_error: return "server_error";
    case Fault::timeout: return "timeout";
    case Fault::network: return "network";
    case Fault::malformed_response: return "malformed_response";
    case Fault::empty: return "empty";
    case Fault::rejected: return "rejected";
    case Fault::cancelled: return "cancelled";
    case Fault::unconfigured: return "unconfigured";
    case Fault::deadline_exceeded: return "deadline_exceeded";
    case Fault::circuit_open: return "circuit_open";
    case Fault::exhausted: return "exhausted";
    case Fault::model_unavailable: return "model_unavailable";
    case Fault::overloaded: return "overloaded";
    }
    return "unknown";
}

/// @brief True for faults where waiting (another key, later) may help.
constexpr bool is_transient(Fault f) noexcept {
    switch (f) {
    case Fault::rate_limited:
    case Fault::server_error:
    case Fault::overloaded:
    case Fault::timeout:
    case Fault::network:
    case Fault::malformed_response:
    case Fault::empty:
    case Fault::circuit_open:
    case Fault::exhausted:
    case Fault::deadline_exceeded:
        return true;
    default:
        return false;
    }
}

namespace detail {

class FaultCategory final : public boost::system::error_category {
public:
    constexpr FaultCategory() noexcept : boost::system::error_category(0xca5cade0f0a17ULL) {}
    const char* name() const noexcept override { return "cascade.fault"; }
    std::string message(int ev) const override {
        return std::string(to_string(static_cast<Fault>(ev)));
    }
    char const* message(int ev, char* buffer, std::size_t len) const noexcept override {
        auto s = to_string(static_cast<Fault>(ev));
        if (len == 0) return buffer;
        std::size_t n = s.size() < len - 1 ? s.size() : len - 1;
        for (std::size_t i = 0; i < n; ++i) buffer[i] = s[i];
        buffer[n] = '\0';
        return buffer;
    }
    boost::system::error_condition default_error_condition(int ev) const noexcept override;
};

class ConditionCategory final : public boost::system::error_category {
public:
    constexpr ConditionCategory() noexcept : boost::system::error_category(0xca5cade0c0d1ULL) {}
    const char* name() const noexcept override { return "cascade.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<Condition>(ev)) {
        case Condition::transient: return "transient";
        case Condition::permanent: return "permanent";
        }
        return "unknown";
    }
};

inline constexpr FaultCategory fault_category_instance{};
inline constexpr ConditionCategory condition_category_instance{};

} // namespace detail

/// @brief The error category of `Fault`; `name()` is `"cascade.fault"`.
inline boost::system::error_category const& fault_category() noexcept {
    return detail::fault_category_instance;
}

/// @brief The error category of `Condition`; `name()` is `"cascade.condition"`.
inline boost::system::error_category const& condition_category() noexcept {
    return detail::condition_category_instance;
}

inline boost::system::error_code make_error_code(Fault f) noexcept {
    return {static_cast<int>(f), fault_category()};
}

inline boost::system::error_condition make_error_condition(Condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

inline boost::system::error_condition detail::FaultCategory::default_error_condition(int ev) const noexcept {
    auto f = static_cast<Fault>(ev);
    if (f == Fault::cancelled) return {ev, *this};
    return make_error_condition(is_transient(f) ? Condition::transient : Condition::permanent);
}

} // namespace cascade

template <>
struct boost::system::is_error_code_enum<cascade::Fault> : std::true_type {};
template <>
struct boost::system::is_error_condition_enum<cascade::Condition> : std::true_type {};
template <>
struct std::is_error_code_enum<cascade::Fault> : std::true_type {};
template <>
struct std::is_error_condition_enum<cascade::Condition> : std::true_type {};
