// OpenAI-compatible providers end to end: real HTTP to the loopback upstream speaking Groq's and
// DeepSeek's wire formats and failure modes, through Chain<Groq<5>, DeepSeek, Template>.

#include <cascade/cascade.hpp>
#include <cascade/provider/openai_compatible.hpp>

#include "support/loopback.hpp"
#include "support/run.hpp"
#include <boost/json/parse.hpp>
#include "support/wire.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::test::Loopback;
using cascade::test::Reply;
namespace wire = cascade::test::wire;

namespace {

constexpr char const* groq_path = "/openai/v1/chat/completions";
constexpr char const* deepseek_path = "/chat/completions";

cascade::ProviderConfig groq_config(Loopback const& up, int keys = 5) {
    auto cfg = cascade::Groq<5>::defaults();
    cfg.base_url = up.base_url("/openai/v1");
    for (int i = 1; i <= keys; ++i) cfg.keys.emplace_back("gsk_test_key_" + std::to_string(i));
    cfg.key_limits = {};  // budgets are tested on their own
    cfg.http.attempt_timeout = 500ms;
    return cfg;
}

cascade::ProviderConfig deepseek_config(Loopback const& up) {
    auto cfg = cascade::DeepSeek::defaults();
    cfg.base_url = up.base_url();
    cfg.keys.emplace_back("sk-deepseek-test-key");
    cfg.http.attempt_timeout = 500ms;
    return cfg;
}

using Seed = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::Template>;

struct Fixture {
    Loopback groq_up, deepseek_up;
    asio::io_context io;
    Seed chain;
    Fixture(int groq_keys = 5)
        : chain(io.get_executor(), cascade::Groq<5>(groq_config(groq_up, groq_keys)), cascade::DeepSeek(deepseek_config(deepseek_up)),
                cascade::Template{[](cascade::Request const& r) { return "template: " + r.prompt(); }}) {
        deepseek_up.otherwise(deepseek_path, wire::deepseek_ok("deepseek answer"));
    }
    cascade::Completion ask(std::string prompt = "Summarise Q3") {
        auto req = cascade::Request::chat("You write reports.", std::move(prompt));
        return cascade::test::run(io, chain.complete(req));
    }
};

bool has_fault(cascade::Attempt const& a, Fault f) { return a.fault == cascade::make_error_code(f); }

} // namespace

TEST_CASE("the seed's chain answers from groq1 with usage and cost from the response", "[providers][groq]") {
    Fixture f;
    f.groq_up.otherwise(groq_path, wire::groq_ok("groq answer", 86, 220));
    auto c = f.ask();
    CHECK(c.label == "groq1");
    CHECK(c.text == "groq answer");
    CHECK(c.model == "llama-3.3-70b-versatile");
    CHECK(c.usage.prompt_tokens == 86);
    CHECK(c.usage.completion_tokens == 220);
    // Groq's free tier costs nothing; its list prices say what a paid key would cost.
    CHECK(c.cost_usd == 0.0);
    CHECK(c.cost_known);  // free, and known to be: not an unpriced tier
    CHECK(cascade::Groq<5>::defaults().prices.list_cost(c.usage) == Approx((86 * 0.59 + 220 * 0.79) / 1e6));
    auto seen = f.groq_up.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].key == "gsk_test_key_1");
    CHECK(seen[0].target == groq_path);
    CHECK(seen[0].body.find(R"("model":"llama-3.3-70b-versatile")") != std::string::npos);
}

TEST_CASE("the caller's model, sampling fields and extra reach the body, and the answer carries the upstream's id and created",
          "[providers][groq][request]") {
    Fixture f;
    f.groq_up.otherwise(groq_path, wire::groq_ok("groq answer"));
    auto req = cascade::Request::chat("You write reports.", "Summarise Q3");
    req.model = "llama-3.1-8b-instant";
    req.seed = 7;
    req.stop = {"END"};
    req.extra["service_tier"] = "auto";
    auto c = cascade::test::run(f.io, f.chain.complete(req));
    CHECK(c.label == "groq1");
    CHECK(c.id == "chatcmpl-9313d961-5ea4-4f2c-967f-6b6c1ff7b40a");
    CHECK(c.created == 1756814248);
    auto seen = f.groq_up.requests();
    REQUIRE(seen.size() == 1);
    auto body = boost::json::parse(seen[0].body).as_object();
    CHECK(body.at("model").as_string() == "llama-3.1-8b-instant");
    CHECK(body.at("seed").as_int64() == 7);
    CHECK(body.at("stop").as_array().at(0).as_string() == "END");
    CHECK(body.at("service_tier").as_string() == "auto");
    CHECK_FALSE(body.contains("temperature"));
    CHECK_FALSE(body.contains("max_tokens"));
}

TEST_CASE("key 1 answering 1010: one request reaches Groq, the next tier answers, labelled so", "[providers][groq][cloudflare]") {
    Fixture f;
    f.groq_up.otherwise(groq_path, wire::cloudflare_1010());
    auto c = f.ask();
    CHECK(f.groq_up.hits(groq_path) == 1);
    CHECK(c.label == "deepseek");
    CHECK(c.text == "deepseek answer");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "groq1");
    CHECK(c.trail[0].http_status == 403);
    CHECK(has_fault(c.trail[0], Fault::blocked));
    // The provider stays skipped: no second request to Groq.
    auto again = f.ask("another prompt");
    CHECK(again.label == "deepseek");
    CHECK(f.groq_up.hits(groq_path) == 1);
    CHECK(f.chain.circuit_open(0));
    // The skip names the tier, not a key: no key of it was involved.
    REQUIRE(again.trail.size() == 1);
    CHECK(again.trail[0].label == "groq");
    CHECK(has_fault(again.trail[0], Fault::circuit_open));
}

TEST_CASE("key 1 answering 429 with retry-after 30: later requests go to key 2 without touching key 1", "[providers][groq]") {
    Fixture f;
    f.groq_up.queue(groq_path, wire::groq_429(30), "gsk_test_key_1");
    f.groq_up.otherwise(groq_path, wire::groq_ok("from a fresh key"));
    auto first = f.ask();
    CHECK(first.label == "groq2");
    REQUIRE(first.trail.size() == 1);
    CHECK(first.trail[0].label == "groq1");
    CHECK(has_fault(first.trail[0], Fault::rate_limited));
    for (int i = 0; i < 5; ++i) CHECK(f.ask("prompt " + std::to_string(i)).label == "groq2");
    CHECK(f.groq_up.hits_for_key("gsk_test_key_1") == 1);
    CHECK(f.groq_up.hits_for_key("gsk_test_key_2") == 6);
    auto cool = f.chain.key_state(0, 0).cool_until - cascade::Clock::now();
    CHECK(cool > 25s);
    CHECK(cool <= 30s);
}

TEST_CASE("a key over its token budget is skipped with zero requests to it", "[providers][groq][budget]") {
    Loopback groq_up, deepseek_up;
    auto cfg = groq_config(groq_up, 2);
    cfg.key_limits.tokens_per_minute = 6000;
    groq_up.otherwise(groq_path, wire::groq_ok("ok", 1000, 2500));
    asio::io_context io;
    cascade::Chain<cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
    auto req = cascade::Request::chat("sys", "a report please");
    req.max_tokens = 2500;
    CHECK(cascade::test::run(io, chain.complete(req)).label == "groq1");  // 3,500 of key 1's 6,000 used
    CHECK(cascade::test::run(io, chain.complete(req)).label == "groq2");  // ~2,520 more would not fit
    CHECK(groq_up.hits_for_key("gsk_test_key_1") == 1);
    CHECK(groq_up.hits_for_key("gsk_test_key_2") == 1);
}

TEST_CASE("every key rate-limited: the chain moves to DeepSeek after one request per key", "[providers][groq]") {
    Fixture f(3);
    f.groq_up.otherwise(groq_path, wire::groq_429(60));
    auto c = f.ask();
    CHECK(c.label == "deepseek");
    CHECK(f.groq_up.hits(groq_path) == 3);
    REQUIRE(c.trail.size() == 3);
    CHECK(c.trail[2].label == "groq3");
    auto again = f.ask("next");
    CHECK(again.label == "deepseek");
    CHECK(f.groq_up.hits(groq_path) == 3);  // every key is known to be cooling
    REQUIRE(again.trail.size() == 1);
    CHECK(has_fault(again.trail[0], Fault::exhausted));
}

TEST_CASE("a response larger than the limit, a hang past the timeout and a mid-body close each move the chain on",
          "[providers][transport]") {
    Fixture f(1);
    Reply big = wire::groq_ok(std::string(20000, 'x'));
    Reply hang;
    hang.hang = true;
    Reply cut = wire::groq_ok(std::string(2000, 'y'));
    cut.close_mid_body = true;
    f.chain.retry_policy().max_retries = 0;

    SECTION("too large") {
        Loopback up;
        up.otherwise(groq_path, big);
        auto cfg = groq_config(up, 1);
        cfg.http.max_body_bytes = 4096;
        cascade::Chain<cascade::Groq<5>, cascade::Template> chain(f.io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
        auto req = cascade::Request::chat("sys", "p");
        auto c = cascade::test::run(f.io, chain.complete(req));
        CHECK(c.label == "fallback-template");
        REQUIRE(c.trail.size() == 1);
        CHECK(has_fault(c.trail[0], Fault::malformed_response));
    }
    SECTION("hang") {
        f.groq_up.otherwise(groq_path, hang);
        auto t0 = std::chrono::steady_clock::now();
        auto c = f.ask();
        CHECK(std::chrono::steady_clock::now() - t0 < 3s);
        CHECK(c.label == "deepseek");
        REQUIRE_FALSE(c.trail.empty());
        CHECK(has_fault(c.trail[0], Fault::timeout));
    }
    SECTION("mid-body close") {
        f.groq_up.otherwise(groq_path, cut);
        auto c = f.ask();
        CHECK(c.label == "deepseek");
        REQUIRE_FALSE(c.trail.empty());
        CHECK(has_fault(c.trail[0], Fault::network));
    }
}

TEST_CASE("the seed's chain returns the expected label for each scripted failure pattern", "[providers][e2e]") {
    struct Pattern {
        char const* name;
        std::function<void(Loopback&, Loopback&)> script;
        char const* label;
    };
    std::vector<Pattern> patterns{
        {"all well", [](Loopback& g, Loopback&) { g.otherwise(groq_path, wire::groq_ok("g")); }, "groq1"},
        {"429 on key 1", [](Loopback& g, Loopback&) {
             g.queue(groq_path, wire::groq_429(30), "gsk_test_key_1");
             g.otherwise(groq_path, wire::groq_ok("g"));
         }, "groq2"},
        {"401 on keys 1 and 2", [](Loopback& g, Loopback&) {
             g.otherwise(groq_path, wire::groq_401(), "gsk_test_key_1");
             g.otherwise(groq_path, wire::groq_401(), "gsk_test_key_2");
             g.otherwise(groq_path, wire::groq_ok("g"));
         }, "groq3"},
        {"1010 block", [](Loopback& g, Loopback&) { g.otherwise(groq_path, wire::cloudflare_1010_json()); }, "deepseek"},
        {"503 over capacity", [](Loopback& g, Loopback&) { g.otherwise(groq_path, wire::groq_503()); }, "deepseek"},
        {"413 too large", [](Loopback& g, Loopback&) { g.otherwise(groq_path, wire::groq_413()); }, "deepseek"},
        {"empty answer", [](Loopback& g, Loopback&) { g.otherwise(groq_path, wire::groq_empty()); }, "deepseek"},
        {"deepseek keep-alive lines first", [](Loopback& g, Loopback& d) {
             g.otherwise(groq_path, wire::cloudflare_1010());
             d.queue(deepseek_path, wire::deepseek_keepalive_then_ok("patient answer"));
         }, "deepseek"},
        {"groq blocked, deepseek out of credit", [](Loopback& g, Loopback& d) {
             g.otherwise(groq_path, wire::cloudflare_1010());
             d.queue(deepseek_path, wire::deepseek_402());
         }, "fallback-template"},
        {"groq blocked, deepseek blank lines then close", [](Loopback& g, Loopback& d) {
             g.otherwise(groq_path, wire::cloudflare_1010());
             d.otherwise(deepseek_path, wire::deepseek_blank_lines_then_close());
         }, "fallback-template"},
    };
    for (auto const& p : patterns) {
        DYNAMIC_SECTION(p.name) {
            Fixture f;
            f.chain.retry_policy().base_delay = 1ms;
            p.script(f.groq_up, f.deepseek_up);
            CHECK(f.ask().label == p.label);
        }
    }
}

TEST_CASE("a failing run never shows a key: not in the trail, the failure message, the stats or the logs", "[providers][secrets]") {
    Loopback up;
    // DeepSeek's 401 echoes a masked key; OpenAI's echoes its start and end.
    up.otherwise("/", wire::json(401, R"({"error":{"message":"Incorrect API key provided: sk-live-SECRET-abcdef123456. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})"));
    auto cfg = cascade::DeepSeek::defaults();
    cfg.base_url = up.base_url();
    cfg.keys.emplace_back("sk-live-SECRET-abcdef123456");
    asio::io_context io;
    cascade::Chain<cascade::DeepSeek> chain(io.get_executor(), cascade::DeepSeek(cfg));
    auto req = cascade::Request::chat("sys", "p");
    // Everything the process writes to stdout and stderr during the run goes to a file we search too.
    std::string captured_path = "/tmp/cascade-secret-capture-" + std::to_string(::getpid());
    std::fflush(stdout);
    std::fflush(stderr);
    int saved_out = ::dup(1), saved_err = ::dup(2);
    int capture = ::open(captured_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ::dup2(capture, 1);
    ::dup2(capture, 2);
    auto r = cascade::test::run(io, chain.complete(req));
    std::cout << chain.observer() << std::flush;
    if (!r) std::cerr << r.error().message() << std::endl;
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    ::close(saved_out);
    ::close(saved_err);
    ::close(capture);
    std::ifstream captured_file(captured_path);
    std::string captured((std::istreambuf_iterator<char>(captured_file)), std::istreambuf_iterator<char>());
    std::remove(captured_path.c_str());
    CHECK(captured.find("deepseek") != std::string::npos);  // the capture did record the run
    CHECK(captured.find("SECRET") == std::string::npos);
    REQUIRE_FALSE(r.has_value());
    std::ostringstream everything;
    everything << r.error().message() << "\n" << chain.observer().table() << "\n" << cfg.keys[0] << "\n";
    for (auto const& a : r.error().trail) everything << a.label << " " << a.detail << " " << a.fault.message() << "\n";
    try {
        r.value();
    } catch (std::exception const& e) {
        everything << e.what();
    }
    INFO(everything.str());
    CHECK(everything.str().find("SECRET") == std::string::npos);
    CHECK(everything.str().find("abcdef123456") == std::string::npos);
    CHECK(up.hits_for_key("sk-live-SECRET-abcdef123456") == 1);  // it was sent, to the provider only
}

TEST_CASE("a tier with no key is skipped as unconfigured and a bad base URL is a clear error", "[providers][config]") {
    asio::io_context io;
    auto cfg = cascade::Groq<5>::defaults();
    cascade::Chain<cascade::Groq<5>, cascade::Template> no_keys(io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, no_keys.complete(req));
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::unconfigured));

    cfg.keys.emplace_back("gsk_x");
    cfg.base_url = "api.groq.com/openai/v1";
    cascade::Chain<cascade::Groq<5>, cascade::Template> bad_url(io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
    auto b = cascade::test::run(io, bad_url.complete(req));
    REQUIRE(b.trail.size() == 1);
    CHECK(has_fault(b.trail[0], Fault::unconfigured));
    CHECK(b.trail[0].detail == "bad base URL for groq: URL 'api.groq.com/openai/v1' must start with http:// or https://");
}

TEST_CASE("keys and base URLs come from the environment", "[providers][config]") {
    ::setenv("GROQ_API_KEY_1", "gsk_env_one", 1);
    ::setenv("GROQ_API_KEY_2", "gsk_env_two", 1);
    ::setenv("GROQ_BASE_URL", "http://127.0.0.1:9/openai/v1", 1);
    cascade::Groq<5> groq;
    CHECK(groq.key_count() == 2);
    CHECK(groq.label(1) == "groq2");
    CHECK(groq.config().base_url == "http://127.0.0.1:9/openai/v1");
    CHECK(groq.key_id(0).size() == 16);
    CHECK(groq.key_id(0).find("gsk") == std::string::npos);
    ::unsetenv("GROQ_API_KEY_1");
    ::unsetenv("GROQ_API_KEY_2");
    ::unsetenv("GROQ_BASE_URL");
    cascade::Groq<1> one;
    CHECK(one.label(0) == "groq");
    cascade::Ollama local;
    CHECK(local.key_count() == 1);  // no key needed
}

TEST_CASE("smoke test against the real Groq and DeepSeek APIs, only when keys are in the environment", "[providers][smoke][!mayfail]") {
    bool const have_keys = std::getenv("GROQ_API_KEY") || std::getenv("GROQ_API_KEY_1") || std::getenv("DEEPSEEK_API_KEY");
    if (!have_keys || std::getenv("CI")) {
        WARN("skipped: set GROQ_API_KEY(_1..5) and/or DEEPSEEK_API_KEY, outside CI, to call the real APIs");
        return;
    }
    asio::io_context io;
    Seed chain(io.get_executor(), cascade::Groq<5>{}, cascade::DeepSeek{}, cascade::Template{});
    auto req = cascade::Request::chat("Answer in one word.", "What colour is the sky on a clear day?");
    req.max_tokens = 10;
    auto c = cascade::test::run(io, chain.complete(req));
    INFO(chain.observer().table());
    CHECK(c.label != "fallback-template");
}

// --- Streaming -----------------------------------------------------------------------------------------

namespace {
Reply groq_stream(std::vector<std::string> events) {
    Reply r = cascade::test::reply(200, "text/event-stream", "");
    r.headers.emplace_back("server", "cloudflare");
    for (auto& e : events) r.chunks.emplace_back(std::chrono::milliseconds(5), std::move(e));
    return r;
}
std::string const groq_last_chunk =
    "data: {\"id\":\"chatcmpl-fb9dd2dd-8139-4d7b-8dd6-cd8c6f5de724\",\"object\":\"chat.completion.chunk\",\"created\":1739895917,\"model\":\"llama-3.3-70b-versatile\",\"system_fingerprint\":\"fp_0a4b7a8df3\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_01jmcy1hwvfcxb6jj6fmxs95sz\",\"usage\":{\"queue_time\":0.902374807,\"prompt_tokens\":46,\"prompt_time\":0.005498424,\"completion_tokens\":84,\"completion_time\":0.305454545,\"total_tokens\":130,\"total_time\":0.310952969}}}\n\n";
std::string delta(std::string const& text) {
    return "data: {\"id\":\"chatcmpl-fb9dd2dd\",\"object\":\"chat.completion.chunk\",\"model\":\"llama-3.3-70b-versatile\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
           text + "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
}
} // namespace

TEST_CASE("a streamed Groq answer is assembled from its deltas, with usage from x_groq", "[providers][stream]") {
    Loopback groq_up, deepseek_up;
    auto cfg = groq_config(groq_up, 1);
    cfg.stream = true;
    groq_up.otherwise(groq_path, groq_stream({": keep-alive\n\n", delta("Hello"), delta(", world"), groq_last_chunk, "data: [DONE]\n\n"}));
    asio::io_context io;
    cascade::Chain<cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cascade::Groq<5>(cfg), cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto c = cascade::test::run(io, chain.complete(req));
    CHECK(c.label == "groq1");
    CHECK(c.text == "Hello, world");
    CHECK(c.finish_reason == "stop");
    CHECK(c.usage.prompt_tokens == 46);
    CHECK(c.usage.completion_tokens == 84);
    CHECK(groq_up.requests()[0].body.find("\"stream\":true") != std::string::npos);
}

TEST_CASE("an error event after a 200, or a stream cut before its end, moves the chain on", "[providers][stream]") {
    Loopback groq_up, deepseek_up;
    deepseek_up.otherwise(deepseek_path, wire::deepseek_ok("deepseek answer"));
    auto cfg = groq_config(groq_up, 1);
    cfg.stream = true;
    asio::io_context io;
    Seed chain(io.get_executor(), cascade::Groq<5>(cfg), cascade::DeepSeek(deepseek_config(deepseek_up)), cascade::Template{});
    chain.retry_policy().max_retries = 0;
    auto req = cascade::Request::chat("sys", "p");
    SECTION("error event") {
        groq_up.otherwise(groq_path, groq_stream({delta("Hel"), "data: {\"error\":{\"message\":\"Service Unavailable\",\"type\":\"internal_server_error\"}}\n\n"}));
        auto c = cascade::test::run(io, chain.complete(req));
        CHECK(c.label == "deepseek");
        REQUIRE(c.trail.size() == 1);
        CHECK(has_fault(c.trail[0], Fault::server_error));
        CHECK(c.trail[0].detail == "stream event: Service Unavailable");  // the tier says where it was
    }
    SECTION("cut before [DONE]") {
        groq_up.otherwise(groq_path, groq_stream({delta("Hel"), delta("lo")}));
        auto c = cascade::test::run(io, chain.complete(req));
        CHECK(c.label == "deepseek");
        REQUIRE(c.trail.size() == 1);
        CHECK(has_fault(c.trail[0], Fault::network));
    }
    SECTION("an error status before the stream is classified as usual") {
        groq_up.otherwise(groq_path, wire::cloudflare_1010());
        auto c = cascade::test::run(io, chain.complete(req));
        CHECK(c.label == "deepseek");
        CHECK(has_fault(c.trail[0], Fault::blocked));
    }
}

// --- The engine over the network -------------------------------------------------------------------

TEST_CASE("hedging over the network: the first attempt hangs, the hedge answers, the hanging connection is closed",
          "[providers][hedge]") {
    Loopback groq_up;
    Reply hang;
    hang.hang = true;
    groq_up.queue(groq_path, hang, "gsk_test_key_1");
    groq_up.otherwise(groq_path, wire::groq_ok("from the hedge"));
    asio::io_context io;
    using Hedged = cascade::DefaultPolicies::with_hedge<cascade::Hedge>::with_clock<cascade::ManualClock>;
    auto cfg = groq_config(groq_up, 2);
    cfg.http.attempt_timeout = 30s;  // the hang is not ended by a timeout, only by the hedge's win
    cascade::BasicChain<Hedged, cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cascade::Groq<5>(cfg),
                                                                            cascade::Template{});
    chain.hedge_policy().fixed_delay = 300ms;
    auto req = cascade::Request::chat("sys", "p");
    std::optional<cascade::Completion> got;
    asio::co_spawn(io, chain.complete(req), [&](std::exception_ptr, cascade::Completion c) { got = std::move(c); });
    // Real I/O until key 1's request is at the upstream; then the hedge delay passes in simulated time.
    auto const limit = std::chrono::steady_clock::now() + 10s;
    while (groq_up.hits(groq_path) < 1 && std::chrono::steady_clock::now() < limit) {
        io.restart();
        io.run_one_for(50ms);
    }
    REQUIRE(groq_up.hits_for_key("gsk_test_key_1") == 1);
    REQUIRE(chain.clock().waiting() == 1);  // the hedge's timer
    chain.clock().advance(300ms);
    while (!got && std::chrono::steady_clock::now() < limit) {
        io.restart();
        io.run_one_for(50ms);
    }
    REQUIRE(got);
    CHECK(got->label == "groq2");
    CHECK(got->text == "from the hedge");
    REQUIRE(got->trail.size() == 1);
    CHECK(got->trail[0].label == "groq1");
    CHECK(has_fault(got->trail[0], Fault::cancelled));
    // The hanging request's connection was closed, not left open nor put back in the pool.
    CHECK(groq_up.wait_hung_connections_closed(1, 5s));
    auto s = chain.observer().snapshot();
    CHECK(s[0].attempts == 2);
    CHECK(s[0].hedges == 1);
}

TEST_CASE("DeepSeek's answers cost its peak price on weekday mornings UTC, half otherwise, and cache hits their own price",
          "[providers][deepseek][prices]") {
    Loopback deepseek_up;
    deepseek_up.otherwise(deepseek_path, wire::deepseek_ok("priced", 5000, 2000, 4000));
    asio::io_context io;
    using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;
    cascade::BasicChain<Simulated, cascade::DeepSeek, cascade::Template> chain(io.get_executor(), cascade::DeepSeek(deepseek_config(deepseek_up)),
                                                                             cascade::Template{});
    auto ask_at = [&](std::int64_t utc_seconds) {
        chain.clock().set_utc(std::chrono::system_clock::time_point(std::chrono::seconds(utc_seconds)));
        auto req = cascade::Request::chat("sys", "p");
        return cascade::test::run_simulated(io, chain.clock(), chain.complete(req));
    };
    double const peak = (1000 * 0.30 + 4000 * 0.006 + 2000 * 1.20) / 1e6;  // 1,000 missed, 4,000 hit, 2,000 out
    auto monday_7 = ask_at(1'796'022'000);                                // Monday 2026-11-30 07:00 UTC
    CHECK(monday_7.label == "deepseek");
    CHECK(monday_7.usage.cached_prompt_tokens == 4000);
    CHECK(monday_7.cost_usd == Approx(peak));
    CHECK(ask_at(1'796'040'000).cost_usd == Approx(peak / 2));           // Monday 12:00 UTC
    CHECK(ask_at(1'795'849'200).cost_usd == Approx(peak / 2));           // Saturday 07:00 UTC
    CHECK(ask_at(1'796'022'000 - 3'601).cost_usd == Approx(peak / 2));   // Monday 05:59:59 UTC: between the peaks
    CHECK(ask_at(1'796'022'000 + 10'799).cost_usd == Approx(peak));      // Monday 09:59:59 UTC: the peak's last second
    CHECK(ask_at(1'796'022'000 + 10'800).cost_usd == Approx(peak / 2));  // Monday 10:00 UTC: off-peak again
}

TEST_CASE("with the manual clock, a chain whose key cools for ten minutes answers after a simulated wait", "[providers][wait]") {
    Loopback groq_up;
    groq_up.queue(groq_path, wire::groq_429(600));
    groq_up.otherwise(groq_path, wire::groq_ok("ten minutes later"));
    asio::io_context io;
    using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;
    cascade::ChainConfig cc;
    cc.max_wait = 15min;
    cascade::BasicChain<Simulated, cascade::Groq<5>, cascade::Template> chain(io.get_executor(), cc, cascade::Groq<5>(groq_config(groq_up, 1)),
                                                                               cascade::Template{});
    auto req = cascade::Request::chat("sys", "p");
    auto const start = chain.clock().now();
    auto c = cascade::test::run_simulated(io, chain.clock(), chain.complete(req));
    CHECK(c.label == "groq1");
    CHECK(c.text == "ten minutes later");
    CHECK(chain.clock().now() - start >= 600s);  // and at most a second's spread after
    CHECK(chain.clock().now() - start < 601s);
    CHECK(groq_up.hits_for_key("gsk_test_key_1") == 2);
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0], Fault::rate_limited));
}

TEST_CASE("the deadline ends a hanging attempt through the transport, with no timer of the chain's, and reads deadline_exceeded",
          "[providers][deadline]") {
    Fixture f(1);
    Reply hang;
    hang.hang = true;
    f.groq_up.otherwise(groq_path, hang);
    auto req = cascade::Request::chat("You write reports.", "p");
    req.deadline = 200ms;  // shorter than the 500 ms attempt timeout
    auto c = cascade::test::run(f.io, f.chain.complete(req));
    CHECK(c.label == "fallback-template");  // the budget is spent: DeepSeek is not asked
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "groq1");
    CHECK(has_fault(c.trail[0], Fault::deadline_exceeded));
    CHECK(f.deepseek_up.hits(deepseek_path) == 0);
}
