// Streaming through a chain (`BasicChain::stream`), end to end over loopback upstreams that speak the
// OpenAI-compatible and Anthropic stream formats: failover before the first delta, hold-back, a typed
// `incomplete` after commit, cancellation that closes the upstream connection, many streams at once.
//
// The timeouts here are real (the transport's timers bound each read): they are set short (100-300 ms)
// and the pauses that trip them long (seconds), so no test depends on how fast the machine is.

#include <cascade/cascade.hpp>

#include "support/loopback.hpp"
#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::StreamEnd;
using cascade::test::Loopback;
using cascade::test::Reply;

namespace {

constexpr char const* path = "/v1/chat/completions";

std::string chunk(std::string const& text) {
    return "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
           text + "\"},\"finish_reason\":null}]}\n\n";
}
std::string const last_chunk =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
std::string const usage_chunk =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":7,\"total_tokens\":28}}\n\n";
std::string const done = "data: [DONE]\n\n";

// A stream of events, each after `gap`.
Reply sse(std::vector<std::string> events, std::chrono::milliseconds gap = 2ms) {
    Reply r = cascade::test::reply(200, "text/event-stream", "");
    for (auto& e : events) r.chunks.emplace_back(gap, std::move(e));
    return r;
}
// The words of a whole answer, as a stream that ends properly.
Reply answer(std::vector<std::string> words) {
    std::vector<std::string> ev;
    for (auto& w : words) ev.push_back(chunk(w));
    ev.push_back(last_chunk);
    ev.push_back(usage_chunk);
    ev.push_back(done);
    return sse(std::move(ev));
}

cascade::ProviderConfig provider(Loopback& up, std::string name, cascade::Prices prices = {1.0, 2.0}) {
    cascade::ProviderConfig c;
    c.name = std::move(name);
    c.base_url = up.base_url("/v1");
    c.model = "m";
    c.keys.emplace_back(c.name + "-key");
    c.prices = prices;
    c.http.attempt_timeout = 20s;
    return c;
}

using Two = cascade::Chain<cascade::OpenAICompatible, cascade::OpenAICompatible, cascade::Template>;
using TwoFallible = cascade::Chain<cascade::OpenAICompatible, cascade::OpenAICompatible>;

std::string templated(cascade::Request const& r) { return "template: " + r.prompt(); }

// Everything a stream gave: its deltas, then how it ended.
struct Taken {
    std::vector<std::string> deltas;
    cascade::StreamResult result;
    std::string text() const {
        std::string s;
        for (auto const& d : deltas) s += d;
        return s;
    }
};

asio::awaitable<Taken> take(cascade::TextStream s) {
    Taken t;
    while (auto d = co_await s.next()) t.deltas.push_back(std::move(*d));
    t.result = s.result();
    co_return t;
}

template <class Chain>
Taken stream(asio::io_context& io, Chain& chain, cascade::StreamOptions opts = {}) {
    auto req = cascade::Request::chat("You write reports.", "Summarise Q3");
    auto s = chain.stream(req, std::move(opts));
    return cascade::test::run(io, take(std::move(s)));
}

bool has_fault(cascade::Attempt const& a, Fault f) { return a.fault == cascade::make_error_code(f); }

} // namespace

TEST_CASE("a stream delivers each delta as it arrives, then the answer's label, usage, cost and time to first token",
          "[stream]") {
    Loopback a, b;
    a.otherwise(path, answer({"Revenue ", "grew ", "12%."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    auto t = stream(io, chain);
    CHECK(t.deltas == std::vector<std::string>{"Revenue ", "grew ", "12%."});
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result);
    CHECK(t.result.completion.label == "first");
    CHECK(t.result.completion.text == "Revenue grew 12%.");
    CHECK(t.result.completion.finish_reason == "stop");
    CHECK(t.result.completion.usage.prompt_tokens == 21);
    CHECK(t.result.completion.usage.completion_tokens == 7);
    CHECK_FALSE(t.result.completion.usage.estimated);
    CHECK(t.result.completion.cost_usd == Approx((21 * 1.0 + 7 * 2.0) / 1e6));
    CHECK(t.result.completion.trail.empty());
    CHECK(t.result.deltas == 3);
    CHECK(t.result.time_to_first_token.count() > 0);
    CHECK(t.result.time_to_first_token <= t.result.completion.latency);
    auto seen = a.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].body.find("\"stream\":true") != std::string::npos);
    CHECK(seen[0].body.find("\"include_usage\":true") != std::string::npos);
    CHECK(seen[0].headers["accept"] == "text/event-stream");
    CHECK(b.requests().empty());
    auto rows = chain.observer().snapshot();
    REQUIRE_FALSE(rows.empty());
    CHECK(rows[0].streams == 1);
    CHECK(rows[0].streams_incomplete == 0);
    CHECK(rows[0].first_token_total.count() > 0);
    CHECK(chain.observer().table().find("mean_ttft_ms") != std::string::npos);
}

TEST_CASE("a cut before the first token: the next tier answers and the caller sees only its deltas", "[stream][failover]") {
    Loopback a, b;
    Reply cut = sse({": keep-alive\n\n"});
    cut.cut_after_chunks = true;
    a.otherwise(path, std::move(cut));
    b.otherwise(path, answer({"Second ", "tier."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    chain.retry_policy().max_retries = 0;
    auto t = stream(io, chain);
    CHECK(t.deltas == std::vector<std::string>{"Second ", "tier."});
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "second");
    REQUIRE(t.result.completion.trail.size() == 1);
    CHECK(t.result.completion.trail[0].label == "first");
    CHECK(has_fault(t.result.completion.trail[0], Fault::network));
}

TEST_CASE("no first token within the first-token timeout: the next tier answers", "[stream][failover]") {
    Loopback a, b;
    a.otherwise(path, sse({chunk("too late"), last_chunk, done}, 10s));  // nothing for ten seconds
    b.otherwise(path, answer({"On ", "time."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    cascade::StreamOptions opts;
    opts.first_token_timeout = 200ms;
    auto const t0 = std::chrono::steady_clock::now();
    auto t = stream(io, chain, opts);
    auto const took = std::chrono::steady_clock::now() - t0;
    CHECK(t.text() == "On time.");
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "second");
    REQUIRE(t.result.completion.trail.size() == 1);
    CHECK(has_fault(t.result.completion.trail[0], Fault::timeout));
    CHECK(t.result.completion.trail[0].detail.find("no first token") != std::string::npos);
    CHECK(a.hits(path) == 1);  // a missed first token is not retried on the same key
    CHECK(took < 10s);         // the first tier's ten-second silence was not waited out
}

TEST_CASE("a stall after commit ends the stream incomplete with the delivered text, within the stall timeout", "[stream][incomplete]") {
    Loopback a, b;
    Reply r = sse({chunk("One "), chunk("two "), chunk("three ")});
    r.chunks.emplace_back(10s, chunk("never"));
    a.otherwise(path, std::move(r));
    b.otherwise(path, answer({"Not ", "used."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    cascade::StreamOptions opts;
    opts.stall_timeout = 300ms;
    auto const t0 = std::chrono::steady_clock::now();
    auto t = stream(io, chain, opts);
    auto const took = std::chrono::steady_clock::now() - t0;
    CHECK(t.text() == "One two three ");
    REQUIRE(t.result.end == StreamEnd::incomplete);
    CHECK_FALSE(t.result);
    CHECK(t.result.error == cascade::make_error_code(Fault::timeout));
    CHECK(t.result.completion.text == "One two three ");
    CHECK(t.result.completion.label == "first");
    CHECK(t.result.completion.usage.estimated);
    CHECK_FALSE(t.result.completion.cost_known);
    REQUIRE_FALSE(t.result.completion.trail.empty());
    CHECK(t.result.completion.trail.back().detail.find("stalled") != std::string::npos);
    CHECK(b.requests().empty());  // text reached the caller: no other tier may add to it unseen
    INFO("the stream ended " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after it began");
    CHECK(took < 300ms + 3s);  // the stall timeout and a margin, far below the ten-second pause
}

TEST_CASE("an error event after 5 deltas, or a stream without [DONE], ends the stream incomplete", "[stream][incomplete]") {
    Loopback a, b;
    b.otherwise(path, answer({"Not ", "used."}));
    std::vector<std::string> five{chunk("a"), chunk("b"), chunk("c"), chunk("d"), chunk("e")};
    SECTION("an error event") {
        auto ev = five;
        ev.push_back("data: {\"error\":{\"message\":\"Service Unavailable\",\"type\":\"internal_server_error\"}}\n\n");
        a.otherwise(path, sse(ev));
    }
    SECTION("no [DONE], no finish reason") {
        a.otherwise(path, sse(five));
    }
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    auto t = stream(io, chain);
    CHECK(t.text() == "abcde");
    CHECK(t.deltas.size() == 5);
    REQUIRE(t.result.end == StreamEnd::incomplete);
    CHECK(t.result.completion.text == "abcde");
    CHECK(t.result.error);
    CHECK(t.result.completion.label == "first");
    CHECK(b.requests().empty());
    auto rows = chain.observer().snapshot();
    REQUIRE_FALSE(rows.empty());
    CHECK(rows[0].streams == 1);
    CHECK(rows[0].streams_incomplete == 1);
}

TEST_CASE("a refusal inside the hold-back: the next tier answers and the caller never saw the refusal", "[stream][hold-back]") {
    Loopback a, b;
    a.otherwise(path, answer({"I'm sorry, ", "but I can't ", "help with that."}));
    b.otherwise(path, answer({"Here is ", "the summary ", "of Q3."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    chain.retry_policy().max_retries = 0;
    cascade::StreamOptions opts;
    opts.hold_chars = 20;
    auto t = stream(io, chain, opts);
    CHECK(t.text() == "Here is the summary of Q3.");
    for (auto const& d : t.deltas) CHECK(d.find("sorry") == std::string::npos);
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "second");
    REQUIRE(t.result.completion.trail.size() == 1);
    CHECK(has_fault(t.result.completion.trail[0], Fault::rejected));
    CHECK(t.result.completion.trail[0].detail.find("refusal") != std::string::npos);
    // The held start came out as one delta once 20 characters were in, then the rest as it arrived.
    REQUIRE(t.deltas.size() == 2);
    CHECK(t.deltas[0] == "Here is the summary ");
}

TEST_CASE("a hold-back the answer ends inside: the whole answer is judged and delivered", "[stream][hold-back]") {
    Loopback a, b;
    a.otherwise(path, answer({"Short."}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    cascade::StreamOptions opts;
    opts.hold_chars = 400;
    auto t = stream(io, chain, opts);
    CHECK(t.deltas == std::vector<std::string>{"Short."});
    CHECK(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "first");
}

TEST_CASE("the caller cancels after 3 deltas: the upstream connection is closed within 50 ms", "[stream][cancel]") {
    Loopback a, b;
    Reply r = sse({chunk("one "), chunk("two "), chunk("three ")});
    r.chunks.emplace_back(10s, chunk("four"));
    a.otherwise(path, std::move(r));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    auto req = cascade::Request::chat("sys", "p");
    std::chrono::steady_clock::time_point cancelled_at;
    auto consume = [&](cascade::TextStream s) -> asio::awaitable<Taken> {
        Taken t;
        while (auto d = co_await s.next()) {
            t.deltas.push_back(std::move(*d));
            if (t.deltas.size() == 3) {
                cancelled_at = std::chrono::steady_clock::now();
                s.cancel();
            }
        }
        t.result = s.result();
        co_return t;
    };
    auto s = chain.stream(req);
    auto op = consume(std::move(s));
    auto t = cascade::test::run(io, std::move(op));
    CHECK(t.deltas.size() == 3);
    CHECK(t.result.end == StreamEnd::cancelled);
    CHECK(t.result.completion.text == "one two three ");
    REQUIRE(a.wait_chunked_closed(1, 5s));
    auto const closed = a.chunked_closed().at(0);
    auto const after = std::chrono::duration_cast<std::chrono::microseconds>(closed - cancelled_at);
    INFO("the upstream saw the connection close " << after.count() << " us after cancel()");
    CHECK(after < 50ms);
    CHECK(b.requests().empty());
}

TEST_CASE("a tier that cannot stream delivers its answer as one delta, and the template streams at once", "[stream][template]") {
    Loopback a, b;
    a.otherwise(path, cascade::test::reply(503, "application/json", R"({"error":{"message":"down","type":"server_error"}})"));
    b.otherwise(path, cascade::test::reply(503, "application/json", R"({"error":{"message":"down","type":"server_error"}})"));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    chain.retry_policy().max_retries = 0;
    auto t = stream(io, chain);
    CHECK(t.deltas == std::vector<std::string>{"template: Summarise Q3"});
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "fallback-template");
    CHECK(t.result.completion.origin == cascade::Origin::fallback);
    CHECK(t.result.completion.trail.size() == 2);
}

TEST_CASE("a fallible chain with no answer before any delta: failed, with the last fault and the trail", "[stream]") {
    Loopback a, b;
    a.otherwise(path, cascade::test::reply(401, "application/json", R"({"error":{"message":"Invalid API Key","code":"invalid_api_key"}})"));
    b.otherwise(path, cascade::test::reply(401, "application/json", R"({"error":{"message":"Invalid API Key","code":"invalid_api_key"}})"));
    asio::io_context io;
    TwoFallible chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")));
    auto t = stream(io, chain);
    CHECK(t.deltas.empty());
    REQUIRE(t.result.end == StreamEnd::failed);
    CHECK(t.result.error == cascade::make_error_code(Fault::unauthorized));
    CHECK(t.result.completion.trail.size() == 2);
}

TEST_CASE("async_stream: a per-delta handler, then the result through a completion token", "[stream][token]") {
    Loopback a, b;
    a.otherwise(path, answer({"x", "y", "z"}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    std::vector<std::string> seen;
    auto req = cascade::Request::chat("sys", "p");
    auto fut = chain.async_stream(req, {}, [&](std::string_view d) { seen.emplace_back(d); }, asio::use_future);
    io.run();
    auto r = fut.get();
    CHECK(seen == std::vector<std::string>{"x", "y", "z"});
    CHECK(r.end == StreamEnd::complete);
    CHECK(r.completion.text == "xyz");
}

TEST_CASE("an Anthropic tier streams its text_delta events", "[stream][anthropic]") {
    Loopback a;
    auto ev = [](std::string type, std::string data) { return "event: " + type + "\ndata: " + data + "\n\n"; };
    a.otherwise("/v1/messages",
                sse({ev("message_start", R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}})"),
                     ev("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"),
                     ev("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})"),
                     ev("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}})"),
                     ev("content_block_stop", R"({"type":"content_block_stop","index":0})"),
                     ev("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})"),
                     ev("message_stop", R"({"type":"message_stop"})")}));
    asio::io_context io;
    auto cfg = cascade::Anthropic<1>::defaults();
    cfg.base_url = a.base_url();
    cfg.keys.emplace_back("sk-ant-test");
    cascade::Chain<cascade::Anthropic<1>, cascade::Template> chain(io.get_executor(), cascade::Anthropic<1>(cfg), cascade::Template{templated});
    auto t = stream(io, chain);
    CHECK(t.deltas == std::vector<std::string>{"Hello", " there"});
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.finish_reason == "end_turn");
    CHECK(t.result.completion.usage.prompt_tokens == 25);
    CHECK(t.result.completion.usage.completion_tokens == 15);
    CHECK(a.requests().at(0).body.find("\"stream\":true") != std::string::npos);
}

TEST_CASE("100 concurrent streams on 2 threads each deliver their own whole answer", "[stream][concurrency]") {
    Loopback a, b;
    a.otherwise(path, answer({"alpha ", "beta ", "gamma ", "delta"}));
    asio::io_context io;
    Two chain(io.get_executor(), cascade::OpenAICompatible(provider(a, "first")), cascade::OpenAICompatible(provider(b, "second")),
              cascade::Template{templated});
    constexpr int n = 100;
    std::atomic<int> complete{0}, right{0};
    auto one = [&](int i) -> asio::awaitable<void> {
        auto req = cascade::Request::chat("sys", "question " + std::to_string(i));
        auto s = chain.stream(req);
        std::string text;
        while (auto d = co_await s.next()) text += *d;
        if (s.result().end == StreamEnd::complete) ++complete;
        if (text == "alpha beta gamma delta" && s.result().completion.text == text) ++right;
    };
    for (int i = 0; i < n; ++i) asio::co_spawn(io, one(i), asio::detached);
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(complete == n);
    CHECK(right == n);
    CHECK(a.hits(path) == n);
}

TEST_CASE("a Gemini API tier streams from streamGenerateContent?alt=sse", "[stream][gemini]") {
    Loopback g;
    auto ev = [](std::string data) { return "data: " + data + "\r\n\r\n"; };
    g.otherwise("/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                sse({ev(R"({"candidates":[{"content":{"parts":[{"text":"Revenue"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-flash"})"),
                     ev(R"({"candidates":[{"content":{"parts":[{"text":" grew."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"totalTokenCount":13},"modelVersion":"gemini-2.5-flash"})")}));
    asio::io_context io;
    cascade::GeminiApiConfig cfg;
    cfg.base_url = g.base_url("/v1beta");
    cfg.keys.emplace_back("AIza-test");
    cascade::Chain<cascade::GeminiApi, cascade::Template> chain(io.get_executor(), cascade::GeminiApi(cfg), cascade::Template{templated});
    auto t = stream(io, chain);
    CHECK(t.deltas == std::vector<std::string>{"Revenue", " grew."});
    REQUIRE(t.result.end == StreamEnd::complete);
    CHECK(t.result.completion.label == "gemini");
    CHECK(t.result.completion.finish_reason == "STOP");
    CHECK(t.result.completion.usage.prompt_tokens == 9);
    CHECK(t.result.completion.usage.completion_tokens == 4);
    auto seen = g.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
}

TEST_CASE("a Gemini stream cut after commit by an error chunk ends incomplete", "[stream][gemini][incomplete]") {
    Loopback g;
    auto ev = [](std::string data) { return "data: " + data + "\r\n\r\n"; };
    g.otherwise("/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                sse({ev(R"({"candidates":[{"content":{"parts":[{"text":"Partial"}],"role":"model"},"index":0}]})"),
                     ev(R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})")}));
    asio::io_context io;
    cascade::GeminiApiConfig cfg;
    cfg.base_url = g.base_url("/v1beta");
    cfg.keys.emplace_back("AIza-test");
    cascade::Chain<cascade::GeminiApi, cascade::Template> chain(io.get_executor(), cascade::GeminiApi(cfg), cascade::Template{templated});
    auto t = stream(io, chain);
    CHECK(t.text() == "Partial");
    REQUIRE(t.result.end == StreamEnd::incomplete);
    CHECK(t.result.error == cascade::make_error_code(Fault::overloaded));
    CHECK(chain.circuit_open(0));  // the overload still opens the tier's circuit for the next request
}
