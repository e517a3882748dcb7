// The chain's driver over scripted in-process tiers: order, skipping, retry, acceptance, the infallible
// terminal, nesting, deadline, cancellation, waits, hedging, stats, async surface, concurrency and cache.
// Time that decisions depend on is simulated (a manual clock); the decisions themselves are tested
// action by action in test_engine.cpp.

#include <cascade/cascade.hpp>
#include <cascade/cache/memory.hpp>

#include "support/run.hpp"
#include "support/scripted_tier.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::Scope;
using cascade::test::ScriptedTier;
using cascade::test::Step;

namespace {

using Scripted2 = cascade::Chain<ScriptedTier, ScriptedTier>;
using ScriptedT = cascade::Chain<ScriptedTier, cascade::Template>;
// The same chains on a manual clock: waits, backoffs, deadlines and cooldowns in simulated time.
using Simulated = cascade::DefaultPolicies::with_clock<cascade::ManualClock>;
using SimT = cascade::BasicChain<Simulated, ScriptedTier, cascade::Template>;
using Sim2 = cascade::BasicChain<Simulated, ScriptedTier, ScriptedTier>;

cascade::Template make_template() {
    return cascade::Template{[](cascade::Request const& r) { return "template answer for: " + r.prompt(); }};
}

cascade::Request make_req(std::string prompt = "summarise the quarter") {
    return cascade::Request::chat("You write reports.", std::move(prompt));
}

template <class ChainT>
auto complete(asio::io_context& io, ChainT& chain, cascade::Request const& req) {
    if constexpr (std::is_same_v<typename ChainT::clock_type, cascade::ManualClock>)
        return cascade::test::run_simulated(io, chain.clock(), chain.complete(req));
    else
        return cascade::test::run(io, chain.complete(req));
}

bool has_fault(boost::system::error_code ec, Fault f) { return ec == cascade::make_error_code(f); }

} // namespace

// --- Compile-time guarantees -----------------------------------------------------------------------

static_assert(std::is_same_v<ScriptedT::result_type, cascade::Completion>,
              "a chain ending in an infallible tier returns Completion");
static_assert(std::is_same_v<Scripted2::result_type, cascade::Result>, "a chain of fallible tiers returns Result");
static_assert(ScriptedT::infallible && !Scripted2::infallible);
static_assert(std::is_same_v<decltype(std::declval<ScriptedT&>().complete(std::declval<cascade::Request const&>())),
                             asio::awaitable<cascade::Completion>>);
static_assert(cascade::FallibleTier<ScriptedTier>);
static_assert(cascade::InfallibleTier<cascade::Template>);
static_assert(cascade::FallibleTier<Scripted2>, "a fallible chain is a fallible tier");
static_assert(cascade::InfallibleTier<ScriptedT>, "an infallible chain is an infallible tier");
static_assert(std::is_same_v<cascade::Chain<ScriptedTier, ScriptedT>::result_type, cascade::Completion>,
              "nesting an infallible chain last makes the outer chain infallible");
static_assert(cascade::ClassifyPolicy<cascade::DefaultClassify> && cascade::RetryPolicy<cascade::Backoff> &&
              cascade::AcceptPolicy<cascade::AcceptNonEmpty> && cascade::ObservePolicy<cascade::Stats>);

// --- Order and fallback ----------------------------------------------------------------------------

TEST_CASE("tiers are tried in order and the first success answers, labelled by its tier", "[chain][order]") {
    asio::io_context io;
    ScriptedTier a("alpha"), b("beta");
    a.otherwise(Step::ok("from alpha"));
    Scripted2 chain(io.get_executor(), a, b);
    auto req = make_req();
    auto r = complete(io, chain, req);
    REQUIRE(r.has_value());
    CHECK(r->text == "from alpha");
    CHECK(r->label == "alpha");
    CHECK(r->trail.empty());
    CHECK(a.total_calls() == 1);
    CHECK(b.total_calls() == 0);
}

TEST_CASE("a failing tier hands over to the next and the trail records why", "[chain][order]") {
    asio::io_context io;
    ScriptedTier a("alpha"), b("beta");
    a.otherwise(Step::fail(Fault::bad_request));
    b.otherwise(Step::ok("from beta"));
    Scripted2 chain(io.get_executor(), a, b);
    auto req = make_req();
    auto r = complete(io, chain, req);
    REQUIRE(r.has_value());
    CHECK(r->label == "beta");
    REQUIRE(r->trail.size() == 1);
    CHECK(r->trail[0].label == "alpha");
    CHECK(has_fault(r->trail[0].fault, Fault::bad_request));
}

TEST_CASE("when every tier of a fallible chain fails the result is a Failure with the last fault and the whole trail",
          "[chain][order]") {
    asio::io_context io;
    ScriptedTier a("alpha"), b("beta");
    a.otherwise(Step::fail(Fault::bad_request));
    b.otherwise(Step::fail(Fault::context_too_long));
    Scripted2 chain(io.get_executor(), a, b);
    auto req = make_req();
    auto r = complete(io, chain, req);
    REQUIRE_FALSE(r.has_value());
    CHECK(has_fault(r.error().code, Fault::context_too_long));
    REQUIRE(r.error().trail.size() == 2);
    CHECK(r.error().trail[0].label == "alpha");
    CHECK(r.error().trail[1].label == "beta");
    CHECK_THROWS_AS(r.value(), boost::system::system_error);
}

TEST_CASE("a Failure carries the HTTP status of the last attempt, 0 when it got no response", "[chain][order][failure]") {
    asio::io_context io;
    ScriptedTier a("alpha"), b("beta");
    a.otherwise(Step::http(500, R"({"error":{"message":"boom"}})"));
    b.otherwise(Step::http(400, R"({"error":{"message":"Invalid 'messages': empty"}})"));
    Sim2 chain(io.get_executor(), a, b);  // simulated time: a 500's retries wait for nothing
    auto req = make_req();
    auto r = complete(io, chain, req);
    REQUIRE_FALSE(r.has_value());
    REQUIRE_FALSE(r.error().trail.empty());
    CHECK(r.error().trail.back().label == "beta");
    CHECK(r.error().http_status == 400);

    asio::io_context io2;
    ScriptedTier c("gamma"), d("delta");
    c.otherwise(Step::http(500, R"({"error":{"message":"boom"}})"));
    d.otherwise(Step::fail(Fault::network));
    Sim2 second(io2.get_executor(), c, d);
    auto r2 = complete(io2, second, req);
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().http_status == 0);  // the last attempt had no response, whatever came before
}

TEST_CASE("a tier that throws is a server_error and the next tier answers", "[chain][order]") {
    asio::io_context io;
    ScriptedTier a("alpha");
    a.otherwise(Step::throws());
    ScriptedT chain(io.get_executor(), a, make_template());
    auto req = make_req();
    cascade::Completion c = complete(io, chain, req);
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::server_error));
}

// --- Keys, cooldowns, circuits ---------------------------------------------------------------------

TEST_CASE("a rate-limited key hands over to the next key, labelled by key number", "[chain][keys]") {
    asio::io_context io;
    ScriptedTier groq("groq", 3);
    groq.then(Step::fail(Fault::rate_limited, Scope::key, 30s), 0);
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    auto c = complete(io, chain, req);
    CHECK(c.label == "groq2");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].label == "groq1");
    CHECK(c.trail[0].key == 0);
}

TEST_CASE("a key cooling down is not sent to until its cooldown passes", "[chain][keys][cooldown]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.then(Step::fail(Fault::rate_limited, Scope::key, 80ms), 0);
    SimT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    CHECK(complete(io, chain, req).label == "groq2");
    for (int i = 0; i < 5; ++i) CHECK(complete(io, chain, req).label == "groq2");
    CHECK(groq.calls(0) == 1);
    chain.clock().advance(100ms);
    CHECK(complete(io, chain, req).label == "groq1");
    CHECK(groq.calls(0) == 2);
}

TEST_CASE("a provider-wide block skips every remaining key and opens the tier's circuit", "[chain][keys][circuit]") {
    asio::io_context io;
    ScriptedTier groq("groq", 5);
    groq.then(Step::fail(Fault::blocked, Scope::provider, 1h), 0);
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    auto first = complete(io, chain, req);
    CHECK(first.label == "fallback-template");
    CHECK(groq.total_calls() == 1);
    CHECK(chain.circuit_open(0));
    auto second = complete(io, chain, req);
    CHECK(second.label == "fallback-template");
    CHECK(groq.total_calls() == 1);
    REQUIRE(second.trail.size() == 1);
    CHECK(has_fault(second.trail[0].fault, Fault::circuit_open));
    CHECK(second.trail[0].latency.count() == 0);
}

TEST_CASE("after its cooldown an open circuit lets one probe through, and a success closes it", "[chain][circuit]") {
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    groq.then(Step::fail(Fault::blocked, Scope::provider, 50ms));
    cascade::ChainConfig cfg;
    cfg.max_wait = 0ms;  // between requests, not within one
    SimT chain(io.get_executor(), cfg, groq, make_template());
    auto req = make_req();
    CHECK(complete(io, chain, req).label == "fallback-template");
    CHECK(chain.circuit_open(0));
    chain.clock().advance(70ms);
    auto probe = complete(io, chain, req);
    CHECK(probe.label == "groq");
    CHECK_FALSE(chain.circuit_open(0));
    CHECK(groq.total_calls() == 2);
}

TEST_CASE("a failed probe re-opens the circuit", "[chain][circuit]") {
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    groq.then(Step::fail(Fault::blocked, Scope::provider, 40ms)).then(Step::fail(Fault::blocked, Scope::provider, 1h));
    cascade::ChainConfig cfg;
    cfg.max_wait = 0ms;
    SimT chain(io.get_executor(), cfg, groq, make_template());
    auto req = make_req();
    complete(io, chain, req);
    chain.clock().advance(60ms);
    complete(io, chain, req);
    CHECK(groq.total_calls() == 2);
    CHECK(chain.circuit_open(0));
    complete(io, chain, req);
    CHECK(groq.total_calls() == 2);
}

TEST_CASE("when every tier is cooling, the chain waits for the earliest key and answers from it", "[chain][wait]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2), deepseek("deepseek");
    groq.then(Step::fail(Fault::rate_limited, Scope::key, 3s), 0).then(Step::fail(Fault::rate_limited, Scope::key, 2s), 1);
    groq.otherwise(Step::ok("after the wait"));
    deepseek.otherwise(Step::fail(Fault::quota_exhausted, Scope::key, 1h));
    cascade::BasicChain<Simulated, ScriptedTier, ScriptedTier, cascade::Template> chain(io.get_executor(), groq, deepseek,
                                                                                       make_template());
    auto req = make_req();
    auto const start = chain.clock().now();
    auto c = complete(io, chain, req);
    CHECK(c.label == "groq2");
    CHECK(c.text == "after the wait");
    // Simulated: nothing slept. The wake is spread over a quarter of the wait after the key is free.
    CHECK(chain.clock().now() - start >= 2s);
    CHECK(chain.clock().now() - start < 2500ms);
    REQUIRE(c.trail.size() == 3);
    CHECK(has_fault(c.trail[0].fault, Fault::rate_limited));
    CHECK(has_fault(c.trail[1].fault, Fault::rate_limited));
    CHECK(has_fault(c.trail[2].fault, Fault::quota_exhausted));
    // With waiting switched off, the same situation is the template's.
    ScriptedTier g2("groq", 1);
    g2.then(Step::fail(Fault::rate_limited, Scope::key, 2s));
    cascade::ChainConfig cfg;
    cfg.max_wait = 0ms;
    SimT no_wait(io.get_executor(), cfg, g2, make_template());
    CHECK(complete(io, no_wait, req).label == "fallback-template");
}

TEST_CASE("a retired model opens the tier's circuit for a day and is logged once", "[chain][circuit][model]") {
    asio::io_context io;
    ScriptedTier groq("groq", 3), deepseek("deepseek");
    groq.otherwise(Step::http(
        404, R"({"error":{"message":"The model `compound-beta-min` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}})"));
    std::vector<std::string> log;
    cascade::ChainConfig cfg;
    cfg.log = [&](std::string_view line) { log.emplace_back(line); };
    cascade::BasicChain<Simulated, ScriptedTier, ScriptedTier, cascade::Template> chain(io.get_executor(), cfg, groq, deepseek,
                                                                                       make_template());
    auto req = make_req();
    for (int i = 0; i < 3; ++i) CHECK(complete(io, chain, req).label == "deepseek");
    CHECK(groq.total_calls() == 1);  // one round trip, then the circuit: not one per key, not one per request
    REQUIRE(log.size() == 1);
    CHECK(log[0].find("'groq'") != std::string::npos);
    CHECK(log[0].find("model_unavailable") != std::string::npos);
    chain.clock().advance(23h);
    CHECK(chain.circuit_open(0));
    chain.clock().advance(2h);
    CHECK_FALSE(chain.circuit_open(0));
}

TEST_CASE("consecutive transient failures open the circuit at the threshold", "[chain][circuit]") {
    asio::io_context io;
    ScriptedTier flaky("flaky");
    flaky.otherwise(Step::fail(Fault::server_error));
    cascade::ChainConfig cfg;
    cfg.circuit.failure_threshold = 3;
    cascade::BasicChain<cascade::DefaultPolicies::with_retry<cascade::NoRetry>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), cfg, flaky, make_template());
    auto req = make_req();
    for (int i = 0; i < 3; ++i) complete(io, chain, req);
    CHECK(flaky.total_calls() == 3);
    CHECK(chain.circuit_open(0));
    complete(io, chain, req);
    CHECK(flaky.total_calls() == 3);
}

TEST_CASE("a key over its token budget is skipped with zero attempts", "[chain][keys][budget]") {
    asio::io_context io;
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    ScriptedTier groq("groq", 2, limits);
    groq.otherwise(Step::ok("an answer", {18, 2500}));
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    req.max_tokens = 2500;  // about 2,510 tokens a request: two fit in key 1's minute, the third does not
    CHECK(complete(io, chain, req).label == "groq1");
    CHECK(complete(io, chain, req).label == "groq1");
    CHECK(complete(io, chain, req).label == "groq2");
    CHECK(groq.calls(0) == 2);
    CHECK(groq.calls(1) == 1);
}

TEST_CASE("a request larger than a key's whole budget skips the tier as exhausted", "[chain][keys][budget]") {
    asio::io_context io;
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    ScriptedTier groq("groq", 2, limits);
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    req.max_tokens = 7000;
    auto c = complete(io, chain, req);
    CHECK(c.label == "fallback-template");
    CHECK(groq.total_calls() == 0);
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::exhausted));
}

TEST_CASE("an unauthorized key is disabled for good", "[chain][keys]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.then(Step::fail(Fault::unauthorized, Scope::key), 0);
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    CHECK(complete(io, chain, req).label == "groq2");
    CHECK(complete(io, chain, req).label == "groq2");
    CHECK(groq.calls(0) == 1);
    CHECK(chain.key_state(0, 0).disabled);
}

TEST_CASE("a tier with no key is skipped as unconfigured", "[chain][keys]") {
    asio::io_context io;
    ScriptedTier groq("groq", 0);
    ScriptedT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    auto c = complete(io, chain, req);
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::unconfigured));
    CHECK(groq.total_calls() == 0);
}

TEST_CASE("round-robin key order spreads requests over the keys", "[chain][keys]") {
    asio::io_context io;
    ScriptedTier groq("groq", 3);
    cascade::ChainConfig cfg;
    cfg.key_order = cascade::KeyOrder::round_robin;
    ScriptedT chain(io.get_executor(), cfg, groq, make_template());
    auto req = make_req();
    for (int i = 0; i < 6; ++i) complete(io, chain, req);
    CHECK(groq.calls(0) == 2);
    CHECK(groq.calls(1) == 2);
    CHECK(groq.calls(2) == 2);
}

// --- Classify policy -------------------------------------------------------------------------------

namespace {
// Treats HTTP 418 as a per-key rate limit; everything else as the default does.
struct TeapotClassify {
    cascade::Verdict classify(cascade::Observation const& o) const {
        if (o.status == 418) {
            cascade::Verdict v;
            v.fault = Fault::rate_limited;
            v.scope = Scope::key;
            v.cool_for = 1h;
            v.http_status = 418;
            return v;
        }
        return cascade::DefaultClassify{}.classify(o);
    }
};
} // namespace

TEST_CASE("a user classify policy decides what a raw response means", "[chain][classify]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.then(Step::http(418, "I'm a teapot"), 0);
    cascade::BasicChain<cascade::DefaultPolicies::with_classify<TeapotClassify>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), groq, make_template());
    auto req = make_req();
    auto c = complete(io, chain, req);
    CHECK(c.label == "groq2");
    REQUIRE(c.trail.size() == 1);
    CHECK(c.trail[0].http_status == 418);
    CHECK(has_fault(c.trail[0].fault, Fault::rate_limited));
    CHECK(chain.key_state(0, 0).cool_until > cascade::Clock::now() + 30min);
}

// --- Retry -----------------------------------------------------------------------------------------

TEST_CASE("a transient failure is retried on the same key with backoff", "[chain][retry]") {
    asio::io_context io;
    ScriptedTier deepseek("deepseek");
    deepseek.then(Step::fail(Fault::server_error, Scope::attempt, {}, true)).then(Step::ok("second time lucky"));
    SimT chain(io.get_executor(), deepseek, make_template());
    chain.retry_policy().use_jitter = false;
    auto req = make_req();
    auto const start = chain.clock().now();
    auto c = complete(io, chain, req);
    CHECK(chain.clock().now() - start == chain.retry_policy().base_delay);
    CHECK(c.label == "deepseek");
    CHECK(c.text == "second time lucky");
    CHECK(deepseek.total_calls() == 2);
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::server_error));
}

TEST_CASE("a retry does not go to a key that another request cooled during its backoff", "[chain][retry][cooldown]") {
    // Request A: key 1 answers 500 and A backs off. Meanwhile request B gets a 429 on key 1 (cooling it
    // for a minute) and moves to key 2. A's retry must go to key 2 as well, not to the cooling key 1.
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.then(Step::fail(Fault::server_error, Scope::attempt, {}, true), 0).then(Step::fail(Fault::rate_limited, Scope::key, 60s), 0);
    SimT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    std::vector<cascade::Completion> got;
    auto one = [&]() -> asio::awaitable<void> { got.push_back(co_await chain.complete(req)); };
    asio::co_spawn(io, one(), asio::detached);  // A: runs until its backoff
    asio::co_spawn(io, one(), asio::detached);  // B
    do cascade::test::poll(io);
    while (got.size() < 2 && chain.clock().advance_to_next());
    REQUIRE(got.size() == 2);
    CHECK(got[0].label == "groq2");
    CHECK(got[1].label == "groq2");
    CHECK(groq.calls(0) == 2);
    CHECK(groq.calls(1) == 2);
}

TEST_CASE("a retry does not go to a tier whose circuit another request opened during its backoff", "[chain][retry][circuit]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.then(Step::fail(Fault::server_error, Scope::attempt, {}, true), 0).then(Step::fail(Fault::blocked, Scope::provider, 1h), 0);
    SimT chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    std::vector<cascade::Completion> got;
    auto one = [&]() -> asio::awaitable<void> { got.push_back(co_await chain.complete(req)); };
    asio::co_spawn(io, one(), asio::detached);
    asio::co_spawn(io, one(), asio::detached);
    do cascade::test::poll(io);
    while (got.size() < 2 && chain.clock().advance_to_next());
    REQUIRE(got.size() == 2);
    CHECK(got[0].label == "fallback-template");
    CHECK(got[1].label == "fallback-template");
    CHECK(groq.total_calls() == 2);
}

TEST_CASE("retries stop after max_retries and the chain moves on", "[chain][retry]") {
    asio::io_context io;
    ScriptedTier deepseek("deepseek");
    deepseek.otherwise(Step::fail(Fault::server_error, Scope::attempt, {}, true));
    SimT chain(io.get_executor(), deepseek, make_template());
    chain.retry_policy().max_retries = 3;
    auto req = make_req();
    auto c = complete(io, chain, req);
    CHECK(c.label == "fallback-template");
    CHECK(deepseek.total_calls() == 4);
}

TEST_CASE("a rate limit is not retried on the same key", "[chain][retry]") {
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    groq.otherwise(Step::fail(Fault::rate_limited, Scope::key, 1s));
    cascade::ChainConfig cfg;
    cfg.max_wait = 0ms;  // the retry policy alone; waiting for the cooldown is tested above
    SimT chain(io.get_executor(), cfg, groq, make_template());
    auto req = make_req();
    complete(io, chain, req);
    CHECK(groq.total_calls() == 1);
}

TEST_CASE("a retry that would wait past the deadline is not made", "[chain][retry][deadline]") {
    asio::io_context io;
    ScriptedTier deepseek("deepseek");
    // The server asks for 10 s; the budget is 200 ms: no retry, straight to the template.
    deepseek.otherwise(Step::fail(Fault::server_error, Scope::attempt, 10s, true));
    cascade::ChainConfig cfg;
    cfg.deadline = 200ms;
    SimT chain(io.get_executor(), cfg, deepseek, make_template());
    auto req = make_req();
    auto const start = chain.clock().now();
    auto c = complete(io, chain, req);
    CHECK(chain.clock().now() == start);  // no time spent waiting
    CHECK(c.label == "fallback-template");
    CHECK(deepseek.total_calls() == 1);
}

// --- Accept ----------------------------------------------------------------------------------------

TEST_CASE("an answer shorter than the minimum length is rejected and the next tier answers", "[chain][accept]") {
    asio::io_context io;
    ScriptedTier a("alpha"), b("beta");
    a.otherwise(Step::ok(std::string(120, 'x'), {10, 30}, 0.001));
    b.otherwise(Step::ok(std::string(450, 'y')));
    cascade::BasicChain<cascade::DefaultPolicies::with_accept<cascade::MinLength<400>>, ScriptedTier, ScriptedTier> chain(
        io.get_executor(), a, b);
    auto req = make_req();
    auto r = complete(io, chain, req);
    REQUIRE(r.has_value());
    CHECK(r->label == "beta");
    REQUIRE(r->trail.size() == 1);
    CHECK(has_fault(r->trail[0].fault, Fault::rejected));
    auto stats = chain.observer().snapshot();
    CHECK(stats[0].completion_tokens == 30);  // a rejected answer still cost tokens
    CHECK(stats[0].cost_usd == Approx(0.001));
}

TEST_CASE("an empty answer is a failure of class empty", "[chain][accept]") {
    asio::io_context io;
    ScriptedTier a("alpha");
    a.otherwise(Step::ok("   \n"));
    ScriptedT chain(io.get_executor(), a, make_template());
    auto req = make_req();
    auto c = complete(io, chain, req);
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::empty));
}

// --- Infallible terminal ---------------------------------------------------------------------------

TEST_CASE("a chain ending in a template answers even when every other tier fails", "[chain][template]") {
    asio::io_context io;
    ScriptedTier a("alpha");
    a.otherwise(Step::fail(Fault::blocked, Scope::provider));
    ScriptedT chain(io.get_executor(), a, make_template());
    auto req = make_req("the Q3 numbers");
    cascade::Completion c = complete(io, chain, req);  // no error branch: the type says so
    CHECK(c.label == "fallback-template");
    CHECK(c.text == "template answer for: the Q3 numbers");
    CHECK(c.cost_usd == 0.0);
}

TEST_CASE("a template whose callable throws still answers with the fixed safe text", "[chain][template]") {
    asio::io_context io;
    cascade::Chain<cascade::Template> chain(
        io.get_executor(), cascade::Template{[](cascade::Request const&) -> std::string { throw std::logic_error("bug"); }});
    auto req = make_req();
    cascade::Completion c = complete(io, chain, req);
    CHECK(c.text == cascade::Template::safe_text);
    CHECK(c.label == "fallback-template");
}

// --- Nesting ---------------------------------------------------------------------------------------

TEST_CASE("a chain nests as a tier: its tiers label the answer and the outer trail shows its attempts",
          "[chain][nesting]") {
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    groq.otherwise(Step::fail(Fault::rate_limited, Scope::key, 1h));
    ScriptedTier us("vertex-pro/us-central1"), eu("vertex-pro/europe-west1");
    us.otherwise(Step::fail(Fault::rate_limited, Scope::key, 1h));
    eu.otherwise(Step::ok("from europe"));
    cascade::ChainConfig inner_cfg;
    inner_cfg.name = "vertex-pro";
    Scripted2 vertex(io.get_executor(), inner_cfg, us, eu);
    cascade::Chain<ScriptedTier, Scripted2, cascade::Template> chain(io.get_executor(), groq, std::move(vertex),
                                                                      make_template());
    auto req = make_req();
    cascade::Completion c = complete(io, chain, req);
    CHECK(c.label == "vertex-pro/europe-west1");
    CHECK(c.text == "from europe");
    REQUIRE(c.trail.size() == 2);
    CHECK(c.trail[0].label == "groq");
    CHECK(c.trail[1].label == "vertex-pro/us-central1");
    auto stats = chain.observer().snapshot();
    REQUIRE(stats.size() >= 2);
    CHECK(stats[1].name == "vertex-pro");
    CHECK(stats[1].hits == 1);
}

// --- Deadline and cancellation ---------------------------------------------------------------------

TEST_CASE("the chain's deadline cuts off a slow attempt and a fallible chain returns deadline_exceeded",
          "[chain][deadline]") {
    asio::io_context io;
    cascade::ManualClock clock;
    ScriptedTier slow("slow"), next("next");
    slow.use_clock(clock).otherwise(Step::ok().after(5s));
    cascade::ChainConfig cfg;
    cfg.deadline = 100ms;
    Sim2 chain(io.get_executor(), cfg, slow, next);
    chain.clock() = clock;
    auto req = make_req();
    auto const start = clock.now();
    auto r = complete(io, chain, req);
    CHECK(clock.now() - start == 100ms);
    REQUIRE_FALSE(r.has_value());
    CHECK(has_fault(r.error().code, Fault::deadline_exceeded));
    CHECK(slow.cancellations() == 1);
    CHECK(next.total_calls() == 0);
}

TEST_CASE("a request's own deadline overrides the chain's and an infallible chain still answers",
          "[chain][deadline]") {
    asio::io_context io;
    cascade::ManualClock clock;
    ScriptedTier slow("slow");
    slow.use_clock(clock).otherwise(Step::ok().after(5s));
    SimT chain(io.get_executor(), slow, make_template());
    chain.clock() = clock;
    auto req = make_req();
    req.deadline = 80ms;
    auto const start = clock.now();
    cascade::Completion c = complete(io, chain, req);
    CHECK(clock.now() - start == 80ms);
    CHECK(c.label == "fallback-template");
    REQUIRE(c.trail.size() == 1);
    CHECK(has_fault(c.trail[0].fault, Fault::deadline_exceeded));
}

TEST_CASE("a cancellation slot cancels the attempt in flight and the chain returns cancelled promptly",
          "[chain][cancel]") {
    asio::io_context io;
    cascade::ManualClock clock;
    ScriptedTier slow("slow"), next("next");
    slow.use_clock(clock).otherwise(Step::ok().after(5s));
    Sim2 chain(io.get_executor(), slow, next);
    chain.clock() = clock;
    asio::cancellation_signal sig;
    std::optional<cascade::Result> got;
    auto const start = clock.now();
    chain.async_complete(make_req(), asio::bind_cancellation_slot(sig.slot(), [&](cascade::Result r) { got = std::move(r); }));
    clock.async_wait_until(io.get_executor(), start + 50ms, [&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
    do cascade::test::poll(io);
    while (!got && clock.advance_to_next());
    CHECK(clock.now() - start == 50ms);
    REQUIRE(got.has_value());
    REQUIRE_FALSE(got->has_value());
    CHECK(has_fault(got->error().code, Fault::cancelled));
    CHECK(slow.cancellations() == 1);
    CHECK(next.total_calls() == 0);  // cancellation never triggers fallback
}

// --- Hedging ---------------------------------------------------------------------------------------

TEST_CASE("a hedged request: the slow attempt gets company after the delay, the first answer wins, the other is cancelled",
          "[chain][hedge]") {
    asio::io_context io;
    cascade::ManualClock clock;
    ScriptedTier groq("groq", 2);
    groq.use_clock(clock);
    groq.then(Step::ok("slow").after(10s), 0).then(Step::ok("quick", {10, 40}, 0.002).after(200ms), 1);
    using Hedged = Simulated::with_hedge<cascade::Hedge>;
    cascade::BasicChain<Hedged, ScriptedTier, cascade::Template> chain(io.get_executor(), groq, make_template());
    chain.clock() = clock;
    chain.hedge_policy().fixed_delay = 300ms;
    auto req = make_req();
    auto const start = clock.now();
    cascade::Completion c = complete(io, chain, req);
    CHECK(c.label == "groq2");
    CHECK(c.text == "quick");
    CHECK(clock.now() - start == 500ms);  // the hedge left at 300 ms and took 200 ms
    CHECK(groq.cancellations() == 1);
    REQUIRE(c.trail.size() == 1);  // the loser, cancelled
    CHECK(c.trail[0].label == "groq1");
    CHECK(has_fault(c.trail[0].fault, Fault::cancelled));
    auto s = chain.observer().snapshot();
    CHECK(s[0].attempts == 2);
    CHECK(s[0].hedges == 1);
    CHECK(s[0].hits == 1);
    CHECK(s[0].cost_usd == Approx(0.002));
}

// --- Stats -----------------------------------------------------------------------------------------

TEST_CASE("stats count attempts, hits, skips, faults by class, tokens and cost per tier", "[chain][stats]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2), deepseek("deepseek");
    groq.then(Step::fail(Fault::rate_limited, Scope::key, 1h), 0).then(Step::fail(Fault::rate_limited, Scope::key, 1h), 1);
    deepseek.otherwise(Step::ok("ok", {100, 200}, 0.25));
    cascade::Chain<ScriptedTier, ScriptedTier, cascade::Template> chain(io.get_executor(), groq, deepseek, make_template());
    auto req = make_req();
    complete(io, chain, req);
    complete(io, chain, req);
    auto s = chain.observer().snapshot();
    REQUIRE(s.size() == 2);  // the template has answered nothing yet
    CHECK(s[0].name == "groq");
    CHECK(s[0].attempts == 2);
    CHECK(s[0].hits == 0);
    CHECK(s[0].skips == 1);
    CHECK(s[0].fault_count_of(Fault::rate_limited) == 2);
    CHECK(s[0].fault_count_of(Fault::exhausted) == 1);
    CHECK(s[1].name == "deepseek");
    CHECK(s[1].hits == 2);
    CHECK(s[1].prompt_tokens == 200);
    CHECK(s[1].completion_tokens == 400);
    CHECK(s[1].cost_usd == Approx(0.5));
    auto table = chain.observer().table();
    CHECK(table.find("deepseek") != std::string::npos);
    CHECK(table.find("rate_limited=2") != std::string::npos);
}

namespace {
struct CountingObserver {
    std::atomic<int> attempts{0}, hits{0};
    void on_attempt(cascade::AttemptEvent const& e) {
        ++attempts;
        if (!e.fault) ++hits;
    }
};
} // namespace

TEST_CASE("a user observe policy receives every attempt", "[chain][stats]") {
    asio::io_context io;
    ScriptedTier a("alpha");
    a.then(Step::fail(Fault::bad_request));
    cascade::BasicChain<cascade::DefaultPolicies::with_observe<CountingObserver>, ScriptedTier, cascade::Template> chain(
        io.get_executor(), a, make_template());
    auto req = make_req();
    complete(io, chain, req);
    complete(io, chain, req);
    CHECK(chain.observer().attempts == 3);  // alpha failed, template answered; then alpha answered
    CHECK(chain.observer().hits == 2);
}

// --- Async surface ---------------------------------------------------------------------------------

TEST_CASE("async_complete works with callbacks, use_future, deferred and use_awaitable", "[chain][async]") {
    asio::io_context io;
    ScriptedTier a("alpha");
    ScriptedT chain(io.get_executor(), a, make_template());

    std::string via_callback;
    chain.async_complete(make_req(), [&](cascade::Completion c) { via_callback = c.label; });

    auto fut = chain.async_complete(make_req(), asio::use_future);

    std::string via_deferred;
    auto op = chain.async_complete(make_req(), asio::deferred);
    std::move(op)([&](cascade::Completion c) { via_deferred = c.label; });

    std::string via_awaitable;
    auto coro = [&]() -> asio::awaitable<void> {
        auto c = co_await chain.async_complete(make_req(), asio::use_awaitable);
        via_awaitable = c.label;
    };
    asio::co_spawn(io, coro(), asio::detached);

    io.run();
    CHECK(via_callback == "alpha");
    CHECK(fut.get().label == "alpha");
    CHECK(via_deferred == "alpha");
    CHECK(via_awaitable == "alpha");
}

// --- Concurrency -----------------------------------------------------------------------------------

TEST_CASE("one chain shared by many coroutines on two threads answers every request", "[chain][concurrency]") {
    asio::io_context io(2);
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 1'000'000;
    ScriptedTier groq("groq", 5, limits), deepseek("deepseek");
    // Key 1 is rate-limited for good; the others answer after a short delay or fail transiently.
    groq.then(Step::fail(Fault::rate_limited, Scope::key, 1h), 0);
    groq.otherwise(Step::ok("groq").after(1ms));
    deepseek.otherwise(Step::ok("deepseek"));
    cascade::ChainConfig cfg;
    cfg.key_order = cascade::KeyOrder::round_robin;
    cascade::Chain<ScriptedTier, ScriptedTier, cascade::Template> chain(io.get_executor(), cfg, groq, deepseek,
                                                                         make_template());
    constexpr int workers = 64, per_worker = 25;
    std::atomic<int> answered{0}, from_groq{0};
    auto one = [&](int i) -> asio::awaitable<void> {
        auto req = make_req("request " + std::to_string(i));
        auto c = co_await chain.complete(req);
        ++answered;
        if (c.label.rfind("groq", 0) == 0) ++from_groq;
    };
    // The first request alone trips key 1 (round robin starts there): once its failure is recorded no
    // request may pick the key again. (Requests already past their pick when it fails may still reach it:
    // on a loaded machine a thread can be preempted in between, so the workers start after.)
    asio::co_spawn(io, one(-1), asio::detached);
    io.run();
    io.restart();
    REQUIRE(groq.calls(0) == 1);
    auto worker = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < per_worker; ++i) co_await one(i);
    };
    for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(), asio::detached);
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(answered == workers * per_worker + 1);
    CHECK(from_groq == workers * per_worker + 1);
    CHECK(groq.calls(0) == 1);
    auto s = chain.observer().snapshot();
    CHECK(s[0].hits == static_cast<std::uint64_t>(workers * per_worker + 1));
    CHECK(s[0].attempts == static_cast<std::uint64_t>(workers * per_worker + 2));
}

TEST_CASE("hedged requests on two threads, some cut by their deadline: each answered once, no attempt outlives its request",
          "[chain][hedge][concurrency]") {
    asio::io_context io(2);
    ScriptedTier groq("groq", 3);
    groq.otherwise(Step::ok("groq").after(3ms));
    using Hedged = cascade::DefaultPolicies::with_hedge<cascade::Hedge>;
    cascade::BasicChain<Hedged, ScriptedTier, cascade::Template> chain(io.get_executor(), groq, make_template());
    chain.hedge_policy().fixed_delay = 1ms;  // most requests are hedged
    chain.hedge_policy().limits.max_ratio = 1.0;
    constexpr int workers = 32, per_worker = 10;
    std::atomic<int> answered{0}, from_template{0};
    auto worker = [&](int w) -> asio::awaitable<void> {
        for (int i = 0; i < per_worker; ++i) {
            auto req = make_req("request " + std::to_string(i));
            if ((w + i) % 4 == 0) req.deadline = 2ms;  // cut mid-attempt: the chain's timer cancels the attempts
            auto c = co_await chain.complete(req);
            ++answered;
            if (c.origin == cascade::Origin::fallback) ++from_template;
        }
    };
    for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(w), asio::detached);
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(answered == workers * per_worker);
    CHECK(groq.script()->in_flight == 0);  // every attempt ended before its request did
    auto s = chain.observer().snapshot();
    CHECK(s[0].hedges > 0);
    CHECK(s[0].hits + static_cast<std::uint64_t>(from_template.load()) == static_cast<std::uint64_t>(workers * per_worker));
}

// --- Cache and single flight -----------------------------------------------------------------------

namespace {
using Cached = cascade::DefaultPolicies::with_cache<cascade::MemoryCache>;
using CachedChain = cascade::BasicChain<Cached, ScriptedTier, cascade::Template>;
} // namespace

TEST_CASE("a second identical request is a cache hit: no tier is called, labelled cache, original label kept",
          "[chain][cache]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    groq.otherwise(Step::ok("cached text", {10, 20}, 0.01));
    CachedChain chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    auto first = complete(io, chain, req);
    CHECK(first.label == "groq1");
    CHECK(first.origin == cascade::Origin::tier);
    auto second = complete(io, chain, req);
    CHECK(groq.total_calls() == 1);
    CHECK(second.text == "cached text");
    CHECK(second.label == "cache");
    CHECK(second.cached_label == "groq1");
    CHECK(second.origin == cascade::Origin::cache);
    auto stats = chain.observer().snapshot();
    REQUIRE(stats.size() == 3);
    CHECK(stats[2].name == "cache");
    CHECK(stats[2].hits == 1);
}

TEST_CASE("a template answer is never cached", "[chain][cache]") {
    asio::io_context io;
    ScriptedTier groq("groq");
    groq.then(Step::fail(Fault::server_error)).then(Step::ok("real answer"));
    CachedChain chain(io.get_executor(), groq, make_template());
    chain.retry_policy().max_retries = 0;
    auto req = make_req();
    auto first = complete(io, chain, req);
    CHECK(first.label == "fallback-template");
    CHECK(first.origin == cascade::Origin::fallback);
    auto second = complete(io, chain, req);
    CHECK(second.label == "groq");
    CHECK(second.text == "real answer");
    CHECK(groq.total_calls() == 2);
}

TEST_CASE("the same prompt in another language is another cache entry", "[chain][cache]") {
    asio::io_context io;
    ScriptedTier groq("groq");
    CachedChain chain(io.get_executor(), groq, make_template());
    auto de = make_req();
    de.tags = {"lang=de"};
    auto fr = make_req();
    fr.tags = {"lang=fr"};
    complete(io, chain, de);
    complete(io, chain, fr);
    CHECK(groq.total_calls() == 2);
    CHECK(complete(io, chain, de).label == "cache");
    CHECK(groq.total_calls() == 2);
}

TEST_CASE("100 concurrent identical requests cause one upstream call and all get its answer", "[chain][cache][coalesce]") {
    asio::io_context io(2);
    ScriptedTier groq("groq");
    groq.otherwise(Step::ok("shared answer").after(50ms));
    CachedChain chain(io.get_executor(), groq, make_template());
    auto req = make_req();
    std::atomic<int> answered{0}, shared{0};
    auto one = [&]() -> asio::awaitable<void> {
        auto c = co_await chain.complete(req);
        if (c.text == "shared answer") ++answered;
        if (c.origin == cascade::Origin::shared) ++shared;
    };
    for (int i = 0; i < 100; ++i) asio::co_spawn(io, one(), asio::detached);
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(groq.total_calls() == 1);
    CHECK(answered == 100);
    CHECK(shared == 99);
}

TEST_CASE("when the leading request is cancelled, a waiting identical request still gets an answer",
          "[chain][cache][coalesce]") {
    asio::io_context io;
    ScriptedTier groq("groq");
    groq.otherwise(Step::ok("late answer").after(100ms));
    CachedChain chain(io.get_executor(), groq, make_template());
    asio::cancellation_signal sig;
    std::optional<cascade::Completion> leader, waiter;
    chain.async_complete(make_req(), asio::bind_cancellation_slot(sig.slot(), [&](cascade::Completion c) { leader = std::move(c); }));
    chain.async_complete(make_req(), [&](cascade::Completion c) { waiter = std::move(c); });
    asio::steady_timer t(io, 20ms);
    t.async_wait([&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
    io.run();
    REQUIRE(leader);
    REQUIRE(waiter);
    CHECK(leader->origin == cascade::Origin::fallback);  // cancelled: the infallible chain's last tier
    CHECK(waiter->text == "late answer");
    CHECK(groq.total_calls() == 2);
}
