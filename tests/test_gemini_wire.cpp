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
#include <string>
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

TEST_CASE("generationConfig holds only what the request sets, and is left out when that is nothing", "[gemini][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    auto o = boost::json::parse(cascade::gemini::request_body(req)).as_object();
    CHECK_FALSE(o.contains("generationConfig"));
    req.top_p = 0.5;
    req.seed = 42;
    req.stop = {"END"};
    o = boost::json::parse(cascade::gemini::request_body(req)).as_object();
    auto const& gen = o.at("generationConfig").as_object();
    CHECK(gen.size() == 3);
    CHECK(gen.at("topP").as_double() == Approx(0.5));
    CHECK(gen.at("seed").as_int64() == 42);
    REQUIRE(gen.at("stopSequences").as_array().size() == 1);
    CHECK(gen.at("stopSequences").as_array()[0].as_string() == "END");
    CHECK_FALSE(gen.contains("temperature"));
    CHECK_FALSE(gen.contains("maxOutputTokens"));
}

TEST_CASE("a json_object response format asks Gemini for JSON, a json_schema one is a request problem", "[gemini][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    CHECK(cascade::gemini::request_problem(req).empty());
    req.response_format = R"({"type":"json_object"})";
    CHECK(cascade::gemini::request_problem(req).empty());
    auto o = boost::json::parse(cascade::gemini::request_body(req)).as_object();
    CHECK(o.at("generationConfig").at("responseMimeType").as_string() == "application/json");
    req.response_format = R"({"type":"text"})";
    CHECK(cascade::gemini::request_problem(req).empty());
    o = boost::json::parse(cascade::gemini::request_body(req)).as_object();
    CHECK_FALSE(o.contains("generationConfig"));
    req.response_format = R"({"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"}}})";
    CHECK(cascade::gemini::request_problem(req).find("json_schema") != std::string::npos);
    req.response_format = "not json";
    CHECK(cascade::gemini::request_problem(req).find("not a JSON object") != std::string::npos);
}

TEST_CASE("extra fields and a model that cannot be a URL segment are request problems for Gemini", "[gemini][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    req.model = "gemini-2.5-flash-lite";
    CHECK(cascade::gemini::request_problem(req).empty());
    req.model = "../../v1/other?x=1";
    CHECK(cascade::gemini::request_problem(req).find("cannot be put in a Gemini URL") != std::string::npos);
    req.model.reset();
    req.extra["safetySettings"] = boost::json::array{};
    CHECK(cascade::gemini::request_problem(req).find("extra") != std::string::npos);
}

TEST_CASE("a reply and a stream carry Gemini's responseId", "[gemini][wire]") {
    auto r = cascade::gemini::parse_reply(
        R"({"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},"finishReason":"STOP"}],"responseId":"3C4nauW5LpSGz_IP8dLQyQM"})");
    REQUIRE(r.has_value());
    CHECK(r->id == "3C4nauW5LpSGz_IP8dLQyQM");
    cascade::gemini::StreamAssembler s;
    s.on_data(R"({"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},"finishReason":"STOP"}],"responseId":"rid-2"})", false);
    CHECK(s.reply().id == "rid-2");
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

// --- Streamed answers (streamGenerateContent?alt=sse) -----------------------------------------------

namespace {

// The three chunks of a real Google AI stream (shared/reference/provider-formats-2.md S2, gemini-2.0-flash).
std::string const chunk1 =
    R"({"candidates": [{"content": {"parts": [{"text": "Here"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 10,"totalTokenCount": 10,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},"modelVersion": "gemini-2.0-flash","responseId": "ibRCaOfLGfuQ1PIPqNma8Aw"})";
std::string const chunk2 =
    R"({"candidates": [{"content": {"parts": [{"text": " you go:\n\nEnglish: potato\nSpanish: patata\nFrench: pom"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 10,"totalTokenCount": 10,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},"modelVersion": "gemini-2.0-flash","responseId": "ibRCaOfLGfuQ1PIPqNma8Aw"})";
std::string const chunk3 =
    R"({"candidates": [{"content": {"parts": [{"text": "ガイモ (jagaimo)\nRussian: картофель (kartofel')\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 10,"candidatesTokenCount": 49,"totalTokenCount": 59,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 10}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 49}]},"modelVersion": "gemini-2.0-flash","responseId": "ibRCaOfLGfuQ1PIPqNma8Aw"})";

// The error object a real stream carried after two data events (corpus gemini-200-stream-error-503-high-demand).
std::string const error_503 =
    "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"This model is currently experiencing high demand. Spikes in demand are usually temporary. Please try again later.\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}";

} // namespace

TEST_CASE("a streamed answer assembles its text deltas, model, finish reason and the last chunk's usage", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(chunk1, false));
    CHECK(s.reply().text == "Here");
    CHECK(s.reply().usage.prompt_tokens == 10);
    CHECK(s.reply().usage.completion_tokens == 0);
    CHECK(s.on_data(chunk2, false));
    CHECK_FALSE(s.complete());
    CHECK(s.on_data(chunk3, false));
    CHECK(s.complete());
    CHECK(s.reply().text == "Here you go:\n\nEnglish: potato\nSpanish: patata\nFrench: pomガイモ (jagaimo)\nRussian: картофель (kartofel')\n");
    CHECK(s.reply().model == "gemini-2.0-flash");
    CHECK(s.reply().finish_reason == "STOP");
    // Taken from the last chunk, not added up over the three.
    CHECK(s.reply().usage.prompt_tokens == 10);
    CHECK(s.reply().usage.completion_tokens == 49);
    CHECK_FALSE(s.errored());
    CHECK_FALSE(s.malformed());
    CHECK_FALSE(s.prompt_blocked());
    CHECK(s.failed_data().empty());
}

TEST_CASE("a streamed thinking model's thought parts are not the answer, and its thoughts are billed as output", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[{"thought":true,"text":"Let me think about potatoes."}],"role":"model"}}],"modelVersion":"gemini-2.5-flash"})", false));
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[{"text":"Potato."}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":12,"cachedContentTokenCount":8,"candidatesTokenCount":3,"thoughtsTokenCount":40},"modelVersion":"gemini-2.5-flash"})", false));
    CHECK(s.reply().text == "Potato.");
    CHECK(s.reply().usage.prompt_tokens == 12);
    CHECK(s.reply().usage.cached_prompt_tokens == 8);
    CHECK(s.reply().usage.completion_tokens == 3 + 40);
}

TEST_CASE("a streamed chunk with only usage sets the counts and leaves the text alone", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[{"text":"Paris."}],"role":"model"},"finishReason":"STOP"}],"modelVersion":"gemini-2.5-flash"})", false));
    CHECK(s.reply().usage.prompt_tokens == 0);
    CHECK(s.on_data(R"({"usageMetadata":{"promptTokenCount":135,"cachedContentTokenCount":100,"candidatesTokenCount":2,"thoughtsTokenCount":30,"totalTokenCount":167,"trafficType":"ON_DEMAND"},"modelVersion":"gemini-2.5-flash"})", false));
    CHECK(s.reply().text == "Paris.");
    CHECK(s.reply().finish_reason == "STOP");
    CHECK(s.complete());
    CHECK(s.reply().usage.prompt_tokens == 135);
    CHECK(s.reply().usage.cached_prompt_tokens == 100);
    CHECK(s.reply().usage.completion_tokens == 32);
    // A later usage object without counts keeps them; it is neither a block nor malformed.
    CHECK(s.on_data(R"({"usageMetadata":{"trafficType":"ON_DEMAND"}})", false));
    CHECK(s.reply().usage.prompt_tokens == 135);
    CHECK(s.reply().usage.completion_tokens == 32);
    CHECK_FALSE(s.prompt_blocked());
    CHECK_FALSE(s.malformed());
    CHECK_FALSE(s.errored());
    // A later empty finish reason does not erase the one that came.
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[]},"finishReason":""}]})", false));
    CHECK(s.reply().finish_reason == "STOP");
}

TEST_CASE("a stream cut before any finish reason is not complete", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(chunk1, false));
    CHECK(s.on_data(chunk2, false));
    CHECK_FALSE(s.complete());
    CHECK(s.reply().finish_reason.empty());
    CHECK(s.reply().text == "Here you go:\n\nEnglish: potato\nSpanish: patata\nFrench: pom");
    CHECK_FALSE(s.errored());
    CHECK_FALSE(s.malformed());
    // An empty finish reason is no finish reason.
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":""}]})", false));
    CHECK_FALSE(s.complete());
}

TEST_CASE("an error envelope mid-stream stops the stream and keeps its data as it came", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(chunk1, false));
    CHECK(s.on_data(chunk2, false));
    CHECK_FALSE(s.on_data(error_503, false));
    CHECK(s.errored());
    CHECK(s.error_message() == "This model is currently experiencing high demand. Spikes in demand are usually temporary. Please try again later.");
    CHECK(s.failed_data() == error_503);
    CHECK_FALSE(s.malformed());
    CHECK_FALSE(s.complete());
    // Later events are ignored.
    CHECK_FALSE(s.on_data(chunk3, false));
    CHECK_FALSE(s.on_data("not json", false));
    CHECK_FALSE(s.complete());
    CHECK_FALSE(s.malformed());
    CHECK(s.reply().text == "Here you go:\n\nEnglish: potato\nSpanish: patata\nFrench: pom");
    CHECK(s.failed_data() == error_503);

    // An event the SSE layer marked as an error is one, whatever its JSON says.
    cascade::gemini::StreamAssembler marked;
    CHECK_FALSE(marked.on_data(R"({"candidates":[]})", true));
    CHECK(marked.errored());
    CHECK(marked.error_message() == "an error occurred during streaming");
    CHECK(marked.failed_data() == R"({"candidates":[]})");
}

TEST_CASE("streamed data that is not a JSON object is malformed, and the first such event is kept", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(chunk1, false));
    CHECK_FALSE(s.malformed());
    std::string const cut = R"({"candidates": [{"content": {"parts": [{"text": " you)";
    CHECK(s.on_data(cut, false));
    CHECK(s.malformed());
    CHECK_FALSE(s.errored());
    CHECK(s.failed_data() == cut);
    CHECK(s.on_data("[]", false));
    CHECK(s.on_data(R"("a string")", false));
    CHECK(s.failed_data() == cut);
    // The readable events around it still count.
    CHECK(s.on_data(chunk3, false));
    CHECK(s.complete());
    CHECK(s.reply().text == "Hereガイモ (jagaimo)\nRussian: картофель (kartofel')\n");
    // An error after it errs, and the first failure stays the one kept.
    CHECK_FALSE(s.on_data(error_503, false));
    CHECK(s.errored());
    CHECK(s.failed_data() == cut);
}

TEST_CASE("a streamed blocked prompt is blocked and complete, with its reason", "[gemini][stream]") {
    cascade::gemini::StreamAssembler s;
    CHECK(s.on_data(R"({"promptFeedback":{"blockReason":"MODEL_ARMOR","blockReasonMessage":"Blocked by Model Armor Floor Setting: The prompt violated Responsible AI Safety settings (Dangerous), Prompt Injection and Jailbreak filters."},"usageMetadata":{"trafficType":"ON_DEMAND"},"modelVersion":"gemini-2.5-flash","createTime":"2025-08-11T23:26:50.942851Z","responseId":"OnyaaIPGOdSAm9IP47af2AI"})", false));
    CHECK(s.prompt_blocked());
    CHECK(s.reply().prompt_blocked);
    CHECK(s.reply().finish_reason == "MODEL_ARMOR");
    CHECK(s.complete());
    CHECK(s.reply().model == "gemini-2.5-flash");
    CHECK(s.reply().text.empty());
    CHECK_FALSE(s.errored());
    CHECK_FALSE(s.malformed());

    cascade::gemini::StreamAssembler empty_reason;
    CHECK(empty_reason.on_data(R"({"promptFeedback":{"blockReason":""}})", false));
    CHECK(empty_reason.prompt_blocked());
    CHECK(empty_reason.reply().finish_reason == "BLOCK_REASON_UNSPECIFIED");

    // Feedback without a block reason, next to candidates, blocks nothing.
    cascade::gemini::StreamAssembler not_blocked;
    CHECK(not_blocked.on_data(R"({"candidates":[{"content":{"parts":[{"text":"ok"}]}}],"promptFeedback":{"safetyRatings":[]}})", false));
    CHECK_FALSE(not_blocked.prompt_blocked());
    CHECK_FALSE(not_blocked.complete());
}

TEST_CASE("streamed token counts past 32 bits saturate instead of wrapping", "[gemini][stream][fuzz]") {
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    cascade::gemini::StreamAssembler s;
    // 4294967431 = 2^32 + 135; 4294967000 + 891 thoughts overflows 32 bits when added.
    CHECK(s.on_data(R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4294967431,"cachedContentTokenCount":18446744073709551615,"candidatesTokenCount":4294967000,"thoughtsTokenCount":891}})", false));
    CHECK(s.reply().usage.prompt_tokens == top);
    CHECK(s.reply().usage.cached_prompt_tokens == top);
    CHECK(s.reply().usage.completion_tokens == top);
    CHECK(s.reply().usage.total() == top);
    // Negative and non-integer counts are 0.
    CHECK(s.on_data(R"({"usageMetadata":{"promptTokenCount":-1,"cachedContentTokenCount":1e300,"candidatesTokenCount":-9223372036854775808,"thoughtsTokenCount":"7"}})", false));
    CHECK(s.reply().usage.prompt_tokens == 0);
    CHECK(s.reply().usage.cached_prompt_tokens == 0);
    CHECK(s.reply().usage.completion_tokens == 0);
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
