// The ready OpenAI-family tiers end to end: OpenAI, Mistral, Together, Fireworks, Cerebras and Azure
// OpenAI, each over a loopback upstream speaking its own success body, rate-limit headers, credit or quota
// error and overload, through a chain whose last tier is a template. Time is simulated (ManualClock), so
// a key's rest is read to the millisecond.
//
// Bodies are marked as shared/reference marks them: [V] verbatim (source named), [V-msg] the message is
// verbatim and the envelope is the provider's usual one, [R] reconstructed from documented fields.

#include <cascade/cascade.hpp>

#include "support/loopback.hpp"
#include "support/run.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::test::Loopback;
using cascade::test::Reply;

namespace {

using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;

Reply json(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
    Reply r = cascade::test::reply(status, "application/json", std::move(body));
    for (auto& h : headers) r.headers.push_back(std::move(h));
    return r;
}

bool has_fault(cascade::Attempt const& a, Fault f) { return a.fault == cascade::make_error_code(f); }

// A chain of one provider tier and a template, on simulated time, that never waits for a resting key
// (`max_wait` 0): when the provider is out, the template answers at once.
template <class Tier>
struct Rig {
    Loopback up;
    asio::io_context io;
    cascade::BasicChain<Simulated, Tier, cascade::Template> chain;

    template <class Adjust>
    Rig(int keys, std::string const& key_stem, std::string const& base_path, Adjust adjust)
        : chain(io.get_executor(), chain_config(), Tier(config(keys, key_stem, base_path, adjust)),
                cascade::Template{[](cascade::Request const& r) { return "template: " + r.prompt(); }}) {}
    Rig(int keys, std::string const& key_stem, std::string const& base_path = "")
        : Rig(keys, key_stem, base_path, [](cascade::ProviderConfig&) {}) {}

    cascade::Completion ask() {
        auto req = cascade::Request::chat("You write reports.", "Summarise Q3");
        return cascade::test::run_simulated(io, chain.clock(), chain.complete(req));
    }
    // How long key `key`'s quota group rests from now.
    std::chrono::milliseconds rest(std::size_t key) const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(chain.key_state(0, key).cool_until - chain.clock().now());
    }

private:
    static cascade::ChainConfig chain_config() {
        cascade::ChainConfig cc;
        cc.max_wait = 0ms;
        return cc;
    }
    template <class Adjust>
    cascade::ProviderConfig config(int keys, std::string const& key_stem, std::string const& base_path, Adjust adjust) {
        auto cfg = Tier::defaults();
        cfg.base_url = up.base_url(base_path);
        for (int i = 1; i <= keys; ++i) cfg.keys.emplace_back(key_stem + std::to_string(i));
        cfg.http.attempt_timeout = 2s;
        adjust(cfg);
        return cfg;
    }
};

// --- OpenAI -------------------------------------------------------------------------------------------

constexpr char const* openai_path = "/v1/chat/completions";

// [V] the chat-completions example of OpenAI's API reference (model gpt-4.1-2025-04-14).
Reply openai_ok() {
    return json(200,
                R"({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"})",
                {{"openai-processing-ms", "54"}, {"openai-version", "2020-10-01"}, {"x-ratelimit-limit-requests", "200"},
                 {"x-ratelimit-limit-tokens", "150000"}, {"x-ratelimit-remaining-requests", "197"},
                 {"x-ratelimit-remaining-tokens", "149994"}, {"x-ratelimit-reset-requests", "19m45.394s"},
                 {"x-ratelimit-reset-tokens", "2ms"}, {"x-request-id", "c70828b2293314366a76a2b1dcb20688"}});
}

// O4 [V] body (rotemweiss57/gpt-newspaper#10); the token window is spent and resets in 26.604 s (Go duration).
Reply openai_429() {
    return json(429,
                R"({"error":{"message":"Rate limit reached for gpt-4 in organization org-********** on tokens per min (TPM): Limit 10000, Used 9348, Requested 5086. Please try again in 26.604s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
                {{"x-ratelimit-limit-requests", "500"}, {"x-ratelimit-limit-tokens", "10000"},
                 {"x-ratelimit-remaining-requests", "499"}, {"x-ratelimit-remaining-tokens", "0"},
                 {"x-ratelimit-reset-requests", "120ms"}, {"x-ratelimit-reset-tokens", "26.604s"}});
}

// O3 [V] (ChatGPTNextWeb/NextChat#3664).
Reply openai_quota() {
    return json(429,
                R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
}

// O6 [V] (ikechan8370/chatgpt-plugin#125).
Reply openai_503() {
    return json(503,
                R"j({"error":{"message":"That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists. (Please include the request ID 500d9fff2057e4af93a280f67002c342 in your message.)","type":"server_error","param":null,"code":null}})j");
}

// --- Mistral ------------------------------------------------------------------------------------------

constexpr char const* mistral_path = "/v1/chat/completions";

// P2 [V] (a 2025-05-13 capture, its content shortened there), with its 2025 rate-limit headers.
Reply mistral_ok() {
    return json(200,
                R"({"id":"7df4991e511440f4a71b636b80e5c760","object":"chat.completion","created":1747139660,"model":"mistral-large-latest","choices":[{"index":0,"message":{"role":"assistant","tool_calls":null,"content":"Sure, here's a small haiku ..."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"total_tokens":47,"completion_tokens":38}})",
                {{"ratelimitbysize-limit", "500000"}, {"ratelimitbysize-remaining", "467993"}, {"ratelimitbysize-reset", "40"},
                 {"ratelimitbysize-query-cost", "32007"}, {"x-ratelimitbysize-limit-minute", "500000"},
                 {"x-ratelimitbysize-remaining-minute", "467993"}, {"x-ratelimitbysize-limit-month", "1000000000"},
                 {"x-ratelimitbysize-remaining-month", "999967993"}, {"x-kong-request-id", "4e0e4d05e4e8c778ac8e1e4c09b02330"}});
}

// [V] body (pydantic/pydantic-ai#1885, 2025-06); the P2 header family with the minute spent [R values]:
// the window resets in `ratelimitbysize-reset` seconds.
Reply mistral_429() {
    return json(429, R"({"message":"Requests rate limit exceeded"})",
                {{"ratelimitbysize-limit", "500000"}, {"ratelimitbysize-remaining", "0"}, {"ratelimitbysize-reset", "40"},
                 {"x-ratelimitbysize-limit-minute", "500000"}, {"x-ratelimitbysize-remaining-minute", "0"},
                 {"x-ratelimitbysize-limit-month", "1000000000"}, {"x-ratelimitbysize-remaining-month", "999967993"}});
}

// [R] Mistral's month of tokens spent: the 2026 429 body [V] (cline/cline#9085) with the month's counter at
// 0. Mistral's own words for an exhausted month were not found; the headers are what says so.
Reply mistral_month_spent() {
    return json(429, R"({"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300"})",
                {{"ratelimitbysize-limit", "500000"}, {"ratelimitbysize-remaining", "467993"}, {"ratelimitbysize-reset", "40"},
                 {"x-ratelimitbysize-limit-minute", "500000"}, {"x-ratelimitbysize-remaining-minute", "467993"},
                 {"x-ratelimitbysize-limit-month", "1000000000"}, {"x-ratelimitbysize-remaining-month", "0"}});
}

// [V-msg] a service tier's capacity for a model is used up, for every key of that tier (seen as a 429 in
// several clients; this form with its code 3505 in mistral client tests and logs).
Reply mistral_capacity() {
    return json(429,
                R"({"object":"error","message":"Service tier capacity exceeded for this model.","type":"service_tier_capacity_exceeded","param":null,"code":"3505"})");
}

// --- Together -----------------------------------------------------------------------------------------

constexpr char const* together_path = "/v1/chat/completions";

// [R] OpenAI-shaped with Together's `prompt` list (together-python's ChatCompletionResponse) and its
// per-second rate-limit headers.
Reply together_ok() {
    return json(200,
                R"({"id":"o3LiXw4-62bZhn-96040daf687810ab","object":"chat.completion","created":1752624000,"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","prompt":[],"choices":[{"finish_reason":"stop","logprobs":null,"index":0,"message":{"role":"assistant","content":"Revenue grew 12% in Q3.","tool_calls":[]}}],"usage":{"prompt_tokens":41,"completion_tokens":12,"total_tokens":53}})",
                {{"x-ratelimit-limit", "10"}, {"x-ratelimit-remaining", "9"}, {"x-ratelimit-reset", "1"},
                 {"x-tokenlimit-limit", "200000"}, {"x-tokenlimit-remaining", "199947"},
                 {"x-together-traceid", "8f1c7b9d0e2a4c6b"}});
}

// [V-msg] (togethercomputer/MoA#27; note the `credit_limit` type on what is a rate limit); the suggested
// retry interval in `x-ratelimit-reset`, seconds [R values].
Reply together_429() {
    return json(429,
                R"({"error":{"message":"You have been rate limited. Your rate limit is 60 queries per minute. Please navigate to https://api.together.xyz/settings/billing to upgrade to a paid plan.","type":"credit_limit","param":null,"code":null}})",
                {{"x-ratelimit-limit", "1"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "7"},
                 {"x-tokenlimit-limit", "200000"}, {"x-tokenlimit-remaining", "199947"}});
}

// [V-msg] (expectedparrot/edsl#2098, 2025-07).
Reply together_402() {
    return json(402,
                R"({"id":"o3LiXw4-62bZhn-96040daf687810ab","error":{"message":"Credit limit exceeded. Please navigate to https://api.together.xyz/settings/billing to add credit or upgrade your plan.","type":"credit_limit","param":null,"code":null}})");
}

// [R] "Requests at or below your dynamic rate return 503 Service Unavailable ... the model is overloaded"
// (docs.together.ai rate limits); "503 Engine Overloaded" in Together's error-code table.
Reply together_503() {
    return json(503, R"({"error":{"message":"Engine Overloaded","type":"server_error","param":null,"code":null}})");
}

// --- Fireworks ----------------------------------------------------------------------------------------

constexpr char const* fireworks_path = "/inference/v1/chat/completions";

// [R] an OpenAI-shaped body ("returns a usage object in OpenAI's format") with Fireworks' usage and
// rate-limit headers.
Reply fireworks_ok() {
    return json(200,
                R"({"id":"chatcmpl-ebdfbe6116404a62bbd8856f06f6a81b","object":"chat.completion","created":1782864000,"model":"accounts/fireworks/models/llama-v3p3-70b-instruct","choices":[{"index":0,"message":{"role":"assistant","content":"Q3 closed ahead of plan."},"finish_reason":"stop"}],"usage":{"prompt_tokens":22,"total_tokens":30,"completion_tokens":8}})",
                {{"fireworks-prompt-tokens", "22"}, {"fireworks-cached-prompt-tokens", "0"},
                 {"fireworks-server-processing-time", "0.211"}, {"x-ratelimit-limit-tokens-prompt", "3600000"},
                 {"x-ratelimit-remaining-tokens-prompt", "3599978"}, {"x-ratelimit-limit-tokens-generated", "36000"},
                 {"x-ratelimit-remaining-tokens-generated", "35992"}, {"x-request-id", "11650e2f-ff1b-4aac-9719-98006adf7349"}});
}

// [V-msg] (GordeyZuev/LEAP#6, 2025-11); `retry-after` is the only wait Fireworks states [R value].
Reply fireworks_429() {
    return json(429,
                R"({"error":"Too Many Requests","message":"You have exceeded your usage limits. Please try again later or contact Fireworks to explore dedicated capacity."})",
                {{"retry-after", "12"}, {"x-ratelimit-limit-tokens-generated", "36000"}, {"x-ratelimit-remaining-tokens-generated", "0"}});
}

// [V] (pollinations/pollinations#12136, 2026-07, relayed as its upstream body; the account name as printed).
Reply fireworks_412() {
    return json(412,
                R"({"error":{"message":"Account pollinations is suspended, possibly due to reaching the monthly spending limit or failure to pay past invoices. Please go to https://fireworks.ai/account/billing for more information.","param":null,"code":"PRECONDITION_FAILED","type":"error"},"request_id":"11650e2f-ff1b-4aac-9719-98006adf7349"})");
}

// [R] "503 Service Overloaded" (docs.fireworks.ai rate limits), in the 412's envelope.
Reply fireworks_503() {
    return json(503, R"({"error":{"message":"Service Overloaded","param":null,"code":null,"type":"error"}})");
}

// --- Cerebras -----------------------------------------------------------------------------------------

constexpr char const* cerebras_path = "/v1/chat/completions";

// P5 [V] (inference-docs.cerebras.ai chat-completions example; `reasoning` shortened there).
Reply cerebras_ok() {
    return json(200,
                R"({"id":"chatcmpl-292e278f-514e-4186-9010-91ce6a14168b","choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hello! How can I assist you today?","reasoning":"The user is asking for a simple greeting to the world. ...","role":"assistant"}}],"created":1723733419,"model":"gpt-oss-120b","system_fingerprint":"fp_70185065a4","object":"chat.completion","usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"time_info":{"queue_time":0.000073161,"prompt_time":0.0010744798888888889,"completion_time":0.005658071111111111,"total_time":0.022224903106689453,"created":1723733419}})",
                {{"x-ratelimit-limit-requests-day", "14400"}, {"x-ratelimit-limit-tokens-minute", "60000"},
                 {"x-ratelimit-remaining-requests-day", "14399"}, {"x-ratelimit-remaining-tokens-minute", "59978"},
                 {"x-ratelimit-reset-requests-day", "33011.382867097855"}, {"x-ratelimit-reset-tokens-minute", "11.382867097854614"}});
}

// [V-msg] "Tokens per minute limit exceeded - too many tokens processed." (anomalyco/opencode#7463,
// continuedev/continue#9800, 2026-01), the envelope of Cerebras' 429s; the reference's header sample
// values with the minute's tokens spent: they reset in 11.38 s, a float.
Reply cerebras_429() {
    return json(429,
                R"({"message":"Tokens per minute limit exceeded - too many tokens processed.","type":"too_many_tokens_error","param":"quota","code":"token_quota_exceeded"})",
                {{"x-ratelimit-limit-requests-day", "14400"}, {"x-ratelimit-limit-tokens-minute", "60000"},
                 {"x-ratelimit-remaining-requests-day", "14380"}, {"x-ratelimit-remaining-tokens-minute", "0"},
                 {"x-ratelimit-reset-requests-day", "33011.382867097855"}, {"x-ratelimit-reset-tokens-minute", "11.382867097854614"}});
}

// [V-msg] the day's tokens are spent (a client's test of Cerebras errors); the day's reset in float
// seconds [R: the `-tokens-day` names client code reads, the values of the requests-day sample].
Reply cerebras_day_spent() {
    return json(429,
                R"({"message":"Tokens per day limit exceeded - too many tokens processed.","type":"too_many_tokens_error","param":"quota","code":"token_quota_exceeded"})",
                {{"x-ratelimit-limit-tokens-day", "1000000"}, {"x-ratelimit-remaining-tokens-day", "0"},
                 {"x-ratelimit-reset-tokens-day", "33011.382867097855"}, {"x-ratelimit-remaining-tokens-minute", "60000"},
                 {"x-ratelimit-reset-tokens-minute", "11.382867097854614"}});
}

// [V-msg] Cerebras out of capacity, as a 429 (the message in sandialabs/atlas-ui-3#111 and client retry
// lists; the code `queue_exceeded` in client tests).
Reply cerebras_queue() {
    return json(429, R"({"message":"We're experiencing high traffic right now! Please try again soon.","code":"queue_exceeded"})");
}

// --- Azure OpenAI -------------------------------------------------------------------------------------

// [V] a 2025-09-01 capture of an Azure OpenAI gpt-4.1 deployment (a log in a public repository), with
// its content filter results; cut at max_tokens.
Reply azure_ok() {
    return json(200,
                R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}},"finish_reason":"length","index":0,"logprobs":null,"message":{"annotations":[],"content":"Hello! It looks like","refusal":null,"role":"assistant"}}],"created":1756749680,"id":"chatcmpl-CB38CGNFrrplmi6y7Sw64xcY6QqIm","model":"gpt-4.1-2025-04-14","object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}],"system_fingerprint":"fp_c79ab13e31","usage":{"completion_tokens":5,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":0,"rejected_prediction_tokens":0},"prompt_tokens":8,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":13}})",
                {{"x-ratelimit-remaining-requests", "249"}, {"x-ratelimit-remaining-tokens", "249987"}, {"apim-request-id", "c9a1e2f0-5b7d-4e1a-9c3f-2d8b6a4e0f11"}});
}

// Z4 [V-msg] (jasonacox/TinyLLM#17: `code` is the string "429", no `type`), with Azure's headers: retry-after-ms
// first, retry-after in seconds, the remaining counts [R values].
Reply azure_429() {
    return json(429,
                R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2023-05-15 have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 86400 seconds. Please contact Azure support service if you would like to further increase the default rate limit."}})",
                {{"retry-after-ms", "86400000"}, {"retry-after", "86400"}, {"x-ratelimit-remaining-requests", "0"},
                 {"x-ratelimit-remaining-tokens", "0"}});
}

// [R] the Azure AI Services gateway's 403 for a spent call-volume quota: this message and envelope are
// verbatim for other AI Services APIs behind the same gateway (e.g. FormRecognizer F0); the wait in
// retry-after (7:01:20) [R].
Reply azure_403_quota() {
    return json(403, R"({"error":{"code":"403","message":"Out of call volume quota. Quota will be replenished in 07:01:20."}})",
                {{"retry-after", "25280"}});
}

// [R] the message as quoted for Azure OpenAI's 503 in a public retry policy; the `error` envelope.
Reply azure_503() {
    return json(503, R"({"error":{"code":"ServiceUnavailable","message":"The service is temporarily unable to process your request. Please try again later."}})");
}

// [V-msg] Azure OpenAI at peak load (pollinations/pollinations#6260 relays this message with status 429); in
// Azure's `error` envelope with the string code it uses for 429s.
Reply azure_peak_load() {
    return json(429,
                R"({"error":{"code":"429","message":"The system is currently experiencing high demand and cannot process your request. Your request exceeds the maximum usage size allowed during peak load. Please retry after 20 seconds. For improved latency reliability, consider switching to Provisioned Throughput."}})");
}

// [V] an Azure OpenAI gpt-4 deployment's overload body (scalaone/azure-openai-proxy#22); the capture shows no
// status, served here as 503.
Reply azure_model_overloaded() {
    return json(503,
                R"J({"error":{"message":"That model is currently overloaded with other requests. You can retry your request, or contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if the error persists. (Please include the request ID 2dcb57a0-803c-4ac1-986d-e3aee5fedd6e in your message.)","type":"server_error","param":null,"code":null}})J");
}

} // namespace

// ===================================================================================================
// Defaults
// ===================================================================================================

TEST_CASE("each ready tier has its provider's base URL, current model, environment prefix and labels", "[family][config]") {
    CHECK(cascade::OpenAI<>::defaults().base_url == "https://api.openai.com/v1");
    CHECK(cascade::OpenAI<>::defaults().model == "gpt-4.1-mini");
    CHECK(cascade::Mistral<>::defaults().base_url == "https://api.mistral.ai/v1");
    CHECK(cascade::Mistral<>::defaults().model == "mistral-small-latest");
    CHECK(cascade::Together<>::defaults().base_url == "https://api.together.xyz/v1");
    CHECK(cascade::Together<>::defaults().model == "meta-llama/Llama-3.3-70B-Instruct-Turbo");
    CHECK(cascade::Fireworks<>::defaults().base_url == "https://api.fireworks.ai/inference/v1");
    CHECK(cascade::Fireworks<>::defaults().model == "accounts/fireworks/models/llama-v3p3-70b-instruct");
    CHECK(cascade::Cerebras<>::defaults().base_url == "https://api.cerebras.ai/v1");
    CHECK(cascade::Cerebras<>::defaults().model == "gpt-oss-120b");  // llama-3.3-70b: deprecated 2026-02-16
    CHECK(cascade::OpenAITraits::env_prefix == "OPENAI");
    CHECK(cascade::MistralTraits::env_prefix == "MISTRAL");
    CHECK(cascade::TogetherTraits::env_prefix == "TOGETHER");
    CHECK(cascade::FireworksTraits::env_prefix == "FIREWORKS");
    CHECK(cascade::CerebrasTraits::env_prefix == "CEREBRAS");
    CHECK(cascade::AzureOpenAITraits::env_prefix == "AZURE_OPENAI");
    // Cerebras' free tier (read 2026-08-31), per organization.
    auto cerebras = cascade::Cerebras<>::defaults().key_limits;
    CHECK(cerebras.requests_per_minute == 5);
    CHECK(cerebras.tokens_per_minute == 30'000);
    CHECK(cerebras.tokens_per_day == 1'000'000);
    // No price of these providers is in the reference tables: no cost is counted until one is set.
    for (auto const& c : {cascade::OpenAI<>::defaults(), cascade::Mistral<>::defaults(), cascade::Together<>::defaults(),
                          cascade::Fireworks<>::defaults(), cascade::Cerebras<>::defaults(), cascade::AzureOpenAI<>::defaults()}) {
        CHECK(c.prices.input_per_million == 0.0);
        CHECK(c.prices.output_per_million == 0.0);
        CHECK(c.key_header == (c.name == "azure-openai" ? "api-key" : "authorization"));
    }
    cascade::OpenAI<3> pool(cascade::OpenAI<3>::defaults());
    CHECK(pool.label(0) == "openai1");
    CHECK(pool.label(2) == "openai3");
    cascade::Mistral<> one(cascade::Mistral<>::defaults());
    CHECK(one.label(0) == "mistral");
}

// ===================================================================================================
// OpenAI
// ===================================================================================================

TEST_CASE("OpenAI answers with its verbatim body: label, usage and cost, sent with a bearer key", "[family][openai]") {
    Rig<cascade::OpenAI<2>> rig(2, "sk-proj-test-", "/v1", [](cascade::ProviderConfig& c) { c.prices = {0.40, 1.60}; });
    rig.up.otherwise(openai_path, openai_ok());
    auto c = rig.ask();
    CHECK(c.label == "openai1");
    CHECK(c.text == "Hello! How can I assist you today?");
    CHECK(c.model == "gpt-4.1-2025-04-14");
    CHECK(c.usage.prompt_tokens == 19);
    CHECK(c.usage.completion_tokens == 10);
    CHECK(c.cost_usd == (19 * 0.40 + 10 * 1.60) / 1e6);
    CHECK(c.trail.empty());
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == openai_path);
    CHECK(seen[0].headers["authorization"] == "Bearer sk-proj-test-1");
    CHECK(seen[0].body.find(R"("model":"gpt-4.1-mini")") != std::string::npos);
}

TEST_CASE("OpenAI 429 with a spent token window: key 2 answers, key 1 rests as x-ratelimit-reset-tokens says", "[family][openai]") {
    Rig<cascade::OpenAI<2>> rig(2, "sk-proj-test-", "/v1");
    rig.up.queue(openai_path, openai_429(), "sk-proj-test-1");
    rig.up.otherwise(openai_path, openai_ok());
    auto c = rig.ask();
    CHECK(c.label == "openai2");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "openai1");
    CHECK(c.trail[0].http_status == 429);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 26'604ms);
    CHECK(rig.rest(1) <= 0ms);
    CHECK(rig.up.hits_for_key("sk-proj-test-1") == 1);
}

TEST_CASE("OpenAI 429 insufficient_quota: quota_exhausted on that key, which rests for the quota cooldown", "[family][openai]") {
    Rig<cascade::OpenAI<2>> rig(2, "sk-proj-test-", "/v1");
    rig.up.queue(openai_path, openai_quota(), "sk-proj-test-1");
    rig.up.otherwise(openai_path, openai_ok());
    auto c = rig.ask();
    CHECK(c.label == "openai2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(rig.rest(0) == cascade::CircuitConfig{}.quota_cooldown);
}

TEST_CASE("OpenAI 503 'overloaded with other requests': the tier is left after one request and the next tier answers",
          "[family][openai][overload]") {
    Rig<cascade::OpenAI<2>> rig(2, "sk-proj-test-", "/v1");
    rig.up.otherwise(openai_path, openai_503());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(c.trail[0].label == "openai1");
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(openai_path) == 1);  // neither retried nor tried with key 2: the provider is out
    CHECK(rig.chain.circuit_open(0));
}

// ===================================================================================================
// Mistral
// ===================================================================================================

TEST_CASE("Mistral answers with its verbatim body: label, usage and cost, sent with a bearer key", "[family][mistral]") {
    Rig<cascade::Mistral<2>> rig(2, "mistral-test-", "/v1", [](cascade::ProviderConfig& c) { c.prices = {0.10, 0.30}; });
    rig.up.otherwise(mistral_path, mistral_ok());
    auto c = rig.ask();
    CHECK(c.label == "mistral1");
    CHECK(c.text == "Sure, here's a small haiku ...");
    CHECK(c.model == "mistral-large-latest");
    CHECK(c.usage.prompt_tokens == 9);
    CHECK(c.usage.completion_tokens == 38);
    CHECK(c.cost_usd == (9 * 0.10 + 38 * 0.30) / 1e6);
    CHECK(c.cost_known);
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == mistral_path);
    CHECK(seen[0].headers["authorization"] == "Bearer mistral-test-1");
    CHECK(seen[0].body.find(R"("model":"mistral-small-latest")") != std::string::npos);
}

TEST_CASE("a ready tier without prices says its cost was not counted, rather than reading $0", "[family][prices]") {
    Rig<cascade::Mistral<2>> rig(2, "mistral-test-", "/v1");
    rig.up.otherwise(mistral_path, mistral_ok());
    auto c = rig.ask();
    CHECK(c.label == "mistral1");
    CHECK(c.usage.completion_tokens == 38);
    CHECK(c.cost_usd == 0.0);
    CHECK_FALSE(c.cost_known);
    CHECK_FALSE(cascade::Mistral<>::defaults().prices.known());
    cascade::Prices free_tier;
    free_tier.free = true;
    CHECK(free_tier.known());  // a free tier is priced: $0
    CHECK(cascade::Prices(0.10, 0.30).known());
}

TEST_CASE("Mistral 429 with ratelimitbysize headers: key 2 answers, key 1 rests ratelimitbysize-reset seconds", "[family][mistral]") {
    Rig<cascade::Mistral<2>> rig(2, "mistral-test-", "/v1");
    rig.up.queue(mistral_path, mistral_429(), "mistral-test-1");
    rig.up.otherwise(mistral_path, mistral_ok());
    auto c = rig.ask();
    CHECK(c.label == "mistral2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 40s);
}

TEST_CASE("Mistral 429 with the month's tokens at zero: quota_exhausted on that key", "[family][mistral]") {
    Rig<cascade::Mistral<2>> rig(2, "mistral-test-", "/v1");
    rig.up.queue(mistral_path, mistral_month_spent(), "mistral-test-1");
    rig.up.otherwise(mistral_path, mistral_ok());
    auto c = rig.ask();
    CHECK(c.label == "mistral2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(rig.rest(0) == cascade::CircuitConfig{}.quota_cooldown);
}

TEST_CASE("Mistral 429 'Service tier capacity exceeded': the tier is left after one request and the next tier answers",
          "[family][mistral][overload]") {
    Rig<cascade::Mistral<2>> rig(2, "mistral-test-", "/v1");
    rig.up.otherwise(mistral_path, mistral_capacity());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(mistral_path) == 1);
    CHECK(rig.chain.circuit_open(0));
}

// ===================================================================================================
// Together
// ===================================================================================================

TEST_CASE("Together answers with its body: label, usage and cost, sent with a bearer key", "[family][together]") {
    Rig<cascade::Together<2>> rig(2, "tgp_v1_test", "/v1", [](cascade::ProviderConfig& c) { c.prices = {0.88, 0.88}; });
    rig.up.otherwise(together_path, together_ok());
    auto c = rig.ask();
    CHECK(c.label == "together1");
    CHECK(c.text == "Revenue grew 12% in Q3.");
    CHECK(c.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo");
    CHECK(c.usage.prompt_tokens == 41);
    CHECK(c.usage.completion_tokens == 12);
    CHECK(c.cost_usd == (41 * 0.88 + 12 * 0.88) / 1e6);
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == together_path);
    CHECK(seen[0].headers["authorization"] == "Bearer tgp_v1_test1");
    CHECK(seen[0].body.find(R"("model":"meta-llama/Llama-3.3-70B-Instruct-Turbo")") != std::string::npos);
}

TEST_CASE("Together 429 (even typed credit_limit): key 2 answers, key 1 rests x-ratelimit-reset seconds", "[family][together]") {
    Rig<cascade::Together<2>> rig(2, "tgp_v1_test", "/v1");
    rig.up.queue(together_path, together_429(), "tgp_v1_test1");
    rig.up.otherwise(together_path, together_ok());
    auto c = rig.ask();
    CHECK(c.label == "together2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 7s);
}

TEST_CASE("Together 402 'Credit limit exceeded': quota_exhausted on that key, key 2 answers", "[family][together]") {
    Rig<cascade::Together<2>> rig(2, "tgp_v1_test", "/v1");
    rig.up.queue(together_path, together_402(), "tgp_v1_test1");
    rig.up.otherwise(together_path, together_ok());
    auto c = rig.ask();
    CHECK(c.label == "together2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(rig.rest(0) == cascade::CircuitConfig{}.quota_cooldown);
}

TEST_CASE("Together 503 (the model out of capacity): the tier is left after one request and the next tier answers",
          "[family][together][overload]") {
    Rig<cascade::Together<2>> rig(2, "tgp_v1_test", "/v1");
    rig.up.otherwise(together_path, together_503());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(together_path) == 1);
    CHECK(rig.chain.circuit_open(0));
}

// ===================================================================================================
// Fireworks
// ===================================================================================================

TEST_CASE("Fireworks answers with its body: label, usage and cost, sent with a bearer key", "[family][fireworks]") {
    Rig<cascade::Fireworks<2>> rig(2, "fw_test_", "/inference/v1", [](cascade::ProviderConfig& c) { c.prices = {0.90, 0.90}; });
    rig.up.otherwise(fireworks_path, fireworks_ok());
    auto c = rig.ask();
    CHECK(c.label == "fireworks1");
    CHECK(c.text == "Q3 closed ahead of plan.");
    CHECK(c.model == "accounts/fireworks/models/llama-v3p3-70b-instruct");
    CHECK(c.usage.prompt_tokens == 22);
    CHECK(c.usage.completion_tokens == 8);
    CHECK(c.cost_usd == (22 * 0.90 + 8 * 0.90) / 1e6);
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == fireworks_path);
    CHECK(seen[0].headers["authorization"] == "Bearer fw_test_1");
}

TEST_CASE("Fireworks 429 with retry-after: key 2 answers, key 1 rests as retry-after says", "[family][fireworks]") {
    Rig<cascade::Fireworks<2>> rig(2, "fw_test_", "/inference/v1");
    rig.up.queue(fireworks_path, fireworks_429(), "fw_test_1");
    rig.up.otherwise(fireworks_path, fireworks_ok());
    auto c = rig.ask();
    CHECK(c.label == "fireworks2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 12s);
}

TEST_CASE("Fireworks 412 'Account ... is suspended ... monthly spending limit': quota_exhausted on that key", "[family][fireworks]") {
    Rig<cascade::Fireworks<2>> rig(2, "fw_test_", "/inference/v1");
    rig.up.queue(fireworks_path, fireworks_412(), "fw_test_1");
    rig.up.otherwise(fireworks_path, fireworks_ok());
    auto c = rig.ask();
    CHECK(c.label == "fireworks2");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].http_status == 412);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(rig.rest(0) == cascade::CircuitConfig{}.quota_cooldown);
}

TEST_CASE("Fireworks 503 'Service Overloaded': the tier is left after one request and the next tier answers",
          "[family][fireworks][overload]") {
    Rig<cascade::Fireworks<2>> rig(2, "fw_test_", "/inference/v1");
    rig.up.otherwise(fireworks_path, fireworks_503());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(fireworks_path) == 1);
    CHECK(rig.chain.circuit_open(0));
}

// ===================================================================================================
// Cerebras
// ===================================================================================================

TEST_CASE("Cerebras answers with its verbatim body: label, usage and cost, sent with a bearer key", "[family][cerebras]") {
    Rig<cascade::Cerebras<2>> rig(2, "csk-test-", "/v1", [](cascade::ProviderConfig& c) { c.prices = {0.35, 0.75}; });
    rig.up.otherwise(cerebras_path, cerebras_ok());
    auto c = rig.ask();
    CHECK(c.label == "cerebras1");
    CHECK(c.text == "Hello! How can I assist you today?");  // the reasoning is not the answer
    CHECK(c.model == "gpt-oss-120b");
    CHECK(c.usage.prompt_tokens == 12);
    CHECK(c.usage.completion_tokens == 10);
    CHECK(c.cost_usd == (12 * 0.35 + 10 * 0.75) / 1e6);
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == cerebras_path);
    CHECK(seen[0].headers["authorization"] == "Bearer csk-test-1");
    CHECK(seen[0].body.find(R"("model":"gpt-oss-120b")") != std::string::npos);
}

TEST_CASE("Cerebras 429 with the minute's tokens spent: key 2 answers, key 1 rests the float seconds of x-ratelimit-reset-tokens-minute",
          "[family][cerebras]") {
    Rig<cascade::Cerebras<2>> rig(2, "csk-test-", "/v1");
    rig.up.queue(cerebras_path, cerebras_429(), "csk-test-1");
    rig.up.otherwise(cerebras_path, cerebras_ok());
    auto c = rig.ask();
    CHECK(c.label == "cerebras2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 11'383ms);  // 11.382867 s, rounded up
}

TEST_CASE("Cerebras 429 'Tokens per day limit exceeded': quota_exhausted on that key until the day's reset", "[family][cerebras]") {
    Rig<cascade::Cerebras<2>> rig(2, "csk-test-", "/v1");
    rig.up.queue(cerebras_path, cerebras_day_spent(), "csk-test-1");
    rig.up.otherwise(cerebras_path, cerebras_ok());
    auto c = rig.ask();
    CHECK(c.label == "cerebras2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(rig.rest(0) == 33'011'383ms);  // x-ratelimit-reset-tokens-day, rounded up
}

TEST_CASE("Cerebras 429 queue_exceeded ('high traffic'): the tier is left after one request and the next tier answers",
          "[family][cerebras][overload]") {
    Rig<cascade::Cerebras<2>> rig(2, "csk-test-", "/v1");
    rig.up.otherwise(cerebras_path, cerebras_queue());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(cerebras_path) == 1);
    CHECK(rig.chain.circuit_open(0));
}

// ===================================================================================================
// Azure OpenAI
// ===================================================================================================

namespace {
// A resource's two keys, in one quota group (they share the deployment's limits), v1 or a dated version.
auto azure_setup(std::string api_version) {
    return [api_version](cascade::ProviderConfig& c) {
        cascade::azure_deployment(c, "gpt-41-prod", api_version);
        c.quota_groups = {"resource", "resource"};
    };
}
constexpr char const* azure_v1_path = "/openai/v1/chat/completions";
constexpr char const* azure_classic_path = "/openai/deployments/gpt-41-prod/chat/completions?api-version=2024-10-21";
} // namespace

TEST_CASE("Azure OpenAI v1: the key goes in api-key, the deployment in the body, no api-version", "[family][azure]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", [](cascade::ProviderConfig& c) {
        azure_setup("")(c);
        c.prices = {2.00, 8.00};
    });
    rig.up.otherwise(azure_v1_path, azure_ok());
    auto c = rig.ask();
    CHECK(c.label == "azure-openai1");
    CHECK(c.text == "Hello! It looks like");
    CHECK(c.finish_reason == "length");
    CHECK(c.model == "gpt-4.1-2025-04-14");
    CHECK(c.usage.prompt_tokens == 8);
    CHECK(c.usage.completion_tokens == 5);
    CHECK(c.cost_usd == (8 * 2.00 + 5 * 8.00) / 1e6);
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == azure_v1_path);
    CHECK(seen[0].headers["api-key"] == "azure-key-1");
    CHECK(seen[0].headers.count("authorization") == 0);
    CHECK(seen[0].body.find(R"("model":"gpt-41-prod")") != std::string::npos);
}

TEST_CASE("Azure OpenAI with a dated api-version: the deployment URL carries it", "[family][azure]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup("2024-10-21"));
    rig.up.otherwise("/openai/deployments/", azure_ok());
    auto c = rig.ask();
    CHECK(c.label == "azure-openai1");
    auto seen = rig.up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == azure_classic_path);
    CHECK(seen[0].headers["api-key"] == "azure-key-1");
}

TEST_CASE("Azure OpenAI 429 with retry-after-ms: both keys of the resource rest that long and the next tier answers",
          "[family][azure]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup(""));
    rig.up.queue(azure_v1_path, azure_429(), "azure-key-1");
    rig.up.otherwise(azure_v1_path, azure_ok());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "azure-openai1");
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    CHECK(rig.rest(0) == 86'400'000ms);  // retry-after-ms, read before retry-after
    CHECK(rig.rest(1) == 86'400'000ms);  // key 2 shares the resource's limits: not asked
    CHECK(rig.up.hits_for_key("azure-key-2") == 0);
}

TEST_CASE("Azure OpenAI 403 'Out of call volume quota': quota_exhausted, the resource rests as retry-after says", "[family][azure]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup(""));
    rig.up.queue(azure_v1_path, azure_403_quota(), "azure-key-1");
    rig.up.otherwise(azure_v1_path, azure_ok());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].http_status == 403);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK_FALSE(rig.chain.key_state(0, 0).disabled);  // a spent quota is not a refused key
    CHECK(rig.rest(0) == 25'280s);
}

TEST_CASE("Azure OpenAI 429 at peak load ('high demand'): the tier is left after one request and the next tier answers",
          "[family][azure][overload]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup(""));
    rig.up.otherwise(azure_v1_path, azure_peak_load());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    CHECK(c.trail.size() == 1);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(azure_v1_path) == 1);
    CHECK(rig.chain.circuit_open(0));
    CHECK_FALSE(rig.chain.key_state(0, 1).disabled);  // the other key of the resource is not blamed
}

TEST_CASE("Azure OpenAI 503 'That model is currently overloaded': the tier is left after one request", "[family][azure][overload]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup(""));
    rig.up.otherwise(azure_v1_path, azure_model_overloaded());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(rig.up.hits(azure_v1_path) == 1);
    CHECK(rig.chain.circuit_open(0));
}

// A 503 that says nothing of capacity is a server error like any other 503 (Google's advice for UNAVAILABLE
// is to retry): the same key once more, then the resource's other key, then the next tier.
TEST_CASE("Azure OpenAI bare 503: a retried server error, then the other key, then the next tier", "[family][azure]") {
    Rig<cascade::AzureOpenAI<2>> rig(2, "azure-key-", "", azure_setup(""));
    rig.up.otherwise(azure_v1_path, azure_503());
    auto c = rig.ask();
    CHECK(c.label == "fallback-template");
    REQUIRE_FALSE(c.trail.empty());
    for (auto const& t : c.trail) CHECK(has_fault(t, Fault::server_error));
    CHECK(static_cast<std::size_t>(rig.up.hits(azure_v1_path)) == c.trail.size());
    CHECK(rig.up.hits(azure_v1_path) >= 2);
}

namespace {
struct AzureEnv {
    std::vector<char const*> names{"AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_BASE_URL", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_MODEL",
                                   "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY_1",
                                   "AZURE_OPENAI_API_KEY_2", "AZURE_OPENAI_API_KEYS", "AZURE_OPENAI_QUOTA_GROUPS"};
    AzureEnv() { clear(); }
    ~AzureEnv() { clear(); }
    void clear() {
        for (auto n : names) ::unsetenv(n);
    }
};
} // namespace

TEST_CASE("Azure OpenAI from the environment: endpoint, deployment, api-version and keys of one resource", "[family][azure][config]") {
    AzureEnv env;
    ::setenv("AZURE_OPENAI_ENDPOINT", "https://contoso-eu.openai.azure.com/", 1);
    ::setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-41-prod", 1);
    ::setenv("AZURE_OPENAI_API_KEY_1", "azure-env-one", 1);
    ::setenv("AZURE_OPENAI_API_KEY_2", "azure-env-two", 1);
    SECTION("no api-version: the v1 API") {
        cascade::AzureOpenAI<2> azure;
        auto const& c = azure.config();
        CHECK(c.base_url == "https://contoso-eu.openai.azure.com/");
        CHECK(c.path == "/openai/v1/chat/completions");
        CHECK(c.query.empty());
        CHECK(c.model == "gpt-41-prod");
        CHECK(c.key_header == "api-key");
        CHECK(c.key_prefix.empty());
        CHECK(azure.key_count() == 2);
        CHECK(azure.quota_group(0) == azure.quota_group(1));  // one resource, one set of limits
        CHECK(azure.label(1) == "azure-openai2");
    }
    SECTION("a dated api-version: the deployment URL") {
        ::setenv("AZURE_OPENAI_API_VERSION", "2024-10-21", 1);
        cascade::AzureOpenAI<2> azure;
        CHECK(azure.config().path == "/openai/deployments/gpt-41-prod/chat/completions");
        CHECK(azure.config().query == "api-version=2024-10-21");
    }
    SECTION("api-version preview: the v1 path with the version in the query") {
        ::setenv("AZURE_OPENAI_API_VERSION", "preview", 1);
        cascade::AzureOpenAI<2> azure;
        CHECK(azure.config().path == "/openai/v1/chat/completions");
        CHECK(azure.config().query == "api-version=preview");
    }
    SECTION("AZURE_OPENAI_BASE_URL wins over the endpoint") {
        ::setenv("AZURE_OPENAI_BASE_URL", "https://gateway.example.com", 1);
        cascade::AzureOpenAI<2> azure;
        CHECK(azure.config().base_url == "https://gateway.example.com");
    }
}

TEST_CASE("Azure OpenAI configured from the environment reaches the deployment URL over loopback", "[family][azure][config]") {
    AzureEnv env;
    Loopback up;
    up.otherwise("/openai/deployments/", azure_ok());
    ::setenv("AZURE_OPENAI_ENDPOINT", up.base_url().c_str(), 1);
    ::setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-41-prod", 1);
    ::setenv("AZURE_OPENAI_API_VERSION", "2024-10-21", 1);
    ::setenv("AZURE_OPENAI_API_KEY", "azure-env-key", 1);
    asio::io_context io;
    cascade::Chain<cascade::AzureOpenAI<>, cascade::Template> chain(io.get_executor(), cascade::AzureOpenAI<>{}, cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "azure-openai");
    auto seen = up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == azure_classic_path);
    CHECK(seen[0].headers["api-key"] == "azure-env-key");
}

TEST_CASE("Azure OpenAI without an endpoint or a deployment is skipped as unconfigured, saying which", "[family][azure][config]") {
    AzureEnv env;
    ::setenv("AZURE_OPENAI_API_KEY", "azure-env-key", 1);
    asio::io_context io;
    auto req = cascade::Request::chat("sys", "p");
    SECTION("no endpoint") {
        ::setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-41-prod", 1);
        cascade::Chain<cascade::AzureOpenAI<>, cascade::Template> chain(io.get_executor(), cascade::AzureOpenAI<>{}, cascade::Template{});
        auto c = cascade::test::run(io, chain.complete(req));
        CHECK(c.label == "fallback-template");
        REQUIRE(c.trail.size() == 1);
        CHECK(has_fault(c.trail[0], Fault::unconfigured));
        CHECK(c.trail[0].detail == "no base URL for azure-openai");
    }
    SECTION("no deployment") {
        ::setenv("AZURE_OPENAI_ENDPOINT", "https://contoso-eu.openai.azure.com", 1);
        cascade::Chain<cascade::AzureOpenAI<>, cascade::Template> chain(io.get_executor(), cascade::AzureOpenAI<>{}, cascade::Template{});
        auto c = cascade::test::run(io, chain.complete(req));
        CHECK(c.label == "fallback-template");
        REQUIRE(c.trail.size() == 1);
        CHECK(has_fault(c.trail[0], Fault::unconfigured));
        CHECK(c.trail[0].detail == "no model for azure-openai");
    }
}

TEST_CASE("a deployment name or query that would break the request line is refused as unconfigured", "[family][config]") {
    Loopback up;
    asio::io_context io;
    auto cfg = cascade::AzureOpenAI<>::defaults();
    cfg.base_url = up.base_url();
    cfg.keys.emplace_back("azure-key");
    auto req = cascade::Request::chat("sys", "p");
    SECTION("a space in the deployment") { cascade::azure_deployment(cfg, "gpt 41\r\nx-injected: 1", "2024-10-21"); }
    SECTION("a fragment in the query") {
        cascade::azure_deployment(cfg, "gpt-41-prod", "2024-10-21");
        cfg.query += "#frag";
    }
    SECTION("a header name with a colon") {
        cascade::azure_deployment(cfg, "gpt-41-prod");
        cfg.key_header = "api-key: x";
    }
    cascade::Chain<cascade::AzureOpenAI<>, cascade::Template> chain(io.get_executor(), cascade::AzureOpenAI<>(cfg), cascade::Template{});
    auto c = cascade::test::run(io, chain.complete(req));
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::unconfigured));
    CHECK(c.trail[0].detail.find('\n') == std::string::npos);  // the bad value is not echoed
    CHECK(up.requests().empty());  // nothing was sent
}

TEST_CASE("keys never show: not in an Azure failure's trail, nor in an unconfigured detail", "[family][secrets]") {
    Rig<cascade::AzureOpenAI<1>> rig(1, "azure-SECRET-key-", "", azure_setup(""));
    // [R] the AI Services gateway's 401 for a wrong key, as clients commonly quote it.
    rig.up.otherwise(azure_v1_path,
                     json(401, R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})"));
    auto c = rig.ask();
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::unauthorized));
    CHECK(c.trail[0].detail.find("SECRET") == std::string::npos);
    CHECK(rig.up.hits_for_key("azure-SECRET-key-1") == 1);  // sent to the provider only
}
