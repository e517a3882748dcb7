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
