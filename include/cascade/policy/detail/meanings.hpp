#pragma once
/// @file
/// @brief What a provider's error says, read from its structured fields first, then its words:
/// `DefaultClassify`'s predicates, one per class of failure, each naming the public shapes it covers
/// (docs/providers.md has the table with sources; tests/corpus the captures). Not API.

#include <cascade/policy/detail/error_shapes.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace cascade::detail {

inline bool icontains_any(std::string_view hay, std::initializer_list<std::string_view> needles) noexcept {
    for (auto n : needles)
        if (icontains(hay, n)) return true;
    return false;
}

/// The HTTP status an error object inside a 2xx stands for: its numeric `code` (Google; routers relaying an
/// upstream's 429 or 402), else its `type` (Anthropic's stream `error` events), else its Google status name;
/// 0 when it names none.
inline int status_of_error(ErrorInfo const& info) noexcept {
    if (info.http_code >= 400) return info.http_code;
    struct Name {
        std::string_view name;
        int status;
    };
    static constexpr Name types[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401}, {"permission_error", 403}, {"not_found_error", 404},
        {"request_too_large", 413},     {"rate_limit_error", 429},     {"api_error", 500},        {"overloaded_error", 529},
        {"INVALID_ARGUMENT", 400},      {"FAILED_PRECONDITION", 400},  {"UNAUTHENTICATED", 401},  {"PERMISSION_DENIED", 403},
        {"NOT_FOUND", 404},             {"RESOURCE_EXHAUSTED", 429},   {"INTERNAL", 500},         {"UNAVAILABLE", 503},
        {"DEADLINE_EXCEEDED", 504}};
    for (auto const& t : types)
        if (info.type == t.name || info.status == t.name) return t.status;
    return 0;
}

/// The provider refuses the caller's country or location: every key alike (OpenAI
/// `unsupported_country_region_territory`, Gemini "User location is not supported for the API use.",
/// providers' "not available in your region").
inline bool geo_blocked(ErrorInfo const& info) noexcept {
    if (info.code == "unsupported_country_region_territory" || info.reason == "USER_LOCATION_INVALID" ||
        info.reason == "LOCATION_NOT_SUPPORTED")
        return true;
    // Anthropic's edge refuses unsupported countries so, unlike its documented 403 `permission_error`.
    if (info.type == "forbidden" && icontains(info.message, "request not allowed")) return true;
    return icontains_any(info.message, {"location is not supported", "country, region, or territory not supported",
                                        "unsupported_country_region_territory", "not available in your region",
                                        "not available in your country", "not supported in your region",
                                        "not supported in your country", "region is not supported", "country is not supported",
                                        "unsupported location", "unsupported region", "unsupported country"});
}

/// The key itself is refused, whatever the status (Google's 400 `API_KEY_INVALID`, "API key expired";
/// OpenAI's `invalid_api_key`; Anthropic's `authentication_error`).
inline bool key_refused(ErrorInfo const& info) noexcept {
    if (info.reason == "API_KEY_INVALID" || info.reason == "API_KEY_EXPIRED" || info.reason == "API_KEY_SERVICE_BLOCKED" ||
        info.code == "invalid_api_key" || info.code == "invalid_key" || info.type == "authentication_error" ||
        info.status == "UNAUTHENTICATED" || info.code == "organization_restricted" || info.code == "account_deactivated")
        return true;
    return icontains_any(info.message, {"api key not valid", "api key expired", "api_key_invalid", "incorrect api key provided",
                                        "invalid api key", "invalid x-api-key", "invalid_api_key", "api key is invalid",
                                        "invalid authentication credentials", "your api key has been",
                                        "token seems invalid"});
}

/// Credits or prepaid balance gone, or a spend limit reached: the key's account will not answer until
/// someone pays (402s; OpenAI `insufficient_quota`; Anthropic's 400 "Your credit balance is too low";
/// DeepSeek "Insufficient Balance"; OpenRouter's negative balance). Not "You exceeded your current quota":
/// Gemini says it of a per-minute limit too; OpenAI's says `insufficient_quota` beside it.
inline bool credits_gone(ErrorInfo const& info) noexcept {
    for (std::string_view c : {"insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
                               "project_spend_limit_exceeded", "organization_usage_limit_exceeded", "enforced_spend_limit_reached",
                               "billing_hard_limit_reached", "payment_required", "insufficient_balance", "insufficient_credits"})
        if (info.type == c || info.code == c) return true;
    return icontains_any(info.message, {"insufficient balance", "insufficient credits", "insufficient_quota",
                                        "requires more credits", "exceeded your monthly included credits",
                                        "credit balance is too low", "credit balance is insufficient", "out of credits",
                                        "negative credit balance", "balance is negative",
                                        "billing hard limit", "purchase more credits", "add more credits", "no credits",
                                        "payment required", "insufficient funds", "credits have been exhausted",
                                        "out of call volume quota", "monthly spending limit"});
}

/// A quota whose limit is 0: the model is not in this account's tier, and waiting will not grant it
/// (Gemini's `QuotaFailure` with `quotaValue` "0", "limit: 0" in its message).
inline bool quota_is_zero(ErrorInfo const& info) noexcept {
    // "limit: 0, model: ..." (Gemini), "Limit: 0/1min" (OpenAI, a model closed to the account's tier),
    // "rate limit ... of 0 input tokens per minute" (Anthropic, a workspace or organization limit set to 0).
    std::string_view m = info.message;
    auto digit = [&](std::size_t i) { return i < m.size() && m[i] >= '0' && m[i] <= '9'; };
    for (std::string_view needle : {std::string_view("limit: 0"), std::string_view(" of 0 ")}) {
        for (std::size_t pos = 0; pos + needle.size() <= m.size(); ++pos) {
            if (!icontains(m.substr(pos, needle.size()), needle)) continue;
            auto const after = pos + needle.size();
            if (needle.back() == ' ') {
                // " of 0 " counts only inside a rate limit's sentence ("rate limit ... of 0 input tokens").
                if (icontains(m.substr(0, pos), "limit")) return true;
                continue;
            }
            bool const more = digit(after) || (after + 1 < m.size() && (m[after] == ',' || m[after] == '.') && digit(after + 1));
            if (!more) return true;
        }
    }
    return info.quota_zero;
}

/// The request on its own is larger than the model's context or the key's per-request limit.
inline bool context_exceeded(ErrorInfo const& info) noexcept {
    if (info.code == "context_length_exceeded" || info.code == "string_above_max_length" || info.type == "request_too_large")
        return true;
    auto const& m = info.message;
    if (icontains(m, "input token count") && icontains(m, "exceeds")) return true;  // Gemini
    return icontains_any(m, {"maximum context length", "reduce the length of the messages", "prompt is too long",
                             "context window", "context length", "exceeds the maximum number of tokens",
                             "too large for model with", "max_new_tokens` must be", "maximum allowed input length",
                             "input is too long", "prompt too long", "exceeds max input", "input tokens exceed",
                             "exceeds the model's maximum", "tokens exceeds the limit", "exceed context limit"});
}

/// The request itself (not this tier in general) was refused by a content filter: the next tier may answer
/// (Azure's 400 `content_filter` / `ResponsibleAIPolicyViolation`, OpenAI's `invalid_prompt`, moderation).
inline bool content_filtered(ErrorInfo const& info) noexcept {
    if (info.code == "content_filter" || info.code == "content_policy_violation" || info.code == "invalid_prompt" ||
        info.inner_code == "ResponsibleAIPolicyViolation" || info.type == "content_filter" || info.code == "moderation_blocked")
        return true;
    if (contains(info.metadata, "flagged_input")) return true;  // OpenRouter moderation
    return icontains_any(info.message, {"content management policy", "content filter", "flagged as potentially violating",
                                        "flagged by moderation", "requires moderation", "violates our usage polic",
                                        "safety system", "content policy", "content exists risk"});
}

/// The provider as a whole is over capacity (not this key's limit): Anthropic's 529 `overloaded_error`,
/// Gemini's 503 "The model is overloaded", "over capacity", a model still loading.
inline bool overloaded(ErrorInfo const& info, int status) noexcept {
    if (status == 529 || info.type == "overloaded_error" || info.type == "overloaded" || info.loading_for) return true;
    if (status != 429 && status != 503 && status != 500 && status != 502 && status != 498) return false;
    return icontains_any(info.message, {"overloaded", "over capacity", "at capacity", "capacity exceeded", "out of capacity",
                                        "no capacity", "high demand", "currently loading", "experiencing high traffic",
                                        "too many requests in the system", "server is busy", "service overloaded"});
}

/// How long until the spent rate-limit window resets, from the reset headers of any provider's family:
/// `x-ratelimit-reset-<window>` (OpenAI, Groq: Go durations; Cerebras `-tokens-minute`: float seconds),
/// `anthropic-ratelimit-<window>-reset` (RFC 3339), `x-ratelimit-reset` (Together: seconds; OpenRouter:
/// epoch ms), `ratelimitbysize-reset` (Mistral: seconds). A window whose remaining count is 0 is the spent
/// one; with none saying so, the longest reset of the short windows (a day's or a month's reset, 9 hours
/// away, is not taken on a guess).
template <class HeaderList>
std::optional<std::chrono::milliseconds> reset_delay(HeaderList const& headers,
                                                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    auto lower = [](std::string_view in) {
        std::string out(in);
        for (auto& c : out)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return out;
    };
    std::optional<std::chrono::milliseconds> spent, longest;
    for (auto const& f : headers) {
        std::string const name = lower(f.name);
        std::string remaining;
        constexpr std::string_view x = "x-ratelimit-reset", anthropic = "anthropic-ratelimit-", mistral = "ratelimitbysize-reset";
        if (name.rfind(x, 0) == 0) remaining = "x-ratelimit-remaining" + name.substr(x.size());
        else if (name.rfind(anthropic, 0) == 0 && name.size() > 6 && name.ends_with("-reset"))
            remaining = name.substr(0, name.size() - 6) + "-remaining";
        else if (name == mistral) remaining = "ratelimitbysize-remaining";
        else continue;
        auto d = parse_reset(f.value, now);
        if (!d) continue;
        auto left = headers.get(remaining);  // case-insensitive
        if (left && trim_view(*left) == "0") {
            spent = spent ? std::max(*spent, *d) : *d;
        } else if (!contains(name, "day") && !contains(name, "month")) {
            longest = longest ? std::max(*longest, *d) : *d;
        }
    }
    return spent ? spent : longest;
}

/// A day's or a month's window that is spent, read from the remaining-count headers
/// (`x-ratelimit-remaining-tokens-day`, Cerebras; `x-ratelimitbysize-remaining-month` and
/// `x-ratelimit-remaining-tokens-month`, Mistral): the key is out of its quota for that window, not
/// throttled for a minute. `reset` is the longest such window's own reset header when it sends one
/// (`x-ratelimit-reset-tokens-day`); without one the chain's `CircuitConfig::quota_cooldown` applies.
struct LongWindow {
    bool spent = false;
    std::optional<std::chrono::milliseconds> reset;
};

template <class HeaderList>
LongWindow long_window_spent(HeaderList const& headers,
                             std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    LongWindow w;
    for (auto const& f : headers) {
        std::string name(f.name);
        for (auto& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        auto const at = name.find("-remaining");
        if (at == std::string::npos || !name.starts_with("x-ratelimit")) continue;
        if (!contains(name, "day") && !contains(name, "month")) continue;
        if (trim_view(f.value) != "0") continue;
        w.spent = true;
        auto const reset_name = name.substr(0, at) + "-reset" + name.substr(at + 10);
        if (auto r = headers.get(reset_name))
            if (auto d = parse_reset(*r, now)) w.reset = w.reset ? std::max(*w.reset, *d) : *d;
    }
    return w;
}

} // namespace cascade::detail
