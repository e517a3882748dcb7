#pragma once
/// @file
/// @brief `Observation` (a failed attempt as plain data) and `Verdict` (what the classify policy makes of it).

#include <cascade/core/fault.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

/// @brief How far a failure reaches, so the chain knows what to remember.
enum class Scope {
    attempt,   ///< only this attempt failed: retry per the retry policy, then leave the tier
    key,       ///< this key is limited or refused: cool its quota group (or disable the key), try the next key
    provider,  ///< the whole provider is out (IP block): open the tier's circuit, leave the tier
};

/// @brief What the chain should do about one failed attempt.
struct Verdict {
    Fault fault = Fault::server_error;
    Scope scope = Scope::attempt;
    /// How long the key or provider should rest, as the response said it; zero means "at once"
    /// (`retry-after: 0`). Empty: the response did not say, and the chain's `CircuitConfig` decides.
    std::optional<std::chrono::milliseconds> cool_for;
    /// Whether retrying the same key (after backoff) can help.
    bool retry_same = false;
    /// The request never reached the provider (the connection was refused, the name not found): what it
    /// reserved of its key's budgets, local and shared, is given back.
    bool unsent = false;
    /// HTTP status, 0 when there was none.
    int http_status = 0;
    /// Short redacted excerpt for the trail.
    std::string detail;
};

/// @brief A header list with case-insensitive lookup.
class Headers {
public:
    struct Field {
        std::string name;
        std::string value;
    };

    void add(std::string name, std::string value) { fields_.push_back(Field{std::move(name), std::move(value)}); }
    void reserve(std::size_t n) { fields_.reserve(n); }

    /// @brief The first value of `name` (case-insensitive), if present.
    std::optional<std::string_view> get(std::string_view name) const noexcept {
        for (auto const& f : fields_)
            if (iequals(f.name, name)) return std::string_view(f.value);
        return std::nullopt;
    }

    auto begin() const noexcept { return fields_.begin(); }
    auto end() const noexcept { return fields_.end(); }
    std::size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }

    static bool iequals(std::string_view a, std::string_view b) noexcept {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            char x = a[i], y = b[i];
            if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
            if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
            if (x != y) return false;
        }
        return true;
    }

private:
    std::vector<Field> fields_;
};

/// @brief A failed attempt as plain data: what came back (status, headers, body) or why nothing did (a
/// transport error), for the chain's classify policy, which alone decides what it means.
///
/// A tier that fails without a response to show (no key, a bad URL, a nested chain that failed, an
/// exception) puts a `Fault` in `transport` (`make_error_code(Fault::unconfigured)`) and says why in
/// `detail`. A tier that got a response may say in `detail` what it was doing ("token endpoint"); the
/// verdict's detail then starts with it.
struct Observation {
    /// HTTP status; 0 when no response arrived.
    int status = 0;
    /// Response headers.
    Headers headers;
    /// Response body (possibly truncated to the transport's limit).
    std::string body;
    /// Transport error (timeout, reset, TLS...), or a `Fault` the tier names itself; empty when a
    /// response arrived.
    boost::system::error_code transport;
    /// The tier's own words: what it was doing, or why it failed without a response. Never a key.
    std::string detail;

    std::optional<std::string_view> header(std::string_view name) const noexcept { return headers.get(name); }
};

} // namespace cascade
