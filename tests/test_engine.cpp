// The engine without sockets, timers or sleeps: `engine::Pipeline` driven action by action with explicit
// instants, read as its decision table, and `TierState` (cooldowns, quota groups, budgets, circuits).
// Failures are the default classifier's verdicts on the providers' real responses.

#include <cascade/engine/pipeline.hpp>
#include <cascade/policy/classify.hpp>

#include "support/wire.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

using namespace std::chrono_literals;
using cascade::Clock;
using cascade::Fault;
using cascade::Scope;
using cascade::engine::Access;
using cascade::engine::Action;
using cascade::engine::Step;
namespace wire = cascade::test::wire;

namespace {

// Any fixed instant: the engine never reads a clock.
Clock::time_point const t0 = Clock::time_point(std::chrono::hours(100));
auto const no_deadline = Clock::time_point::max();

// A chain's shared state for `keys.size()` fallible tiers (tier i has keys[i] keys), then a template.
struct Book {
    std::unique_ptr<cascade::TierState[]> states;
    cascade::engine::Book book;
    cascade::Backoff retry;
    cascade::NoHedge no_hedge;

    explicit Book(std::vector<std::size_t> keys, bool terminal = true, cascade::KeyLimits limits = {},
                  std::vector<std::size_t> groups_of_tier0 = {}, cascade::CircuitConfig circuit = {})
        : states(new cascade::TierState[keys.size()]) {
        for (std::size_t i = 0; i < keys.size(); ++i) states[i].configure(keys[i], i == 0 ? groups_of_tier0 : std::vector<std::size_t>{}, limits, circuit);
        book.tiers = std::span<cascade::TierState>(states.get(), keys.size());
        book.settings.fallible = keys.size();
        book.settings.terminal = terminal;
        book.settings.max_wait = 5s;
        retry.use_jitter = false;
    }
    cascade::TierState& tier(std::size_t i) { return states[i]; }

    cascade::engine::Pipeline<cascade::Backoff> request(Clock::time_point deadline = no_deadline, std::uint32_t tokens = 100) {
        return cascade::engine::Pipeline<cascade::Backoff>(book, retry, no_hedge, deadline, tokens);
    }
};

// The default classifier's verdict on a reply in a provider's real wire format.
cascade::Verdict verdict_on(cascade::test::Reply const& r) {
    cascade::Observation o;
    o.status = r.status;
    for (auto const& [n, v] : r.headers) o.headers.add(n, v);
    o.body = r.body;
    return cascade::DefaultClassify{}.classify(o);
}

cascade::Verdict verdict(Fault f, Scope s = Scope::attempt, std::optional<std::chrono::milliseconds> cool = {}, bool retry_same = false) {
    cascade::Verdict v;
    v.fault = f;
    v.scope = s;
    v.cool_for = cool;
    v.retry_same = retry_same;
    return v;
}

void check_attempt(Action const& a, std::size_t tier, int key) {
    INFO("step " << int(a.step) << ", tier " << a.tier << ", key " << a.key);
    REQUIRE(a.step == Step::attempt);
    CHECK(a.tier == tier);
    CHECK(a.key == key);
}

void check_skip(Action const& a, std::size_t tier, Fault why) {
    INFO("step " << int(a.step) << ", tier " << a.tier);
    REQUIRE(a.step == Step::skip);
    CHECK(a.tier == tier);
    CHECK(a.fault == why);
}

} // namespace

// --- The decision table ----------------------------------------------------------------------------

TEST_CASE("a 429 on key 1 gives key 2 of the same tier", "[engine][keys]") {
    Book b({5, 1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    auto v = verdict_on(wire::groq_429(7));
    REQUIRE(v.scope == Scope::key);
    check_attempt(p.failed(0, v, t0 + 300ms), 0, 1);
    // The key rests as long as retry-after said; the others do not.
    CHECK(b.tier(0).key(0).cool_until == t0 + 300ms + 7s);
    CHECK(b.tier(0).key(1).cool_until == Clock::time_point{});
}

TEST_CASE("a 1010 block gives the next tier with no key of the blocked tier tried", "[engine][circuit]") {
    Book b({5, 1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    auto v = verdict_on(wire::cloudflare_1010());
    REQUIRE(v.scope == Scope::provider);
    check_attempt(p.failed(0, v, t0 + 50ms), 1, 0);
    // The next request does not even try: the circuit is open for the blocked default, an hour.
    auto q = b.request();
    auto skip = q.start(t0 + 1min);
    check_skip(skip, 0, Fault::circuit_open);
    CHECK(skip.open_for == 1h - 1min + 50ms);
    check_attempt(q.next(t0 + 1min), 1, 0);
}

TEST_CASE("all keys cooling, the earliest free in 200 ms with 1 s of deadline left: a wait of 200 ms, then that key",
          "[engine][wait]") {
    Book b({2});
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 500ms), t0, false);
    b.tier(0).on_failure(std::size_t{1}, verdict(Fault::rate_limited, Scope::key, 200ms), t0, false);
    auto p = b.request(t0 + 1s);
    check_skip(p.start(t0), 0, Fault::exhausted);
    auto wait = p.next(t0);
    REQUIRE(wait.step == Step::wait);
    CHECK(wait.until == t0 + 200ms);
    check_attempt(p.waited(t0 + 200ms), 0, 1);
}

TEST_CASE("all keys cooling, the earliest free in 2 s with 1 s of deadline left: the template", "[engine][wait]") {
    Book b({2});
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 3s), t0, false);
    b.tier(0).on_failure(std::size_t{1}, verdict(Fault::rate_limited, Scope::key, 2s), t0, false);
    auto p = b.request(t0 + 1s);
    check_skip(p.start(t0), 0, Fault::exhausted);
    CHECK(p.next(t0).step == Step::terminal);
}

TEST_CASE("requests waiting for the same key wake spread over a window after it is free, not all at once", "[engine][wait]") {
    Book b({1});
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1s), t0, false);
    auto first = b.request(no_deadline, 100);
    auto later = cascade::engine::Pipeline<cascade::Backoff>(b.book, b.retry, b.no_hedge, no_deadline, 100, 0.5);
    check_skip(first.start(t0), 0, Fault::exhausted);
    check_skip(later.start(t0), 0, Fault::exhausted);
    CHECK(first.next(t0).until == t0 + 1s);
    CHECK(later.next(t0).until == t0 + 1s + 125ms);  // half of the window: a quarter of the wait
}

TEST_CASE("a cooldown longer than max_wait is not waited for, even with no deadline", "[engine][wait]") {
    Book b({1});
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 6s), t0, false);
    auto p = b.request();
    check_skip(p.start(t0), 0, Fault::exhausted);
    CHECK(p.next(t0).step == Step::terminal);
    b.book.settings.max_wait = 0ms;  // zero: never wait
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1s), t0, false);
    auto q = b.request();
    check_skip(q.start(t0 + 5500ms), 0, Fault::exhausted);
    CHECK(q.next(t0 + 5500ms).step == Step::terminal);
}

TEST_CASE("a request waits for a key it cooled itself, and the waits of one request add up to at most max_wait",
          "[engine][wait]") {
    Book b({1}, false);
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    auto wait = p.failed(0, verdict_on(wire::groq_429(2)), t0);
    REQUIRE(wait.step == Step::wait);
    CHECK(wait.until == t0 + 2s);
    check_attempt(p.waited(t0 + 2s), 0, 0);
    wait = p.failed(0, verdict_on(wire::groq_429(2)), t0 + 2s);
    REQUIRE(wait.step == Step::wait);  // 4 s waited of 5
    check_attempt(p.waited(t0 + 4s), 0, 0);
    auto end = p.failed(0, verdict_on(wire::groq_429(2)), t0 + 4s);  // a third would make 6 s
    REQUIRE(end.step == Step::fail);
    CHECK(end.fault == Fault::rate_limited);
}

TEST_CASE("a tier left for a failure that time does not cure is not waited for", "[engine][wait]") {
    Book b({1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    b.retry.max_retries = 0;
    CHECK(p.failed(0, verdict_on(wire::openai_500()), t0).step == Step::terminal);
    // Not even when a cooldown of the same tier made it worth waiting for before.
    Book c({2});
    auto q = c.request();
    check_attempt(q.start(t0), 0, 0);
    check_attempt(q.failed(0, verdict_on(wire::groq_429(1)), t0), 0, 1);
    c.retry.max_retries = 0;
    CHECK(q.failed(0, verdict(Fault::bad_request), t0).step == Step::terminal);
}

TEST_CASE("an open circuit whose break ends soon is waited for, and the request is its probe", "[engine][wait][circuit]") {
    Book b({1, 1});
    b.tier(0).open_circuit(t0, 1s);
    b.tier(1).open_circuit(t0, 3s);
    auto p = b.request();
    check_skip(p.start(t0), 0, Fault::circuit_open);
    check_skip(p.next(t0), 1, Fault::circuit_open);
    auto wait = p.next(t0);
    REQUIRE(wait.step == Step::wait);
    CHECK(wait.until == t0 + 1s);
    check_attempt(p.waited(t0 + 1s), 0, 0);
    CHECK_FALSE(b.tier(0).admit(t0 + 1s).allowed);  // the probe is out
    auto done = p.accepted(0, t0 + 2s, 30);
    CHECK(done.step == Step::answer);
    CHECK_FALSE(b.tier(0).circuit_open(t0 + 2s));
}

TEST_CASE("a 429 on one key of a quota group cools every key of the group, and no other", "[engine][groups]") {
    // Keys 1 and 2 belong to one organization, key 3 to another.
    Book b({3}, true, {}, {7, 7, 9});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    check_attempt(p.failed(0, verdict_on(wire::groq_429(30)), t0), 0, 2);
    CHECK(b.tier(0).key(1).cool_until == t0 + 30s);
    CHECK(b.tier(0).key(2).cool_until == Clock::time_point{});
    CHECK(b.tier(0).key(0).group == b.tier(0).key(1).group);
}

TEST_CASE("a quota group shares one budget: keys of one organization do not add up to more", "[engine][groups][budget]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 12'000;
    Book b({2}, true, limits, {1, 1});
    auto first = b.request(no_deadline, 7'000);
    check_attempt(first.start(t0), 0, 0);
    auto second = b.request(no_deadline, 7'000);
    check_skip(second.start(t0), 0, Fault::exhausted);  // key 2 is the same organization's budget
}

TEST_CASE("a per-day budget stops a key after its day's requests", "[engine][budget]") {
    cascade::KeyLimits limits;
    limits.requests_per_day = 2;
    Book b({1}, true, limits);
    b.book.settings.max_wait = 0ms;
    for (int i = 0; i < 2; ++i) {
        auto p = b.request();
        check_attempt(p.start(t0), 0, 0);
        CHECK(p.accepted(0, t0, 10).step == Step::answer);
    }
    auto p = b.request();
    check_skip(p.start(t0 + 1h), 0, Fault::exhausted);
    auto at = b.tier(0).usable_at(t0 + 1h, 100);  // a day refills two: one more in 11 of the 23 hours left
    REQUIRE(at);
    CHECK(std::chrono::abs(*at - (t0 + 12h)) < 1ms);
}

TEST_CASE("a 404 model_not_found opens the circuit for a day and says so once", "[engine][circuit][model]") {
    Book b({2, 1});
    auto p = b.request();
    auto q = b.request();  // sent before the 404 came back
    check_attempt(p.start(t0), 0, 0);
    check_attempt(q.start(t0), 0, 0);
    auto v = verdict_on(wire::json(
        404, R"({"error":{"message":"The model `compound-beta-min` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}})"));
    REQUIRE(v.fault == Fault::model_unavailable);
    auto notice = p.failed(0, v, t0 + 100ms);
    REQUIRE(notice.step == Step::notice);
    CHECK(notice.tier == 0);
    CHECK(notice.until == t0 + 100ms + 24h);
    check_attempt(p.next(t0 + 100ms), 1, 0);  // no other key of a tier whose model is gone
    check_attempt(q.failed(0, v, t0 + 120ms), 1, 0);  // the second 404: no second notice
    auto r = b.request();
    check_skip(r.start(t0 + 1h), 0, Fault::circuit_open);
}

TEST_CASE("the hedge delay passing gives a second attempt in flight, the first accepted answer wins", "[engine][hedge]") {
    Book b({2, 1});
    cascade::Hedge hedge;
    hedge.fixed_delay = 300ms;
    cascade::engine::Pipeline<cascade::Backoff, cascade::Hedge> p(b.book, b.retry, hedge, no_deadline, 100);
    auto first = p.start(t0);
    check_attempt(first, 0, 0);
    CHECK(first.until == t0 + 300ms);
    CHECK(p.woke(t0 + 200ms).step == Step::idle);  // not yet
    auto second = p.woke(t0 + 300ms);
    check_attempt(second, 0, 1);
    CHECK(second.hedge);
    CHECK(second.slot != first.slot);
    CHECK(p.in_flight() == 2);
    // The hedge answers first: the slow attempt is cancelled, and the answer waits for it to end.
    auto cancel = p.accepted(second.slot, t0 + 700ms, 50);
    REQUIRE(cancel.step == Step::cancel);
    CHECK(cancel.slot == first.slot);
    CHECK(p.next(t0 + 700ms).step == Step::idle);
    auto answer = p.failed(first.slot, verdict(Fault::cancelled), t0 + 701ms);
    REQUIRE(answer.step == Step::answer);
    CHECK(answer.slot == second.slot);
}

TEST_CASE("hedges are bounded: one extra attempt in flight, and a share of requests", "[engine][hedge]") {
    Book b({3});
    cascade::Hedge hedge;
    hedge.fixed_delay = 100ms;
    hedge.limits.max_extra = 1;
    hedge.limits.max_ratio = 0.1;
    hedge.limits.burst = 1;
    using P = cascade::engine::Pipeline<cascade::Backoff, cascade::Hedge>;
    P p(b.book, b.retry, hedge, no_deadline, 100);
    check_attempt(p.start(t0), 0, 0);
    auto h = p.woke(t0 + 100ms);
    check_attempt(h, 0, 1);
    CHECK(h.until == Clock::time_point::max());       // no third in flight
    CHECK(p.woke(t0 + 10s).step == Step::idle);
    // The burst of one is spent: the next request is not hedged until ten more requests earned one.
    P q(b.book, b.retry, hedge, no_deadline, 100);
    check_attempt(q.start(t0 + 1s), 0, 0);
    CHECK(q.woke(t0 + 1100ms).step == Step::idle);
}

// --- The rest of the table -------------------------------------------------------------------------

TEST_CASE("a tier whose circuit is open is skipped, after its break one probe goes, and its success closes it",
          "[engine][circuit]") {
    Book b({1});
    b.tier(0).on_failure(std::size_t{0}, verdict_on(wire::cloudflare_1010()), t0, false);
    b.book.settings.max_wait = 0ms;
    auto p = b.request();
    check_skip(p.start(t0 + 10min), 0, Fault::circuit_open);
    CHECK(p.next(t0 + 10min).step == Step::terminal);
    auto probe = b.request();
    check_attempt(probe.start(t0 + 1h), 0, 0);
    auto other = b.request();
    auto skip = other.start(t0 + 1h);
    check_skip(skip, 0, Fault::circuit_open);
    CHECK(skip.open_for == 0ms);  // half-open: the probe is out
    CHECK(probe.accepted(0, t0 + 1h + 1s, 20).step == Step::answer);
    check_attempt(b.request().start(t0 + 1h + 2s), 0, 0);
}

TEST_CASE("a failed probe re-opens the circuit", "[engine][circuit]") {
    Book b({1});
    b.tier(0).open_circuit(t0, 1min);
    b.book.settings.max_wait = 0ms;
    auto probe = b.request();
    check_attempt(probe.start(t0 + 1min), 0, 0);
    CHECK(probe.failed(0, verdict_on(wire::cloudflare_1010()), t0 + 1min).step == Step::terminal);
    check_skip(b.request().start(t0 + 2min), 0, Fault::circuit_open);
}

TEST_CASE("consecutive transient failures open the circuit at the threshold", "[engine][circuit]") {
    cascade::CircuitConfig circuit;
    circuit.failure_threshold = 3;
    Book b({1}, true, {}, {}, circuit);
    b.retry.max_retries = 0;
    b.book.settings.max_wait = 0ms;
    for (int i = 0; i < 3; ++i) {
        auto p = b.request();
        check_attempt(p.start(t0), 0, 0);
        CHECK(p.failed(0, verdict_on(wire::openai_500()), t0).step == Step::terminal);
    }
    check_skip(b.request().start(t0 + 1s), 0, Fault::circuit_open);
}

TEST_CASE("a transient failure is retried on the same key after the retry policy's delay", "[engine][retry]") {
    Book b({2});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    auto v = verdict_on(wire::openai_500());
    REQUIRE(v.retry_same);
    auto wait = p.failed(0, v, t0, 0.0);
    REQUIRE(wait.step == Step::wait);
    CHECK(wait.until == t0 + b.retry.base_delay);
    check_attempt(p.waited(t0 + 200ms), 0, 0);
    auto second = p.failed(0, v, t0 + 300ms, 0.0);
    REQUIRE(second.step == Step::wait);
    CHECK(second.until == t0 + 300ms + 2 * b.retry.base_delay);  // doubled
}

TEST_CASE("a retry does not go to a key another request cooled during its backoff", "[engine][retry]") {
    Book b({2});
    auto a = b.request();
    auto c = b.request();
    check_attempt(a.start(t0), 0, 0);
    REQUIRE(a.failed(0, verdict_on(wire::openai_500()), t0, 0.0).step == Step::wait);
    check_attempt(c.start(t0 + 10ms), 0, 0);
    check_attempt(c.failed(0, verdict_on(wire::groq_429(60)), t0 + 20ms), 0, 1);
    check_attempt(a.waited(t0 + 200ms), 0, 1);  // not key 1 again
}

TEST_CASE("a retry does not go to a tier whose circuit another request opened during its backoff", "[engine][retry]") {
    Book b({2, 1});
    auto a = b.request();
    auto c = b.request();
    check_attempt(a.start(t0), 0, 0);
    REQUIRE(a.failed(0, verdict_on(wire::openai_500()), t0, 0.0).step == Step::wait);
    check_attempt(c.start(t0 + 10ms), 0, 0);
    check_attempt(c.failed(0, verdict_on(wire::cloudflare_1010()), t0 + 20ms), 1, 0);
    check_attempt(a.waited(t0 + 200ms), 1, 0);
}

TEST_CASE("a rate limit is not retried on the same key", "[engine][retry]") {
    Book b({1, 1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    check_attempt(p.failed(0, verdict_on(wire::groq_429(30)), t0), 1, 0);
}

TEST_CASE("an answer the accept policy refused moves to the next tier", "[engine][accept]") {
    Book b({2, 1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    check_attempt(p.refused(0, t0, Fault::rejected), 1, 0);
}

TEST_CASE("a tier with no key is skipped as unconfigured and never waited for", "[engine][keys]") {
    Book b({0, 1}, false);
    auto p = b.request();
    check_skip(p.start(t0), 0, Fault::unconfigured);
    check_attempt(p.next(t0), 1, 0);
    auto end = p.failed(0, verdict(Fault::bad_request), t0);
    REQUIRE(end.step == Step::fail);
    CHECK(end.fault == Fault::bad_request);
}

TEST_CASE("when the budget is spent no further tier is tried, the template answers", "[engine][deadline]") {
    Book b({1, 1});
    b.retry.max_retries = 0;
    auto p = b.request(t0 + 1s);
    check_attempt(p.start(t0), 0, 0);
    CHECK(p.failed(0, verdict(Fault::timeout, Scope::attempt, {}, true), t0 + 1s).step == Step::terminal);
    CHECK(p.fault() == Fault::deadline_exceeded);
    // Fallible: the failure says so.
    Book f({1}, false);
    auto q = f.request(t0 + 1s);
    check_attempt(q.start(t0), 0, 0);
    auto end = q.failed(0, verdict(Fault::deadline_exceeded), t0 + 1s);
    REQUIRE(end.step == Step::fail);
    CHECK(end.fault == Fault::deadline_exceeded);
}

TEST_CASE("a retry delay that would reach the deadline is not taken", "[engine][deadline][retry]") {
    Book b({1});
    auto p = b.request(t0 + 500ms);
    check_attempt(p.start(t0), 0, 0);
    CHECK(p.failed(0, verdict(Fault::server_error, Scope::attempt, 10s, true), t0 + 10ms).step == Step::terminal);
}

TEST_CASE("a cancellation ends the request at once: no further tier, the template for an infallible chain",
          "[engine][cancel]") {
    Book b({1, 1});
    auto p = b.request();
    check_attempt(p.start(t0), 0, 0);
    CHECK(p.failed(0, verdict(Fault::cancelled), t0).step == Step::terminal);
    CHECK(p.fault() == Fault::cancelled);
    // During a wait.
    Book w({1}, false);
    auto q = w.request();
    check_attempt(q.start(t0), 0, 0);
    REQUIRE(q.failed(0, verdict_on(wire::openai_500()), t0, 0.0).step == Step::wait);
    auto end = q.cancelled(t0 + 50ms);
    REQUIRE(end.step == Step::fail);
    CHECK(end.fault == Fault::cancelled);
}

TEST_CASE("without the lock the pipeline takes a quiet tier's first key and asks for the lock otherwise", "[engine][lock]") {
    Book b({2});
    auto p = b.request();
    check_attempt(p.start(t0, Access::shared), 0, 0);
    CHECK(p.accepted(0, t0, 10, {}, Access::shared).step == Step::answer);
    b.tier(0).on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1s), t0, false);
    auto q = b.request();
    CHECK(q.start(t0, Access::shared).step == Step::lock);
    check_attempt(q.start(t0), 0, 1);
}

TEST_CASE("with shared state the pipeline pulls before a tier and publishes what a failure taught", "[engine][shared]") {
    Book b({2});
    b.book.settings.sharing = true;
    auto p = b.request();
    auto pull = p.start(t0, Access::shared);
    REQUIRE(pull.step == Step::pull);
    CHECK(pull.tier == 0);
    check_attempt(p.next(t0), 0, 0);
    auto news = p.failed(0, verdict_on(wire::groq_429(30)), t0);
    REQUIRE(news.step == Step::publish);
    CHECK(news.news == cascade::engine::News::key);
    CHECK(news.key == 0);
    CHECK(news.until == t0 + 30s);
    check_attempt(p.next(t0), 0, 1);
}

TEST_CASE("with shared state a probe's answer publishes the closed circuit before the answer", "[engine][shared]") {
    cascade::CircuitConfig circuit;
    circuit.break_for = 10s;
    Book b({1}, true, {}, {}, circuit);
    b.book.settings.sharing = true;
    b.tier(0).open_circuit(t0, 10s);
    auto p = b.request();
    REQUIRE(p.start(t0 + 11s).step == Step::pull);
    auto probe = p.next(t0 + 11s);
    check_attempt(probe, 0, 0);
    auto news = p.accepted(0, t0 + 11s, 10);
    REQUIRE(news.step == Step::publish);
    CHECK(news.news == cascade::engine::News::circuit);
    CHECK(news.until == Clock::time_point{});  // the epoch: closed
    CHECK(p.next(t0 + 11s).step == Step::answer);
    CHECK_FALSE(b.tier(0).is_open());
}

TEST_CASE("an answer that was not the probe publishes nothing", "[engine][shared]") {
    Book b({1});
    b.book.settings.sharing = true;
    auto p = b.request();
    REQUIRE(p.start(t0).step == Step::pull);
    check_attempt(p.next(t0), 0, 0);
    CHECK(p.accepted(0, t0, 10).step == Step::answer);
}

TEST_CASE("a shared close closes a circuit opened before it, not one opened since", "[state][shared]") {
    cascade::TierState st(1, {}, {});
    st.open_circuit(t0, 60s);
    st.merge_shared_close(t0 - 1s);
    CHECK(st.is_open());
    st.merge_shared_close(t0 + 1s);
    CHECK_FALSE(st.is_open());
    CHECK(st.pick_key(t0 + 2s, 10, 0, cascade::KeyOrder::sequential).key.has_value());
    st.merge_shared_circuit(t0 + 120s, t0 + 10s);  // news: another instance opened it until then
    st.merge_shared_close(t0 + 5s);                // an older close does not undo that
    CHECK(st.is_open());
    st.merge_shared_close(t0 + 11s);               // a close published since does
    CHECK_FALSE(st.is_open());
}

TEST_CASE("with leases a group spends only what the shared state granted it, and settles usage against it", "[state][lease]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    limits.requests_per_minute = 30;
    cascade::TierState st(2, limits, {});
    st.lease_budgets(true);
    REQUIRE(st.leases());
    // No lease yet: both keys could take the request but for it.
    CHECK_FALSE(st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key.has_value());
    auto short_of = st.groups_short_of_lease(t0, 500);
    REQUIRE(short_of == std::vector<std::size_t>{0, 1});
    CHECK(st.usable_at(t0, 500) == std::nullopt);  // waiting does not make a lease
    CHECK(st.lease_need(0, 500) == std::array<double, 4>{500, 1, 0, 0});
    st.add_lease(1, {1200, 3, 0, 0});
    CHECK(st.groups_short_of_lease(t0, 500).empty());  // key 1 can take it now
    auto pick = st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential);
    REQUIRE(pick.key == std::optional<std::size_t>(1));
    CHECK(st.key(1).lease_tokens == 700);
    CHECK(st.key(1).lease_requests == 2);
    st.on_success(std::size_t{1}, pick.reserved_tokens, 200, false);  // used 200 of the 500 reserved
    CHECK(st.key(1).lease_tokens == 1000);
    CHECK(*st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key == 1);
    CHECK(*st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key == 1);
    CHECK(st.key(1).lease_requests == 0);
    // The requests lease is spent, though tokens are left: a new reservation is needed.
    CHECK_FALSE(st.pick_key(t0, 10, 0, cascade::KeyOrder::sequential).key.has_value());
    CHECK(st.groups_short_of_lease(t0, 10) == std::vector<std::size_t>{0, 1});
}

TEST_CASE("an answer that used more than its lease leaves a debt the next reservation pays", "[state][lease]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState st(1, limits, {});
    st.lease_budgets(true);
    st.add_lease(0, {500, 0, 0, 0});
    auto pick = st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential);
    REQUIRE(pick.key);
    st.on_success(std::size_t{0}, pick.reserved_tokens, 800, false);  // the answer was longer than estimated
    CHECK(st.key(0).lease_tokens == -300);
    CHECK(st.lease_need(0, 500) == std::array<double, 4>{800, 0, 0, 0});
    st.add_lease(0, st.lease_need(0, 500));
    CHECK(st.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key.has_value());
}

TEST_CASE("an attempt that never reached the provider gives back what it reserved, lease included", "[engine][lease]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 1000;
    limits.requests_per_minute = 10;
    Book b({1}, true, limits);
    b.tier(0).lease_budgets(true);
    b.tier(0).add_lease(0, {300, 3, 0, 0});
    auto p = b.request(no_deadline, 100);
    check_attempt(p.start(t0), 0, 0);
    CHECK(b.tier(0).key(0).tokens == 900);
    CHECK(b.tier(0).key(0).lease_tokens == 200);
    auto refused = verdict(Fault::network);
    refused.unsent = true;
    p.failed(0, refused, t0);
    CHECK(b.tier(0).key(0).tokens == 1000);
    CHECK(b.tier(0).key(0).requests == 10);
    CHECK(b.tier(0).key(0).lease_tokens == 300);
    CHECK(b.tier(0).key(0).lease_requests == 3);

    auto q = b.request(no_deadline, 100);  // one that was sent (a reset): its reservation stays spent
    check_attempt(q.start(t0), 0, 0);
    q.failed(0, verdict(Fault::network), t0);
    CHECK(b.tier(0).key(0).lease_tokens == 200);

    auto r = b.request(no_deadline, 100);  // refused, then retried on the same key: the retry keeps the reservation
    check_attempt(r.start(t0), 0, 0);
    auto again = verdict(Fault::network, Scope::attempt, {}, true);
    again.unsent = true;
    auto wait = r.failed(0, again, t0, 0.0);
    REQUIRE(wait.step == Step::wait);
    CHECK(b.tier(0).key(0).lease_tokens == 100);
    check_attempt(r.waited(wait.until), 0, 0);
    CHECK(b.tier(0).key(0).lease_tokens == 100);
}

TEST_CASE("leases change nothing for a tier without budgets, or while off", "[state][lease]") {
    cascade::TierState free_tier(1, {}, {});
    free_tier.lease_budgets(true);
    CHECK_FALSE(free_tier.leases());
    CHECK(free_tier.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key.has_value());
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState local(1, limits, {});
    CHECK(local.groups_short_of_lease(t0, 500).empty());
    CHECK(local.pick_key(t0, 500, 0, cascade::KeyOrder::sequential).key.has_value());
}

TEST_CASE("a cooling key is not a candidate for a lease", "[state][lease]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState st(2, limits, {});
    st.lease_budgets(true);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 30s), t0, false);
    CHECK(st.groups_short_of_lease(t0, 100) == std::vector<std::size_t>{1});
    st.merge_shared_key(1, t0 + 30s, false);  // another instance rested key 1
    CHECK(st.groups_short_of_lease(t0, 100).empty());
    CHECK(st.usable_at(t0, 100) == std::nullopt);
}

// --- TierState -------------------------------------------------------------------------------------

TEST_CASE("keys are picked in order, skipping those tried, cooling or disabled", "[state][keys]") {
    cascade::TierState st(3, {}, {});
    CHECK(*st.pick_key(t0, 10, 0, cascade::KeyOrder::sequential).key == 0);
    CHECK(*st.pick_key(t0, 10, 0b001, cascade::KeyOrder::sequential).key == 1);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 30s), t0, false);
    CHECK(*st.pick_key(t0, 10, 0, cascade::KeyOrder::sequential).key == 1);
    CHECK(*st.pick_key(t0 + 31s, 10, 0, cascade::KeyOrder::sequential).key == 0);
    st.on_failure(std::size_t{1}, verdict(Fault::unauthorized, Scope::key), t0, false);
    CHECK(st.key(1).disabled);
    auto pick = st.pick_key(t0, 10, 0b100, cascade::KeyOrder::sequential);
    CHECK_FALSE(pick.key.has_value());
    CHECK(pick.why == Fault::exhausted);
    CHECK(cascade::TierState(0, {}, {}).pick_key(t0, 1, 0, cascade::KeyOrder::sequential).why == Fault::unconfigured);
}

TEST_CASE("an unauthorized key is disabled alone, not its quota group", "[state][groups]") {
    cascade::TierState st;
    st.configure(2, {4, 4}, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::unauthorized, Scope::key), t0, false);
    CHECK(st.key(0).disabled);
    CHECK_FALSE(st.key(1).disabled);
    CHECK(*st.pick_key(t0, 1, 0, cascade::KeyOrder::sequential).key == 1);
}

TEST_CASE("retry-after: 0 means at once: the key is not rested, where a silent 429 rests it the default", "[state][keys][classify]") {
    cascade::TierState st(2, {}, {});
    auto now_429 = wire::json(429, R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})");
    now_429.headers.emplace_back("retry-after", "0");
    auto v = verdict_on(now_429);
    REQUIRE(v.cool_for == 0ms);
    st.on_failure(std::size_t{0}, v, t0, false);
    CHECK(*st.pick_key(t0, 10, 0, cascade::KeyOrder::sequential).key == 0);
    st.on_failure(std::size_t{1}, verdict_on(wire::json(429, R"({"error":{"message":"Rate limit reached"}})")), t0, false);
    CHECK(st.key(1).cool_until == t0 + cascade::CircuitConfig{}.rate_limited_cooldown);
}

TEST_CASE("a later, shorter rate limit does not shorten a key's cooldown", "[state][keys]") {
    cascade::TierState st(1, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 2s), t0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1s), t0 + 10ms, false);
    CHECK(st.key(0).cool_until == t0 + 2s);
    CHECK_FALSE(st.pick_key(t0 + 1500ms, 1, 0, cascade::KeyOrder::sequential).key);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 5s), t0 + 20ms, false);
    CHECK(st.key(0).cool_until == t0 + 20ms + 5s);
}

TEST_CASE("token budgets refill over a minute and actual usage is reconciled", "[state][budget]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState st(1, limits, {});
    auto p1 = st.pick_key(t0, 4000, 0, cascade::KeyOrder::sequential);
    REQUIRE(p1.key);
    CHECK(p1.reserved_tokens == 4000);
    CHECK_FALSE(st.pick_key(t0, 4000, 0, cascade::KeyOrder::sequential).key);
    st.on_success(p1.key, p1.reserved_tokens, 1000, false);  // it used only 1000
    CHECK(st.pick_key(t0, 4000, 0, cascade::KeyOrder::sequential).key);
    CHECK_FALSE(st.pick_key(t0, 4000, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(t0 + 40s, 4000, 0, cascade::KeyOrder::sequential).key);  // 40 s refill 4000
}

TEST_CASE("request budgets limit requests per minute", "[state][budget]") {
    cascade::KeyLimits limits;
    limits.requests_per_minute = 2;
    cascade::TierState st(1, limits, {});
    CHECK(st.pick_key(t0, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(t0, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK_FALSE(st.pick_key(t0, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.pick_key(t0 + 31s, 1, 0, cascade::KeyOrder::sequential).key);
}

TEST_CASE("a budget says when it will fit a request, and never for one larger than the budget", "[state][budget][wait]") {
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    cascade::TierState st(1, limits, {});
    REQUIRE(st.pick_key(t0, 6000, 0, cascade::KeyOrder::sequential).key);
    CHECK(st.usable_at(t0, 3000) == t0 + 30s);
    CHECK_FALSE(st.usable_at(t0, 7000));
}

TEST_CASE("least-recently-limited order prefers the key limited longest ago", "[state][keys]") {
    cascade::TierState st(3, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 1ms), t0, false);
    st.on_failure(std::size_t{1}, verdict(Fault::rate_limited, Scope::key, 1ms), t0 + 1s, false);
    auto later = t0 + 2s;
    CHECK(*st.pick_key(later, 1, 0, cascade::KeyOrder::least_recently_limited).key == 2);
    CHECK(*st.pick_key(later, 1, 0b100, cascade::KeyOrder::least_recently_limited).key == 0);
    CHECK(*st.pick_key(later, 1, 0, cascade::KeyOrder::round_robin, 4).key == 1);
}

TEST_CASE("a provider-scoped verdict opens the circuit, after the break exactly one probe goes through", "[state][circuit]") {
    cascade::TierState st(2, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::blocked, Scope::provider, 10s), t0, false);
    auto closed = st.admit(t0 + 5s);
    CHECK_FALSE(closed.allowed);
    CHECK(closed.open_for == 5s);
    auto probe = st.admit(t0 + 10s);
    CHECK(probe.allowed);
    CHECK(probe.probe);
    CHECK_FALSE(st.admit(t0 + 10s).allowed);  // the probe is out
    st.on_success(std::size_t{0}, 0, 0, true);
    CHECK(st.admit(t0 + 10s).allowed);
    CHECK_FALSE(st.admit(t0 + 10s).probe);
}

TEST_CASE("a success of a request sent before the circuit opened leaves it open, only the probe's closes it", "[state][circuit]") {
    cascade::TierState st(2, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::blocked, Scope::provider, 10s), t0, false);
    st.on_success(std::size_t{1}, 0, 0, false);  // a reply to a request sent before the block arrived
    CHECK(st.circuit_open(t0 + 1s));
    CHECK_FALSE(st.admit(t0 + 1s).allowed);
    REQUIRE(st.admit(t0 + 10s).probe);
    st.on_success(std::size_t{1}, 0, 0, false);
    CHECK_FALSE(st.admit(t0 + 10s).allowed);
    st.on_success(std::size_t{0}, 0, 0, true);
    CHECK(st.admit(t0 + 10s).allowed);
}

TEST_CASE("before a retry, a key cooled or a circuit opened meanwhile is not tried again", "[state][retry]") {
    cascade::TierState st(2, {}, {});
    CHECK(st.recheck(0, t0) == cascade::Recheck::same_key);
    st.on_failure(std::size_t{0}, verdict(Fault::rate_limited, Scope::key, 5s), t0, false);
    CHECK(st.recheck(0, t0 + 1s) == cascade::Recheck::next_key);
    CHECK(st.recheck(1, t0 + 1s) == cascade::Recheck::same_key);
    CHECK(st.recheck(0, t0 + 5s) == cascade::Recheck::same_key);
    st.on_failure(std::size_t{1}, verdict(Fault::unauthorized, Scope::key), t0, false);
    CHECK(st.recheck(1, t0 + 1h) == cascade::Recheck::next_key);
    st.on_failure(std::nullopt, verdict(Fault::blocked, Scope::provider, 10s), t0, false);
    CHECK(st.recheck(0, t0 + 6s) == cascade::Recheck::next_tier);
}

TEST_CASE("the chain's cooldown settings decide how long silent failures rest, with the default classifier",
          "[state][classify][circuit]") {
    // One source of defaults: the classifier says only what the response says; CircuitConfig the rest.
    cascade::CircuitConfig cfg;
    cfg.blocked_cooldown = 2h;
    cfg.quota_cooldown = 3h;
    cfg.rate_limited_cooldown = 45s;
    cfg.edge_rate_limited_cooldown = 10s;
    cfg.model_unavailable_cooldown = 48h;
    cfg.overloaded_cooldown = 20s;
    {
        // An overload is the provider's, not a key's: the circuit opens, for the overload setting.
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_on(wire::json(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})")), t0, false);
        CHECK(st.circuit_open(t0 + 19s));
        CHECK_FALSE(st.circuit_open(t0 + 21s));
        CHECK(st.key(0).cool_until <= t0);
    }
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_on(wire::cloudflare_1010()), t0, false);
        CHECK(st.circuit_open(t0 + 119min));
        CHECK_FALSE(st.circuit_open(t0 + 121min));
    }
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_on(cascade::test::reply(429, "text/plain", "error code: 1015")), t0, false);
        CHECK(st.circuit_open(t0 + 9s));
        CHECK_FALSE(st.circuit_open(t0 + 11s));
    }
    {
        cascade::TierState st(2, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_on(wire::deepseek_402()), t0, false);
        CHECK(st.key(0).cool_until == t0 + 3h);
        st.on_failure(std::size_t{1}, verdict_on(wire::json(429, R"({"error":{"message":"Rate limit reached"}})")), t0, false);
        CHECK(st.key(1).cool_until == t0 + 45s);
    }
    {
        cascade::TierState st(1, {}, cfg);
        st.on_failure(std::size_t{0}, verdict(Fault::model_unavailable, Scope::provider), t0, false);
        CHECK(st.circuit_open(t0 + 47h));
        CHECK_FALSE(st.circuit_open(t0 + 49h));
    }
    {
        // What the response says wins over the settings.
        cascade::TierState st(1, {}, cfg);
        st.on_failure(std::size_t{0}, verdict_on(wire::groq_429(7)), t0, false);
        CHECK(st.key(0).cool_until == t0 + 7s);
    }
}

TEST_CASE("a cancelled probe hands the probe to the next request", "[state][circuit]") {
    cascade::TierState st(1, {}, {});
    st.open_circuit(t0, 1s);
    REQUIRE(st.admit(t0 + 1s).probe);
    st.on_failure(std::size_t{0}, verdict(Fault::cancelled, Scope::attempt), t0 + 1s, true);
    CHECK(st.admit(t0 + 1s).probe);
}

TEST_CASE("consecutive transient failures open the circuit, a success resets the count", "[state][circuit]") {
    cascade::CircuitConfig cfg;
    cfg.failure_threshold = 3;
    cfg.break_for = 5s;
    cascade::TierState st(1, {}, cfg);
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), t0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), t0, false);
    st.on_success(std::size_t{0}, 0, 0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::server_error, Scope::attempt), t0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::timeout, Scope::attempt), t0, false);
    CHECK_FALSE(st.circuit_open(t0));
    st.on_failure(std::size_t{0}, verdict(Fault::network, Scope::attempt), t0, false);
    CHECK(st.circuit_open(t0));
    CHECK_FALSE(st.circuit_open(t0 + 5s));
}

TEST_CASE("permanent request-specific failures do not open the circuit", "[state][circuit]") {
    cascade::CircuitConfig cfg;
    cfg.failure_threshold = 1;
    cascade::TierState st(1, {}, cfg);
    st.on_failure(std::size_t{0}, verdict(Fault::bad_request, Scope::attempt), t0, false);
    st.on_failure(std::size_t{0}, verdict(Fault::context_too_long, Scope::attempt), t0, false);
    CHECK_FALSE(st.circuit_open(t0));
}

TEST_CASE("a practically endless cooldown does not overflow the clock", "[state][keys]") {
    cascade::TierState st(1, {}, {});
    st.on_failure(std::size_t{0}, verdict(Fault::quota_exhausted, Scope::key, std::chrono::milliseconds::max()), t0, false);
    CHECK(st.key(0).cool_until == Clock::time_point::max());
    CHECK_FALSE(st.pick_key(t0 + 24h * 365, 1, 0, cascade::KeyOrder::sequential).key);
    CHECK_FALSE(st.usable_at(t0, 1) < Clock::time_point::max());
}

TEST_CASE("a tier's p95 latency comes from its recent answers", "[state][hedge]") {
    cascade::TierState st(1, {}, {});
    CHECK(st.latency_p95().second == 0);
    for (int i = 1; i <= 100; ++i) st.note_latency(std::chrono::milliseconds(i));
    auto [p95, n] = st.latency_p95();
    CHECK(n == 64);  // the last 64: 37..100 ms
    CHECK(p95 == 97ms);
}

// --- The manual clock --------------------------------------------------------------------------------

TEST_CASE("a manual clock completes waits when it reaches them, in time order, and cancels on request", "[clock]") {
    boost::asio::io_context io;
    cascade::ManualClock clock;
    auto start = clock.now();
    std::vector<int> order;
    boost::system::error_code cancelled_with;
    boost::asio::cancellation_signal sig;
    clock.async_wait_until(io.get_executor(), start + 2s, [&](boost::system::error_code) { order.push_back(2); });
    clock.async_wait_until(io.get_executor(), start + 1s, [&](boost::system::error_code) { order.push_back(1); });
    clock.async_wait_until(io.get_executor(), start + 3s,
                           boost::asio::bind_cancellation_slot(sig.slot(), [&](boost::system::error_code ec) { cancelled_with = ec; }));
    io.restart();
    io.poll();
    CHECK(order.empty());
    CHECK(clock.waiting() == 3);
    clock.advance(1500ms);
    io.restart();
    io.poll();
    CHECK(order == std::vector<int>{1});
    CHECK(clock.advance_to_next());
    io.restart();
    io.poll();
    CHECK(order == std::vector<int>{1, 2});
    CHECK(clock.now() == start + 2s);
    sig.emit(boost::asio::cancellation_type::terminal);
    io.restart();
    io.poll();
    CHECK(cancelled_with == boost::asio::error::operation_aborted);
    CHECK_FALSE(clock.advance_to_next());
    // Its times map to the steady clock's by their distance from now.
    auto steady = clock.to_steady(clock.now() + 5s);
    CHECK(steady - Clock::now() > 4s);
    CHECK(clock.from_steady(steady) - clock.now() > 4s);
}
