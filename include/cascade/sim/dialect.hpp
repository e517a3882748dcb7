#pragma once
/// @file
/// @brief How a modelled provider says no: for each `Limit` it trips, the status, headers and body the
/// real provider sends (shared/reference/provider-wire-formats.md), so the chain's real classifier reads
/// them as it reads the wire.

#include <cascade/core/verdict.hpp>
#include <cascade/sim/limits.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace cascade::sim {

/// @brief Whose words a modelled provider uses.
enum class Dialect : std::uint8_t {
    groq,         ///< OpenAI-style envelope, `x-ratelimit-*` with Go durations, `retry-after` on 429
    deepseek,     ///< 402 "Insufficient Balance", 429 concurrency, no rate-limit headers
    vertex,       ///< Google's `RESOURCE_EXHAUSTED` 429 without retry information
    openrouter,   ///< 429 "free-models-per-min/-day" with the reset inside `metadata.headers`, 402 credits
    huggingface,  ///< `{"error":"..."}` strings, 402 when the month's credits are spent
    openai,       ///< OpenAI's envelope: `rate_limit_exceeded`, `insufficient_quota`
};

/// @brief A response as the wire carries it.
struct Response {
    int status = 0;
    Headers headers;
    std::string body;
};

namespace detail {

/// A duration as Go prints it, as Groq's and OpenAI's reset headers do: `1m47.585s`, `5.289s`, `60ms`.
inline std::string go_duration(Clock::duration d) {
    double ms = std::chrono::duration<double, std::milli>(d).count();
    if (ms < 0) ms = 0;
    char buf[64];
    if (ms < 1000.0) {
        std::snprintf(buf, sizeof buf, "%gms", std::round(ms * 1000.0) / 1000.0);
        return buf;
    }
    double s = ms / 1000.0;
    long const h = static_cast<long>(s / 3600.0);
    s -= static_cast<double>(h) * 3600.0;
    long const m = static_cast<long>(s / 60.0);
    s -= static_cast<double>(m) * 60.0;
    std::string out;
    if (h) out += std::to_string(h) + "h";
    if (h || m) out += std::to_string(m) + "m";
    std::snprintf(buf, sizeof buf, "%gs", std::round(s * 1000.0) / 1000.0);
    return out + buf;
}

/// An HTTP date (`Tue, 01 Dec 2026 10:00:00 GMT`): every provider's `Date` header.
inline std::string http_date(std::chrono::system_clock::time_point utc) {
    static constexpr char const* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr char const* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    auto const day = std::chrono::floor<std::chrono::days>(utc);
    std::chrono::year_month_day const ymd{day};
    std::chrono::hh_mm_ss const t{std::chrono::floor<std::chrono::seconds>(utc - day)};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %d %02d:%02d:%02d GMT", days[std::chrono::weekday{day}.c_encoding()],
                  static_cast<unsigned>(ymd.day()), months[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(t.hours().count()), static_cast<int>(t.minutes().count()), static_cast<int>(t.seconds().count()));
    return buf;
}

inline std::string whole_seconds(Clock::duration d) {
    auto const s = std::chrono::ceil<std::chrono::seconds>(d).count();
    return std::to_string(s < 1 ? 1 : s);
}

inline std::string_view groq_window(Limit l) {
    switch (l) {
    case Limit::requests_per_minute: return "requests per minute (RPM)";
    case Limit::requests_per_day: return "requests per day (RPD)";
    case Limit::tokens_per_minute: return "tokens per minute (TPM)";
    default: return "tokens per day (TPD)";
    }
}

inline bool is_window(Limit l) {
    return l == Limit::requests_per_minute || l == Limit::requests_per_day || l == Limit::tokens_per_minute || l == Limit::tokens_per_day;
}

inline Response json(int status, std::string body) {
    Response r;
    r.status = status;
    r.headers.add("content-type", "application/json");
    r.body = std::move(body);
    return r;
}

} // namespace detail

/// @brief The rate-limit headers Groq sends with every response of group usage `u` (requests are the
/// day's window, tokens the minute's, as Groq's table says).
inline void add_groq_rate_headers(Headers& h, AccountLimits const& l, Account::Usage const& u) {
    if (l.requests_per_day) {
        h.add("x-ratelimit-limit-requests", std::to_string(l.requests_per_day));
        h.add("x-ratelimit-remaining-requests", std::to_string(l.requests_per_day > u.requests_day ? l.requests_per_day - u.requests_day : 0));
        h.add("x-ratelimit-reset-requests", detail::go_duration(std::chrono::milliseconds(86'400'000 / l.requests_per_day * std::max<std::uint64_t>(u.requests_day, 1))));
    }
    if (l.tokens_per_minute) {
        h.add("x-ratelimit-limit-tokens", std::to_string(l.tokens_per_minute));
        h.add("x-ratelimit-remaining-tokens", std::to_string(l.tokens_per_minute > u.tokens_minute ? l.tokens_per_minute - u.tokens_minute : 0));
        h.add("x-ratelimit-reset-tokens", detail::go_duration(std::chrono::milliseconds(60'000 * u.tokens_minute / l.tokens_per_minute)));
    }
}

namespace detail {
inline Response refusal_body(Dialect d, Trip const& t, std::string_view model, std::chrono::system_clock::time_point utc);
}

/// @brief The response `d` sends when `t` refuses a request for `model` at wall-clock time `utc`, with its
/// `Date` (which the classifier measures absolute reset times from).
inline Response refusal(Dialect d, Trip const& t, std::string_view model, std::chrono::system_clock::time_point utc) {
    Response r = detail::refusal_body(d, t, model, utc);
    r.headers.add("date", detail::http_date(utc));
    return r;
}

inline Response detail::refusal_body(Dialect d, Trip const& t, std::string_view model, std::chrono::system_clock::time_point utc) {
    using detail::json;
    std::string const m(model);
    std::string const lim = std::to_string(t.limit_value), used = std::to_string(t.used), req = std::to_string(t.requested);
    if (t.limit == Limit::blocked) {  // Cloudflare in front of the provider: plain text, no retry information
        Response r;
        r.status = 403;
        r.headers.add("content-type", "text/plain; charset=UTF-8");
        r.headers.add("server", "cloudflare");
        r.headers.add("cf-ray", "8f1e2d3c4b5a6978-FRA");
        r.body = "error code: 1010";
        return r;
    }
    switch (d) {
    case Dialect::groq:
        if (detail::is_window(t.limit)) {
            auto r = json(429, R"({"error":{"message":"Rate limit reached for model `)" + m + "` in organization `org_01jsimulated0000000000000` service tier `on_demand` on " +
                                   std::string(detail::groq_window(t.limit)) + ": Limit " + lim + ", Used " + used + ", Requested " + req +
                                   ". Please try again in " + detail::go_duration(t.retry_in) +
                                   R"(. Visit https://console.groq.com/docs/rate-limits for more information.","type":")" +
                                   (t.limit == Limit::tokens_per_minute || t.limit == Limit::tokens_per_day ? "tokens" : "requests") +
                                   R"(","code":"rate_limit_exceeded"}})");
            r.headers.add("retry-after", detail::whole_seconds(t.retry_in));
            r.headers.add("server", "cloudflare");
            return r;
        }
        if (t.limit == Limit::request_too_large)
            return json(413, R"({"error":{"message":"Request too large for model `)" + m +
                                 "` in organization `org_01jsimulated0000000000000` service tier `on_demand` on tokens per minute (TPM): Limit " + lim +
                                 ", Requested " + req +
                                 R"(, please reduce your message size and try again. Visit https://console.groq.com/docs/rate-limits for more information.","type":"tokens","code":"rate_limit_exceeded"}})");
        if (t.limit == Limit::outage)
            return json(503, R"({"error":{"message":")" + m +
                                 R"( is currently over capacity. Please try again and back off exponentially. Visit https://groqstatus.com to see if there is an active incident.","type":"internal_server_error"}})");
        break;
    case Dialect::deepseek:
        if (t.limit == Limit::credits) return json(402, R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})");
        if (t.limit == Limit::concurrency)
            return json(429, R"({"error":{"message":"Your current concurrency is )" + used + ", which exceeds your concurrency limit of " + lim +
                                 R"( based on your remaining balance. Please top up your balance to restore your concurrency.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}})");
        if (t.limit == Limit::outage) return json(503, R"({"error":{"message":"Server Overloaded","type":"server_error","param":null,"code":"server_overloaded"}})");
        break;
    case Dialect::vertex:
        if (t.limit == Limit::outage) return json(503, R"({"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}})");
        if (t.limit != Limit::request_too_large && t.limit != Limit::credits)
            return json(429, R"({"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","errors":[{"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","domain":"global","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}})");
        break;
    case Dialect::openrouter: {
        if (t.limit == Limit::credits)
            return json(402, R"({"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402,"metadata":{"limit_source":"openrouter_credits"}}})");
        if (t.limit == Limit::outage) return json(502, R"({"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":null}}})");
        if (detail::is_window(t.limit)) {
            bool const day = t.limit == Limit::requests_per_day || t.limit == Limit::tokens_per_day;
            auto const reset_ms = std::chrono::duration_cast<std::chrono::milliseconds>((utc + t.retry_in).time_since_epoch()).count();
            return json(429, std::string(R"({"error":{"message":"Rate limit exceeded: free-models-per-)") + (day ? "day" : "min") + (day ? R"(. Add 10 credits to unlock 1000 free model requests per day)" : ". ") +
                                 R"(","code":429,"metadata":{"headers":{"X-RateLimit-Limit":")" + lim + R"(","X-RateLimit-Remaining":"0","X-RateLimit-Reset":")" +
                                 std::to_string(reset_ms) + R"("},"provider_name":null}},"user_id":"user_simulated"})");
        }
        break;
    }
    case Dialect::huggingface:
        if (t.limit == Limit::credits)
            return json(402, R"({"error":"You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more monthly included credits."})");
        if (t.limit == Limit::outage) return json(503, R"({"error":"Service Unavailable"})");
        break;
    case Dialect::openai:
        break;
    }
    // The OpenAI envelope, which the others fall back to for what their own words do not cover.
    if (t.limit == Limit::credits)
        return json(429, R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
    if (t.limit == Limit::outage) return json(503, R"({"error":{"message":"The server is overloaded or not ready yet.","type":"server_error","param":null,"code":null}})");
    if (t.limit == Limit::request_too_large)
        return json(400, R"({"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})");
    auto r = json(429, R"({"error":{"message":"Rate limit reached for )" + m + " in organization org-simulated on " +
                           std::string(detail::groq_window(t.limit)) + ": Limit " + lim + ", Used " + used + ", Requested " + req + ". Please try again in " +
                           detail::go_duration(t.retry_in) + R"(. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})");
    r.headers.add("retry-after", detail::whole_seconds(t.retry_in));
    return r;
}

} // namespace cascade::sim
