#pragma once
// Replies in the providers' real wire formats (shared/reference/provider-wire-formats.md), for the
// loopback upstream. Bodies marked [V] there are copied verbatim; only ids and texts are parameters.

#include "loopback.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace cascade::test::wire {

inline Reply json(int status, std::string body) { return reply(status, "application/json", std::move(body)); }

// Headers Groq sends through Cloudflare (G1, G7).
inline Reply groq_headers(Reply r) {
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("cf-ray", "931c1dcd1ece66e6-AMS");
    r.headers.emplace_back("x-groq-region", "gcp-europe-west3");
    r.headers.emplace_back("cache-control", "private, max-age=0, no-store, no-cache, must-revalidate");
    return r;
}

// G1: a chat completion.
inline Reply groq_ok(std::string const& text, int prompt_tokens = 86, int completion_tokens = 220) {
    boost::json::object body{{"id", "chatcmpl-9313d961-5ea4-4f2c-967f-6b6c1ff7b40a"},
                             {"object", "chat.completion"},
                             {"created", 1756814248},
                             {"model", "llama-3.3-70b-versatile"},
                             {"choices", boost::json::array{boost::json::object{
                                             {"index", 0},
                                             {"message", boost::json::object{{"role", "assistant"}, {"content", text}}},
                                             {"logprobs", nullptr},
                                             {"finish_reason", "stop"}}}},
                             {"usage", boost::json::object{{"queue_time", 0.107146454},
                                                           {"prompt_tokens", prompt_tokens},
                                                           {"prompt_time", 0.018903883},
                                                           {"completion_tokens", completion_tokens},
                                                           {"completion_time", 0.69108819},
                                                           {"total_tokens", prompt_tokens + completion_tokens},
                                                           {"total_time", 0.709992073}}},
                             {"usage_breakdown", nullptr},
                             {"system_fingerprint", "fp_6507bcfb6f"},
                             {"x_groq", boost::json::object{{"id", "req_01k454m1g2fst99rvda9y6109p"}}},
                             {"service_tier", "on_demand"}};
    auto r = groq_headers(json(200, boost::json::serialize(body)));
    r.headers.emplace_back("x-ratelimit-limit-requests", "1000");
    r.headers.emplace_back("x-ratelimit-limit-tokens", "6000");
    r.headers.emplace_back("x-ratelimit-remaining-requests", "997");
    r.headers.emplace_back("x-ratelimit-remaining-tokens", "5499");
    r.headers.emplace_back("x-ratelimit-reset-requests", "3m51.171s");
    r.headers.emplace_back("x-ratelimit-reset-tokens", "5.01s");
    return r;
}

// G4: a TPM rate limit, with retry-after.
inline Reply groq_429(int retry_after_s = 30) {
    auto r = groq_headers(json(429, R"({"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01j2g5d88hfvjrgw64hnapqk8y` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5972, Requested 1351. Please try again in 13.23s. Visit https://console.groq.com/docs/rate-limits for more information.","type":"tokens","code":"rate_limit_exceeded"}})"
                                    "\n"));
    r.headers.emplace_back("retry-after", std::to_string(retry_after_s));
    r.headers.emplace_back("x-ratelimit-remaining-tokens", "0");
    r.headers.emplace_back("x-ratelimit-reset-tokens", "13.23s");
    return r;
}

// C1: Cloudflare's 1010 block, plain text.
inline Reply cloudflare_1010() {
    Reply r = reply(403, "text/plain; charset=UTF-8", "error code: 1010\n");
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("cf-ray", "8e695a03eed4f9fd-FRA");
    return r;
}

// C2: the same block as JSON.
inline Reply cloudflare_1010_json() {
    Reply r = reply(403, "application/json; charset=utf-8",
                    R"({"type":"https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-1xxx-errors/error-1010/","title":"Error 1010: Access denied","status":403,"detail":"The site owner has blocked access based on your browser's signature.","instance":"0000000000000000","error_code":1010,"error_name":"browser_signature_banned","error_category":"access_denied","ray_id":"0000000000000000","timestamp":"2026-10-02T00:00:00Z","zone":"api.upstox.com","cloudflare_error":true,"retryable":false,"owner_action_required":true})");
    r.headers.emplace_back("server", "cloudflare");
    return r;
}

// G7: an invalid key.
inline Reply groq_401() {
    return groq_headers(json(401, R"({"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}})"
                                  "\n"));
}

// G8: over capacity: the whole provider is overloaded.
inline Reply groq_503() {
    return groq_headers(json(503, R"({"error":{"message":"llama-3.3-70b-versatile is currently over capacity. Please try again and back off exponentially. Visit https://groqstatus.com to see if there is an active incident.","type":"internal_server_error"}})"
                                  "\n"));
}

// O6: OpenAI's 500, a server error that says nothing of capacity: retried on the same key.
inline Reply openai_500() {
    return json(500, R"J({"error":{"message":"The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID e5c949c8ec2c86be225544e5eefcbe4d in your email.)","type":"server_error","param":null,"code":null}})J");
}

// G5: the request alone exceeds the TPM limit.
inline Reply groq_413() {
    return groq_headers(json(413, R"({"error":{"message":"Request too large for model `llama-3.3-70b-versatile` in organization `org_01j2g5d88hfvjrgw64hnapqk8y` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 10338, please reduce your message size and try again. Visit https://console.groq.com/docs/rate-limits for more information.","type":"tokens","code":"rate_limit_exceeded"}})"
                                  "\n"));
}

// D1: a DeepSeek chat completion.
// D1, with `cache_hits` of the prompt's tokens served from DeepSeek's cache.
inline Reply deepseek_ok(std::string const& text, int prompt_tokens = 14, int completion_tokens = 9, int cache_hits = 0) {
    boost::json::object body{{"id", "b55e6172-d379-4806-b4e0-d21dd4b243b7"},
                             {"object", "chat.completion"},
                             {"created", 1755780061},
                             {"model", "deepseek-chat"},
                             {"choices", boost::json::array{boost::json::object{
                                             {"index", 0},
                                             {"message", boost::json::object{{"role", "assistant"}, {"content", text}}},
                                             {"logprobs", nullptr},
                                             {"finish_reason", "stop"}}}},
                             {"usage", boost::json::object{{"prompt_tokens", prompt_tokens},
                                                           {"completion_tokens", completion_tokens},
                                                           {"total_tokens", prompt_tokens + completion_tokens},
                                                           {"prompt_tokens_details", boost::json::object{{"cached_tokens", cache_hits}}},
                                                           {"prompt_cache_hit_tokens", cache_hits},
                                                           {"prompt_cache_miss_tokens", prompt_tokens - cache_hits}}},
                             {"system_fingerprint", "fp_feb633d1f5_prod0820_fp8_kvcache"}};
    Reply r = json(200, boost::json::serialize(body));
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("x-ds-trace-id", "754bfdec3ed289904df8314d9c221d25");
    return r;
}

// D9: blank keep-alive lines while queued, then the answer.
inline Reply deepseek_keepalive_then_ok(std::string const& text) {
    Reply r = deepseek_ok(text);
    r.chunks = {{std::chrono::milliseconds(0), "\n"}, {std::chrono::milliseconds(20), "\n"}, {std::chrono::milliseconds(20), r.body}};
    return r;
}

// D9's failure: blank lines only, then the server closes.
inline Reply deepseek_blank_lines_then_close() {
    Reply r = json(200, "");
    r.chunks = {{std::chrono::milliseconds(0), "\n"}, {std::chrono::milliseconds(10), "\n\n"}};
    return r;
}

// D5: credits are gone.
inline Reply deepseek_402() {
    return json(402, R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})");
}

// A 200 whose content is empty.
inline Reply groq_empty() { return groq_ok(""); }

} // namespace cascade::test::wire
