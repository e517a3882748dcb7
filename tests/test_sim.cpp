// The simulator (include/cascade/sim/): modelled accounts enforce their limits at the right request and
// token counts in simulated time; their refusals are the providers' real responses, read by the real
// classifier; a chain over them counts what they count; the shipped scenarios hold their claims.

#include <cascade/cascade.hpp>
#include <cascade/sim/run_scenario.hpp>

#include "support/run.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
using cascade::Clock;
using cascade::Fault;
using cascade::Scope;
namespace sim = cascade::sim;

namespace {

std::chrono::system_clock::time_point const monday = std::chrono::sys_days(std::chrono::year{2026} / 11 / 30);

sim::Instant at(Clock::time_point t0, Clock::duration since) { return sim::Instant{t0 + since, monday + since}; }

std::string shipped(std::string const& name) {
    std::ifstream in(std::string(CASCADE_SOURCE_DIR) + "/examples/simulate/scenarios/" + name, std::ios::binary);
    REQUIRE(in);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

cascade::Request request_of(std::size_t prompt_chars, int max_tokens) {
    auto r = cascade::Request::chat("", std::string(prompt_chars, 'x'));
    r.max_tokens = max_tokens;
    return r;
}

// One attempt of `tier` with `key` at the clock's now, run to its end in simulated time.
cascade::Outcome attempt(boost::asio::io_context& io, cascade::ManualClock& clock, sim::ModelledTier& tier, cascade::Request const& req, int key = 0) {
    cascade::Context ctx;
    ctx.key = key;
    ctx.utc = clock.utc_now();
    return cascade::test::run_simulated(io, clock, tier.attempt(req, ctx));
}

} // namespace

TEST_CASE("modelled account: the 31st request in a minute trips 30 requests per minute, and the window refills", "[sim]") {
    sim::Account acc(sim::AccountLimits{.requests_per_minute = 30});
    Clock::time_point const t0{1h};
    for (int i = 0; i < 30; ++i) REQUIRE_FALSE(acc.admit("org", 10, 10, at(t0, 0s)));
    auto trip = acc.admit("org", 10, 10, at(t0, 0s));
    REQUIRE(trip);
    CHECK(trip->limit == sim::Limit::requests_per_minute);
    CHECK(trip->limit_value == 30);
    CHECK(trip->used == 30);
    CHECK(trip->retry_in == 2s);  // one request comes back every 60/30 s
    CHECK(acc.admit("org", 10, 10, at(t0, 1999ms)));
    CHECK_FALSE(acc.admit("org", 10, 10, at(t0, 2s)));
    CHECK(acc.admit("org", 10, 10, at(t0, 2s)));
}

TEST_CASE("modelled account: tokens per minute and per day trip at their token counts, settled to the real usage", "[sim]") {
    sim::Account acc(sim::AccountLimits{.tokens_per_minute = 12'000, .tokens_per_day = 100'000});
    Clock::time_point const t0{1h};
    // 5,000 prompt + 2,200 max_tokens = 7,200 reserved: one fits a minute of 12,000, two do not.
    REQUIRE_FALSE(acc.admit("org", 5'000, 2'200, at(t0, 0s)));
    auto trip = acc.admit("org", 5'000, 2'200, at(t0, 0s));
    REQUIRE(trip);
    CHECK(trip->limit == sim::Limit::tokens_per_minute);
    CHECK(trip->used == 7'200);
    CHECK(trip->requested == 7'200);
    CHECK(trip->retry_in == 12s);  // 2,400 tokens missing at 200 a second
    // The answer used 1,000 of its 2,200: the minute gets 1,200 back, and the second fits at once.
    acc.settle("org", 7'200, 6'000, at(t0, 0s));
    CHECK_FALSE(acc.admit("org", 5'000, 1'000, at(t0, 0s)));
    acc.settle("org", 6'000, 6'000, at(t0, 0s));
    // The day: 100,000 tokens hold 16 requests of 6,000 (96,000); the 17th trips the day, not the minute.
    int admitted = 2;
    auto t = 0s;
    for (;;) {
        t += 60s;
        auto tr = acc.admit("org", 5'000, 1'000, at(t0, t));
        if (tr) {
            CHECK(tr->limit == sim::Limit::tokens_per_day);
            CHECK(tr->limit_value == 100'000);
            break;
        }
        acc.settle("org", 6'000, 6'000, at(t0, t));
        ++admitted;
    }
    // The day's bucket refills 100,000 / 86,400 s: about 69 tokens a minute over the 16 minutes, so 16.
    CHECK(admitted == 16);
}

TEST_CASE("modelled account: keys of one organization share its limits, keys of their own do not", "[sim]") {
    sim::Account acc(sim::AccountLimits{.requests_per_day = 2});
    Clock::time_point const t0{1h};
    CHECK_FALSE(acc.admit("org1", 1, 1, at(t0, 0s)));
    CHECK_FALSE(acc.admit("org1", 1, 1, at(t0, 0s)));
    auto trip = acc.admit("org1", 1, 1, at(t0, 0s));
    REQUIRE(trip);
    CHECK(trip->limit == sim::Limit::requests_per_day);
    CHECK_FALSE(acc.admit("org2", 1, 1, at(t0, 0s)));
}

TEST_CASE("modelled account: a calendar day resets at midnight UTC, not 24 hours after", "[sim]") {
    sim::Account acc(sim::AccountLimits{.requests_per_day = 50, .window = sim::Window::calendar});
    Clock::time_point const t0{1h};
    auto const evening = 23h;
    for (int i = 0; i < 50; ++i) REQUIRE_FALSE(acc.admit("acct", 1, 1, at(t0, evening)));
    auto trip = acc.admit("acct", 1, 1, at(t0, evening));
    REQUIRE(trip);
    CHECK(trip->retry_in == 1h);
    CHECK(acc.admit("acct", 1, 1, at(t0, evening + 59min)));
    CHECK_FALSE(acc.admit("acct", 1, 1, at(t0, 24h)));
}

TEST_CASE("modelled account: a request over the minute's whole token limit is too large, at once", "[sim]") {
    sim::Account acc(sim::AccountLimits{.tokens_per_minute = 6'000});
    auto trip = acc.admit("org", 5'000, 2'200, at(Clock::time_point{1h}, 0s));
    REQUIRE(trip);
    CHECK(trip->limit == sim::Limit::request_too_large);
}

TEST_CASE("modelled tiers refuse with the providers' real responses, and the real classifier reads them", "[sim]") {
    boost::asio::io_context io;
    cascade::ManualClock clock;
    clock.set_utc(monday);
    cascade::DefaultClassify classify;
    auto const req = request_of(20'000, 2'200);  // about 5,000 prompt tokens

    SECTION("Groq: tokens per minute is a 429 for the key, with its retry-after and reset headers") {
        sim::ModelledTierConfig cfg;
        cfg.name = "groq";
        cfg.dialect = sim::Dialect::groq;
        cfg.limits.tokens_per_minute = 12'000;
        cfg.prices.free = true;
        cfg.latency = sim::LatencyModel{0ms, 1e6, 0.0, 60ms};  // answers at once: nothing refills meanwhile
        sim::ModelledTier groq(cfg, clock);
        REQUIRE(attempt(io, clock, groq, req).has_value());
        auto out = attempt(io, clock, groq, req);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 429);
        CHECK(out.error().header("x-ratelimit-limit-tokens") == std::optional<std::string_view>("12000"));
        CHECK(out.error().body.find("on tokens per minute (TPM): Limit 12000") != std::string::npos);
        auto v = classify.classify(out.error());
        CHECK(v.fault == Fault::rate_limited);
        CHECK(v.scope == Scope::key);
        REQUIRE(v.cool_for);
        CHECK(*v.cool_for > 1s);
        CHECK(*v.cool_for < 60s);
        CHECK(groq.counts().trips_of(sim::Limit::tokens_per_minute) == 1);
    }
    SECTION("Groq: a 1010 block is provider-wide") {
        sim::ModelledTierConfig cfg;
        cfg.name = "groq";
        cfg.dialect = sim::Dialect::groq;
        cfg.prices.free = true;
        cfg.episodes.push_back(sim::Episode{sim::Limit::blocked, 0s, 4h, {}, 1.0});
        sim::ModelledTier groq(cfg, clock);
        auto out = attempt(io, clock, groq, req);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 403);
        CHECK(out.error().body == "error code: 1010");
        auto v = classify.classify(out.error());
        CHECK(v.fault == Fault::blocked);
        CHECK(v.scope == Scope::provider);
        clock.advance(4h);
        CHECK(attempt(io, clock, groq, req).has_value());  // the episode is over
    }
    SECTION("DeepSeek: a spent balance is a 402 and a long rest; off-peak answers cost half") {
        sim::ModelledTierConfig cfg;
        cfg.name = "deepseek";
        cfg.dialect = sim::Dialect::deepseek;
        cfg.prices = cascade::Prices(0.30, 1.20);
        cfg.prices.peak = cascade::PeakHours{cascade::PeakHours::between(1, 4) | cascade::PeakHours::between(6, 10), true, 0.5};
        cfg.answer_tokens = {1000, 1000};
        cfg.latency.jitter = 0.0;
        clock.set_utc(monday + 2h);  // Monday 02:00 UTC: peak
        sim::ModelledTier ds(cfg, clock);
        auto peak = attempt(io, clock, ds, req);
        REQUIRE(peak.has_value());
        clock.set_utc(monday + 12h);  // 12:00 UTC: off-peak
        auto off = attempt(io, clock, ds, req);
        REQUIRE(off.has_value());
        CHECK(off->cost_usd == Approx(peak->cost_usd / 2));
        CHECK(peak->cost_usd == Approx((peak->usage.prompt_tokens * 0.30 + 1000 * 1.20) / 1e6));

        cfg.balance_usd = off->cost_usd * 1.5;  // one answer fits, the second overdraws, the third is refused
        sim::ModelledTier prepaid(cfg, clock);
        REQUIRE(attempt(io, clock, prepaid, req).has_value());
        REQUIRE(attempt(io, clock, prepaid, req).has_value());
        auto out = attempt(io, clock, prepaid, req);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 402);
        auto v = classify.classify(out.error());
        CHECK(v.fault == Fault::quota_exhausted);
        CHECK(v.scope == Scope::key);
    }
    SECTION("Vertex: a region's quota is RESOURCE_EXHAUSTED for that region's key only") {
        sim::ModelledTierConfig cfg;
        cfg.name = "vertex-pro";
        cfg.dialect = sim::Dialect::vertex;
        cfg.prices = cascade::Prices(1.25, 10.0);
        cfg.keys = {{"vertex-pro/us-central1", ""}, {"vertex-pro/europe-west1", ""}};
        cfg.episodes.push_back(sim::Episode{sim::Limit::quota, 0s, 0s, {0}, 1.0});
        sim::ModelledTier vx(cfg, clock);
        auto out = attempt(io, clock, vx, req, 0);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 429);
        CHECK(classify.classify(out.error()).fault == Fault::rate_limited);
        auto ok = attempt(io, clock, vx, req, 1);
        REQUIRE(ok.has_value());
        CHECK(vx.label(1) == "vertex-pro/europe-west1");
    }
    SECTION("OpenRouter: the free models' day is a 429 whose reset is the next UTC midnight") {
        sim::ModelledTierConfig cfg;
        cfg.name = "openrouter";
        cfg.dialect = sim::Dialect::openrouter;
        cfg.prices.free = true;
        cfg.limits = sim::AccountLimits{.requests_per_day = 1, .window = sim::Window::calendar};
        sim::ModelledTier orr(cfg, clock);
        REQUIRE(attempt(io, clock, orr, req).has_value());
        auto out = attempt(io, clock, orr, req);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 429);
        CHECK(out.error().body.find("free-models-per-day") != std::string::npos);
        auto v = classify.classify(out.error());
        CHECK((v.fault == Fault::rate_limited || v.fault == Fault::quota_exhausted));
        CHECK(v.scope == Scope::key);
        REQUIRE(v.cool_for);  // from metadata.headers.X-RateLimit-Reset: the next UTC midnight, a day away
        CHECK(*v.cool_for > 23h);
        CHECK(*v.cool_for <= 24h);
    }
    SECTION("Hugging Face: answers are free until the month's included credits are spent, then 402") {
        sim::ModelledTierConfig cfg;
        cfg.name = "hf";
        cfg.dialect = sim::Dialect::huggingface;
        cfg.prices = cascade::Prices(0.6, 0.6);
        cfg.included_credits_usd = 0.001;  // about one answer of 6,000 tokens at $0.60 per 1M (0.0036)
        sim::ModelledTier hf(cfg, clock);
        auto first = attempt(io, clock, hf, req);
        REQUIRE(first.has_value());
        CHECK(first->cost_usd == 0.0);
        auto out = attempt(io, clock, hf, req);
        REQUIRE(out.has_error());
        CHECK(out.error().status == 402);
        CHECK(classify.classify(out.error()).fault == Fault::quota_exhausted);
    }
}

TEST_CASE("a chain over modelled tiers counts what the modelled accounts count", "[sim]") {
    auto s = sim::parse_scenario(shipped("seed-chain.json"));
    s.load.requests_per_day = 300;
    s.load.warmup_days = 0;
    s.tiers[0].chain_knows_groups = false;  // the chain budgets each key alone: the organization's limits trip
    s.tiers[1].episodes.push_back(sim::Episode{sim::Limit::short_answer, 0s, 0s, {}, 0.1});

    boost::asio::io_context io;
    cascade::ManualClock clock;
    sim::ModelledTier groq(s.tiers[0], clock), ds(s.tiers[1], clock);
    cascade::BasicChain<sim::SimulatedPolicies, sim::ModelledTier, sim::ModelledTier, cascade::Template> chain(
        io.get_executor(), groq, ds, cascade::Template{sim::template_report});
    chain.clock() = clock;
    chain.accept_policy().min_chars = 400;
    auto series_of = [](cascade::Completion const& c) -> std::size_t {
        if (c.origin == cascade::Origin::fallback) return 2;
        return c.label.starts_with("groq") ? 0 : 1;
    };
    auto r = sim::simulate(io, chain, clock, s.load, {"groq", "deepseek", "fallback-template"}, series_of);

    auto const stats = chain.observer().snapshot();
    auto const& g = groq.counts();
    auto const& d = ds.counts();
    REQUIRE(r.requests == 300);
    CHECK(g.trips_of(sim::Limit::tokens_per_day) + g.trips_of(sim::Limit::tokens_per_minute) > 0);
    CHECK(d.trips_of(sim::Limit::short_answer) > 0);
    // Every attempt the chain made reached the account; every refusal is a fault the chain counted.
    CHECK(stats[0].attempts == g.received);
    CHECK(stats[1].attempts == d.received);
    CHECK(stats[0].fault_count_of(Fault::rate_limited) == g.refused);
    CHECK(stats[0].hits == g.answered);
    CHECK(stats[1].fault_count_of(Fault::rejected) == d.trips_of(sim::Limit::short_answer));
    CHECK(stats[1].hits == d.answered - d.trips_of(sim::Limit::short_answer));
    CHECK(r.series[0].answers == g.answered);
    CHECK(r.series[0].answers + r.series[1].answers + r.series[2].answers == 300);
    CHECK(r.series[1].cost_usd < stats[1].cost_usd);  // short answers were paid for, but answered nothing
    CHECK(stats[1].cost_usd == Approx(d.cost_usd));
    CHECK(stats[0].prompt_tokens == g.prompt_tokens);
    CHECK(stats[0].completion_tokens == g.completion_tokens);
    std::uint64_t by_key = 0;
    for (auto n : g.answered_by_key) by_key += n;
    CHECK(by_key == g.answered);
}

TEST_CASE("the seed's 40 runs: Groq answers every run outside the 1010 block, DeepSeek those inside it", "[sim]") {
    auto const s = sim::parse_scenario(shipped("seed-40-runs.json"));
    REQUIRE(s.tiers[0].episodes.size() == 1);
    auto const& block = s.tiers[0].episodes[0];
    std::uint64_t inside = 0;
    for (auto const& a : sim::arrivals(s.load)) inside += a.at >= block.from && a.at < block.from + block.length;
    auto const r = sim::run_scenario(s);
    REQUIRE(r.requests == 40);
    CHECK(inside > 0);
    CHECK(r.series[0].name == "groq");
    CHECK(r.series[0].answers == 40 - inside);
    CHECK(r.series[1].answers == inside);
    CHECK(r.series[2].answers == 0);  // vertex-pro
    CHECK(r.template_answers == 0);
    CHECK(r.series[0].cost_usd == 0.0);
    CHECK(r.total_cost_usd > 0.0);
}

TEST_CASE("1,000 reports a day: Groq's free tier carries its day's tokens and no more, DeepSeek the rest", "[sim]") {
    auto const s = sim::parse_scenario(shipped("seed-chain.json"));
    REQUIRE(s.load.requests_per_day == 1000);
    auto const r = sim::run_scenario(s);
    auto const& groq = r.series[0];
    auto const tokens = groq.prompt_tokens + groq.completion_tokens;
    // A rolling day refills 100,000 tokens; in a saturated day the bucket starts and ends nearly empty
    // (below one request's 7,700 reserved tokens).
    CHECK(tokens <= 100'000 + 7'700);
    CHECK(tokens >= 100'000 - 7'700);
    CHECK(groq.answers < 25);
    CHECK(r.series[1].answers == r.requests - groq.answers);
    CHECK(r.template_answers == 0);
    CHECK(r.trips.empty());  // the chain knows the organization's budgets: it never trips them
}

TEST_CASE("a cached scenario answers every repeated audit from the cache, with no upstream attempt", "[sim]") {
    auto s = sim::parse_scenario(shipped("seed-chain.json"));
    s.cache = true;
    s.load.requests_per_day = 400;
    std::uint64_t repeats = 0;
    auto const warmup = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.load.warmup_days * 86'400.0));
    for (auto const& a : sim::arrivals(s.load)) repeats += a.repeat && a.at >= warmup;
    auto const r = sim::run_scenario(s);
    CHECK(repeats > 80);
    CHECK(r.cached_answers == repeats);
    std::uint64_t attempts = 0;
    for (auto const& c : r.chain) attempts += c.attempts;
    CHECK(attempts == r.requests - repeats);  // no key trips, no retries: one upstream attempt per new audit
}

TEST_CASE("a simulation is deterministic, and 10,000 requests run", "[sim]") {
    auto s = sim::parse_scenario(shipped("seed-chain.json"));
    s.load.requests_per_day = 10'000;
    s.load.warmup_days = 0;
    s.cache = true;
    auto a = sim::to_json(sim::run_scenario(s));
    auto b = sim::to_json(sim::run_scenario(s));
    a.erase("wall_seconds");
    b.erase("wall_seconds");
    CHECK(a == b);
    CHECK(a.at("requests").to_number<std::uint64_t>() == 10'000);
}

TEST_CASE("a scenario that cannot be read says which field is wrong", "[sim]") {
    auto const base = shipped("seed-40-runs.json");
    auto fails_with = [&](std::vector<std::string> sets, std::string const& what) {
        auto doc = boost::json::parse(base);
        for (auto const& s : sets) sim::apply_override(doc, s);
        CHECK_THROWS_WITH(sim::parse_scenario(boost::json::serialize(doc)), Catch::Contains(what));
    };
    fails_with({"tiers[0].limts={}"}, "tiers[0].limts: unknown field");
    fails_with({"tiers[0].limits.tokens_per_minute=-5"}, "tiers[0].limits.tokens_per_minute: must not be negative");
    fails_with({"tiers[0].limits.tokens_per_minute=\"many\""}, "tiers[0].limits.tokens_per_minute: expected a whole number");
    fails_with({"tiers[1].dialect=\"mistral\""}, "tiers[1].dialect: unknown dialect \"mistral\"");
    fails_with({"tiers[1].prices={}"}, "tiers[1].prices: give prices");
    fails_with({"tiers[0].episodes[0].keys=[7]"}, "tiers[0].episodes[0].keys[0]: no such key");
    fails_with({"tiers[2].name=\"groq\""}, "\"groq\" is used twice");
    fails_with({"load.hourly_curve=[1,2]"}, "load.hourly_curve: expected 24 weights");
    fails_with({"load.repeat_share=1.5"}, "load.repeat_share: must be between");
    fails_with({"load.start_utc=\"yesterday\""}, "load.start_utc: expected a UTC time");
    fails_with({"tiers[0].organizations=9"}, "tiers[0].organizations: must be between 1 and the number of keys");
    CHECK_THROWS_WITH(sim::parse_scenario("{\"name\": 1"), Catch::Contains("not valid JSON"));
    CHECK_THROWS_WITH(sim::parse_scenario("{\"name\": \"x\", \"load\": {}}"), Catch::Contains("needs tiers"));
    auto doc = boost::json::parse(base);
    CHECK_THROWS_WITH(sim::apply_override(doc, "tiers[9].name=x"), Catch::Contains("tiers[9] does not exist"));
    CHECK_THROWS_WITH(sim::apply_override(doc, "nothing"), Catch::Contains("expected path=value"));
    CHECK_THROWS_WITH(sim::apply_override(doc, "load.nope.deeper=1"), Catch::Contains("load.nope does not exist"));
}
