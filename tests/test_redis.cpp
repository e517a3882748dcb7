// The Redis client and the Redis cache, against a private redis-server on 127.0.0.1.

#include <cascade/cache/memory.hpp>
#include <cascade/cache/redis.hpp>
#include <cascade/chain.hpp>
#include <cascade/provider/template.hpp>

#include "support/redis_server.hpp"
#include "support/run.hpp"
#include "support/scripted_tier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::test::ScriptedTier;
using cascade::test::Step;

namespace {
cascade::RedisCacheConfig config_for(cascade::test::RedisServer const& server, std::vector<std::string>* log = nullptr) {
    cascade::RedisCacheConfig cfg;
    cfg.server.port = server.port();
    cfg.log = [log](std::string_view l) {
        if (log) log->emplace_back(l);
    };
    return cfg;
}
} // namespace

TEST_CASE("the redis client sends commands and reads every reply type", "[redis]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    cascade::redis::Config cfg;
    cfg.port = server.port();
    cascade::redis::Client client(io.get_executor(), cfg);
    // Commands are built in named locals: g++ 12 miscompiles braced temporaries inside co_await.
    static constexpr char raw[] = "v\r\nwith binary \0 bytes";
    std::string const binary(raw, sizeof raw - 1);
    std::vector<std::string> c_set{"SET", "k", binary}, c_get{"GET", "k"}, c_missing{"GET", "nope"},
        c_incr{"INCRBY", "counter", "5"}, c_bad{"NOSUCHCOMMAND"}, c_push{"RPUSH", "list", "a", "b"},
        c_range{"LRANGE", "list", "0", "-1"};
    auto body = [&]() -> asio::awaitable<void> {
        auto set = co_await client.command(c_set);
        REQUIRE(set.has_value());
        CHECK(set->type == cascade::redis::Reply::Type::status);
        auto get = co_await client.command(c_get);
        REQUIRE(get.has_value());
        CHECK(get->str == binary);
        auto missing = co_await client.command(c_missing);
        CHECK(missing->type == cascade::redis::Reply::Type::nil);
        auto n = co_await client.command(c_incr);
        CHECK(n->integer == 5);
        auto err = co_await client.command(c_bad);
        REQUIRE(err.has_value());
        CHECK(err->type == cascade::redis::Reply::Type::error);
        co_await client.command(c_push);
        auto arr = co_await client.command(c_range);
        REQUIRE(arr->elements.size() == 2);
        CHECK(arr->elements[1].str == "b");
    };
    cascade::test::run(io, body());
    CHECK(client.connections_opened() == 1);  // one connection served every command
}

TEST_CASE("a redis server that is down fails a command within its timeout", "[redis]") {
    asio::io_context io;
    cascade::redis::Config cfg;
    cfg.port = cascade::test::free_loopback_port();  // nothing listens there
    cfg.command_timeout = 100ms;
    cascade::redis::Client client(io.get_executor(), cfg);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> ping{"PING"};
    auto r = cascade::test::run(io, client.command(ping));
    CHECK_FALSE(r.has_value());
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}

TEST_CASE("the redis cache stores an answer with a TTL and serves it to another instance", "[redis][cache]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    cascade::RedisCache a, b;
    REQUIRE(a.configure(io.get_executor(), config_for(server)).empty());
    REQUIRE(b.configure(io.get_executor(), config_for(server)).empty());
    cascade::Completion c;
    c.text = "shared";
    c.label = "groq2";
    c.usage = {3, 4};
    auto body = [&]() -> asio::awaitable<void> {
        co_await a.put("key1", c);
        auto hit = co_await b.get("key1");
        REQUIRE(hit);
        CHECK(hit->text == "shared");
        CHECK(hit->label == "groq2");
        CHECK(hit->usage.completion_tokens == 4);
        cascade::redis::Config rc;
        rc.port = server.port();
        cascade::redis::Client raw(co_await asio::this_coro::executor, rc);
        std::vector<std::string> ttl_cmd{"TTL", "cascade:cache:key1"};
        auto ttl = co_await raw.command(ttl_cmd);
        CHECK(ttl->integer > 86000);
    };
    cascade::test::run(io, body());
}

TEST_CASE("a bad redis configuration is a clear error at configure", "[redis][cache]") {
    asio::io_context io;
    cascade::RedisCache cache;
    cascade::RedisCacheConfig cfg;
    cfg.server.port = 0;
    CHECK(cache.configure(io.get_executor(), cfg) == "redis cache: server.port is 0");
    cfg.server.port = 6379;
    cfg.server.host.clear();
    CHECK(cache.configure(io.get_executor(), cfg) == "redis cache: server.host is empty");
}

TEST_CASE("two chains sharing a redis cache: the second instance's identical request is a hit", "[redis][chain]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    using P = cascade::DefaultPolicies::with_cache<cascade::RedisCache>;
    ScriptedTier groq_a("groq"), groq_b("groq");
    cascade::BasicChain<P, ScriptedTier, cascade::Template> a(io.get_executor(), groq_a, cascade::Template{});
    cascade::BasicChain<P, ScriptedTier, cascade::Template> b(io.get_executor(), groq_b, cascade::Template{});
    REQUIRE(a.cache().configure(io.get_executor(), config_for(server)).empty());
    REQUIRE(b.cache().configure(io.get_executor(), config_for(server)).empty());
    auto req = cascade::Request::chat("sys", "same prompt");
    auto first = cascade::test::run(io, a.complete(req));
    auto second = cascade::test::run(io, b.complete(req));
    CHECK(first.label == "groq");
    CHECK(second.label == "cache");
    CHECK(second.cached_label == "groq");
    CHECK(groq_b.total_calls() == 0);
}

TEST_CASE("killing redis-server mid-run: every request still gets its answer", "[redis][chain]") {
    auto server = std::make_unique<cascade::test::RedisServer>();
    asio::io_context io(2);
    using P = cascade::DefaultPolicies::with_cache<cascade::RedisCache>;
    ScriptedTier groq("groq");
    groq.otherwise(Step::ok("fresh").after(2ms));
    cascade::BasicChain<P, ScriptedTier, cascade::Template> chain(io.get_executor(), groq, cascade::Template{});
    std::vector<std::string> log;
    auto cfg = config_for(*server, &log);
    cfg.server.command_timeout = 50ms;
    REQUIRE(chain.cache().configure(io.get_executor(), cfg).empty());
    std::atomic<int> answered{0}, from_llm{0};
    constexpr int workers = 8, per_worker = 30;
    auto worker = [&](int w) -> asio::awaitable<void> {
        for (int i = 0; i < per_worker; ++i) {
            auto req = cascade::Request::chat("sys", "prompt " + std::to_string(w) + "-" + std::to_string(i % 10));
            auto c = co_await chain.complete(req);
            ++answered;
            if (c.label != "fallback-template") ++from_llm;
        }
    };
    for (int w = 0; w < workers; ++w) asio::co_spawn(io, worker(w), asio::detached);
    std::thread killer([&] {
        std::this_thread::sleep_for(30ms);
        server->kill();
    });
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    killer.join();
    CHECK(answered == workers * per_worker);
    CHECK(from_llm == workers * per_worker);  // a dead cache never pushes a request to the fallback
    CHECK(chain.cache().errors() > 0);
    CHECK(log.size() == 1);  // logged once for the episode, not per request
}

// --- Shared state --------------------------------------------------------------------------------------

#include <cascade/cache/redis_state.hpp>

namespace {
using SharedP = cascade::DefaultPolicies::with_state<cascade::RedisState>;
using SharedChain = cascade::BasicChain<SharedP, ScriptedTier, cascade::Template>;

cascade::RedisStateConfig state_config(cascade::test::RedisServer const& server) {
    cascade::RedisStateConfig cfg;
    cfg.server.port = server.port();
    cfg.log = [](std::string_view) {};
    return cfg;
}
} // namespace

TEST_CASE("instance A's 429 on key 1 sends instance B's next request to key 2 without touching key 1",
          "[redis][state]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    ScriptedTier groq_a("groq", 3), groq_b("groq", 3);
    groq_a.then(Step::fail(cascade::Fault::rate_limited, cascade::Scope::key, 30s), 0);
    SharedChain a(io.get_executor(), groq_a, cascade::Template{}), b(io.get_executor(), groq_b, cascade::Template{});
    REQUIRE(a.shared_state().configure(io.get_executor(), state_config(server)).empty());
    REQUIRE(b.shared_state().configure(io.get_executor(), state_config(server)).empty());
    auto req = cascade::Request::chat("sys", "prompt");
    CHECK(cascade::test::run(io, a.complete(req)).label == "groq2");
    auto from_b = cascade::test::run(io, b.complete(req));
    CHECK(from_b.label == "groq2");
    CHECK(groq_b.calls(0) == 0);
    CHECK(from_b.trail.empty());
}

TEST_CASE("instance A's 1010 block makes instance B skip the provider", "[redis][state]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    ScriptedTier groq_a("groq", 5), groq_b("groq", 5);
    groq_a.then(Step::fail(cascade::Fault::blocked, cascade::Scope::provider, 1h), 0);
    SharedChain a(io.get_executor(), groq_a, cascade::Template{}), b(io.get_executor(), groq_b, cascade::Template{});
    REQUIRE(a.shared_state().configure(io.get_executor(), state_config(server)).empty());
    REQUIRE(b.shared_state().configure(io.get_executor(), state_config(server)).empty());
    auto req = cascade::Request::chat("sys", "prompt");
    CHECK(cascade::test::run(io, a.complete(req)).label == "fallback-template");
    auto from_b = cascade::test::run(io, b.complete(req));
    CHECK(from_b.label == "fallback-template");
    CHECK(groq_b.total_calls() == 0);
    REQUIRE(from_b.trail.size() == 1);
    CHECK(from_b.trail[0].fault == cascade::make_error_code(cascade::Fault::circuit_open));
}

TEST_CASE("token use is counted across instances: a key another instance filled is skipped", "[redis][state]") {
    cascade::test::RedisServer server;
    asio::io_context io;
    cascade::KeyLimits limits;
    limits.tokens_per_minute = 6000;
    ScriptedTier groq_a("groq", 2, limits), groq_b("groq", 2, limits);
    groq_a.otherwise(Step::ok("a", {1000, 3000}));
    SharedChain a(io.get_executor(), groq_a, cascade::Template{}), b(io.get_executor(), groq_b, cascade::Template{});
    REQUIRE(a.shared_state().configure(io.get_executor(), state_config(server)).empty());
    REQUIRE(b.shared_state().configure(io.get_executor(), state_config(server)).empty());
    auto req = cascade::Request::chat("sys", "prompt");
    req.max_tokens = 2000;
    CHECK(cascade::test::run(io, a.complete(req)).label == "groq1");  // key 1 now has 4,000 of 6,000 used
    CHECK(cascade::test::run(io, b.complete(req)).label == "groq2");  // b's own bucket is full, the shared one is not
    CHECK(groq_b.calls(0) == 0);
}

TEST_CASE("shared state with redis down: requests are still answered", "[redis][state]") {
    asio::io_context io;
    ScriptedTier groq("groq", 2);
    SharedChain chain(io.get_executor(), groq, cascade::Template{});
    cascade::RedisStateConfig cfg;
    cfg.server.port = cascade::test::free_loopback_port();
    cfg.server.command_timeout = 50ms;
    cfg.log = [](std::string_view) {};
    REQUIRE(chain.shared_state().configure(io.get_executor(), cfg).empty());
    auto req = cascade::Request::chat("sys", "prompt");
    CHECK(cascade::test::run(io, chain.complete(req)).label == "groq1");
    CHECK(chain.shared_state().errors() > 0);
}
