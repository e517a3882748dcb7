#pragma once
/// @file
/// @brief How the providers' error bodies are read, whatever their envelope: OpenAI, Google, Anthropic,
/// Hugging Face, OAuth2, Cloudflare (plain, JSON, HTML). `DefaultClassify`'s readers; not API.

#include <cascade/detail/duration.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace cascade {

namespace detail {

inline std::string_view trim_view(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

inline bool contains(std::string_view hay, std::string_view needle) noexcept { return hay.find(needle) != std::string_view::npos; }

inline bool icontains(std::string_view hay, std::string_view needle) noexcept {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
               auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
               return lower(a) == lower(b);
           }) != hay.end();
}

// Cloudflare's codes are 3 digits (5xx origin errors) or 4 (1xxx); a longer number is not a code.
inline constexpr std::size_t max_cloudflare_code_digits = 5;
inline constexpr std::int64_t max_cloudflare_code = 99999;

// What an error body says, whatever its envelope (OpenAI, Google, Anthropic, HF, Cloudflare JSON).
struct ErrorInfo {
    bool json = false;
    std::string message;
    std::string type;
    std::string code;
    std::string status;  // Google's google.rpc status name
    int cloudflare_code = 0;
    std::optional<std::chrono::milliseconds> retry_hint;
    std::string metadata;  // serialised metadata / details, for pattern checks
    std::string oauth_error;  // a string "error": RFC 6749 §5.2's code ("invalid_grant"), or Hugging Face's sentence
    std::optional<std::string> block_reason;  // Gemini: why the prompt was blocked, in a reply with no candidates
    int http_code = 0;         // a numeric error.code that is an HTTP status (Google; routers relaying an upstream's inside a 200)
    std::string reason;        // Google's ErrorInfo.reason ("API_KEY_INVALID")
    std::string param;         // OpenAI's error.param
    std::string inner_code;    // Azure's innererror.code ("ResponsibleAIPolicyViolation")
    bool quota_zero = false;   // a quota whose limit is 0 (QuotaFailure quotaValue "0", "limit: 0"): not in this account's tier
    std::optional<std::chrono::milliseconds> loading_for;  // Hugging Face's estimated_time for a model still loading
};

// A Gemini reply without candidates whose prompt was blocked: the reason, BLOCK_REASON_UNSPECIFIED when
// empty (as gemini::parse_reply reads it).
inline std::optional<std::string> prompt_block_reason(boost::json::object const& o) {
    if (auto const* c = o.if_contains("candidates"); c && c->is_array() && !c->get_array().empty()) return std::nullopt;
    auto const* pf = o.if_contains("promptFeedback");
    if (!pf || !pf->is_object()) return std::nullopt;
    auto const* br = pf->get_object().if_contains("blockReason");
    if (!br || !br->is_string()) return std::nullopt;
    return br->get_string().empty() ? std::string("BLOCK_REASON_UNSPECIFIED") : std::string(br->get_string());
}

inline std::string str_of(boost::json::value const* v) {
    if (!v) return {};
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64()) return std::to_string(v->get_int64());
    if (v->is_uint64()) return std::to_string(v->get_uint64());
    return {};
}

/// `now`: the time absolute instants in the body are measured from (the response's `Date`, see
/// `DefaultClassify`).
inline ErrorInfo error_info(std::string_view body, std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    ErrorInfo info;
    auto text = trim_view(body);
    if (text.empty() || (text.front() != '{' && text.front() != '[')) return info;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return info;
    if (v.is_array() && !v.get_array().empty()) v = v.get_array()[0];  // Google streams wrap errors
    if (!v.is_object()) return info;
    info.json = true;
    auto const& o = v.get_object();
    if (auto const* cf = o.if_contains("cloudflare_error"); cf && cf->is_bool() && cf->get_bool()) {
        // Only a code in range: a narrowing cast would make 4294968311 into 1015.
        if (auto const* code = o.if_contains("error_code"); code && code->is_int64() && code->get_int64() > 0 &&
                                                            code->get_int64() <= max_cloudflare_code)
            info.cloudflare_code = static_cast<int>(code->get_int64());
        info.message = str_of(o.if_contains("title"));
        // Seconds, saturated; a negative or non-numeric value says nothing.
        if (auto const* ra = o.if_contains("retry_after")) {
            if (ra->is_int64() && ra->get_int64() >= 0) info.retry_hint = saturating_wait(ra->get_int64(), 1000);
            else if (ra->is_uint64()) info.retry_hint = longest_wait;
            else if (ra->is_double() && ra->get_double() >= 0.0) info.retry_hint = saturating_wait(ra->get_double() * 1000.0);
        }
        return info;
    }
    auto const* err = o.if_contains("error");
    if (!err) {
        // A flat envelope (Mistral, vLLM: {"object":"error","message":...,"type":...,"code":...}), or a reply.
        info.message = str_of(o.if_contains("message"));
        info.type = str_of(o.if_contains("type"));
        info.code = str_of(o.if_contains("code"));
        if (auto const* c = o.if_contains("code"); c && c->is_int64() && c->get_int64() >= 100 && c->get_int64() <= 599)
            info.http_code = static_cast<int>(c->get_int64());
        info.block_reason = prompt_block_reason(o);
        return info;
    }
    if (err->is_string()) {  // Hugging Face: {"error":"..."}, token endpoint: {"error":"invalid_grant"}
        info.message = std::string(err->get_string());
        info.oauth_error = info.message;
        if (auto const* d = o.if_contains("error_description")) info.message += ": " + str_of(d);
        info.type = str_of(o.if_contains("error_type"));  // Hugging Face, Together: "overloaded", "dynamic_request_limited"
        if (auto const* t = o.if_contains("estimated_time")) {  // seconds, saturated; nonsense says nothing
            if (t->is_double() && t->get_double() >= 0.0) info.loading_for = saturating_wait(t->get_double() * 1000.0);
            else if (t->is_int64() && t->get_int64() >= 0) info.loading_for = saturating_wait(t->get_int64(), 1000);
            else if (t->is_uint64()) info.loading_for = longest_wait;
        }
        return info;
    }
    if (!err->is_object()) return info;
    auto const& e = err->get_object();
    info.message = str_of(e.if_contains("message"));
    info.type = str_of(e.if_contains("type"));
    info.code = str_of(e.if_contains("code"));
    info.status = str_of(e.if_contains("status"));
    info.param = str_of(e.if_contains("param"));
    if (auto const* c = e.if_contains("code"); c && c->is_int64() && c->get_int64() >= 100 && c->get_int64() <= 599)
        info.http_code = static_cast<int>(c->get_int64());
    if (auto const* inner = e.if_contains("innererror"); inner && inner->is_object())
        info.inner_code = str_of(inner->get_object().if_contains("code"));
    if (auto const* md = e.if_contains("metadata"); md && md->is_object()) {
        auto const& m = md->get_object();
        info.metadata = boost::json::serialize(m);
        // OpenRouter free-tier limits: X-RateLimit-Reset in epoch milliseconds inside the body.
        if (auto const* h = m.if_contains("headers"); h && h->is_object()) {
            auto reset = str_of(h->get_object().if_contains("X-RateLimit-Reset"));
            if (!reset.empty()) {
                long long ms = std::strtoll(reset.c_str(), nullptr, 10);  // saturates at LLONG_MAX
                long long const now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
                if (now_ms >= 0 && ms > now_ms) info.retry_hint = saturating_wait(ms - now_ms, 1);
            }
        }
        if (auto const* raw = m.if_contains("raw"); raw && raw->is_string()) info.message += " (" + std::string(raw->get_string()) + ")";
    }
    if (auto const* details = e.if_contains("details")) {
        info.metadata += boost::json::serialize(*details);
        // Google RetryInfo {"@type": ".../google.rpc.RetryInfo", "retryDelay": "33s"}.
        if (details->is_array()) {
            for (auto const& d : details->get_array()) {
                if (!d.is_object()) continue;
                auto const& detail = d.get_object();
                auto delay = str_of(detail.if_contains("retryDelay"));
                if (!delay.empty())
                    if (auto ms = parse_go_duration(delay)) info.retry_hint = ms;
                if (info.reason.empty()) info.reason = str_of(detail.if_contains("reason"));  // google.rpc.ErrorInfo
                // ErrorInfo's metadata names the quota's limit: 0 is a quota this project does not have there.
                if (auto const* md = detail.if_contains("metadata"); md && md->is_object() &&
                                                                    str_of(md->get_object().if_contains("quota_limit_value")) == "0")
                    info.quota_zero = true;
                // google.rpc.QuotaFailure: a violated quota whose value is 0 is one this account does not have.
                if (auto const* vs = detail.if_contains("violations"); vs && vs->is_array())
                    for (auto const& q : vs->get_array())
                        if (q.is_object() && str_of(q.get_object().if_contains("quotaValue")) == "0") info.quota_zero = true;
            }
        } else if (details->is_object()) {
            info.code = info.code.empty() ? str_of(details->get_object().if_contains("error_code")) : info.code;
        }
    }
    return info;
}

// "error code: 1010" (plain text, with or without a trailing newline); 0 when it is not one, or when the
// number has more digits than any code (an unbounded int would wrap 4294968311 into 1015).
inline int cloudflare_text_code(std::string_view body) {
    auto t = trim_view(body);
    constexpr std::string_view prefix = "error code: ";
    if (t.rfind(prefix, 0) != 0) return 0;
    auto digits = t.substr(prefix.size());
    if (digits.empty() || digits.size() > max_cloudflare_code_digits) return 0;
    int code = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return 0;
        code = code * 10 + (c - '0');
    }
    return code;
}

inline std::string html_title(std::string_view body) {
    auto open = body.find("<title>");
    if (open == std::string_view::npos) return {};
    auto close = body.find("</title>", open);
    if (close == std::string_view::npos) return {};
    return std::string(trim_view(body.substr(open + 7, close - open - 7)));
}

// The Cloudflare 1xxx code of an HTML error page ("Error 1010", "Error code 1020"), or 0.
inline int cloudflare_html_code(std::string_view body) {
    for (std::string_view marker : {"Error code 10", "Error 10", "error code: 10", "Error 11", "Error 12"}) {
        auto pos = body.find(marker);
        if (pos == std::string_view::npos) continue;
        auto digits = body.substr(pos + marker.size() - 2, 4);
        int code = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return 0;
            code = code * 10 + (c - '0');
        }
        return code;
    }
    return 0;
}

inline bool is_html(std::string_view body) { return icontains(body.substr(0, 512), "<html") || icontains(body.substr(0, 512), "<!doctype"); }

// A Cloudflare page that blocks rather than rate-limits: access denied, firewall, challenge.
inline bool cloudflare_block_page(std::string_view body) {
    return contains(body, "used Cloudflare to restrict access") || contains(body, "Sorry, you have been blocked") ||
           contains(body, "Attention Required! | Cloudflare") || contains(body, "<title>Just a moment...</title>") ||
           contains(body, "Please enable cookies") || contains(body, "cf-error-details");
}

inline std::string first_line(std::string_view s) {
    s = trim_view(s);
    auto nl = s.find('\n');
    return std::string(trim_view(s.substr(0, nl)));
}

inline std::string clip(std::string s, std::size_t n = 200) {
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && icontains(s.substr(0, prefix.size()), prefix);
}

// RFC 6749 §5.2 codes that say the credential itself was refused: retrying will not heal it.
inline bool oauth_credential_refused(std::string_view code) noexcept {
    return code == "invalid_grant" || code == "invalid_client" || code == "unauthorized_client" || code == "invalid_scope" ||
           code == "access_denied";
}

// A model the provider no longer serves, or never did: structured codes first, then messages that name a
// model. Settings problems (OpenRouter's data policy, Groq's terms, gated models, Hugging Face's enabled
// providers) name no retired model and stay bad requests.
inline bool model_gone(ErrorInfo const& info) {
    if (info.code == "model_not_found" || info.code == "model_decommissioned") return true;  // OpenAI, Groq, HF
    if (info.type == "invalid_model") return true;                                           // Mistral: "Invalid model: x"
    auto const& m = info.message;
    if (info.type == "not_found_error") return istarts_with(m, "model:");  // Anthropic: "model: claude-..."
    if (info.status == "NOT_FOUND") return icontains(m, "model");        // "models/x is not found", "Publisher Model `...`"
    // OpenAI, Groq: "The model `x` does not exist ...", "... has been deprecated", "... decommissioned and is no longer supported".
    if (istarts_with(m, "the model"))
        return icontains(m, "does not exist") || icontains(m, "has been deprecated") || icontains(m, "no longer supported");
    return istarts_with(m, "model not exist") ||                 // DeepSeek, an unknown name
           icontains(m, "supported API model names are") ||       // DeepSeek, a retired name (since 2026-07-24)
           icontains(m, "is not a valid model ID") ||             // OpenRouter, an unknown id
           istarts_with(m, "No endpoints found for ");            // OpenRouter, a model no provider serves any more
}

} // namespace detail

} // namespace cascade
