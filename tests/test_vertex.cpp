// Gemini on Vertex AI with a service account, over the loopback upstream acting as both the Google token
// endpoint (verifying the JWT with the public half of a key pair made here) and Vertex itself.

#include <cascade/cascade.hpp>
#include <cascade/provider/openai_compatible.hpp>
#include <cascade/provider/vertex.hpp>

#include "support/loopback.hpp"
#include "support/rsa_key.hpp"
#include "support/run.hpp"
#include "support/wire.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::test::Loopback;
using cascade::test::Reply;
namespace wire = cascade::test::wire;

namespace {

std::string vertex_path(std::string const& region) {
    return "/v1/projects/cascade-test/locations/" + region + "/publishers/google/models/gemini-2.5-pro:generateContent";
}

Reply gemini_ok(std::string const& text) {
    return wire::json(200, R"({"candidates":[{"content":{"role":"model","parts":[{"text":")" + text +
                               R"("}]},"finishReason":"STOP","avgLogprobs":-0.58}],"usageMetadata":{"promptTokenCount":135,"candidatesTokenCount":282,"totalTokenCount":1308,"trafficType":"ON_DEMAND","thoughtsTokenCount":891},"modelVersion":"gemini-2.5-pro","createTime":"2026-06-08T21:06:36.761061Z","responseId":"3C4nauW5LpSGz_IP8dLQyQM"})");
}

Reply vertex_429() {
    return wire::json(429, R"({"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","errors":[{"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","domain":"global","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}})");
}

Reply gemini_safety() {
    return wire::json(200, R"({"candidates":[{"content":{"role":"model"},"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","probabilityScore":0.9,"severity":"HARM_SEVERITY_HIGH","severityScore":0.8,"blocked":true}]}],"usageMetadata":{"promptTokenCount":12}})");
}

// The Google token endpoint: verifies the assertion's RS256 signature and claims, then hands out tokens.
struct TokenEndpoint {
    cascade::test::RsaKeyPair key = cascade::test::make_rsa_key();
    std::atomic<int> exchanges{0};
    std::atomic<int> refused{0};
    int expires_in = 3599;

    void install(Loopback& up) {
        up.handle("/token", [this](cascade::test::Recorded const& r) {
            auto at = r.body.find("assertion=");
            bool grant = r.body.rfind("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&", 0) == 0;
            try {
                if (!grant || at == std::string::npos) throw std::runtime_error("bad form");
                auto claims = boost::json::parse(cascade::test::verify_rs256(r.body.substr(at + 10), key.public_pem)).as_object();
                auto iat = claims.at("iat").as_int64(), exp = claims.at("exp").as_int64();
                if (claims.at("iss").as_string() != "tester@cascade-test.iam.gserviceaccount.com" ||
                    claims.at("scope").as_string() != "https://www.googleapis.com/auth/cloud-platform" ||
                    claims.at("aud").as_string().find("/token") == boost::json::string::npos || exp - iat > 3600 || exp <= iat)
                    throw std::runtime_error("bad claims");
            } catch (std::exception const&) {
                ++refused;
                return wire::json(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
            }
            int n = ++exchanges;
            return wire::json(200, R"({"access_token":"ya29.test-)" + std::to_string(n) + R"(","expires_in":)" +
                                       std::to_string(expires_in) + R"(,"token_type":"Bearer"})");
        });
    }
};

struct KeyFile {
    std::string path = "/tmp/cascade-vertex-sa-" + std::to_string(::getpid()) + "-" + std::to_string(++counter()) + ".json";
    KeyFile(cascade::test::RsaKeyPair const& key, std::string const& token_uri) {
        std::ofstream(path) << cascade::test::service_account_json(key, token_uri);
    }
    ~KeyFile() { std::remove(path.c_str()); }
    static int& counter() {
        static int n = 0;
        return n;
    }
};

cascade::VertexConfig vertex_config(Loopback const& up, KeyFile const& kf) {
    cascade::VertexConfig cfg;
    cfg.endpoint = up.base_url();
    cfg.credentials_file = kf.path;
    cfg.http.attempt_timeout = 1s;
    return cfg;
}

} // namespace

TEST_CASE("the token endpoint accepts the signed JWT, and 100 concurrent requests cause one token exchange", "[vertex][auth]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.handle("/v1/", [](cascade::test::Recorded const& r) {
        if (r.key != "ya29.test-1") return wire::json(401, R"({"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}})");
        return gemini_ok("hello from vertex");
    });
    asio::io_context io(2);
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    REQUIRE(chain.tier<0>().config_error().empty());
    std::atomic<int> from_vertex{0};
    auto one = [&](int i) -> asio::awaitable<void> {
        auto req = cascade::Request::chat("sys", "prompt " + std::to_string(i));
        auto c = co_await chain.complete(req);
        if (c.label == "vertex-pro/us-central1" && c.text == "hello from vertex") ++from_vertex;
    };
    for (int i = 0; i < 100; ++i) asio::co_spawn(io, one(i), asio::detached);
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(from_vertex == 100);
    CHECK(tokens.exchanges == 1);
    CHECK(tokens.refused == 0);
    CHECK(chain.tier<0>().token_exchanges() == 1);
}

TEST_CASE("a token about to expire is refreshed", "[vertex][auth]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.expires_in = 30;  // inside the one-minute safety margin: never reused
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.otherwise("/v1/", gemini_ok("fine"));
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    cascade::test::run(io, chain.complete(req));
    cascade::test::run(io, chain.complete(req));
    CHECK(tokens.exchanges == 2);
    auto seen = up.requests();
    std::vector<std::string> bearer;
    for (auto const& r : seen)
        if (r.target.rfind("/v1/", 0) == 0) bearer.push_back(r.key);
    CHECK(bearer == std::vector<std::string>{"ya29.test-1", "ya29.test-2"});
}

TEST_CASE("a JWT signed with another key is refused by the token endpoint and the tier moves on", "[vertex][auth]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    auto impostor = cascade::test::make_rsa_key();
    KeyFile kf(impostor, up.base_url("/token"));
    up.otherwise("/v1/", gemini_ok("never"));
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "fallback-template");
    CHECK(tokens.refused >= 1);
    CHECK(up.hits("/v1/") == 0);
    REQUIRE_FALSE(c.trail.empty());
    CHECK(c.trail[0].fault == cascade::make_error_code(Fault::unauthorized));
    CHECK(c.trail[0].detail == "token endpoint: invalid_grant: Invalid JWT Signature.");
}

TEST_CASE("us-central1 answering 429 makes the answer come from europe-west1, labelled so", "[vertex][regions]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.otherwise(vertex_path("us-central1"), vertex_429());
    up.otherwise(vertex_path("europe-west1"), gemini_ok("from europe"));
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "vertex-pro/europe-west1");
    CHECK(c.text == "from europe");
    CHECK(c.usage.completion_tokens == 282 + 891);
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "vertex-pro/us-central1");
    CHECK(c.trail[0].fault == cascade::make_error_code(Fault::rate_limited));
    // us-central1 now rests; the next request goes straight to europe-west1.
    auto again = cascade::test::run(io, chain.complete(req));
    CHECK(again.label == "vertex-pro/europe-west1");
    CHECK(up.hits(vertex_path("us-central1")) == 1);
}

TEST_CASE("a streamed request: us-central1 cut before its first token, europe-west1 streams the answer", "[vertex][stream]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    auto stream_path = [](std::string const& region) {
        return "/v1/projects/cascade-test/locations/" + region + "/publishers/google/models/gemini-2.5-pro:streamGenerateContent";
    };
    Reply cut = wire::json(200, "");
    cut.headers = {{"content-type", "text/event-stream"}};
    cut.chunks.emplace_back(1ms, "\r\n");
    cut.cut_after_chunks = true;
    up.otherwise(stream_path("us-central1"), std::move(cut));
    Reply ok = wire::json(200, "");
    ok.headers = {{"content-type", "text/event-stream"}};
    ok.chunks.emplace_back(1ms, R"(data: {"candidates":[{"content":{"role":"model","parts":[{"text":"from "}]}}],"modelVersion":"gemini-2.5-pro"})" "\r\n\r\n");
    ok.chunks.emplace_back(1ms, R"(data: {"candidates":[{"content":{"role":"model","parts":[{"text":"europe"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":135,"candidatesTokenCount":2,"totalTokenCount":137},"modelVersion":"gemini-2.5-pro"})" "\r\n\r\n");
    up.otherwise(stream_path("europe-west1"), std::move(ok));
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto s = chain.stream(req);
    auto take = [](cascade::TextStream st) -> asio::awaitable<std::pair<std::vector<std::string>, cascade::StreamResult>> {
        std::vector<std::string> deltas;
        while (auto d = co_await st.next()) deltas.push_back(std::move(*d));
        co_return std::make_pair(std::move(deltas), st.result());
    };
    auto [deltas, result] = cascade::test::run(io, take(std::move(s)));
    CHECK(deltas == std::vector<std::string>{"from ", "europe"});
    REQUIRE(result.end == cascade::StreamEnd::complete);
    CHECK(result.completion.label == "vertex-pro/europe-west1");
    CHECK(result.completion.usage.completion_tokens == 2);
    REQUIRE(result.completion.trail.size() == 1);
    CHECK(result.completion.trail[0].label == "vertex-pro/us-central1");
    CHECK(up.requests().back().target == stream_path("europe-west1") + "?alt=sse");
}

TEST_CASE("a region down with 503 rests while the next region answers", "[vertex][regions]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.otherwise(vertex_path("us-central1"), wire::json(503, R"({"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}})"));
    up.otherwise(vertex_path("europe-west1"), wire::json(503, R"({"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}})"));
    up.otherwise(vertex_path("europe-west4"), gemini_ok("from west4"));
    asio::io_context io;
    cascade::BasicChain<cascade::DefaultPolicies::with_retry<cascade::NoRetry>, cascade::VertexPro, cascade::Template> chain(
        io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "vertex-pro/europe-west4");
    CHECK(c.trail.size() == 2);
}

TEST_CASE("a SAFETY finish moves the outer chain to its next tier", "[vertex][safety]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.otherwise("/v1/", gemini_safety());
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "vertex-pro/us-central1");
    CHECK(c.trail[0].fault == cascade::make_error_code(Fault::rejected));
    CHECK(up.hits("/v1/") == 1);  // a refusal is about the prompt: other regions are not asked
}

TEST_CASE("MAX_TOKENS is kept, marked by its finish reason", "[vertex]") {
    Loopback up;
    TokenEndpoint tokens;
    tokens.install(up);
    KeyFile kf(tokens.key, up.base_url("/token"));
    up.otherwise("/v1/", wire::json(200, R"({"candidates":[{"content":{"role":"model","parts":[{"text":"a truncated repo"}]},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":700,"candidatesTokenCount":5,"thoughtsTokenCount":8191}})"));
    asio::io_context io;
    cascade::Chain<cascade::VertexPro, cascade::Template> chain(io.get_executor(), cascade::VertexPro(vertex_config(up, kf)), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "vertex-pro/us-central1");
    CHECK(c.finish_reason == "MAX_TOKENS");
}

TEST_CASE("a malformed key file is a configuration error naming the field, and the tier is skipped", "[vertex][config]") {
    std::string path = "/tmp/cascade-bad-sa-" + std::to_string(::getpid()) + ".json";
    std::ofstream(path) << R"({"type":"service_account","project_id":"p","private_key_id":"k","client_email":"a@b","token_uri":"https://oauth2.googleapis.com/token"})";
    cascade::VertexConfig cfg;
    cfg.credentials_file = path;
    cascade::VertexPro vertex(cfg);
    CHECK(vertex.config_error() == path + ": missing field 'private_key'");
    CHECK(vertex.key_count() == 0);
    std::remove(path.c_str());
}

TEST_CASE("the seed's chain Chain<Groq<5>, DeepSeek, VertexPro, Template> runs end to end, its table matching the script",
          "[vertex][e2e]") {
    Loopback groq_up, deepseek_up, google_up;
    TokenEndpoint tokens;
    tokens.install(google_up);
    KeyFile kf(tokens.key, google_up.base_url("/token"));
    auto groq_cfg = cascade::Groq<5>::defaults();
    groq_cfg.base_url = groq_up.base_url("/openai/v1");
    for (int i = 1; i <= 5; ++i) groq_cfg.keys.emplace_back("gsk_seed_" + std::to_string(i));
    groq_cfg.key_limits = {};
    auto ds_cfg = cascade::DeepSeek::defaults();
    ds_cfg.base_url = deepseek_up.base_url();
    ds_cfg.keys.emplace_back("sk-seed-deepseek");

    asio::io_context io;
    using SeedChain = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro, cascade::Template>;
    static_assert(std::is_same_v<SeedChain::result_type, cascade::Completion>);
    SeedChain chain(io.get_executor(), cascade::Groq<5>(groq_cfg), cascade::DeepSeek(ds_cfg), cascade::VertexPro(vertex_config(google_up, kf)),
                    cascade::Template{[](cascade::Request const&) { return std::string("the report is being prepared"); }});
    chain.retry_policy().max_retries = 0;
    auto ask = [&](std::string p) {
        auto req = cascade::Request::chat("You write reports.", std::move(p));
        return cascade::test::run(io, chain.complete(req));
    };

    // 1: all is well.
    groq_up.queue("/openai/v1/chat/completions", wire::groq_ok("groq"));
    CHECK(ask("r1").label == "groq1");
    // 2: key 1 rate-limited.
    groq_up.queue("/openai/v1/chat/completions", wire::groq_429(3600), "gsk_seed_1");
    groq_up.queue("/openai/v1/chat/completions", wire::groq_ok("groq"));
    CHECK(ask("r2").label == "groq2");
    // 3: Groq blocks the IP: DeepSeek answers.
    groq_up.otherwise("/openai/v1/chat/completions", wire::cloudflare_1010());
    deepseek_up.queue("/chat/completions", wire::deepseek_ok("deepseek"));
    CHECK(ask("r3").label == "deepseek");
    // 4: Groq still blocked (skipped), DeepSeek out of credit: Vertex, us-central1 rate-limited.
    deepseek_up.otherwise("/chat/completions", wire::deepseek_402());
    google_up.queue(vertex_path("us-central1"), vertex_429());
    google_up.otherwise(vertex_path("europe-west1"), gemini_ok("vertex"));
    CHECK(ask("r4").label == "vertex-pro/europe-west1");
    // 5: Vertex refuses on safety: the template.
    google_up.queue(vertex_path("europe-west1"), gemini_safety());
    auto last = ask("r5");
    CHECK(last.label == "fallback-template");
    CHECK(last.origin == cascade::Origin::fallback);

    auto t = chain.observer().snapshot();
    REQUIRE(t.size() == 4);
    CHECK(t[0].name == "groq");
    CHECK(t[0].attempts == 4);  // r1, r2 x2, r3
    CHECK(t[0].hits == 2);
    CHECK(t[0].fault_count_of(Fault::rate_limited) == 1);
    CHECK(t[0].fault_count_of(Fault::blocked) == 1);
    CHECK(t[0].skips == 2);  // r4, r5: circuit open
    CHECK(t[1].name == "deepseek");
    CHECK(t[1].attempts == 2);  // r3, r4 (then its key rests an hour)
    CHECK(t[1].hits == 1);
    CHECK(t[1].fault_count_of(Fault::quota_exhausted) == 1);
    CHECK(t[1].skips == 1);  // r5
    CHECK(t[2].name == "vertex-pro");
    CHECK(t[2].attempts == 3);  // r4: us-central1 429, europe-west1; r5: europe-west1 refusal
    CHECK(t[2].hits == 1);
    CHECK(t[2].fault_count_of(Fault::rate_limited) == 1);
    CHECK(t[2].fault_count_of(Fault::rejected) == 1);
    CHECK(t[3].name == "fallback-template");
    CHECK(t[3].hits == 1);
    CHECK(t[0].cost_usd == 0.0);  // two answers on Groq's free tier: they cost nothing
    // The answer, from usageMetadata, and the refusal's 12 prompt tokens: a refusal is paid for too.
    CHECK(t[2].cost_usd == Approx((135 * 1.25 + (282 + 891) * 10.0 + 12 * 1.25) / 1e6));
}

TEST_CASE("the Gemini API flavour sends its key in x-goog-api-key and shares the mapping", "[gemini][api]") {
    Loopback up;
    up.otherwise("/v1beta/models/gemini-2.5-flash:generateContent", gemini_ok("from the gemini api"));
    cascade::GeminiApiConfig cfg;
    cfg.base_url = up.base_url("/v1beta");
    cfg.keys.emplace_back("AIzaTestKey123456");
    asio::io_context io;
    cascade::Chain<cascade::GeminiApi, cascade::Template> chain(io.get_executor(), cascade::GeminiApi(cfg), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "gemini");
    CHECK(c.text == "from the gemini api");
    CHECK(up.hits_for_key("AIzaTestKey123456") == 1);
}

TEST_CASE("a model override reaches the Gemini URL, the answer carries responseId, and a json_schema is refused before the wire",
          "[gemini][api][request]") {
    Loopback up;
    up.otherwise("/v1beta/models/gemini-2.5-flash-lite:generateContent", gemini_ok("from flash-lite"));
    cascade::GeminiApiConfig cfg;
    cfg.base_url = up.base_url("/v1beta");
    cfg.keys.emplace_back("AIzaTestKey123456");
    asio::io_context io;
    cascade::Chain<cascade::GeminiApi, cascade::Template> chain(io.get_executor(), cascade::GeminiApi(cfg), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    req.model = "gemini-2.5-flash-lite";
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "gemini");
    CHECK(c.text == "from flash-lite");
    CHECK(c.id == "3C4nauW5LpSGz_IP8dLQyQM");
    REQUIRE(up.requests().size() == 1);
    CHECK(up.requests()[0].target == "/v1beta/models/gemini-2.5-flash-lite:generateContent");

    auto schema = req;
    schema.response_format = R"({"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"}}})";
    auto refused = cascade::test::run(io, chain.complete(schema));
    CHECK(refused.origin == cascade::Origin::fallback);
    REQUIRE_FALSE(refused.trail.empty());
    CHECK(refused.trail[0].fault == cascade::make_error_code(Fault::bad_request));
    CHECK(refused.trail[0].detail.find("json_schema") != std::string::npos);
    CHECK(up.requests().size() == 1);  // nothing more reached Gemini
}

TEST_CASE("smoke test against real Vertex, only when GOOGLE_APPLICATION_CREDENTIALS is set", "[vertex][smoke][!mayfail]") {
    if (!std::getenv("GOOGLE_APPLICATION_CREDENTIALS") || std::getenv("CI")) {
        WARN("skipped: set GOOGLE_APPLICATION_CREDENTIALS, outside CI, to call the real Vertex AI");
        return;
    }
    asio::io_context io;
    cascade::Chain<cascade::VertexPro> chain(io.get_executor(), cascade::VertexPro{});
    auto req = cascade::Request::chat("Answer in one word.", "What colour is the sky on a clear day?");
    req.max_tokens = 50;
    auto r = cascade::test::run(io, chain.complete(req));
    INFO(chain.observer().table());
    CHECK(r.has_value());
}
