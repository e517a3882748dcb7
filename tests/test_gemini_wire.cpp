// Gemini generateContent bodies and the service-account JWT, with real bodies (shared/reference, [V]) and
// a key pair made at test time.

#include <cascade/provider/gemini_wire.hpp>
#include <cascade/provider/google_jwt.hpp>

#include "support/rsa_key.hpp"

#include <boost/json/parse.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <fstream>
#include <unistd.h>

TEST_CASE("a generateContent body has the system instruction, the user content and generationConfig", "[gemini][wire]") {
    auto req = cascade::Request::chat("You are a helpful assistant.", "What is the capital of France");
    req.max_tokens = 1024;
    req.temperature = 0.2;
    auto v = boost::json::parse(cascade::gemini::request_body(req));
    auto const& o = v.as_object();
    CHECK(o.at("systemInstruction").at("parts").as_array()[0].at("text").as_string() == "You are a helpful assistant.");
    auto const& contents = o.at("contents").as_array();
    REQUIRE(contents.size() == 1);
    CHECK(contents[0].at("role").as_string() == "user");
    CHECK(contents[0].at("parts").as_array()[0].at("text").as_string() == "What is the capital of France");
    CHECK(o.at("generationConfig").at("maxOutputTokens").as_int64() == 1024);
    CHECK(o.at("generationConfig").at("temperature").as_double() == Approx(0.2));
}

TEST_CASE("a Vertex success body yields text, model and usage with thinking tokens billed as output", "[gemini][wire]") {
    auto body = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"**TL;DR:** In Go, strings are immutable ..."}]},"finishReason":"STOP","avgLogprobs":-0.581606979911209}],"usageMetadata":{"promptTokenCount":135,"candidatesTokenCount":282,"totalTokenCount":1308,"trafficType":"ON_DEMAND","promptTokensDetails":[{"modality":"TEXT","tokenCount":135}],"candidatesTokensDetails":[{"modality":"TEXT","tokenCount":282}],"thoughtsTokenCount":891},"modelVersion":"gemini-2.5-flash","createTime":"2026-06-08T21:06:36.761061Z","responseId":"3C4nauW5LpSGz_IP8dLQyQM"})";
    auto r = cascade::gemini::parse_reply(body);
    REQUIRE(r.has_value());
    CHECK(r->text == "**TL;DR:** In Go, strings are immutable ...");
    CHECK(r->finish_reason == "STOP");
    CHECK(r->model == "gemini-2.5-flash");
    CHECK(r->usage.prompt_tokens == 135);
    CHECK(r->usage.completion_tokens == 282 + 891);
}

TEST_CASE("SAFETY, a blocked prompt and MAX_TOKENS without parts are told apart", "[gemini][wire]") {
    auto safety = cascade::gemini::parse_reply(R"({"candidates":[{"content":{"role":"model"},"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],"usageMetadata":{"promptTokenCount":5}})");
    REQUIRE(safety.has_value());
    CHECK(safety->finish_reason == "SAFETY");
    CHECK(cascade::gemini::is_refusal(safety->finish_reason));
    CHECK(safety->text.empty());

    auto blocked = cascade::gemini::parse_reply(R"({"promptFeedback":{"blockReason":"MODEL_ARMOR","blockReasonMessage":"Blocked by Model Armor Floor Setting: The prompt violated Responsible AI Safety settings (Dangerous), Prompt Injection and Jailbreak filters."},"usageMetadata":{"trafficType":"ON_DEMAND"},"modelVersion":"gemini-2.5-flash","createTime":"2025-08-11T23:26:50.942851Z","responseId":"OnyaaIPGOdSAm9IP47af2AI"})");
    REQUIRE(blocked.has_value());
    CHECK(blocked->prompt_blocked);
    CHECK(blocked->finish_reason == "MODEL_ARMOR");

    auto max_tokens = cascade::gemini::parse_reply(R"({"candidates":[{"content":{"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":700,"totalTokenCount":8891,"thoughtsTokenCount":8191,"trafficType":"ON_DEMAND"}})");
    REQUIRE(max_tokens.has_value());
    CHECK(max_tokens->finish_reason == "MAX_TOKENS");
    CHECK_FALSE(cascade::gemini::is_refusal(max_tokens->finish_reason));
    CHECK(max_tokens->usage.completion_tokens == 8191);
}

TEST_CASE("an error body or a truncated one is a parse error", "[gemini][wire]") {
    CHECK(cascade::gemini::parse_reply(R"([{"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED"}}])").error() ==
          cascade::gemini::ParseError::error_object);
    CHECK(cascade::gemini::parse_reply(R"({"candidates":[{"content")").error() == cascade::gemini::ParseError::not_json);
}

TEST_CASE("token counts past 32 bits saturate, the thoughts included, instead of wrapping", "[gemini][wire][fuzz]") {
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    // 4294967431 = 2^32 + 135; 4294967000 + 891 thoughts overflows 32 bits when added.
    auto r = cascade::gemini::parse_reply(
        R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4294967431,"candidatesTokenCount":4294967000,"thoughtsTokenCount":891}})");
    REQUIRE(r.has_value());
    CHECK(r->usage.prompt_tokens == top);
    CHECK(r->usage.completion_tokens == top);
    auto negative = cascade::gemini::parse_reply(
        R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":{"promptTokenCount":-1,"candidatesTokenCount":18446744073709551615}})");
    REQUIRE(negative.has_value());
    CHECK(negative->usage.prompt_tokens == 0);
    CHECK(negative->usage.completion_tokens == top);
}

TEST_CASE("a prompt blocked with an empty reason is blocked, and says so", "[gemini][wire][fuzz]") {
    auto r = cascade::gemini::parse_reply(R"({"promptFeedback":{"blockReason":""},"modelVersion":"gemini-2.5-flash"})");
    REQUIRE(r.has_value());
    CHECK(r->prompt_blocked);
    CHECK(r->finish_reason == "BLOCK_REASON_UNSPECIFIED");
}

// --- Service account ------------------------------------------------------------------------------

TEST_CASE("a service account key file is read, and a bad one names the missing or bad field", "[google][auth]") {
    auto key = cascade::test::make_rsa_key();
    auto json = cascade::test::service_account_json(key, "https://oauth2.googleapis.com/token");
    auto sa = cascade::google::parse_service_account(json);
    REQUIRE(sa.has_value());
    CHECK(sa->client_email == "tester@cascade-test.iam.gserviceaccount.com");
    CHECK(sa->token_uri == "https://oauth2.googleapis.com/token");

    auto missing = cascade::google::parse_service_account(R"({"type":"service_account","project_id":"p"})", "key.json");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message == "key.json: missing field 'private_key_id'");

    auto wrong_type = cascade::google::parse_service_account(R"({"type":"authorized_user"})", "key.json");
    CHECK(wrong_type.error().message == "key.json: field 'type' is 'authorized_user', expected 'service_account'");

    auto bad_key = boost::json::parse(json).as_object();
    bad_key["private_key"] = "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n";
    auto bad = cascade::google::parse_service_account(boost::json::serialize(bad_key), "key.json");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message == "key.json: field 'private_key' could not be read as a PEM private key");
    CHECK(bad.error().message.find("not base64") == std::string::npos);

    CHECK_FALSE(cascade::google::parse_service_account("{not json", "key.json").has_value());
}

TEST_CASE("a key file is loaded from a path and a missing file is a clear error", "[google][auth]") {
    auto key = cascade::test::make_rsa_key();
    auto path = std::string("/tmp/cascade-test-sa-") + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(path);
        out << cascade::test::service_account_json(key, "https://oauth2.googleapis.com/token");
    }
    CHECK(cascade::google::load_service_account(path).has_value());
    std::remove(path.c_str());
    auto gone = cascade::google::load_service_account(path);
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().message == path + ": cannot open the service account key file");
}

TEST_CASE("the JWT assertion is RS256-signed with the key and carries iss, scope, aud, iat and exp", "[google][auth]") {
    auto key = cascade::test::make_rsa_key();
    auto sa = cascade::google::parse_service_account(cascade::test::service_account_json(key, "https://oauth2.googleapis.com/token")).value();
    auto jwt = cascade::google::make_assertion(sa, 1'700'000'000);
    REQUIRE(jwt.has_value());
    auto claims = boost::json::parse(cascade::test::verify_rs256(*jwt, key.public_pem)).as_object();
    CHECK(claims.at("iss").as_string() == "tester@cascade-test.iam.gserviceaccount.com");
    CHECK(claims.at("scope").as_string() == "https://www.googleapis.com/auth/cloud-platform");
    CHECK(claims.at("aud").as_string() == "https://oauth2.googleapis.com/token");
    CHECK(claims.at("iat").as_int64() == 1'700'000'000);
    CHECK(claims.at("exp").as_int64() == 1'700'003'600);
    auto header = boost::json::parse(cascade::test::base64url_decode(jwt->substr(0, jwt->find('.')))).as_object();
    CHECK(header.at("alg").as_string() == "RS256");
    CHECK(header.at("kid").as_string() == "test-key-1");
    // Another key's public half does not verify it.
    auto other = cascade::test::make_rsa_key();
    CHECK_THROWS(cascade::test::verify_rs256(*jwt, other.public_pem));
    // A lifetime over an hour is clamped to an hour.
    auto long_jwt = cascade::google::make_assertion(sa, 100, std::chrono::hours(5)).value();
    CHECK(boost::json::parse(cascade::test::verify_rs256(long_jwt, key.public_pem)).at("exp").as_int64() == 3700);
}

TEST_CASE("the token answer is read, and an invalid_grant says why", "[google][auth]") {
    auto ok = cascade::google::parse_token_response(R"({"access_token":"ya29.XXXXXXX","expires_in":3599,"token_type":"Bearer"})");
    REQUIRE(ok.has_value());
    CHECK(ok->value == "ya29.XXXXXXX");
    CHECK(ok->expires_in == std::chrono::seconds(3599));
    auto bad = cascade::google::parse_token_response(R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message == "token endpoint: invalid_grant: Invalid JWT Signature.");
    CHECK(cascade::google::token_request_body("a.b.c") ==
          "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c");
}

TEST_CASE("an encrypted private key is a configuration error at once, never a pass phrase prompt", "[google][auth][fuzz]") {
    // OpenSSL's default callback asks "Enter PEM pass phrase:" on the terminal, or reads stdin, and waits.
    auto key = cascade::test::make_rsa_key();
    for (bool traditional : {false, true}) {
        auto sa = boost::json::parse(cascade::test::service_account_json(key, "https://oauth2.googleapis.com/token")).as_object();
        auto pem = cascade::test::encrypted_private_pem(key, "correct horse battery staple", traditional);
        CHECK(pem.find("ENCRYPTED") != std::string::npos);
        sa["private_key"] = pem;
        auto started = std::chrono::steady_clock::now();
        auto parsed = cascade::google::parse_service_account(boost::json::serialize(sa), "key.json");
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().message.rfind("key.json: field 'private_key' is encrypted; ", 0) == 0);
        CHECK(parsed.error().message.find("correct horse") == std::string::npos);
        // Signing with such a key (a ServiceAccount built by hand) fails the same way.
        cascade::google::ServiceAccount by_hand;
        by_hand.private_key_pem = pem;
        auto jwt = cascade::google::make_assertion(by_hand, 1'700'000'000);
        REQUIRE_FALSE(jwt.has_value());
        CHECK(jwt.error().message == "service account private key is encrypted");
    }
}

TEST_CASE("a token answer's expires_in is clamped to a day when absurd and refused when negative", "[google][auth][fuzz]") {
    using cascade::google::longest_token_lifetime;
    using cascade::google::parse_token_response;
    auto with = [](std::string expires_in) {
        return R"({"access_token":"ya29.XXXXXXX","token_type":"Bearer","expires_in":)" + expires_in + "}";
    };
    // Added to steady_clock::now() by the tier: a huge value must not overflow the clock.
    CHECK(parse_token_response(with("9223372036854775807")).value().expires_in == longest_token_lifetime);
    CHECK(parse_token_response(with("18446744073709551615")).value().expires_in == longest_token_lifetime);
    CHECK(parse_token_response(with("1e300")).value().expires_in == longest_token_lifetime);
    CHECK(parse_token_response(with("86401")).value().expires_in == std::chrono::hours(24));
    CHECK(parse_token_response(with("3599.9")).value().expires_in == std::chrono::seconds(3599));
    CHECK(parse_token_response(with("0")).value().expires_in == std::chrono::seconds(0));
    for (auto negative : {"-1", "-9223372036854775808", "-0.5"}) {
        auto r = parse_token_response(with(negative));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.rfind("token endpoint: expires_in is negative (", 0) == 0);
    }
    CHECK(parse_token_response(R"({"access_token":"ya29.XXXXXXX"})").value().expires_in == std::chrono::seconds(3600));
}

TEST_CASE("a damaged private key that still parses is refused when the key file is read", "[google][auth][fuzz]") {
    // Its signatures would fail, or be refused by the token endpoint on every request.
    auto key = cascade::test::make_rsa_key();
    auto sa = boost::json::parse(cascade::test::service_account_json(key, "https://oauth2.googleapis.com/token")).as_object();
    sa["private_key"] = cascade::test::mismatched_private_pem(key);
    auto parsed = cascade::google::parse_service_account(boost::json::serialize(sa), "key.json");
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().message == "key.json: field 'private_key' is damaged: its RSA parts do not belong together");
}
