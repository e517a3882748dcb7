#pragma once
/// @file
/// @brief `Observation` (what came back from one attempt) and `Verdict` (what the classifier makes of it).

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
    key,       ///< this key is limited or refused: cool or disable it, try the tier's next key
    provider,  ///< the whole provider is out (IP block): open the tier's circuit, leave the tier
};

/// @brief What the chain should do about one failed attempt.
struct Verdict {
    Fault fault = Fault::server_error;
    Scope scope = Scope::attempt;
    /// How long the key or provider should rest; zero lets the chain's defaults decide.
    std::chrono::milliseconds cool_for{0};
    /// Whether retrying the same key (after backoff) can help.
    bool retry_same = false;
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

/// @brief Everything the classifier may look at for one attempt that did not plainly succeed.
struct Observation {
    /// HTTP status; 0 when no response arrived.
    int status = 0;
    /// Response headers; may be null.
    Headers const* headers = nullptr;
    /// Response body (possibly truncated to the transport's limit).
    std::string_view body;
    /// Transport error (timeout, reset, TLS...), empty when a response arrived.
    boost::system::error_code transport;

    std::optional<std::string_view> header(std::string_view name) const noexcept {
        return headers ? headers->get(name) : std::nullopt;
    }
};

} // namespace cascade
