// The OpenAI chat-completions wire format, with the providers' real bodies (shared/reference, [V]).

#include <cascade/provider/openai_wire.hpp>

#include <boost/json/parse.hpp>

#include <cstdint>
#include <limits>

#include <catch2/catch.hpp>

using cascade::openai::ParseError;

TEST_CASE("a request body carries the model, the messages in order, max_tokens and temperature", "[openai][wire]") {
    auto req = cascade::Request::chat("You write reports.", "Summarise Q3.");
    req.max_tokens = 512;
    req.temperature = 0.2;
    auto v = boost::json::parse(cascade::openai::request_body(req, "llama-3.3-70b-versatile"));
    auto const& o = v.as_object();
    CHECK(o.at("model").as_string() == "llama-3.3-70b-versatile");
    auto const& msgs = o.at("messages").as_array();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].at("role").as_string() == "system");
    CHECK(msgs[1].at("role").as_string() == "user");
    CHECK(msgs[1].at("content").as_string() == "Summarise Q3.");
    CHECK(o.at("max_tokens").as_int64() == 512);
    CHECK(o.at("temperature").as_double() == Approx(0.2));
    CHECK_FALSE(o.contains("stream"));
}

TEST_CASE("a request that sets nothing sends only the model and the messages", "[openai][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    auto o = boost::json::parse(cascade::openai::request_body(req, "deepseek-chat")).as_object();
    CHECK(o.size() == 2);
    CHECK(o.contains("model"));
    CHECK(o.contains("messages"));
    CHECK_FALSE(o.contains("temperature"));
    CHECK_FALSE(o.contains("max_tokens"));
    req.max_tokens = 0;  // 0 or less: not sent, as before
    o = boost::json::parse(cascade::openai::request_body(req, "deepseek-chat")).as_object();
    CHECK_FALSE(o.contains("max_tokens"));
    req.temperature = 0.0;  // set to 0 is set: sent
    o = boost::json::parse(cascade::openai::request_body(req, "deepseek-chat")).as_object();
    REQUIRE(o.contains("temperature"));
    CHECK(o.at("temperature").as_double() == 0.0);
}

TEST_CASE("model, top_p, seed, stop and response_format round-trip through the body", "[openai][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    req.model = "gpt-4.1";
    req.top_p = 0.25;
    req.seed = 9'007'199'254'740'993;  // past a double's 53 bits: sent as an integer
    req.stop = {"END", "\n\n"};
    req.response_format = R"J({"type":"json_schema","json_schema":{"name":"answer","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}})J";
    auto o = boost::json::parse(cascade::openai::request_body(req, "gpt-4.1-mini")).as_object();
    CHECK(o.at("model").as_string() == "gpt-4.1");  // the request's model, not the tier's
    CHECK(o.at("top_p").as_double() == Approx(0.25));
    REQUIRE(o.at("seed").is_int64());
    CHECK(o.at("seed").as_int64() == 9'007'199'254'740'993);
    auto const& stop = o.at("stop").as_array();
    REQUIRE(stop.size() == 2);
    CHECK(stop[0].as_string() == "END");
    CHECK(stop[1].as_string() == "\n\n");
    CHECK(o.at("response_format") == boost::json::parse(*req.response_format));
    CHECK(cascade::openai::request_problem(req).empty());
}

TEST_CASE("a response_format that is not a JSON object is a request problem and is not sent", "[openai][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    req.response_format = "json_object";
    CHECK(cascade::openai::request_problem(req) == "response_format is not a JSON object");
    auto o = boost::json::parse(cascade::openai::request_body(req, "m")).as_object();
    CHECK_FALSE(o.contains("response_format"));
    req.response_format = "[]";
    CHECK_FALSE(cascade::openai::request_problem(req).empty());
}

TEST_CASE("extra fields pass through verbatim and cannot override model, messages, stream or set fields", "[openai][wire]") {
    auto req = cascade::Request::chat("", "Hi");
    req.temperature = 0.3;
    req.extra["reasoning_effort"] = "low";
    req.extra["logit_bias"] = boost::json::object{{"50256", -100}};
    req.extra["model"] = "evil-model";
    req.extra["messages"] = boost::json::array{};
    req.extra["stream"] = true;
    req.extra["stream_options"] = boost::json::object{{"include_usage", false}};
    req.extra["temperature"] = 1.9;
    auto o = boost::json::parse(cascade::openai::request_body(req, "m")).as_object();
    CHECK(o.at("reasoning_effort").as_string() == "low");
    CHECK(o.at("logit_bias") == req.extra.at("logit_bias"));
    CHECK(o.at("model").as_string() == "m");
    CHECK(o.at("messages").as_array().size() == 1);
    CHECK_FALSE(o.contains("stream"));
    CHECK_FALSE(o.contains("stream_options"));
    CHECK(o.at("temperature").as_double() == Approx(0.3));
    auto streamed = boost::json::parse(cascade::openai::request_body(req, "m", true)).as_object();
    CHECK(streamed.at("stream_options").at("include_usage").as_bool());
}

TEST_CASE("a reply and a stream carry the response's id, created and system_fingerprint", "[openai][wire]") {
    auto r = cascade::openai::parse_reply(
        R"({"id":"chatcmpl-abc","object":"chat.completion","created":1756814248,"model":"m","system_fingerprint":"fp_6507bcfb6f","choices":[{"message":{"content":"x"},"finish_reason":"stop"}]})");
    REQUIRE(r.has_value());
    CHECK(r->id == "chatcmpl-abc");
    CHECK(r->created == 1756814248);
    CHECK(r->system_fingerprint == "fp_6507bcfb6f");
    auto none = cascade::openai::parse_reply(R"({"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]})");
    REQUIRE(none.has_value());
    CHECK(none->id.empty());
    CHECK(none->created == 0);
    CHECK(none->system_fingerprint.empty());

    cascade::openai::StreamAssembler s;
    s.on_data(R"({"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1756814250,"model":"m","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":"He"}}]})", false);
    s.on_data(R"({"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1756814250,"model":"m","choices":[{"index":0,"delta":{"content":"y"},"finish_reason":"stop"}]})", false);
    s.on_data("[DONE]", false);
    CHECK(s.reply().text == "Hey");
    CHECK(s.reply().id == "chatcmpl-s1");
    CHECK(s.reply().created == 1756814250);
    CHECK(s.reply().system_fingerprint == "fp_x");
}

TEST_CASE("a Groq success body yields its text, model, finish reason and usage", "[openai][wire][groq]") {
    // G1, shortened content.
    auto body = R"({"id":"chatcmpl-9313d961-5ea4-4f2c-967f-6b6c1ff7b40a","object":"chat.completion","created":1756814248,"model":"llama-3.3-70b-versatile","choices":[{"index":0,"message":{"role":"assistant","content":"**Resumen ...**"},"logprobs":null,"finish_reason":"stop"}],"usage":{"queue_time":0.107146454,"prompt_tokens":86,"prompt_time":0.018903883,"completion_tokens":220,"completion_time":0.69108819,"total_tokens":306,"total_time":0.709992073},"usage_breakdown":null,"system_fingerprint":"fp_6507bcfb6f","x_groq":{"id":"req_01k454m1g2fst99rvda9y6109p"},"service_tier":"on_demand"})";
    auto r = cascade::openai::parse_reply(body);
    REQUIRE(r.has_value());
    CHECK(r->text == "**Resumen ...**");
    CHECK(r->model == "llama-3.3-70b-versatile");
    CHECK(r->finish_reason == "stop");
    CHECK(r->usage.prompt_tokens == 86);
    CHECK(r->usage.completion_tokens == 220);
}

TEST_CASE("a DeepSeek body after keep-alive blank lines parses, blank lines alone do not", "[openai][wire][deepseek]") {
    auto body = "\n\n\n" R"({"id":"b55e6172-d379-4806-b4e0-d21dd4b243b7","object":"chat.completion","created":1755780061,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":0},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":14},"system_fingerprint":"fp_feb633d1f5_prod0820_fp8_kvcache"})";
    auto r = cascade::openai::parse_reply(body);
    REQUIRE(r.has_value());
    CHECK(r->text == "Hello! How can I assist you today?");
    CHECK(r->usage.total() == 23);
    auto blank = cascade::openai::parse_reply("\n\n\n\n");
    REQUIRE_FALSE(blank.has_value());
    CHECK(blank.error() == ParseError::not_json);
}

TEST_CASE("a truncated body, an error object inside a 200 and a body without choices are parse errors",
          "[openai][wire]") {
    CHECK(cascade::openai::parse_reply(R"({"id":"x","choices":[{"message":{"content":"hal)").error() == ParseError::not_json);
    // R6: OpenRouter reports provider failures inside a 200.
    auto r6 = R"({"id":"cmpl-abc123","object":"chat.completion.chunk","created":1234567890,"model":"openai/gpt-4o","provider":"openai","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})";
    CHECK(cascade::openai::parse_reply(r6).error() == ParseError::error_object);
    CHECK(cascade::openai::parse_reply(R"({"id":"x","choices":[]})").error() == ParseError::no_choices);
}

TEST_CASE("a null content is an empty answer, not a parse error", "[openai][wire]") {
    auto r = cascade::openai::parse_reply(R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]})");
    REQUIRE(r.has_value());
    CHECK(r->text.empty());
}

TEST_CASE("cost is computed from usage and per-million prices", "[openai][wire]") {
    cascade::Prices p{0.59, 0.79};  // Groq llama-3.3-70b list prices
    CHECK(p.cost({1'000'000, 0}) == Approx(0.59));
    CHECK(p.cost({86, 220}) == Approx((86 * 0.59 + 220 * 0.79) / 1e6));
}

TEST_CASE("a token count past 32 bits saturates instead of wrapping to a small number", "[openai][wire][fuzz]") {
    // 4294967382 = 2^32 + 86: a cast would bill it as 86 tokens.
    auto r = cascade::openai::parse_reply(
        R"({"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4294967382,"completion_tokens":18446744073709551615}})");
    REQUIRE(r.has_value());
    CHECK(r->usage.prompt_tokens == std::numeric_limits<std::uint32_t>::max());
    CHECK(r->usage.completion_tokens == std::numeric_limits<std::uint32_t>::max());
    auto negative = cascade::openai::parse_reply(R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":-5}})");
    REQUIRE(negative.has_value());
    CHECK(negative->usage.prompt_tokens == 0);
}

TEST_CASE("a stream chunk whose usage adds up past 32 bits still sets the usage", "[openai][wire][fuzz]") {
    cascade::openai::StreamAssembler s;
    CHECK(s.on_data(R"({"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":4294967295,"completion_tokens":1}})", false));
    CHECK(s.reply().usage.prompt_tokens == std::numeric_limits<std::uint32_t>::max());
    CHECK(s.reply().usage.completion_tokens == 1);
}
