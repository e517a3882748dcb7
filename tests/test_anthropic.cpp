// Anthropic's Messages API: the wire format on its own (request bodies, the documented 200, the documented
// event stream, odd numbers), then the tier end to end over the loopback upstream speaking Anthropic's real
// responses and failures, through Chain<Anthropic<2>, DeepSeek, Template> on simulated time.
// Bodies marked [V] are verbatim from shared/reference/provider-formats-2.md §1 (A1-A5),
// provider-wire-formats.md §7b or the issue named beside them; [R] bodies are assembled from documented fields.

#include <cascade/cascade.hpp>
#include <cascade/provider/anthropic.hpp>
#include <cascade/provider/anthropic_wire.hpp>

#include "support/loopback.hpp"
#include "support/run.hpp"
#include "support/wire.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::test::Loopback;
using cascade::test::Reply;
namespace wire = cascade::test::wire;

static_assert(cascade::FallibleTier<cascade::Anthropic<2>>, "Anthropic is a tier a chain composes like any provider");
static_assert(cascade::Tier<cascade::Anthropic<>>);
static_assert(cascade::detail::honours_deadline_v<cascade::Anthropic<2>>);

namespace {

constexpr auto u32_max = std::numeric_limits<std::uint32_t>::max();

// [V] A2: the Messages reference page's example response.
constexpr char const* documented_200 = R"({
  "content": [
    {
      "text": "Hi! My name is Claude.",
      "type": "text"
    }
  ],
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "model": "claude-3-7-sonnet-20250219",
  "role": "assistant",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "type": "message",
  "usage": {
    "input_tokens": 2095,
    "output_tokens": 503
  }
})";

// [V] A3: the streaming guide's basic text stream, event by event.
std::vector<std::string> const documented_stream{
    "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5-20250929\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\n",
    "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
    "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\n",
    "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n",
};

// [V] A3 / §7b A4: an error after the 200.
std::string const overloaded_event =
    "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";

// Feeds `events` through the SSE parser in pieces of `step` bytes into a fresh assembler.
cascade::anthropic::StreamAssembler assemble(std::vector<std::string> const& events, std::size_t step = 0) {
    std::string all;
    for (auto const& e : events) all += e;
    cascade::net::SseParser sse;
    cascade::anthropic::StreamAssembler a;
    auto on_event = [&](cascade::net::SseEvent const& e) { a.on_data(e.data, e.error); };
    if (step == 0) step = all.size();
    for (std::size_t at = 0; at < all.size(); at += step) sse.feed(std::string_view(all).substr(at, step), on_event);
    return a;
}

} // namespace

// --- The wire format -------------------------------------------------------------------------------------

TEST_CASE("a Messages body has system at the top level, the turns in order, max_tokens and temperature", "[anthropic][wire]") {
    cascade::Request req;
    req.messages = {{cascade::Role::system, "You are terse."},
                    {cascade::Role::user, "Hello"},
                    {cascade::Role::assistant, "Hi."},
                    {cascade::Role::system, "Answer in German."},
                    {cascade::Role::user, "And now?"}};
    req.max_tokens = 300;
    req.temperature = 0.2;
    auto v = boost::json::parse(cascade::anthropic::request_body(req, "claude-haiku-4-5", 4096));
    auto const& o = v.as_object();
    CHECK(o.at("model").as_string() == "claude-haiku-4-5");
    CHECK(o.at("max_tokens").as_int64() == 300);
    CHECK(o.at("system").as_string() == "You are terse.\n\nAnswer in German.");
    auto const& msgs = o.at("messages").as_array();
    REQUIRE(msgs.size() == 3);  // no system role among the messages
    CHECK(msgs[0].at("role").as_string() == "user");
    CHECK(msgs[0].at("content").as_string() == "Hello");
    CHECK(msgs[1].at("role").as_string() == "assistant");
    CHECK(msgs[1].at("content").as_string() == "Hi.");
    CHECK(msgs[2].at("role").as_string() == "user");
    CHECK(msgs[2].at("content").as_string() == "And now?");
    CHECK(o.at("temperature").as_double() == Approx(0.2));
    CHECK_FALSE(o.contains("stream"));

    auto streamed = boost::json::parse(cascade::anthropic::request_body(req, "claude-haiku-4-5", 4096, true));
    CHECK(streamed.at("stream").as_bool());
}

TEST_CASE("max_tokens, which Anthropic requires, falls back to the default and temperature is kept in 0..1", "[anthropic][wire]") {
    auto req = cascade::Request::chat("", "Hello");
    req.max_tokens = 0;
    req.temperature = 1.5;  // fine for OpenAI (0..2), out of Anthropic's range
    auto o = boost::json::parse(cascade::anthropic::request_body(req, "m", 4096)).as_object();
    CHECK(o.at("max_tokens").as_int64() == 4096);
    CHECK(o.at("temperature").as_double() == 1.0);
    CHECK_FALSE(o.contains("system"));  // no system message, no system field

    req.max_tokens = -5;
    req.temperature = -0.3;
    o = boost::json::parse(cascade::anthropic::request_body(req, "m", 0)).as_object();
    CHECK(o.at("max_tokens").as_int64() == 1);  // "Required range: x >= 1"
    CHECK(o.at("temperature").as_double() == 0.0);

    req.temperature = std::nan("");
    o = boost::json::parse(cascade::anthropic::request_body(req, "m", 64)).as_object();
    CHECK_FALSE(o.contains("temperature"));  // the model's default rather than an invalid number
}

TEST_CASE("an unset max_tokens is the tier's default and unset sampling fields are not sent", "[anthropic][wire]") {
    auto req = cascade::Request::chat("", "Hello");
    auto o = boost::json::parse(cascade::anthropic::request_body(req, "m", 2048)).as_object();
    CHECK(o.at("max_tokens").as_int64() == 2048);
    CHECK(o.at("model").as_string() == "m");
    for (auto field : {"temperature", "top_p", "stop_sequences", "seed", "response_format"}) {
        INFO(field);
        CHECK_FALSE(o.contains(field));
    }
}

TEST_CASE("top_p, stop sequences and a model override reach the Messages body", "[anthropic][wire]") {
    auto req = cascade::Request::chat("", "Hello");
    req.top_p = 0.9;
    req.stop = {"\n\nHuman:", "END"};
    req.model = "claude-sonnet-4-5";
    auto o = boost::json::parse(cascade::anthropic::request_body(req, "claude-haiku-4-5", 4096)).as_object();
    CHECK(o.at("model").as_string() == "claude-sonnet-4-5");
    CHECK(o.at("top_p").as_double() == Approx(0.9));
    auto const& stop = o.at("stop_sequences").as_array();
    REQUIRE(stop.size() == 2);
    CHECK(stop[0].as_string() == "\n\nHuman:");
    CHECK(stop[1].as_string() == "END");
    CHECK(cascade::anthropic::request_problem(req).empty());
}

TEST_CASE("response_format, seed and extra fields are named as what the Messages API cannot carry", "[anthropic][wire]") {
    auto req = cascade::Request::chat("", "Hello");
    CHECK(cascade::anthropic::request_problem(req).empty());
    auto with_format = req;
    with_format.response_format = R"({"type":"json_object"})";
    CHECK(cascade::anthropic::request_problem(with_format).find("response_format") != std::string::npos);
    auto with_seed = req;
    with_seed.seed = 7;
    CHECK(cascade::anthropic::request_problem(with_seed).find("seed") != std::string::npos);
    auto with_extra = req;
    with_extra.extra["metadata"] = boost::json::object{{"user_id", "u1"}};
    CHECK(cascade::anthropic::request_problem(with_extra).find("extra") != std::string::npos);
}

TEST_CASE("the documented 200 yields its text, model, stop reason and usage", "[anthropic][wire]") {
    auto r = cascade::anthropic::parse_reply(documented_200);
    REQUIRE(r.has_value());
    CHECK(r->text == "Hi! My name is Claude.");
    CHECK(r->id == "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    CHECK(r->model == "claude-3-7-sonnet-20250219");
    CHECK(r->stop_reason == "end_turn");
    CHECK(r->tokens.input_tokens == 2095);
    CHECK(r->tokens.output_tokens == 503);
    CHECK(r->tokens.usage().prompt_tokens == 2095);
    CHECK(r->tokens.usage().completion_tokens == 503);
    CHECK(r->tokens.cost({1.0, 5.0}) == (2095.0 * 1.0 + 503.0 * 5.0) / 1e6);
}

TEST_CASE("thinking blocks are not the answer and the text blocks are joined in order", "[anthropic][wire]") {
    // [R] extended thinking's response shape (a thinking block with its signature, a redacted one, text).
    auto r = cascade::anthropic::parse_reply(R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"thinking","thinking":"Let me analyze this step by step...","signature":"WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL"},{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},{"type":"text","text":"Based on my analysis, "},{"type":"text","text":"the answer is 42."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":700}})");
    REQUIRE(r.has_value());
    CHECK(r->text == "Based on my analysis, the answer is 42.");
    CHECK(r->tokens.output_tokens == 700);  // thinking is billed as output: output_tokens already counts it
}

TEST_CASE("cached input counts as prompt tokens and is priced at the cache multipliers", "[anthropic][wire][cost]") {
    // [R] A2's usage with the optional cache fields (names from the SDK's usage.py).
    auto r = cascade::anthropic::parse_reply(R"({"content":[{"type":"text","text":"ok"}],"id":"msg_1","model":"claude-haiku-4-5","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":100,"cache_creation_input_tokens":2000,"cache_read_input_tokens":30000,"output_tokens":40,"service_tier":"standard"}})");
    REQUIRE(r.has_value());
    CHECK(r->tokens.usage().prompt_tokens == 100 + 2000 + 30000);  // "the summation of" the three
    CHECK(r->tokens.usage().completion_tokens == 40);
    CHECK(r->tokens.cost({1.0, 5.0}) == Approx((100 * 1.0 + 2000 * 1.25 + 30000 * 0.1 + 40 * 5.0) / 1e6));
}

TEST_CASE("an error envelope, a body without content and a truncated body are not replies", "[anthropic][wire]") {
    using cascade::anthropic::ParseError;
    // [V] §7b A1.
    CHECK(cascade::anthropic::parse_reply(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})").error() ==
          ParseError::error_object);
    CHECK(cascade::anthropic::parse_reply(R"({"id":"msg_1","type":"message","role":"assistant"})").error() == ParseError::no_content);
    CHECK(cascade::anthropic::parse_reply(std::string(documented_200).substr(0, 80)).error() == ParseError::not_json);
    CHECK(cascade::anthropic::parse_reply("").error() == ParseError::not_json);
    CHECK(cascade::anthropic::parse_reply("[1,2]").error() == ParseError::not_json);
}

TEST_CASE("token counts saturate: negative or not an integer is 0, past 32 bits is the maximum, the sum does not wrap",
          "[anthropic][wire]") {
    auto r = cascade::anthropic::parse_reply(R"({"content":[],"usage":{"input_tokens":4294967296,"cache_creation_input_tokens":-7,"cache_read_input_tokens":2.5,"output_tokens":"15"}})");
    REQUIRE(r.has_value());
    CHECK(r->tokens.input_tokens == u32_max);
    CHECK(r->tokens.cache_creation_input_tokens == 0);
    CHECK(r->tokens.cache_read_input_tokens == 0);
    CHECK(r->tokens.output_tokens == 0);

    auto big = cascade::anthropic::parse_reply(R"({"content":[],"usage":{"input_tokens":4000000000,"cache_creation_input_tokens":4000000000,"cache_read_input_tokens":18446744073709551615,"output_tokens":4294967295}})");
    REQUIRE(big.has_value());
    CHECK(big->tokens.cache_read_input_tokens == u32_max);
    CHECK(big->tokens.usage().prompt_tokens == u32_max);  // 4e9 + 4e9 + max is not a small number
    CHECK(big->tokens.usage().completion_tokens == u32_max);
    CHECK(std::isfinite(big->tokens.cost({1.0, 5.0})));

    auto s = assemble({"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":-1,\"output_tokens\":1}}}\n\n",
                       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":99999999999999}}\n\n"});
    CHECK(s.reply().tokens.input_tokens == 0);
    CHECK(s.reply().tokens.output_tokens == u32_max);
}

TEST_CASE("the documented event stream assembles into one reply however it is split", "[anthropic][wire][stream]") {
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{100}}) {
        INFO("pieces of " << step << " bytes");
        auto a = assemble(documented_stream, step);
        CHECK_FALSE(a.errored());
        CHECK_FALSE(a.malformed());
        CHECK(a.complete());
        CHECK(a.reply().text == "Hello!");
        CHECK(a.reply().model == "claude-sonnet-4-5-20250929");
        CHECK(a.reply().id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");  // from message_start
        CHECK(a.reply().stop_reason == "end_turn");
        CHECK(a.reply().tokens.input_tokens == 25);   // from message_start
        CHECK(a.reply().tokens.output_tokens == 15);  // message_delta's cumulative count, not 1 + 15
    }
}

TEST_CASE("thinking deltas in a stream are not the answer", "[anthropic][wire][stream]") {
    // [R] the streaming guide's thinking_delta and signature_delta shapes, compact as its tool example is.
    auto a = assemble({documented_stream[0],
                       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
                       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me solve this step by step\"}}\n\n",
                       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"}}\n\n",
                       "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
                       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                       documented_stream[3], documented_stream[6], documented_stream[7]});
    CHECK(a.complete());
    CHECK(a.reply().text == "Hello");
}

TEST_CASE("an error event mid-stream stops the assembly and keeps its data as it came", "[anthropic][wire][stream]") {
    auto a = assemble({documented_stream[0], documented_stream[1], documented_stream[3], overloaded_event, documented_stream[4]});
    CHECK(a.errored());
    CHECK(a.error_message() == "Overloaded");
    CHECK(a.failed_data() == R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})");
    CHECK(a.reply().text == "Hello");  // nothing after the error is taken

    // An unreadable event is kept the same way, for the classifier.
    auto bad = assemble({documented_stream[0], "event: content_block_delta\ndata: {\"type\": \"content_block_del\n\n"});
    CHECK(bad.malformed());
    CHECK(bad.failed_data() == "{\"type\": \"content_block_del");
}

TEST_CASE("a stream cut before its stop reason is not complete and unknown events are ignored", "[anthropic][wire][stream]") {
    auto cut = assemble({documented_stream[0], documented_stream[1], documented_stream[3], documented_stream[4]});
    CHECK_FALSE(cut.complete());
    CHECK_FALSE(cut.errored());

    auto unknown = assemble({documented_stream[0], "event: something_new\ndata: {\"type\": \"something_new\", \"x\": 1}\n\n",
                             documented_stream[3], documented_stream[6], documented_stream[7]});
    CHECK(unknown.complete());
    CHECK_FALSE(unknown.malformed());
    CHECK(unknown.reply().text == "Hello");
}

TEST_CASE("a refusal is not accepted by the default accept policy", "[anthropic][accept]") {
    cascade::Completion c;
    c.text = "I can't help with that.";
    c.finish_reason = "refusal";
    auto req = cascade::Request::chat("", "p");
    auto verdict = cascade::AcceptNonEmpty{}.accept(c, req);
    CHECK_FALSE(verdict.accepted);
    CHECK(verdict.fault == Fault::rejected);
    c.finish_reason = "max_tokens";  // truncated, but an answer: kept, marked by its finish reason
    CHECK(cascade::AcceptNonEmpty{}.accept(c, req).accepted);
}

// --- The tier over the network ---------------------------------------------------------------------------

namespace {

constexpr char const* messages_path = "/v1/messages";
constexpr char const* deepseek_path = "/chat/completions";

// An RFC 3339 timestamp `from_now` after the wall clock's now, as anthropic-ratelimit-*-reset sends it.
std::string rfc3339_in(std::chrono::seconds from_now) {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + from_now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// The headers of A2's real 200 that every response of the API carries.
Reply with_api_headers(Reply r) {
    r.headers.emplace_back("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE");
    r.headers.emplace_back("anthropic-organization-id", "36562039-1ae4-48e6-ae28-1e517e3d2d12");
    r.headers.emplace_back("via", "1.1 google");
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("cf-ray", "972a33bb3977d246-FRA");
    return r;
}

// [V] A2: the documented 200, with the real 200's rate-limit headers.
Reply anthropic_ok(std::string body = documented_200) {
    auto r = with_api_headers(wire::json(200, std::move(body)));
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-limit", "80000");
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-remaining", "80000");
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-reset", "2025-08-21T12:40:59Z");
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-limit", "16000");
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-remaining", "16000");
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:41:00Z");
    r.headers.emplace_back("anthropic-ratelimit-requests-limit", "1000");
    r.headers.emplace_back("anthropic-ratelimit-requests-remaining", "999");
    r.headers.emplace_back("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z");
    r.headers.emplace_back("anthropic-ratelimit-tokens-limit", "96000");
    r.headers.emplace_back("anthropic-ratelimit-tokens-remaining", "96000");
    r.headers.emplace_back("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:59Z");
    return r;
}

// §7b A2: the 429 body [V] (Trae-AI/TRAE#625); its headers [R] from A4's names and formats: the input-token
// window is spent and resets at `input_reset`; the others have room and reset sooner.
Reply anthropic_429(std::optional<int> retry_after_s, std::string input_reset, std::string other_reset) {
    auto r = with_api_headers(wire::json(429, R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (---) of 20,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."}})"));
    if (retry_after_s) r.headers.emplace_back("retry-after", std::to_string(*retry_after_s));
    r.headers.emplace_back("anthropic-ratelimit-requests-limit", "50");
    r.headers.emplace_back("anthropic-ratelimit-requests-remaining", "49");
    r.headers.emplace_back("anthropic-ratelimit-requests-reset", other_reset);
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-limit", "20000");
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-remaining", "0");
    r.headers.emplace_back("anthropic-ratelimit-input-tokens-reset", input_reset);
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-limit", "4000");
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-remaining", "4000");
    r.headers.emplace_back("anthropic-ratelimit-output-tokens-reset", other_reset);
    return r;
}

// [V] anthropics/claude-code#66314 (2026-06-08): credits are gone, as a 400.
Reply anthropic_credit_400() {
    return with_api_headers(wire::json(400, R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."},"request_id":"req_011CbrFTcXhtiMzr3s6EocF7"})"));
}

// [V] §7b A1 (anthropics/anthropic-sdk-typescript#616), with its headers; the loopback sets content-length.
Reply anthropic_529() {
    Reply r = wire::json(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
    r.headers.emplace_back("cache-control", "no-store, no-cache");
    r.headers.emplace_back("cf-cache-status", "DYNAMIC");
    r.headers.emplace_back("cf-ray", "8e695a03eed4f9fd-SJC");
    r.headers.emplace_back("date", "Fri, 22 Nov 2024 13:44:10 GMT");
    r.headers.emplace_back("request-id", "req_01RCc7MbLyQNtGKzBTv8VCep");
    r.headers.emplace_back("server", "cloudflare");
    r.headers.emplace_back("via", "1.1 google");
    r.headers.emplace_back("x-robots-tag", "none");
    r.headers.emplace_back("x-should-retry", "true");
    return r;
}

// [V] ITSpecialist111/ai_automation_suggester#153: a key Anthropic does not know.
Reply anthropic_401() {
    return with_api_headers(wire::json(401, R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CYhr1kdGzCrPHfrhibMen"})"));
}

// A streamed 200: the events as chunks, with A2's note on a streamed 200's headers.
Reply anthropic_stream(std::vector<std::string> events) {
    Reply r = with_api_headers(cascade::test::reply(200, "text/event-stream; charset=utf-8", ""));
    r.headers.emplace_back("cache-control", "no-cache");
    for (auto& e : events) r.chunks.emplace_back(1ms, std::move(e));
    return r;
}

cascade::AnthropicConfig anthropic_config(Loopback const& up, bool stream = false) {
    auto cfg = cascade::Anthropic<2>::defaults();
    cfg.base_url = up.base_url();
    cfg.keys.emplace_back("sk-ant-api03-test-key-1");
    cfg.keys.emplace_back("sk-ant-api03-test-key-2");
    cfg.http.attempt_timeout = 2s;
    cfg.stream = stream;
    return cfg;
}

cascade::ProviderConfig deepseek_config(Loopback const& up) {
    auto cfg = cascade::DeepSeek::defaults();
    cfg.base_url = up.base_url();
    cfg.keys.emplace_back("sk-deepseek-test-key");
    cfg.http.attempt_timeout = 2s;
    return cfg;
}

using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;
using AnthropicChain = cascade::BasicChain<Simulated, cascade::Anthropic<2>, cascade::DeepSeek, cascade::Template>;

struct Fixture {
    Loopback anthropic_up, deepseek_up;
    asio::io_context io;
    AnthropicChain chain;
    explicit Fixture(bool stream = false)
        : chain(io.get_executor(), cascade::Anthropic<2>(anthropic_config(anthropic_up, stream)),
                cascade::DeepSeek(deepseek_config(deepseek_up)),
                cascade::Template{[](cascade::Request const& r) { return "template: " + r.prompt(); }}) {
        deepseek_up.otherwise(deepseek_path, wire::deepseek_ok("deepseek answer"));
        // Monday 2026-11-30 07:00 UTC: DeepSeek's peak hours, so its answers cost the list price.
        chain.clock().set_utc(std::chrono::system_clock::time_point(std::chrono::seconds(1'796'022'000)));
    }
    cascade::Completion ask(std::string prompt = "Summarise Q3") {
        auto req = cascade::Request::chat("You write reports.", std::move(prompt));
        return cascade::test::run_simulated(io, chain.clock(), chain.complete(req));
    }
    // How long key `k` of the Anthropic tier rests from now (zero when it does not).
    std::chrono::milliseconds rest_of_key(std::size_t k) const {
        auto left = chain.key_state(0, k).cool_until - chain.clock().now();
        return left > left.zero() ? std::chrono::duration_cast<std::chrono::milliseconds>(left) : 0ms;
    }
};

bool has_fault(cascade::Attempt const& a, Fault f) { return a.fault == cascade::make_error_code(f); }

} // namespace

TEST_CASE("a chain answers from anthropic1 with usage and cost from the response", "[anthropic][providers]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto c = f.ask();
    CHECK(c.label == "anthropic1");
    CHECK(c.text == "Hi! My name is Claude.");
    CHECK(c.model == "claude-3-7-sonnet-20250219");
    CHECK(c.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    CHECK(c.finish_reason == "end_turn");
    CHECK(c.usage.prompt_tokens == 2095);
    CHECK(c.usage.completion_tokens == 503);
    CHECK(c.cost_usd == (2095.0 * 1.0 + 503.0 * 5.0) / 1e6);  // Haiku 4.5's $1 / $5 per million
    CHECK(c.trail.empty());
    CHECK(f.deepseek_up.hits(deepseek_path) == 0);
}

TEST_CASE("the request reaches Anthropic with x-api-key, anthropic-version and a Messages body", "[anthropic][providers]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    f.ask("Summarise Q3");
    auto seen = f.anthropic_up.requests();
    REQUIRE(seen.size() == 1);
    auto const& r = seen[0];
    CHECK(r.method == "POST");
    CHECK(r.target == "/v1/messages");
    CHECK(r.headers.at("x-api-key") == "sk-ant-api03-test-key-1");
    CHECK(r.headers.at("anthropic-version") == "2023-06-01");
    CHECK(r.headers.at("content-type") == "application/json");
    CHECK(r.headers.count("authorization") == 0);  // the key goes in x-api-key only
    auto body = boost::json::parse(r.body).as_object();
    CHECK(body.at("model").as_string() == "claude-haiku-4-5");
    CHECK(body.at("max_tokens").as_int64() == 4096);  // unset in the request: the tier's default_max_tokens
    CHECK(body.at("system").as_string() == "You write reports.");
    auto const& msgs = body.at("messages").as_array();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].at("role").as_string() == "user");
    CHECK(msgs[0].at("content").as_string() == "Summarise Q3");
    CHECK_FALSE(body.contains("temperature"));  // unset in the request: the model's default
    CHECK_FALSE(body.contains("stream"));
}

TEST_CASE("a response_format Anthropic cannot carry fails its attempt as bad_request and the next tier answers with it",
          "[anthropic][providers]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto req = cascade::Request::chat("You write reports.", "Summarise Q3 as JSON");
    req.response_format = R"({"type":"json_object"})";
    auto c = cascade::test::run_simulated(f.io, f.chain.clock(), f.chain.complete(req));
    CHECK(c.label == "deepseek");
    CHECK(c.text == "deepseek answer");
    REQUIRE_FALSE(c.trail.empty());
    CHECK(c.trail[0].label.rfind("anthropic", 0) == 0);
    CHECK(has_fault(c.trail[0], Fault::bad_request));
    CHECK(c.trail[0].http_status == 0);
    CHECK(c.trail[0].detail.find("response_format") != std::string::npos);
    CHECK(f.anthropic_up.requests().empty());  // refused before the wire, not dropped on it
    auto seen = f.deepseek_up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(boost::json::parse(seen[0].body).at("response_format").at("type").as_string() == "json_object");
}

TEST_CASE("a 429 rate_limit_error with retry-after on key 1: key 2 answers, key 1 rests as long as it said",
          "[anthropic][providers][rate-limit]") {
    Fixture f;
    f.anthropic_up.queue(messages_path, anthropic_429(30, "2025-08-21T12:41:00Z", "2025-08-21T12:40:30Z"), "sk-ant-api03-test-key-1");
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto first = f.ask();
    CHECK(first.label == "anthropic2");
    CHECK(first.cost_usd == (2095.0 * 1.0 + 503.0 * 5.0) / 1e6);
    REQUIRE(first.trail.size() == 1);
    CHECK(first.trail[0].label == "anthropic1");
    CHECK(first.trail[0].http_status == 429);
    CHECK(has_fault(first.trail[0], Fault::rate_limited));
    CHECK(f.rest_of_key(0) == 30s);
    CHECK(f.rest_of_key(1) == 0ms);
    for (int i = 0; i < 3; ++i) CHECK(f.ask("prompt " + std::to_string(i)).label == "anthropic2");
    CHECK(f.anthropic_up.hits_for_key("sk-ant-api03-test-key-1") == 1);
    CHECK(f.anthropic_up.hits_for_key("sk-ant-api03-test-key-2") == 4);
}

TEST_CASE("a 429 without retry-after rests the key until the spent window's RFC 3339 reset", "[anthropic][providers][rate-limit]") {
    Fixture f;
    f.anthropic_up.queue(messages_path, anthropic_429(std::nullopt, rfc3339_in(40s), rfc3339_in(2s)), "sk-ant-api03-test-key-1");
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto c = f.ask();
    CHECK(c.label == "anthropic2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
    // Until anthropic-ratelimit-input-tokens-reset (the window with nothing remaining), not the chain's
    // 60 s default; the timestamp has whole seconds and the wall clock moved on meanwhile.
    CHECK(f.rest_of_key(0) > 35s);
    CHECK(f.rest_of_key(0) <= 40s);
}

TEST_CASE("a 400 'credit balance is too low' is quota_exhausted on that key and the next key answers", "[anthropic][providers][quota]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_credit_400(), "sk-ant-api03-test-key-1");
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto c = f.ask();
    CHECK(c.label == "anthropic2");
    CHECK(c.cost_usd == (2095.0 * 1.0 + 503.0 * 5.0) / 1e6);
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "anthropic1");
    CHECK(c.trail[0].http_status == 400);
    CHECK(has_fault(c.trail[0], Fault::quota_exhausted));
    CHECK(f.rest_of_key(0) == f.chain.config().circuit.quota_cooldown);  // the response says not how long
    CHECK(f.ask("again").label == "anthropic2");
    CHECK(f.anthropic_up.hits_for_key("sk-ant-api03-test-key-1") == 1);
}

TEST_CASE("a 529 overloaded_error leaves the tier at once: the next tier answers, the other key is not tried",
          "[anthropic][providers][overloaded]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_529());
    auto c = f.ask();
    CHECK(c.label == "deepseek");
    CHECK(c.text == "deepseek answer");
    CHECK(c.cost_usd == Approx((14 * 0.30 + 9 * 1.20) / 1e6));  // DeepSeek's peak prices, its usage
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "anthropic1");
    CHECK(c.trail[0].http_status == 529);
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(f.anthropic_up.hits(messages_path) == 1);  // no retry on key 1, no attempt on key 2
    CHECK(f.chain.circuit_open(0));
    auto again = f.ask("next");
    CHECK(again.label == "deepseek");
    CHECK(f.anthropic_up.hits(messages_path) == 1);  // resting: Anthropic is not asked
}

TEST_CASE("a 401 authentication_error disables that key and the next key answers", "[anthropic][providers]") {
    Fixture f;
    f.anthropic_up.otherwise(messages_path, anthropic_401(), "sk-ant-api03-test-key-1");
    f.anthropic_up.otherwise(messages_path, anthropic_ok());
    auto c = f.ask();
    CHECK(c.label == "anthropic2");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::unauthorized));
    CHECK(f.chain.key_state(0, 0).disabled);
    CHECK(f.ask("again").label == "anthropic2");
    CHECK(f.anthropic_up.hits_for_key("sk-ant-api03-test-key-1") == 1);
    CHECK(f.chain.tier<0>().key_id(0).find("sk-ant") == std::string::npos);  // shared state names keys by hash
}

TEST_CASE("a refusal stop_reason is answered by the next tier, its tokens counted", "[anthropic][providers][accept]") {
    Fixture f;
    // [R] A2's shape with stop_reason "refusal" (a value of the SDK's StopReason).
    f.anthropic_up.otherwise(messages_path, anthropic_ok(R"({"content":[{"type":"text","text":"I can't help with that."}],"id":"msg_01Refuse","model":"claude-haiku-4-5-20251001","role":"assistant","stop_reason":"refusal","stop_sequence":null,"type":"message","usage":{"input_tokens":12,"output_tokens":9}})"));
    auto c = f.ask();
    CHECK(c.label == "deepseek");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "anthropic1");
    CHECK(has_fault(c.trail[0], Fault::rejected));
}

TEST_CASE("a streamed answer is assembled from the documented events, with usage and cost", "[anthropic][providers][stream]") {
    Fixture f(true);
    f.anthropic_up.otherwise(messages_path, anthropic_stream(documented_stream));
    auto c = f.ask();
    CHECK(c.label == "anthropic1");
    CHECK(c.text == "Hello!");
    CHECK(c.model == "claude-sonnet-4-5-20250929");
    CHECK(c.finish_reason == "end_turn");
    CHECK(c.usage.prompt_tokens == 25);
    CHECK(c.usage.completion_tokens == 15);
    CHECK(c.cost_usd == (25.0 * 1.0 + 15.0 * 5.0) / 1e6);
    auto body = boost::json::parse(f.anthropic_up.requests().at(0).body).as_object();
    CHECK(body.at("stream").as_bool());
}

TEST_CASE("an overloaded_error event after the 200 leaves the tier as a 529 would", "[anthropic][providers][stream][overloaded]") {
    Fixture f(true);
    f.anthropic_up.otherwise(messages_path, anthropic_stream({documented_stream[0], documented_stream[1], documented_stream[3], overloaded_event}));
    auto c = f.ask();
    CHECK(c.label == "deepseek");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "anthropic1");
    CHECK(c.trail[0].http_status == 200);
    CHECK(c.trail[0].detail == "stream event: Overloaded");  // the tier says where it was
    CHECK(has_fault(c.trail[0], Fault::overloaded));
    CHECK(f.anthropic_up.hits(messages_path) == 1);
}

TEST_CASE("a stream cut before its stop reason moves the chain on as a network failure", "[anthropic][providers][stream]") {
    Fixture f(true);
    f.chain.retry_policy().max_retries = 0;
    f.anthropic_up.otherwise(messages_path, anthropic_stream({documented_stream[0], documented_stream[1], documented_stream[3]}));
    auto c = f.ask();
    CHECK(c.label == "deepseek");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::network));
    CHECK(c.trail[0].detail.rfind("stream ended before message_stop", 0) == 0);
}

TEST_CASE("keys, base URL, model and quota groups come from the environment", "[anthropic][config]") {
    ::setenv("ANTHROPIC_API_KEY_1", "sk-ant-env-one", 1);
    ::setenv("ANTHROPIC_API_KEYS", "sk-ant-env-two, sk-ant-env-three", 1);
    ::setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9", 1);
    ::setenv("ANTHROPIC_MODEL", "claude-sonnet-4-6", 1);
    ::setenv("ANTHROPIC_QUOTA_GROUPS", "org-a, org-a", 1);
    cascade::Anthropic<2> two;
    cascade::Anthropic<> one;
    ::unsetenv("ANTHROPIC_API_KEY_1");
    ::unsetenv("ANTHROPIC_API_KEYS");
    ::unsetenv("ANTHROPIC_BASE_URL");
    ::unsetenv("ANTHROPIC_MODEL");
    ::unsetenv("ANTHROPIC_QUOTA_GROUPS");
    CHECK(two.key_count() == 2);  // at most N keys
    CHECK(two.label(0) == "anthropic1");
    CHECK(two.label(1) == "anthropic2");
    CHECK(two.config().base_url == "http://127.0.0.1:9");
    CHECK(two.config().model == "claude-sonnet-4-6");
    CHECK(two.quota_group(0) == "org-a");
    CHECK(two.quota_group(1) == "org-a");
    CHECK(two.key_id(0).size() == 16);
    CHECK(two.key_id(0) != two.key_id(1));
    CHECK(one.key_count() == 1);
    CHECK(one.label(0) == "anthropic");

    cascade::Anthropic<2> none;  // nothing in the environment now
    CHECK(none.key_count() == 0);
    CHECK(none.config().base_url == "https://api.anthropic.com");
    CHECK(none.config().model == "claude-haiku-4-5");
}

TEST_CASE("a tier with no key is skipped as unconfigured", "[anthropic][config]") {
    asio::io_context io;
    cascade::Chain<cascade::Anthropic<2>, cascade::Template> chain(io.get_executor(), cascade::Anthropic<2>(cascade::Anthropic<2>::defaults()),
                                                                   cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::unconfigured));
}
