#pragma once
/// @file
/// @brief The classify policy: one attempt's `Observation` -> `Verdict`, and `DefaultClassify`, which knows
/// the error shapes of Groq, OpenAI-compatible APIs, Cloudflare, DeepSeek, OpenRouter, Hugging Face,
/// Anthropic and Google (see shared/reference/provider-wire-formats.md).

#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/detail/duration.hpp>
#include <cascade/security/redact.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace cascade {

/// @brief A classify policy turns what came back from one attempt into a `Verdict`.
///
/// Requirement: `p.classify(obs)` with `obs` an `Observation const&` returns a `Verdict`, and may be
/// called from several threads at once.
template <class P>
concept ClassifyPolicy = requires(P const& p, Observation const& obs) {
    { p.classify(obs) } -> std::same_as<Verdict>;
};

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
};

inline std::string str_of(boost::json::value const* v) {
    if (!v) return {};
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64()) return std::to_string(v->get_int64());
    if (v->is_uint64()) return std::to_string(v->get_uint64());
    return {};
}

inline ErrorInfo error_info(std::string_view body) {
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
        info.message = str_of(o.if_contains("message"));
        return info;
    }
    if (err->is_string()) {  // Hugging Face: {"error":"..."}, token endpoint: {"error":"invalid_grant"}
        info.message = std::string(err->get_string());
        if (auto const* d = o.if_contains("error_description")) info.message += ": " + str_of(d);
        return info;
    }
    if (!err->is_object()) return info;
    auto const& e = err->get_object();
    info.message = str_of(e.if_contains("message"));
    info.type = str_of(e.if_contains("type"));
    info.code = str_of(e.if_contains("code"));
    info.status = str_of(e.if_contains("status"));
    if (auto const* md = e.if_contains("metadata"); md && md->is_object()) {
        auto const& m = md->get_object();
        info.metadata = boost::json::serialize(m);
        // OpenRouter free-tier limits: X-RateLimit-Reset in epoch milliseconds inside the body.
        if (auto const* h = m.if_contains("headers"); h && h->is_object()) {
            auto reset = str_of(h->get_object().if_contains("X-RateLimit-Reset"));
            if (!reset.empty()) {
                long long ms = std::strtoll(reset.c_str(), nullptr, 10);  // saturates at LLONG_MAX
                long long now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
                if (now >= 0 && ms > now) info.retry_hint = saturating_wait(ms - now, 1);
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
                auto delay = str_of(d.get_object().if_contains("retryDelay"));
                if (!delay.empty())
                    if (auto ms = parse_go_duration(delay)) info.retry_hint = ms;
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

} // namespace detail

/// @brief The default classifier. Every rule is tested against the providers' real responses.
///
/// `cool_for` is set only from what the response says (retry-after, reset headers, "try again in",
/// Google's RetryInfo); when it says nothing, `cool_for` stays zero and the chain's `CircuitConfig`
/// decides (`rate_limited_cooldown`, `edge_rate_limited_cooldown`, `blocked_cooldown`, `quota_cooldown`):
/// one source for each default.
///
/// | response | fault | scope | cool_for |
/// |---|---|---|---|
/// | Cloudflare 1010/1020/1xxx access denied, block or challenge page (plain, JSON or HTML) | blocked | provider | - |
/// | Cloudflare 1015 (IP rate limit) | rate_limited | provider | retry-after |
/// | 429 | rate_limited | key | retry-after(-ms), "try again in", RetryInfo, OpenRouter reset, x-ratelimit-reset-* |
/// | 429 insufficient_quota & co, spend limits; 402 | quota_exhausted | key | retry-after |
/// | 429/413 "Request too large"; 400 context length | context_too_long | attempt | - |
/// | 401; 403 Google PERMISSION_DENIED; 400 organization_restricted | unauthorized | key (disabled) | - |
/// | 403 OpenRouter moderation | rejected | attempt | - |
/// | 400, 404, 422, other 4xx | bad_request | attempt | - |
/// | 408, transport timeout | timeout | attempt, retried | - |
/// | 5xx, 498, 529, Cloudflare 52x | server_error | attempt, retried (not with x-should-retry: false) | retry-after |
/// | reset, refused, eof, mid-body close | network | attempt, retried | - |
/// | TLS failure | network | attempt | - |
/// | body over the size limit; 2xx that is blank or not JSON | malformed_response | attempt | - |
/// | 2xx carrying an error object | server_error | attempt, retried | - |
/// | operation_aborted | cancelled | attempt | - |
struct DefaultClassify {
    Verdict classify(Observation const& obs) const {
        Verdict v;
        v.http_status = obs.status;
        if (obs.transport) return transport(obs.transport);

        auto body = obs.body;
        auto info = detail::error_info(body);
        auto retry_after = header_delay(obs);
        v.detail = detail_of(obs, info);

        // Cloudflare first: its blocks come with any status and any body format.
        int cf = info.cloudflare_code ? info.cloudflare_code : detail::cloudflare_text_code(body);
        if (!cf && detail::is_html(body)) cf = detail::cloudflare_html_code(body);
        if (cf >= 1000 && cf < 2000) {
            if (cf == 1015 || cf == 1025 || cf == 1027 || cf == 1200) {
                v.fault = Fault::rate_limited;
                v.scope = Scope::provider;
                v.cool_for = retry_after ? *retry_after : info.retry_hint.value_or(std::chrono::milliseconds{0});
                return v;
            }
            v.fault = Fault::blocked;
            v.scope = Scope::provider;
            return v;
        }
        if (obs.status == 403 && detail::is_html(body) && detail::cloudflare_block_page(body)) {
            v.fault = Fault::blocked;
            v.scope = Scope::provider;
            return v;
        }

        auto const& msg = info.message;
        bool const should_not_retry = obs.header("x-should-retry") == std::optional<std::string_view>("false");
        bool const too_large = detail::icontains(msg, "request too large") || detail::icontains(msg, "reduce your message size") ||
                               detail::icontains(msg, "reduce max_tokens");
        bool const context = info.code == "context_length_exceeded" || detail::icontains(msg, "maximum context length") ||
                             detail::icontains(msg, "reduce the length of the messages") ||
                             (detail::icontains(msg, "input token count") && detail::icontains(msg, "exceeds")) ||
                             detail::icontains(msg, "prompt is too long");
        bool const quota = info.type == "insufficient_quota" || info.code == "insufficient_quota" ||
                           info.code == "credit_balance_exhausted" || info.code == "organization_spend_limit_exceeded" ||
                           info.code == "project_spend_limit_exceeded" || info.code == "organization_usage_limit_exceeded" ||
                           info.code == "enforced_spend_limit_reached" || detail::icontains(msg, "insufficient balance") ||
                           detail::icontains(msg, "insufficient credits") || detail::icontains(msg, "requires more credits") ||
                           detail::icontains(msg, "exceeded your monthly included credits");

        switch (obs.status) {
        case 429:
            if (too_large || (context && should_not_retry)) return attempt(v, Fault::context_too_long);
            if (quota) return key(v, Fault::quota_exhausted, retry_after.value_or(std::chrono::milliseconds{0}));
            return key(v, Fault::rate_limited, rate_limit_delay(obs, info, retry_after));
        case 402:
            return key(v, Fault::quota_exhausted, retry_after.value_or(std::chrono::milliseconds{0}));
        case 401:
            return key(v, Fault::unauthorized, {});
        case 403:
            if (info.status == "PERMISSION_DENIED" || info.type == "permission_error") return key(v, Fault::unauthorized, {});
            if (detail::contains(info.metadata, "flagged_input") || detail::contains(info.metadata, "reasons") ||
                detail::icontains(msg, "moderation"))
                return attempt(v, Fault::rejected);
            if (quota) return key(v, Fault::quota_exhausted, retry_after.value_or(std::chrono::milliseconds{0}));
            if (detail::icontains(msg, "cannot access this model") || detail::icontains(msg, "gated")) return attempt(v, Fault::bad_request);
            return key(v, Fault::unauthorized, {});
        case 413:
            return attempt(v, Fault::context_too_long);
        case 408:
            v.retry_same = !should_not_retry;
            return attempt(v, Fault::timeout);
        default:
            break;
        }
        if (obs.status >= 200 && obs.status < 300) {
            // The provider could not use a 2xx body: blank keep-alive lines then a close, truncated JSON,
            // or an error object inside a 200 (OpenRouter, errors after the stream started).
            v.retry_same = true;
            return attempt(v, info.json && (!info.message.empty() || !info.code.empty()) ? Fault::server_error : Fault::malformed_response);
        }
        if (obs.status >= 500 || obs.status == 498 || obs.status == 409) {
            v.retry_same = !should_not_retry && obs.status != 525 && obs.status != 526 && obs.status != 501;
            if (retry_after) v.cool_for = *retry_after;
            else if (info.retry_hint) v.cool_for = *info.retry_hint;
            return attempt(v, Fault::server_error);
        }
        if (context) return attempt(v, Fault::context_too_long);
        if (info.code == "organization_restricted") return key(v, Fault::unauthorized, {});
        if (obs.status >= 400) return attempt(v, Fault::bad_request);
        return attempt(v, Fault::malformed_response);
    }

private:
    static Verdict attempt(Verdict& v, Fault f) {
        v.fault = f;
        v.scope = Scope::attempt;
        return v;
    }

    static Verdict key(Verdict& v, Fault f, std::chrono::milliseconds cool) {
        v.fault = f;
        v.scope = Scope::key;
        v.cool_for = cool;
        return v;
    }

    static std::optional<std::chrono::milliseconds> header_delay(Observation const& obs) {
        if (auto ms = obs.header("retry-after-ms"))
            if (auto d = detail::parse_milliseconds(*ms)) return d;
        if (auto ra = obs.header("retry-after"))
            if (auto d = detail::parse_retry_after(*ra)) return d;
        return std::nullopt;
    }

    // How long a rate-limited key rests: what the response says, most specific first.
    std::chrono::milliseconds rate_limit_delay(Observation const& obs, detail::ErrorInfo const& info,
                                               std::optional<std::chrono::milliseconds> retry_after) const {
        if (retry_after) return *retry_after;
        if (auto d = detail::parse_try_again_in(info.message)) return *d;
        if (info.retry_hint) return *info.retry_hint;
        // x-ratelimit-reset-*: the window that is spent; with no remaining count saying so, the longer one.
        auto reset_req = obs.header("x-ratelimit-reset-requests");
        auto reset_tok = obs.header("x-ratelimit-reset-tokens");
        auto rem_req = obs.header("x-ratelimit-remaining-requests");
        auto rem_tok = obs.header("x-ratelimit-remaining-tokens");
        std::optional<std::chrono::milliseconds> req = reset_req ? detail::parse_go_duration(*reset_req) : std::nullopt;
        std::optional<std::chrono::milliseconds> tok = reset_tok ? detail::parse_go_duration(*reset_tok) : std::nullopt;
        if (rem_req == std::optional<std::string_view>("0") && req) return *req;
        if (rem_tok == std::optional<std::string_view>("0") && tok) return *tok;
        if (req && tok) return std::max(*req, *tok);
        if (req) return *req;
        if (tok) return *tok;
        return std::chrono::milliseconds{0};  // the chain's CircuitConfig::rate_limited_cooldown
    }

    static Verdict transport(boost::system::error_code ec) {
        namespace asio_error = boost::asio::error;
        Verdict v;
        v.detail = detail::clip(ec.message());
        v.scope = Scope::attempt;
        if (ec == asio_error::operation_aborted) {
            v.fault = Fault::cancelled;
        } else if (ec == boost::beast::error::timeout || ec == asio_error::timed_out || ec == std::errc::timed_out) {
            v.fault = Fault::timeout;
            v.retry_same = true;
        } else if (ec == boost::beast::http::error::body_limit || ec == boost::beast::http::error::header_limit ||
                   ec == boost::beast::http::error::buffer_overflow) {
            v.fault = Fault::malformed_response;  // the same request would bring the same oversized answer
        } else if (ec.category() == boost::asio::error::get_ssl_category() || ec == boost::asio::ssl::error::stream_truncated) {
            v.fault = Fault::network;  // a certificate problem does not fix itself on retry
        } else if (ec.category() == boost::beast::http::make_error_code(boost::beast::http::error::bad_version).category() &&
                   ec != boost::beast::http::error::partial_message && ec != boost::beast::http::error::end_of_stream) {
            v.fault = Fault::malformed_response;  // not HTTP at all
        } else {
            v.fault = Fault::network;  // refused, reset, eof, mid-body close, host not found
            v.retry_same = ec != asio_error::host_not_found && ec != asio_error::host_not_found_try_again;
        }
        return v;
    }

    static std::string detail_of(Observation const& obs, detail::ErrorInfo const& info) {
        std::string text;
        if (!info.message.empty()) text = info.message;
        else if (detail::is_html(obs.body)) text = detail::html_title(obs.body);
        else text = detail::first_line(obs.body);
        return detail::clip(redact(text));
    }
};

} // namespace cascade
