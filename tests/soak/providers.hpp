#pragma once
// The soak's two providers as its upstreams play them: what Groq (behind Cloudflare) and DeepSeek answer,
// drawn at random from a fixed seed, in their real wire formats (shared/reference/provider-wire-formats.md,
// support/wire.hpp), with every request and every rest it asks for written to the ledger.

#include "soak/ledger.hpp"
#include "soak/upstream.hpp"
#include "support/wire.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace cascade::soak {

using ms = std::chrono::milliseconds;
namespace wire = cascade::test::wire;

// The cooldowns the chain under test is configured with, for answers that do not say how long to wait:
// the upstream writes them to the ledger as the rests it asked for.
struct Cooldowns {
    ms blocked{1000};       // a 1010 block
    ms quota{1500};         // a 402
    ms rate_limited{1000};  // a 429 that says nothing of when to come back
    ms overloaded{200};     // a 503 "over capacity": the whole provider, briefly
};

inline constexpr char const* groq_path = "/openai/v1/chat/completions";
inline constexpr char const* deepseek_path = "/chat/completions";
inline constexpr std::uint8_t groq_id = 0, deepseek_id = 1;

inline Answer to_answer(cascade::test::Reply const& r) {
    Answer a;
    a.status = r.status;
    a.headers = r.headers;
    a.body = r.body;
    a.delay = r.delay;
    if (!r.chunks.empty()) {
        a.shape = Answer::Shape::chunks;
        a.chunks = r.chunks;
    }
    return a;
}

inline Answer json_answer(int status, std::string body) { return to_answer(wire::json(status, std::move(body))); }

inline Answer text_answer(int status, std::string body) {
    Answer a;
    a.status = status;
    a.headers = {{"content-type", "text/plain; charset=UTF-8"}, {"server", "cloudflare"}, {"cf-ray", "8e695a03eed4f9fd-FRA"}};
    a.body = std::move(body);
    return a;
}

// A 2xx whose JSON stops in the middle (the HTTP message itself is complete).
inline Answer truncated(Answer a) {
    a.body = a.body.substr(0, a.body.size() * 2 / 3);
    return a;
}

template <class Kinds>
std::string kinds_table(Kinds const& kinds, std::array<std::atomic<std::size_t>, 16> const& sent) {
    std::string out;
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        if (i) out += ", ";
        out += kinds[i].name;
        out += '=';
        out += std::to_string(sent[i].load());
    }
    return out;
}

struct Kind {
    char const* name;
    int weight;  // per 10,000 answers
};

// How long an LLM takes to answer: a normal answer, and a slow one (still inside the attempt timeout).
inline ms normal_latency(std::mt19937& rng) { return ms(std::uniform_int_distribution<int>(100, 300)(rng)); }
inline ms slow_latency(std::mt19937& rng) { return ms(std::uniform_int_distribution<int>(350, 450)(rng)); }

// G4 with every header short and consistent: retry-after, the body's "try again in", the reset.
inline Answer groq_429_retry_after(int secs) {
    auto r = json_answer(429, R"({"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01j2g5d88hfvjrgw64hnapqk8y` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5972, Requested 1351. Please try again in )" +
                                  std::to_string(secs) + R"(s. Visit https://console.groq.com/docs/rate-limits for more information.","type":"tokens","code":"rate_limit_exceeded"}})"
                                  "\n");
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("retry-after", std::to_string(secs));
    r.headers.emplace_back("x-ratelimit-limit-tokens", "6000");
    r.headers.emplace_back("x-ratelimit-remaining-tokens", "0");
    r.headers.emplace_back("x-ratelimit-reset-tokens", std::to_string(secs) + "s");
    return r;
}

// G4's RPM form: no retry-after; the message and x-ratelimit-reset-requests say when.
inline Answer groq_429_try_again(ms wait) {
    std::string d = std::to_string(wait.count()) + "ms";
    auto r = json_answer(429, R"({"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01j2g5d88hfvjrgw64hnapqk8y` service tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, Requested 1. Please try again in )" +
                                  d + R"(. Visit https://console.groq.com/docs/rate-limits for more information.","type":"requests","code":"rate_limit_exceeded"}})"
                                  "\n");
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("x-ratelimit-limit-requests", "30");
    r.headers.emplace_back("x-ratelimit-remaining-requests", "0");
    r.headers.emplace_back("x-ratelimit-reset-requests", d);
    return r;
}

// C4: Cloudflare's IP rate limit, with the retry-after its changelog says it sends.
inline Answer cloudflare_1015(int secs) {
    auto r = text_answer(429, "error code: 1015\n");
    r.headers.emplace_back("retry-after", std::to_string(secs));
    return r;
}

// The time left until `until`, rounded up to `unit`, at least one unit.
template <class Unit>
Unit left_until(Time until, Time now) {
    auto left = std::chrono::ceil<Unit>(until - now);
    return left < Unit(1) ? Unit(1) : left;
}

// Groq through Cloudflare: G1, G4 (two forms), C1, C2, C4, G8, O6, C6, and the transport's failures.
// Like the real service it stays consistent: a request that arrives while its key is limited, or while
// the provider blocks it, gets the same refusal again, saying the time that is left.
class GroqScript {
public:
    enum : int { ok, slow_ok, limited_retry_after, limited_try_again, block_text, block_json, edge_limited, over_capacity,
                 server_error, bad_gateway, hang, cut, malformed, empty, kind_count };
    static constexpr std::array<Kind, kind_count> kinds{{
        {"ok", 7643},
        {"slow_ok", 500},
        {"429_retry_after", 60},
        {"429_try_again_in", 40},
        {"1010_text", 3},
        {"1010_json", 2},
        {"1015", 2},
        {"503", 400},
        {"500", 300},
        {"502", 300},
        {"hang", 150},
        {"cut_mid_body", 200},
        {"malformed_200", 200},
        {"empty_200", 200},
    }};

    GroqScript(Ledger& ledger, Cooldowns c) : ledger_(ledger), c_(c) {
        std::vector<int> w;
        for (auto const& k : kinds) w.push_back(k.weight);
        pick_ = std::discrete_distribution<int>(w.begin(), w.end());
        ok_ = to_answer(wire::groq_ok("Revenue grew 12% while churn held at 3%; the quarter closed ahead of plan.", 86, 220));
    }

    Answer operator()(Arrival const& a) {
        int key = -1;
        for (int k = 0; k < 5; ++k)
            if (a.bearer == "groq" + std::to_string(k + 1)) key = k;
        ledger_.hit({groq_id, static_cast<std::int8_t>(key), a.at});
        if (a.target != groq_path || key < 0) {
            ++misrouted;
            return json_answer(404, R"({"error":{"message":"Unknown request URL","type":"invalid_request_error","code":"unknown_url"}})");
        }
        auto const k = static_cast<std::size_t>(key);
        // Still blocked, or this key still limited: the same refusal, with the time that is left.
        int kind = a.at < block_until_ ? block_kind_ : a.at < key_until_[k] ? key_kind_[k] : pick_(rng_);
        bool const again = a.at < block_until_ || a.at < key_until_[k];
        ++(again ? repeated : sent)[static_cast<std::size_t>(kind)];
        switch (kind) {
        case ok: {
            Answer r = ok_;
            r.delay = normal_latency(rng_);
            return r;
        }
        case slow_ok: {
            Answer r = ok_;
            r.delay = slow_latency(rng_);
            return r;
        }
        case limited_retry_after: {
            int secs = again ? static_cast<int>(left_until<std::chrono::seconds>(key_until_[k], a.at).count())
                             : std::uniform_int_distribution<int>(1, 2)(rng_);
            limit_key(k, kind, a.at, ms(secs * 1000), "429 retry-after");
            return groq_429_retry_after(secs);
        }
        case limited_try_again: {
            ms wait = again ? left_until<ms>(key_until_[k], a.at) : ms(1500);
            limit_key(k, kind, a.at, wait, "429 try again in");
            return groq_429_try_again(wait);
        }
        case block_text:
            block(kind, a.at, c_.blocked, "1010 block (text)");
            return to_answer(wire::cloudflare_1010());
        case block_json:
            block(kind, a.at, c_.blocked, "1010 block (JSON)");
            return to_answer(wire::cloudflare_1010_json());
        case edge_limited: {
            int secs = again ? static_cast<int>(left_until<std::chrono::seconds>(block_until_, a.at).count()) : 1;
            block(kind, a.at, ms(secs * 1000), "1015 edge rate limit");
            return cloudflare_1015(secs);
        }
        case over_capacity:
            block(kind, a.at, c_.overloaded, "503 over capacity");
            return to_answer(wire::groq_503());
        case server_error:
            return json_answer(500, R"J({"error":{"message":"The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID e5c949c8ec2c86be225544e5eefcbe4d in your email.)","type":"server_error","param":null,"code":null}})J");
        case bad_gateway: return text_answer(502, "error code: 502\n");
        case hang: {
            Answer r;
            r.shape = Answer::Shape::hang;
            return r;
        }
        case cut: {
            Answer r = ok_;
            r.shape = Answer::Shape::cut_mid_body;
            return r;
        }
        case malformed: return truncated(ok_);
        case empty: return to_answer(wire::groq_empty());
        default: return ok_;
        }
    }

    std::string table() const {
        return kinds_table(kinds, sent) + "; again while resting: " + kinds_table(kinds, repeated);
    }

    std::array<std::atomic<std::size_t>, 16> sent{};
    std::array<std::atomic<std::size_t>, 16> repeated{};
    std::atomic<std::size_t> misrouted{0};

private:
    void limit_key(std::size_t k, int kind, Time at, ms length, char const* what) {
        ledger_.rest({groq_id, static_cast<std::int8_t>(k), at, length, what});
        key_until_[k] = std::max(key_until_[k], at + length);
        key_kind_[k] = kind;
    }
    void block(int kind, Time at, ms length, char const* what) {
        ledger_.rest({groq_id, -1, at, length, what});
        block_until_ = std::max(block_until_, at + length);
        block_kind_ = kind;
    }

    Ledger& ledger_;
    Cooldowns c_;
    // Only touched on the upstream's thread.
    std::array<Time, 5> key_until_{};
    std::array<int, 5> key_kind_{};
    Time block_until_{};
    int block_kind_ = ok;
    std::mt19937 rng_{20261125};
    std::discrete_distribution<int> pick_;
    Answer ok_;
};

// DeepSeek: D1, D9 (both ways), D5, D7, D8, and the transport's failures.
class DeepSeekScript {
public:
    enum : int { ok, slow_ok, keepalive_ok, no_balance, concurrency, server_error, overloaded, hang, cut, blank_then_close,
                 malformed, empty, kind_count };
    static constexpr std::array<Kind, kind_count> kinds{{
        {"ok", 8310},
        {"slow_ok", 500},
        {"keepalive_lines_ok", 300},
        {"402", 10},
        {"429_concurrency", 20},
        {"500", 150},
        {"503", 150},
        {"hang", 100},
        {"cut_mid_body", 100},
        {"blank_lines_close", 100},
        {"malformed_200", 130},
        {"empty_200", 130},
    }};

    DeepSeekScript(Ledger& ledger, Cooldowns c) : ledger_(ledger), c_(c) {
        std::vector<int> w;
        for (auto const& k : kinds) w.push_back(k.weight);
        pick_ = std::discrete_distribution<int>(w.begin(), w.end());
        ok_ = to_answer(wire::deepseek_ok("Revenue +12%, churn 3%: a steady quarter."));
    }

    Answer operator()(Arrival const& a) {
        int key = a.bearer == "deepseek" ? 0 : -1;
        ledger_.hit({deepseek_id, static_cast<std::int8_t>(key), a.at});
        if (a.target != deepseek_path || key < 0) {
            ++misrouted;
            return json_answer(404, R"({"error":{"message":"Not Found","type":"invalid_request_error","param":null,"code":"invalid_request_error"}})");
        }
        // Still out of balance or over its concurrency: the same refusal (the chain's cooldown for each is a
        // fixed setting, so it again ends no earlier than the one running).
        bool const again = a.at < until_;
        int kind = again ? until_kind_ : pick_(rng_);
        ++(again ? repeated : sent)[static_cast<std::size_t>(kind)];
        switch (kind) {
        case ok: {
            Answer r = ok_;
            r.delay = normal_latency(rng_);
            return r;
        }
        case slow_ok: {
            Answer r = ok_;
            r.delay = slow_latency(rng_);
            return r;
        }
        case keepalive_ok: return to_answer(wire::deepseek_keepalive_then_ok("Revenue +12%, churn 3%: a steady quarter."));
        case no_balance:
            rest(kind, a.at, c_.quota, "402 insufficient balance");
            return to_answer(wire::deepseek_402());
        case concurrency:
            // D7's message in D3's envelope; it says nothing of when to come back.
            rest(kind, a.at, c_.rate_limited, "429 concurrency");
            return json_answer(429, R"({"error":{"message":"Your current concurrency is 40, which exceeds your concurrency limit of 39 based on your remaining balance. Please top up your balance to restore your concurrency.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}})");
        case server_error:
            return json_answer(500, R"({"error":{"message":"Server Error","type":"server_error","param":null,"code":"invalid_request_error"}})");
        case overloaded:
            return json_answer(503, R"({"error":{"message":"Server Overloaded","type":"server_error","param":null,"code":"invalid_request_error"}})");
        case hang: {
            Answer r;
            r.shape = Answer::Shape::hang;
            return r;
        }
        case cut: {
            Answer r = ok_;
            r.shape = Answer::Shape::cut_mid_body;
            return r;
        }
        case blank_then_close: {
            // D9's failure: blank keep-alive lines, then the server closes.
            Answer r = json_answer(200, "");
            r.shape = Answer::Shape::chunks_then_close;
            r.chunks = {{ms(0), "\n"}, {ms(10), "\n\n"}};
            return r;
        }
        case malformed: return truncated(ok_);
        case empty: return to_answer(wire::deepseek_ok(""));
        default: return ok_;
        }
    }

    std::string table() const {
        return kinds_table(kinds, sent) + "; again while resting: " + kinds_table(kinds, repeated);
    }

    std::array<std::atomic<std::size_t>, 16> sent{};
    std::array<std::atomic<std::size_t>, 16> repeated{};
    std::atomic<std::size_t> misrouted{0};

private:
    void rest(int kind, Time at, ms length, char const* what) {
        ledger_.rest({deepseek_id, 0, at, length, what});
        until_ = std::max(until_, at + length);
        until_kind_ = kind;
    }

    Ledger& ledger_;
    Cooldowns c_;
    Time until_{};  // only touched on the upstream's thread
    int until_kind_ = ok;
    std::mt19937 rng_{19700101};
    std::discrete_distribution<int> pick_;
    Answer ok_;
};

} // namespace cascade::soak
