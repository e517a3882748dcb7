// The cache key and the in-memory LRU cache.

#include <cascade/cache/key.hpp>
#include <cascade/cache/memory.hpp>

#include <limits>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

namespace {
cascade::Completion answer(std::string text, std::string label = "groq1") {
    cascade::Completion c;
    c.text = std::move(text);
    c.label = std::move(label);
    return c;
}
} // namespace

TEST_CASE("the cache key is a stable SHA-256 of the documented normalised text", "[cache][key]") {
    auto req = cascade::Request::chat("sys", "hello");
    req.max_tokens = 100;
    req.temperature = 0.5;
    req.tags = {"lang=de"};
    CHECK(cascade::cache_key_material(req) ==
          "cascade-cache-v2\nsystem:3:sys\nuser:5:hello\nmax_tokens=100\ntemperature=0.500\ntag:7:lang=de\n");
    // Fixed vectors: the same on every run and machine. The key's was computed apart, with
    // printf 'cascade-cache-v2\nsystem:3:sys\nuser:5:hello\nmax_tokens=100\ntemperature=0.500\ntag:7:lang=de\n' | sha256sum
    CHECK(cascade::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(cascade::cache_key(req) == "f93f998717743b0de40cf03049f5db6527161cb7d45beb6d663963ba1bc2833a");
    CHECK(cascade::cache_key(req) == cascade::sha256_hex(cascade::cache_key_material(req)));
    CHECK(cascade::cache_key(req).size() == 64);
}

TEST_CASE("the cache key changes with language, messages and sampling, not with tag order", "[cache][key]") {
    auto a = cascade::Request::chat("sys", "hello");
    a.tags = {"lang=de", "tenant=7"};
    auto b = a;
    b.tags = {"tenant=7", "lang=de", "lang=de"};
    CHECK(cascade::cache_key(a) == cascade::cache_key(b));
    b.tags = {"lang=fr", "tenant=7"};
    CHECK(cascade::cache_key(a) != cascade::cache_key(b));
    auto c = a;
    c.temperature = 0.9;
    CHECK(cascade::cache_key(a) != cascade::cache_key(c));
    // Lengths keep "ab"+"c" apart from "a"+"bc".
    auto d = cascade::Request::chat("ab", "c");
    auto e = cascade::Request::chat("a", "bc");
    CHECK(cascade::cache_key(d) != cascade::cache_key(e));
}

TEST_CASE("an unset field writes no line, so a request that sets none keys on its messages and tags alone", "[cache][key]") {
    auto req = cascade::Request::chat("sys", "hello");
    req.tags = {"lang=de"};
    CHECK(cascade::cache_key_material(req) == "cascade-cache-v2\nsystem:3:sys\nuser:5:hello\ntag:7:lang=de\n");
    // v2's defaults, set: the key v2 gave such a request (it always wrote them), so existing entries stay valid.
    auto old_defaults = req;
    old_defaults.max_tokens = 1024;
    old_defaults.temperature = 0.7;
    CHECK(cascade::cache_key_material(old_defaults) ==
          "cascade-cache-v2\nsystem:3:sys\nuser:5:hello\nmax_tokens=1024\ntemperature=0.700\ntag:7:lang=de\n");
    CHECK(cascade::cache_key(req) != cascade::cache_key(old_defaults));
    // max_tokens 0 or less is not sent, so it is keyed as unset.
    auto zero = req;
    zero.max_tokens = 0;
    CHECK(cascade::cache_key(zero) == cascade::cache_key(req));
}

TEST_CASE("the cache key changes with seed, stop, model, top_p, response_format and extra", "[cache][key]") {
    auto base = cascade::Request::chat("sys", "hello");
    base.temperature = 0.2;
    auto same = base;
    CHECK(cascade::cache_key(same) == cascade::cache_key(base));
    auto seed = base;
    seed.seed = 1;
    auto seed2 = base;
    seed2.seed = 2;
    auto stop = base;
    stop.stop = {"END"};
    auto stop2 = base;
    stop2.stop = {"EN", "D"};
    auto model = base;
    model.model = "gpt-4.1";
    auto top_p = base;
    top_p.top_p = 0.9;
    auto format = base;
    format.response_format = R"({"type":"json_object"})";
    auto extra = base;
    extra.extra["reasoning_effort"] = "low";
    std::vector<cascade::Request> all{base, seed, seed2, stop, stop2, model, top_p, format, extra};
    for (std::size_t i = 0; i < all.size(); ++i)
        for (std::size_t j = i + 1; j < all.size(); ++j) {
            INFO(i << " vs " << j);
            CHECK(cascade::cache_key(all[i]) != cascade::cache_key(all[j]));
        }
    // Identical requests share a key, and white space in response_format does not matter.
    auto seed_again = base;
    seed_again.seed = 1;
    CHECK(cascade::cache_key(seed_again) == cascade::cache_key(seed));
    auto spaced = base;
    spaced.response_format = R"({ "type" : "json_object" })";
    CHECK(cascade::cache_key(spaced) == cascade::cache_key(format));
    // A stop sequence holding a newline cannot pass for a model line.
    auto spoof = base;
    spoof.stop = {"x\nmodel:7:gpt-4.1"};
    CHECK(cascade::cache_key(spoof) != cascade::cache_key(model));
}

TEST_CASE("a tag holding a newline does not collide with two tags", "[cache][key][fuzz]") {
    // With `tag=<tag>` lines, one tag "lang=de\ntag=tone=formal" wrote the same text as two tags.
    auto one = cascade::Request::chat("sys", "hello");
    one.tags = {"lang=de\ntag=tone=formal"};
    auto two = one;
    two.tags = {"lang=de", "tone=formal"};
    CHECK(cascade::cache_key_material(one) != cascade::cache_key_material(two));
    CHECK(cascade::cache_key(one) != cascade::cache_key(two));
    // Nor does a tag that repeats the temperature line, nor a message that ends like a tag line.
    auto spoof = cascade::Request::chat("sys", "hello");
    spoof.tags = {"x\ntemperature=0.700"};
    CHECK(cascade::cache_key(spoof) != cascade::cache_key(cascade::Request::chat("sys", "hello")));
}

TEST_CASE("temperatures equal after rounding share a key, -0 and NaN included", "[cache][key][fuzz]") {
    auto zero = cascade::Request::chat("sys", "hello");
    auto negative_zero = zero;
    zero.temperature = 0.0;
    negative_zero.temperature = -0.0001;  // rounds to -0, which printed as "-0.000"
    CHECK(cascade::cache_key(zero) == cascade::cache_key(negative_zero));
    auto nan = zero, negative_nan = zero;
    nan.temperature = std::numeric_limits<double>::quiet_NaN();
    negative_nan.temperature = -std::numeric_limits<double>::quiet_NaN();  // printed as "-nan"
    CHECK(cascade::cache_key(nan) == cascade::cache_key(negative_nan));
    CHECK(cascade::cache_key(nan) != cascade::cache_key(zero));
}

TEST_CASE("the memory cache returns what was put until its TTL passes", "[cache][memory]") {
    cascade::MemoryCacheConfig cfg;
    cfg.ttl = 10s;
    cascade::MemoryCache cache(cfg);
    auto t0 = cascade::MemoryCache::clock::now();
    cache.put("k", answer("hello"), t0);
    auto hit = cache.get("k", t0 + 9s);
    REQUIRE(hit);
    CHECK(hit->text == "hello");
    CHECK(hit->label == "groq1");
    CHECK_FALSE(cache.get("k", t0 + 10s));
    CHECK(cache.size() == 0);  // an expired entry is dropped when found
}

TEST_CASE("the memory cache evicts the least recently used beyond its entry bound", "[cache][memory]") {
    cascade::MemoryCacheConfig cfg;
    cfg.max_entries = 2;
    cascade::MemoryCache cache(cfg);
    cache.put("a", answer("A"));
    cache.put("b", answer("B"));
    CHECK(cache.get("a"));  // a is now the most recent
    cache.put("c", answer("C"));
    CHECK(cache.get("a"));
    CHECK_FALSE(cache.get("b"));
    CHECK(cache.get("c"));
}

TEST_CASE("the memory cache stays within its byte bound and refuses a value larger than it", "[cache][memory]") {
    cascade::MemoryCacheConfig cfg;
    cfg.max_bytes = 1000;
    cascade::MemoryCache cache(cfg);
    for (int i = 0; i < 10; ++i) cache.put("k" + std::to_string(i), answer(std::string(300, 'x')));
    CHECK(cache.bytes() <= 1000);
    CHECK(cache.size() == 2);
    CHECK(cache.get("k9"));
    cache.put("huge", answer(std::string(2000, 'y')));
    CHECK_FALSE(cache.get("huge"));
    CHECK(cache.get("k9"));
}

TEST_CASE("the memory cache does not keep the trail of the request that stored the answer", "[cache][memory]") {
    cascade::MemoryCache cache;
    auto c = answer("x");
    c.trail.push_back(cascade::Attempt{});
    cache.put("k", c);
    CHECK(cache.get("k")->trail.empty());
}

// --- SQLite ----------------------------------------------------------------------------------------

#include <cascade/cache/sqlite.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

namespace {
struct TempDb {
    std::string path = "/tmp/cascade-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter()) + ".db";
    ~TempDb() {
        for (auto suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
    }
    static int& counter() {
        static int n = 0;
        return n;
    }
};
cascade::SqliteCacheConfig quiet(std::vector<std::string>* lines = nullptr) {
    cascade::SqliteCacheConfig cfg;
    cfg.log = [lines](std::string_view l) {
        if (lines) lines->emplace_back(l);
    };
    return cfg;
}
} // namespace

TEST_CASE("the sqlite cache survives closing and reopening the file", "[cache][sqlite]") {
    TempDb db;
    {
        cascade::SqliteCache cache;
        REQUIRE(cache.open(db.path, quiet()).empty());
        auto c = answer("persisted", "deepseek");
        c.usage = {12, 34};
        c.cost_usd = 0.5;
        c.model = "deepseek-chat";
        cache.put("k1", c);
    }
    cascade::SqliteCache again;
    REQUIRE(again.open(db.path, quiet()).empty());
    auto hit = again.get("k1");
    REQUIRE(hit);
    CHECK(hit->text == "persisted");
    CHECK(hit->label == "deepseek");
    CHECK(hit->model == "deepseek-chat");
    CHECK(hit->usage.completion_tokens == 34);
    CHECK(hit->cost_usd == Approx(0.5));
    CHECK_FALSE(again.get("other"));
}

TEST_CASE("the sqlite cache does not serve expired entries and purges them", "[cache][sqlite]") {
    TempDb db;
    cascade::SqliteCache cache;
    auto cfg = quiet();
    cfg.ttl = 60s;
    REQUIRE(cache.open(db.path, cfg).empty());
    auto now = cascade::SqliteCache::clock::now();
    cache.put("old", answer("stale"), now - 61s);
    cache.put("new", answer("fresh"), now - 30s);
    CHECK_FALSE(cache.get("old", now));
    CHECK(cache.get("new", now));
    cache.purge(now);
    CHECK_FALSE(cache.get("old", now - 60s));  // gone from the file, not just filtered
}

TEST_CASE("opening a cache at a bad path is a clear error naming the path", "[cache][sqlite]") {
    cascade::SqliteCache cache;
    auto err = cache.open("/nonexistent-dir/sub/cache.db", quiet());
    CHECK(err.find("/nonexistent-dir/sub/cache.db") != std::string::npos);
    CHECK_FALSE(cache.is_open());
    CHECK_FALSE(cache.get("k"));  // and a closed cache is simply a miss
}

TEST_CASE("a file that is not a database is refused at open", "[cache][sqlite]") {
    TempDb db;
    std::ofstream(db.path) << std::string(4096, 'x');
    cascade::SqliteCache cache;
    auto err = cache.open(db.path, quiet());
    CHECK_FALSE(err.empty());
    CHECK(err.find(db.path) != std::string::npos);
}

TEST_CASE("a write to a locked sqlite file is lost, counted and logged once per episode", "[cache][sqlite]") {
    TempDb db;
    std::vector<std::string> lines;
    cascade::SqliteCache cache;
    REQUIRE(cache.open(db.path, quiet(&lines)).empty());
    cache.put("k", answer("v"));
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(db.path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE;", nullptr, nullptr, nullptr) == SQLITE_OK);
    cache.put("k2", answer("v2"));
    cache.put("k3", answer("v3"));
    CHECK(cache.errors() == 2);
    CHECK(lines.size() == 1);
    sqlite3_exec(other, "COMMIT;", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    cache.put("k4", answer("v4"));
    CHECK(cache.get("k4"));
    CHECK(lines.size() == 2);  // and once when it recovers
}

#include <cascade/detail/episodes.hpp>

TEST_CASE("a success that was already under way when the backend failed does not end the failure episode", "[cache][episodes]") {
    std::vector<std::string> lines;
    cascade::detail::Episodes ep("redis cache 127.0.0.1:6379", [&](std::string_view l) { lines.emplace_back(l); });
    auto before = cascade::detail::Episodes::clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ep.failed("read", "connection refused");
    ep.failed("read", "connection refused");
    ep.succeeded(before);  // its reply was on the way before the failure
    CHECK(lines.size() == 1);
    ep.succeeded(cascade::detail::Episodes::clock::now());
    REQUIRE(lines.size() == 2);
    CHECK(lines[1] == "cascade: redis cache 127.0.0.1:6379 works again");
    CHECK(ep.errors() == 2);
}
