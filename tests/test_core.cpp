// The vocabulary and the sans-io decision pieces: faults as error codes, retry delays, acceptance,
// key and circuit state, stats. No sockets, no coroutines.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/circuit.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/policy/observe.hpp>
#include <cascade/policy/retry.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <system_error>

using namespace std::chrono_literals;
using cascade::Clock;
using cascade::Fault;
using cascade::Scope;

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
    r.max_tokens = 1000;
    CHECK(r.estimated_tokens() == r.estimated_prompt_tokens() + 1000);
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

// --- Key and circuit state -------------------------------------------------------------------------

namespace {
cascade::Verdict verdict(Fault f, Scope s, std::chrono::milliseconds cool = {}) {
    cascade::Verdict v;
    v.fault = f;
    v.scope = s;
    v.cool_for = cool;
    return v;
}
} // namespace

TEST_CASE("keys are picked in order, skipping those tried, cooling or disabled", "[state][keys]") {
    cascade::TierState st(3, {}, {});
    auto now = Clock::now();
    CHECK(*st.pick_key(now, 10, 0, cascade::KeyOrder::sequential).key == 0);
    CHECK(*st.pick_key(now, 10, 0b001, cascade::KeyOrder::sequential).key == 1);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 30s), now, false);
    CHECK(*st.pick_key(now, 10, 0, cascade::KeyOrder::sequential).key == 1);
    CHECK(*st.pick_key(now + 31s, 10, 0, cascade::KeyOrder::sequential).key == 0);
    st.on_failure(std::size_t{1}, verdict(Fault::unauthorized, Scope::key), now, false);
    CHECK(st.key(1).disabled);
    auto pick = st.pick_key(now, 10, 0b100, cascade::KeyOrder::sequential);
    CHECK_FALSE(pick.key.has_value());
    CHECK(pick.why == Fault::exhausted);
    CHECK(cascade::TierState(0, {}, {}).pick_key(now, 1, 0, cascade::KeyOrder::sequential).why == Fault::unconfigured);
}

TEST_CASE("a later, shorter rate limit does not shorten a key's cooldown", "[state][keys]") {
    cascade::TierState st(1, {}, {});
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 2s), now, false);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1s), now + 10ms, false);
    CHECK(st.key(0).cool_until == now + 2s);
    CHECK_FALSE(st.pick_key(now + 1500ms, 1, 0, cascade::KeyOrder::sequential).key);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 5s), now + 20ms, false);
    CHECK(st.key(0).cool_until == now + 20ms + 5s);
}

TEST_CASE("a rate limit without a cooldown uses the configured default", "[state][keys]") {
    cascade::CircuitConfig cfg;
    cfg.rate_limited_cooldown = 45s;
    cascade::TierState st(1, {}, cfg);
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key), now, false);
    CHECK(st.key(0).cool_until == now + 45s);
}

TEST_CASE("token budgets refill over a minute and actual usage is reconciled", "[state][budget]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState st(1, limits, {});
    auto now = Clock::now();
    auto p1 = st.pick_key(now, 4000, 0, cascade::KeyOrder::sequential);
    REQUIRE(p1.key);
    CHECK(p1.reserved_tokens == 4000);
    CHECK_FALSE(st.pick_key(now, 4000, 0, cascade::KeyOrder::sequential).key);
    st.on_success(p1.key, p1.reserved_tokens, 1000, false);  // it used only 1000
    CHECK(st.pick_key(now, 4000, 0, cascade::KeyOrder::sequential).key);
    CHECK_FALSE(st.pick_key(now, 4000, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(now + 40s, 4000, 0, cascade::KeyOrder::sequential).key);  // 40 s refill 4000
}

TEST_CASE("request budgets limit requests per minute", "[state][budget]") {
    cascade::KeyLimits limits;
    limits.requests_per_minute = 2;
    cascade::TierState st(1, limits, {});
    auto now = Clock::now();
    CHECK(st.pick_key(now, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(now, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK_FALSE(st.pick_key(now, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(now + 31s, 1, 0, cascade::KeyOrder::sequential).key);
}

TEST_CASE("least-recently-limited order prefers the key limited longest ago", "[state][keys]") {
    cascade::TierState st(3, {}, {});
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1ms), now, false);
    st.on_failure(std::size_t{1}, verdict(Fault::rate_limited, Scope::key, 1ms), now + 1s, false);
    auto later = now + 2s;
    CHECK(*st.pick_key(later, 1, 0, cascade::KeyOrder::least_recently_limited).key == 2);
    CHECK(*st.pick_key(later, 1, 0b100, cascade::KeyOrder::least_recently_limited).key == 0);
    CHECK(*st.pick_key(later, 1, 0, cascade::KeyOrder::round_robin, 4).key == 1);
}

TEST_CASE("a provider-scoped verdict opens the circuit; after the break exactly one probe goes through",
          "[state][circuit]") {
    cascade::TierState st(2, {}, {});
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::blocked, Scope::provider, 10s), now, false);
    auto closed = st.admit(now + 5s);
    CHECK_FALSE(closed.allowed);
    CHECK(closed.open_for == 5s);
    auto probe = st.admit(now + 10s);
    CHECK(probe.allowed);
    CHECK(probe.probe);
    CHECK_FALSE(st.admit(now + 10s).allowed);  // the probe is out
    st.on_success(std::size_t{0}, 0, 0, true);
    CHECK(st.admit(now + 10s).allowed);
    CHECK_FALSE(st.admit(now + 10s).probe);
}

TEST_CASE("a success of a request sent before the circuit opened leaves it open; only the probe's closes it",
          "[state][circuit]") {
    cascade::TierState st(2, {}, {});
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::blocked, Scope::provider, 10s), now, false);
    // A reply to a request sent before the block arrived, on another key.
    st.on_success(std::size_t{1}, 0, 0, false);
    CHECK(st.circuit_open(now + 1s));
    CHECK_FALSE(st.admit(now + 1s).allowed);
    // After the break: the probe goes out; a late success of another request does not close it either.
    REQUIRE(st.admit(now + 10s).probe);
    st.on_success(std::size_t{1}, 0, 0, false);
    CHECK_FALSE(st.admit(now + 10s).allowed);
    st.on_success(std::size_t{0}, 0, 0, true);
    CHECK(st.admit(now + 10s).allowed);
}

TEST_CASE("before a retry, a key cooled or a circuit opened meanwhile is not tried again", "[state][retry]") {
    cascade::TierState st(2, {}, {});
    auto now = Clock::now();
    CHECK(st.recheck(0, now) == cascade::Recheck::same_key);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 5s), now, false);
    CHECK(st.recheck(0, now + 1s) == cascade::Recheck::next_key);
    CHECK(st.recheck(1, now + 1s) == cascade::Recheck::same_key);
    CHECK(st.recheck(0, now + 5s) == cascade::Recheck::same_key);
    st.on_failure(std::size_t{1}, verdict(Fault::unauthorized, Scope::key), now, false);
    CHECK(st.recheck(1, now + 1h) == cascade::Recheck::next_key);
    st.on_failure(std::nullopt, verdict(Fault::blocked, Scope::provider, 10s), now, false);
    CHECK(st.recheck(0, now + 6s) == cascade::Recheck::next_tier);
}

TEST_CASE("a blocked provider without a cooldown stays open for the blocked default", "[state][circuit]") {
    cascade::CircuitConfig cfg;
    cfg.blocked_cooldown = 2h;
    cascade::TierState st(1, {}, cfg);
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::blocked, Scope::provider), now, false);
    CHECK(st.circuit_open(now + 119min));
    CHECK_FALSE(st.circuit_open(now + 121min));
}

TEST_CASE("the chain's cooldown settings decide how long silent failures rest, with the default classifier",
          "[state][classify][circuit]") {
    // One source of defaults: the classifier says only what the response says; CircuitConfig the rest.
    cascade::CircuitConfig cfg;
    cfg.blocked_cooldown = 2h;
    cfg.quota_cooldown = 3h;
    cfg.rate_limited_cooldown = 45s;
    cfg.edge_rate_limited_cooldown = 10s;
    cascade::DefaultClassify classify;
    auto verdict_of = [&](int status, std::string_view body, cascade::Headers const* h = nullptr) {
        cascade::Observation o;
        o.status = status;
        o.body = body;
        o.headers = h;
        return classify.classify(o);
    };
    auto now = Clock::now();
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_of(403, "error code: 1010"), now, false);
        CHECK(st.circuit_open(now + 119min));
        CHECK_FALSE(st.circuit_open(now + 121min));
    }
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_of(429, "error code: 1015"), now, false);
        CHECK(st.circuit_open(now + 9s));
        CHECK_FALSE(st.circuit_open(now + 11s));
    }
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_of(402, R"({"error":{"message":"Insufficient Balance"}})"), now, false);
        CHECK(st.key(0).cool_until == now + 3h);
        st.on_failure(std::size_t{1}, verdict_of(429, R"({"error":{"message":"Rate limit reached"}})"), now, false);
        CHECK(st.key(1).cool_until == now + 45s);
    }
    {
        // What the response says wins over the settings.
        cascade::TierState st(1, {}, cfg);
        cascade::Headers h;
        h.add("retry-after", "7");
        st.on_failure(std::size_t{0}, verdict_of(429, R"({"error":{"message":"Rate limit reached"}})", &h), now, false);
        CHECK(st.key(0).cool_until == now + 7s);
    }
}

TEST_CASE("a cancelled probe hands the probe to the next request", "[state][circuit]") {
    cascade::TierState st(1, {}, {});
    auto now = Clock::now();
    st.open_circuit(now, 1s);
    REQUIRE(st.admit(now + 1s).probe);
    st.on_failure(std::size_t{0}, verdict(Fault::cancelled, Scope::attempt), now + 1s, true);
    CHECK(st.admit(now + 1s).probe);
}

TEST_CASE("consecutive transient failures open the circuit; a success resets the count", "[state][circuit]") {
    cascade::CircuitConfig cfg;
    cfg.failure_threshold = 3;
    cfg.break_for = 5s;
    cascade::TierState st(1, {}, cfg);
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), now, false);
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), now, false);
    st.on_success(std::size_t{0}, 0, 0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), now, false);
    st.on_failure(std::size_t{0}, verdict(Fault::timeout, Scope::attempt), now, false);
    CHECK_FALSE(st.circuit_open(now));
    st.on_failure(std::size_t{0}, verdict(Fault::network, Scope::attempt), now, false);
    CHECK(st.circuit_open(now));
    CHECK_FALSE(st.circuit_open(now + 5s));
}

TEST_CASE("permanent request-specific failures do not open the circuit", "[state][circuit]") {
    cascade::CircuitConfig cfg;
    cfg.failure_threshold = 1;
    cascade::TierState st(1, {}, cfg);
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::bad_request, Scope::attempt), now, false);
    st.on_failure(std::size_t{0}, verdict(Fault::context_too_long, Scope::attempt), now, false);
    CHECK_FALSE(st.circuit_open(now));
}

TEST_CASE("a practically endless cooldown does not overflow the clock", "[state][keys]") {
    cascade::TierState st(1, {}, {});
    auto now = Clock::now();
    st.on_failure(std::size_t{0}, verdict(Fault::quota_exhausted, Scope::key, std::chrono::milliseconds::max()), now, false);
    CHECK(st.key(0).cool_until == Clock::time_point::max());
    CHECK_FALSE(st.pick_key(now + 24h * 365, 1, 0, cascade::KeyOrder::sequential).key);
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
