#pragma once
/// @file
/// @brief `Completion` (an answer and where it came from), `Attempt` (one step of its trail),
/// `Failure` (why a fallible chain has no answer) and `Result`.

#include <cascade/core/fault.hpp>

#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cascade {

/// @brief Token counts reported by the provider (or estimated by a tier that has none).
struct Usage {
    std::uint32_t prompt_tokens = 0;
    std::uint32_t completion_tokens = 0;
    /// Of `prompt_tokens`, those the provider served from its cache (cheaper where `Prices` says so).
    std::uint32_t cached_prompt_tokens = 0;
    /// The counts are the library's estimate (a stream that reported none: about 4 characters a token),
    /// not the provider's.
    bool estimated = false;
    /// Both counts; saturates at the largest count rather than wrapping (4294967295 + 1 is not 0).
    std::uint32_t total() const noexcept {
        std::uint32_t sum = prompt_tokens + completion_tokens;
        return sum < prompt_tokens ? std::numeric_limits<std::uint32_t>::max() : sum;
    }
};

/// Sentinel key index for tiers without keys.
inline constexpr int no_key = -1;

/// @brief One step of a request's way through a chain: a tier tried (or skipped) and how it ended.
/// Never holds a key, only its index.
struct Attempt {
    /// What was tried: `groq3`, `deepseek`, `vertex-pro/us-central1`.
    std::string label;
    /// Position of the tier in its chain.
    std::size_t tier = 0;
    /// Key index inside the tier's pool, or `no_key`.
    int key = no_key;
    /// Empty on success; a `Fault` otherwise.
    boost::system::error_code fault;
    /// HTTP status, 0 when there was no response.
    int http_status = 0;
    /// Wall time of the attempt (zero for skips).
    std::chrono::microseconds latency{0};
    /// Short redacted context: a body excerpt, the reason of a skip.
    std::string detail;
    /// Started beside a slower attempt by the hedge policy.
    bool hedged = false;
};

/// @brief Where an answer comes from.
enum class Origin : std::uint8_t {
    tier,      ///< a fallible tier (an LLM) answered this request
    fallback,  ///< the infallible last tier (the template) answered: a degraded answer
    cache,     ///< served from the cache; `cached_label` names what produced it
    shared,    ///< an identical request in flight answered it (single flight); `label` is that answer's
};

/// @brief An answer, with who produced it, what it used and what it cost.
struct Completion {
    std::string text;
    /// What produced it: `groq3`, `deepseek`, `vertex-pro/europe-west1`, `fallback-template`, `cache`.
    std::string label;
    std::string model;
    /// Provider finish reason, as sent (`stop`, `length`, `STOP`, `MAX_TOKENS`...), empty if none.
    std::string finish_reason;
    Usage usage;
    /// Cost in USD computed from usage and the tier's prices.
    double cost_usd = 0.0;
    /// From the start of `complete` to the answer.
    std::chrono::microseconds latency{0};
    /// Attempts before this answer, in order (empty when the first attempt succeeded).
    std::vector<Attempt> trail;
    Origin origin = Origin::tier;
    /// False when the tier that answered has no prices (`Prices::known()`): `cost_usd` is then 0 because
    /// nothing was counted, not because the answer was free. Set `ProviderConfig::prices` to count it.
    bool cost_known = true;
    /// For an answer from the cache: the label of what produced it (its `label` is `cache`).
    std::string cached_label;
    /// The upstream's response id (OpenAI-compatible `id`, Anthropic's `id`, Gemini's `responseId`);
    /// empty when it sent none (the template, a tier without one).
    std::string id;
    /// When the upstream created the response, unix seconds, as it said (OpenAI-compatible `created`); 0
    /// when it did not.
    std::int64_t created = 0;
    /// The OpenAI-compatible `system_fingerprint`, empty when none was sent.
    std::string system_fingerprint;
};

/// @brief Why a fallible chain produced no answer: the fault of the last decisive attempt and the trail.
struct Failure {
    boost::system::error_code code;
    std::vector<Attempt> trail;
    /// HTTP status of the last attempt (the trail's last entry; for a nested chain, the outer trail's),
    /// 0 when it got no response or there was none (a chain whose deadline cut the attempt in flight).
    int http_status = 0;
    /// One line for logs; never holds a key.
    std::string message() const {
        std::string s = code.message();
        for (auto const& a : trail) {
            s += "; ";
            s += a.label;
            s += ": ";
            s += a.fault ? a.fault.message() : std::string("ok");
            if (a.http_status) s += " (HTTP " + std::to_string(a.http_status) + ")";
        }
        return s;
    }
};

/// @brief `value()` on a `Result` holding a Failure throws `boost::system::system_error` with its code.
[[noreturn]] inline void throw_exception_from_error(Failure const& f, boost::source_location const& loc) {
    boost::throw_exception(boost::system::system_error(f.code, f.message()), loc);
}

/// @brief The result of a fallible chain.
using Result = boost::system::result<Completion, Failure>;

} // namespace cascade
