// The vocabulary and the small policies: faults as error codes, retry delays, acceptance, stats. No
// sockets, no coroutines. The engine's decisions and tier state are in test_engine.cpp.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/policy/observe.hpp>
#include <cascade/policy/retry.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <system_error>

using namespace std::chrono_literals;
using cascade::Fault;

// --- Faults ----------------------------------------------------------------------------------------

TEST_CASE("a fault is a boost and a std error code of the cascade.fault category", "[fault]") {
    boost::system::error_code ec = Fault::rate_limited;
    CHECK(ec.category().name() == std::string("cascade.fault"));
    CHECK(ec.message() == "rate_limited");
    CHECK(ec == Fault::rate_limited);
    std::error_code sec = Fault::blocked;
    CHECK(sec.value() == static_cast<int>(Fault::blocked));
    CHECK(sec.message() == "blocked");
    std::error_code converted = boost::system::error_code(Fault::timeout);
    CHECK(converted.message() == "timeout");
}

TEST_CASE("faults map to the transient and permanent conditions", "[fault]") {
    boost::system::error_code rate = Fault::rate_limited, srv = Fault::server_error, block = Fault::blocked,
                              auth = Fault::unauthorized, cancel = Fault::cancelled;
    CHECK(rate == cascade::Condition::transient);
    CHECK(srv == cascade::Condition::transient);
    CHECK(block == cascade::Condition::permanent);
    CHECK(auth == cascade::Condition::permanent);
    CHECK(cancel != cascade::Condition::transient);
    CHECK(cancel != cascade::Condition::permanent);
}

TEST_CASE("every fault has a distinct name", "[fault]") {
    std::set<std::string_view> names;
    for (std::size_t f = 1; f < cascade::fault_count; ++f) names.insert(cascade::to_string(static_cast<Fault>(f)));
    CHECK(names.size() == cascade::fault_count - 1);
    CHECK(names.count("unknown") == 0);
}

TEST_CASE("a failure's message names each attempt's label and fault but no key", "[fault]") {
    cascade::Failure f;
    f.code = Fault::blocked;
    cascade::Attempt a;
    a.label = "groq1";
    a.fault = Fault::blocked;
    a.http_status = 403;
    f.trail.push_back(a);
    CHECK(f.message() == "blocked; groq1: blocked (HTTP 403)");
}

// --- Request ---------------------------------------------------------------------------------------

TEST_CASE("a usage total saturates instead of wrapping", "[completion][fuzz]") {
    cascade::Usage u;
    u.prompt_tokens = 4294967295u;
    u.completion_tokens = 1;
    CHECK(u.total() == 4294967295u);
    u.prompt_tokens = 10;
    u.completion_tokens = 20;
    CHECK(u.total() == 30);
}

TEST_CASE("a chat request holds a system and a user message and estimates its tokens", "[request]") {
    auto r = cascade::Request::chat("sys", std::string(400, 'a'));
    REQUIRE(r.messages.size() == 2);
    CHECK(r.prompt().size() == 400);
    CHECK(r.estimated_prompt_tokens() == (3 + 16 + 400 + 16 + 3) / 4);
    CHECK_FALSE(r.max_tokens.has_value());  // not sent unless set
    CHECK(r.estimated_tokens() == r.estimated_prompt_tokens() + cascade::Request::budget_max_tokens);
    r.max_tokens = 1000;
    CHECK(r.estimated_tokens() == r.estimated_prompt_tokens() + 1000);
    r.max_tokens = 0;
    CHECK(r.estimated_tokens() == r.estimated_prompt_tokens() + 1024);
}

TEST_CASE("a chat request sets no sampling field, model or extra, so none reaches the wire", "[request]") {
    auto r = cascade::Request::chat("sys", "hi");
    CHECK_FALSE(r.model);
    CHECK_FALSE(r.temperature);
    CHECK_FALSE(r.top_p);
    CHECK_FALSE(r.seed);
    CHECK(r.stop.empty());
    CHECK_FALSE(r.response_format);
    CHECK(r.extra.empty());
    r.temperature = 0.2;  // assignment from a number sets it, as before
    CHECK(r.temperature.value_or(-1) == 0.2);
}

// --- Retry -----------------------------------------------------------------------------------------

TEST_CASE("backoff doubles per retry, is capped, and jitter stays within [delay/2, delay)", "[retry]") {
    cascade::Backoff b;
    b.base_delay = 100ms;
    b.max_delay = 300ms;
    b.max_retries = 5;
    cascade::Verdict v;
    v.retry_same = true;
    cascade::RetryContext ctx;
    ctx.verdict = &v;
    ctx.jitter = 0.0;
    ctx.retries_done = 0;
    CHECK(*b.next_delay(ctx) == 50ms);
    ctx.jitter = 0.999;
    CHECK(*b.next_delay(ctx) == 99ms);
    ctx.retries_done = 1;
    CHECK(*b.next_delay(ctx) == 199ms);
    ctx.retries_done = 4;
    CHECK(*b.next_delay(ctx) == 299ms);
    b.use_jitter = false;
    CHECK(*b.next_delay(ctx) == 300ms);
}

TEST_CASE("backoff honours the verdict's retry-after, and never waits past the deadline", "[retry]") {
    cascade::Backoff b;
    cascade::Verdict v;
    v.retry_same = true;
    v.cool_for = 2s;
    cascade::RetryContext ctx;
    ctx.verdict = &v;
    CHECK(*b.next_delay(ctx) == 2s);
    ctx.remaining = 2s;
    CHECK_FALSE(b.next_delay(ctx).has_value());
    ctx.remaining = 2001ms;
    CHECK(b.next_delay(ctx).has_value());
}

TEST_CASE("backoff does not retry what the verdict says retrying cannot help, nor past max_retries", "[retry]") {
    cascade::Backoff b;
    cascade::Verdict v;
    v.fault = Fault::rate_limited;
    v.retry_same = false;
    cascade::RetryContext ctx;
    ctx.verdict = &v;
    CHECK_FALSE(b.next_delay(ctx).has_value());
    v.retry_same = true;
    ctx.retries_done = b.max_retries;
    CHECK_FALSE(b.next_delay(ctx).has_value());
    CHECK_FALSE(cascade::NoRetry{}.next_delay(ctx).has_value());
}

// --- Accept ----------------------------------------------------------------------------------------

TEST_CASE("acceptance: empty is empty, short is rejected, a safety stop is rejected", "[accept]") {
    cascade::Request req;
    cascade::Completion c;
    c.text = " \n\t";
    auto a = cascade::AcceptNonEmpty{}.accept(c, req);
    CHECK_FALSE(a);
    CHECK(a.fault == Fault::empty);
    c.text = "fine";
    CHECK(cascade::AcceptNonEmpty{}.accept(c, req));
    auto m = cascade::MinLength<400>{}.accept(c, req);
    CHECK_FALSE(m);
    CHECK(m.fault == Fault::rejected);
    c.text = std::string(400, 'z');
    CHECK(cascade::MinLength<400>{}.accept(c, req));
    c.finish_reason = "SAFETY";
    CHECK_FALSE(cascade::MinLength<400>{}.accept(c, req));
    c.finish_reason = "content_filter";
    CHECK_FALSE(cascade::AcceptNonEmpty{}.accept(c, req));
}

// --- Stats -----------------------------------------------------------------------------------------

TEST_CASE("stats tables keep tiers apart and print a readable table", "[stats]") {
    cascade::Stats s;
    cascade::AttemptEvent e;
    e.tier = 1;
    e.tier_name = "deepseek";
    e.usage = {5, 7};
    e.cost_usd = 0.01;
    e.latency = 2000us;
    s.on_attempt(e);
    e.fault = Fault::server_error;
    s.on_attempt(e);
    auto snap = s.snapshot();
    REQUIRE(snap.size() == 2);
    CHECK(snap[1].attempts == 2);
    CHECK(snap[1].hits == 1);
    CHECK(snap[1].fault_count_of(Fault::server_error) == 1);
    CHECK(snap[1].prompt_tokens == 10);
    CHECK(snap[1].cost_usd == Approx(0.02));
    auto t = s.table();
    CHECK(t.find("deepseek") != std::string::npos);
    CHECK(t.find("server_error=1") != std::string::npos);
}
