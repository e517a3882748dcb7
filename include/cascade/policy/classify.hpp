#pragma once
/// @file
/// @brief The classify policy: one failed attempt's `Observation` -> `Verdict`, and `DefaultClassify`, which
/// knows the error shapes of Groq, OpenAI-compatible APIs, Cloudflare, DeepSeek, OpenRouter, Hugging Face,
/// Anthropic, Google and OAuth2 token endpoints (see shared/reference/provider-wire-formats.md).

#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/detail/duration.hpp>
#include <cascade/policy/detail/error_shapes.hpp>
#include <cascade/policy/detail/meanings.hpp>
#include <cascade/security/redact.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

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

/// @brief A classify policy turns one failed attempt into a `Verdict`.
///
/// Requirement: `p.classify(obs)` with `obs` an `Observation const&` returns a `Verdict`, and may be
/// called from several threads at once. The chain calls it once for every failed attempt of every tier
/// (tiers return `Observation`s, never verdicts); a tier may then refine the verdict (`refine`).
template <class P>
concept ClassifyPolicy = requires(P const& p, Observation const& obs) {
    { p.classify(obs) } -> std::same_as<Verdict>;
};

/// @brief The default classifier. Every rule is tested against the providers' real responses.
///
/// `cool_for` is set only from what the response says (retry-after, reset headers of every provider's
/// family, "try again in", Google's RetryInfo, Hugging Face's estimated_time); when it says nothing,
/// `cool_for` stays empty and the chain's `CircuitConfig` decides: one source for each default. Zero is
/// what the response said (`retry-after: 0`): at once. Absolute instants (an HTTP-date `retry-after`,
/// OpenRouter's epoch reset, RFC 3339 resets) are measured from the response's `Date` header when it has
/// one, else from the local clock: the upstream's clock decides what its own instants mean.
///
/// `detail` is redacted and at most 200 bytes. When the tier said what it was doing (`Observation::detail`,
/// e.g. "token endpoint"), a response's or a transport error's detail starts with it:
/// `token endpoint: invalid_grant: Invalid JWT Signature.`
///
/// The decision table, with the public captures that check each row, is in docs/providers.md ("How
/// failures are classified"). In order, the first match deciding:
/// 0. a `Fault` the tier names in `transport`, as that fault; a transport error (timeout, network, TLS);
/// 1. the edge: Cloudflare blocks (provider `blocked`) and IP rate limits; OAuth2 credential refusals;
/// 2. a 2xx: a blocked prompt (`rejected`); an error object naming a status is read as that status, one
///    naming none is a retried `server_error` (or `malformed_response` when not JSON);
/// 3. structured fields, then words (`detail::` predicates in policy/detail/meanings.hpp): geographic
///    block, refused key, request too large, quota of 0, credits gone, context, content filter, overload,
///    retired model;
/// 4. the status alone: 429 rate limit (key), 401/403 unauthorized (key, disabled), 408 timeout, 5xx
///    server error (retried), other 4xx bad request.
struct DefaultClassify {
    Verdict classify(Observation const& obs) const {
        if (obs.transport && obs.transport.category() == fault_category()) return named(obs);
        if (obs.transport) return transport(obs);

        Verdict v;
        v.http_status = obs.status;
        std::string_view const body = obs.body;
        auto const now = response_time(obs);
        auto info = detail::error_info(body, now);
        auto retry_after = header_delay(obs, now);
        v.detail = describe(obs.detail, text_of(obs, info));

        // 1. The edge. Cloudflare first: its blocks come with any status and any body format.
        int cf = info.cloudflare_code ? info.cloudflare_code : detail::cloudflare_text_code(body);
        if (!cf && detail::is_html(body)) cf = detail::cloudflare_html_code(body);
        if (cf >= 1000 && cf < 2000) {
            if (cf == 1015 || cf == 1025 || cf == 1027 || cf == 1200) return provider(v, Fault::rate_limited, retry_after ? retry_after : info.retry_hint);
            return provider(v, Fault::blocked, {});
        }
        if (obs.status == 403 && detail::is_html(body) && detail::cloudflare_block_page(body)) return provider(v, Fault::blocked, {});
        // A token endpoint that refuses the credential (a bad signature, a clock off by an hour): the key
        // will not heal by retrying. Its 5xx stays a server error.
        if ((obs.status == 400 || obs.status == 401 || obs.status == 403) && detail::oauth_credential_refused(info.oauth_error))
            return key(v, Fault::unauthorized, {});

        // 2. A 2xx the tier could not use. An error object that names a status (a router relaying its
        // upstream's 429 or 402; an `error` event in a stream) is read as that status below.
        int status = obs.status;
        if (status >= 200 && status < 300) {
            // A prompt the provider refused to answer: the same prompt is refused again, the next tier may not.
            if (info.block_reason) {
                v.detail = describe(obs.detail, "prompt blocked: " + *info.block_reason);
                return attempt(v, Fault::rejected);
            }
            status = detail::status_of_error(info);
            if (status == 0) {
                // Blank keep-alive lines then a close, truncated JSON, or an error object naming no status.
                v.retry_same = true;
                return attempt(v, info.json && (!info.message.empty() || !info.code.empty()) ? Fault::server_error : Fault::malformed_response);
            }
        }

        // 3. What the error's structured fields (type, code, status, Google's details), then its words, say
        // it is: these hold whatever the status, which providers choose differently for the same failure.
        auto const& msg = info.message;
        bool const should_not_retry = obs.header("x-should-retry") == std::optional<std::string_view>("false");
        bool const failed = status >= 400;
        if (failed && detail::geo_blocked(info)) return provider(v, Fault::blocked, {});
        if (failed && status < 500 && status != 429 && status != 413 && detail::key_refused(info)) return key(v, Fault::unauthorized, {});
        bool const too_large = detail::icontains(msg, "request too large") || detail::icontains(msg, "reduce your message size") ||
                               detail::icontains(msg, "reduce max_tokens");
        if (status == 413 || (status == 429 && (too_large || (detail::context_exceeded(info) && should_not_retry))))
            return attempt(v, Fault::context_too_long);
        // A quota of 0 is not in this account's tier: the long rest, not the retry delay the response suggests.
        if (failed && detail::quota_is_zero(info)) return key(v, Fault::quota_exhausted, {});
        if (status == 402 || (failed && detail::credits_gone(info))) return key(v, Fault::quota_exhausted, retry_after);
        if (failed && status != 429 && detail::context_exceeded(info)) return attempt(v, Fault::context_too_long);
        if (failed && status < 500 && detail::content_filtered(info)) return attempt(v, Fault::rejected);
        if (failed && detail::overloaded(info, status)) {
            auto cool = retry_after ? retry_after : info.loading_for ? info.loading_for : info.retry_hint;
            if (!cool) cool = detail::parse_wait_in_words(msg);  // Azure: "Please retry after 20 seconds."
            return provider(v, Fault::overloaded, cool);
        }
        // A retired or unknown model will not come back by retrying, with any key: the tier's circuit opens
        // for the chain's CircuitConfig::model_unavailable_cooldown.
        if (failed && status < 500 && detail::model_gone(info)) return provider(v, Fault::model_unavailable, {});

        // 4. The status alone.
        switch (status) {
        case 429:
            // A day's or a month's quota at zero: the key is out until that window resets.
            if (auto w = detail::long_window_spent(obs.headers, now); w.spent) return key(v, Fault::quota_exhausted, w.reset);
            return key(v, Fault::rate_limited, rate_limit_delay(obs, info, retry_after, now));
        case 401:
            return key(v, Fault::unauthorized, {});
        case 403:
            if (detail::icontains(msg, "cannot access this model") || detail::icontains(msg, "gated")) return attempt(v, Fault::bad_request);
            return key(v, Fault::unauthorized, {});
        case 408:
            v.retry_same = !should_not_retry;
            return attempt(v, Fault::timeout);
        default:
            break;
        }
        if (status >= 500 || status == 498 || status == 409) {
            v.retry_same = !should_not_retry && status != 525 && status != 526 && status != 501;
            if (retry_after) v.cool_for = retry_after;
            else if (info.retry_hint) v.cool_for = info.retry_hint;
            return attempt(v, Fault::server_error);
        }
        if (status >= 400) return attempt(v, Fault::bad_request);
        return attempt(v, Fault::malformed_response);
    }

private:
    static Verdict attempt(Verdict& v, Fault f) {
        v.fault = f;
        v.scope = Scope::attempt;
        return v;
    }

    static Verdict provider(Verdict& v, Fault f, std::optional<std::chrono::milliseconds> cool) {
        v.fault = f;
        v.scope = Scope::provider;
        v.cool_for = cool;
        return v;
    }

    static Verdict key(Verdict& v, Fault f, std::optional<std::chrono::milliseconds> cool) {
        v.fault = f;
        v.scope = Scope::key;
        v.cool_for = cool;
        return v;
    }

    // When the response was made, by the upstream's clock: its `Date` header, else our clock. Absolute
    // instants (an HTTP-date retry-after, epoch resets) are measured from it, so a skewed local clock (or a
    // simulated one) does not shorten or stretch the wait the upstream meant.
    static std::chrono::system_clock::time_point response_time(Observation const& obs) {
        if (auto d = obs.header("date"))
            if (auto t = detail::parse_http_date(*d)) return *t;
        return std::chrono::system_clock::now();
    }

    static std::optional<std::chrono::milliseconds> header_delay(Observation const& obs, std::chrono::system_clock::time_point now) {
        if (auto ms = obs.header("retry-after-ms"))
            if (auto d = detail::parse_milliseconds(*ms)) return d;
        if (auto ra = obs.header("retry-after"))
            if (auto d = detail::parse_retry_after(*ra, now)) return d;
        return std::nullopt;
    }

    // How long a rate-limited key rests: what the response says, most specific first.
    std::optional<std::chrono::milliseconds> rate_limit_delay(Observation const& obs, detail::ErrorInfo const& info,
                                               std::optional<std::chrono::milliseconds> retry_after,
                                               std::chrono::system_clock::time_point now) const {
        if (retry_after) return *retry_after;
        if (auto d = detail::parse_try_again_in(info.message)) return *d;
        if (info.retry_hint) return *info.retry_hint;
        // The reset headers: the window that is spent (every provider's family, see detail::reset_delay).
        if (auto d = detail::reset_delay(obs.headers, now)) return d;
        return std::nullopt;  // the chain's CircuitConfig::rate_limited_cooldown
    }

    // A failure the tier named itself (no response to show): that fault, as the tier put it.
    static Verdict named(Observation const& obs) {
        Verdict v;
        v.http_status = obs.status;
        int const value = obs.transport.value();
        bool const known = value >= static_cast<int>(Fault::rate_limited) && value <= static_cast<int>(Fault::overloaded);
        v.fault = known ? static_cast<Fault>(value) : Fault::server_error;
        // A fault's own name needs no redaction (and a failover step no scan of it).
        v.detail = obs.detail.empty() ? std::string(to_string(v.fault)) : describe({}, obs.detail);
        return v;
    }

    static Verdict transport(Observation const& obs) {
        namespace asio_error = boost::asio::error;
        auto const ec = obs.transport;
        Verdict v;
        v.http_status = obs.status;
        v.detail = describe(obs.detail, ec.message());
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
            // No connection was made: nothing was sent, and the provider counted nothing.
            v.unsent = ec == asio_error::connection_refused || ec == asio_error::host_not_found ||
                       ec == asio_error::host_not_found_try_again || ec == asio_error::network_unreachable ||
                       ec == asio_error::host_unreachable;
        }
        return v;
    }

    // What came back, in a few words: the error message, an HTML page's title, or the body's first line.
    static std::string text_of(Observation const& obs, detail::ErrorInfo const& info) {
        if (!info.message.empty()) return info.message;
        if (detail::is_html(obs.body)) return detail::html_title(obs.body);
        return detail::first_line(obs.body);
    }

    // The verdict's detail: what the tier was doing, then what happened; redacted, then clipped.
    static std::string describe(std::string_view doing, std::string what) {
        if (!doing.empty()) what = what.empty() ? std::string(doing) : std::string(doing) + ": " + what;
        return detail::clip(redact(what));
    }
};

} // namespace cascade
