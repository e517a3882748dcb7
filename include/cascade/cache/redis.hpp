#pragma once
/// @file
/// @brief `RedisCache`: a cache shared by several server instances, with a TTL per entry.
///
/// Link hiredis (`-lhiredis`) to use it.

#include <cascade/core/completion.hpp>
#include <cascade/detail/episodes.hpp>
#include <cascade/net/redis.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade {

/// @brief Settings of `RedisCache`.
struct RedisCacheConfig {
    redis::Config server;
    /// How long an answer is served after it was stored (Redis `EX`).
    std::chrono::seconds ttl{24 * 3600};
    /// Prefix of every key, so that several applications can share one Redis.
    std::string key_prefix = "cascade:cache:";
    /// Called once when the cache starts failing and once when it recovers; default: a line on stderr.
    std::function<void(std::string_view)> log;
};

/// @brief A cache in Redis, shared by every instance that points at the same server.
///
/// Redis down or slow is a miss, never a failure of the chain: the first command that meets it waits at
/// most `server.command_timeout`; then the client is unavailable and lookups miss at once until it has
/// reconnected in the background. Errors are counted and logged once per episode. Only `configure` reports errors (a bad configuration).
class RedisCache {
public:
    RedisCache() = default;

    /// @brief Points the cache at a server. Returns an empty string, or what is wrong with `cfg`.
    std::string configure(boost::asio::any_io_executor ex, RedisCacheConfig cfg) {
        if (auto err = redis::check(cfg.server, "redis cache"); !err.empty()) return err;
        if (cfg.ttl.count() <= 0) return "redis cache: ttl must be positive";
        auto st = std::make_shared<State>();
        st->client = std::make_shared<redis::Client>(std::move(ex), cfg.server);
        st->episodes = std::make_unique<detail::Episodes>(
            "redis cache " + cfg.server.host + ":" + std::to_string(cfg.server.port), cfg.log);
        st->cfg = std::move(cfg);
        std::lock_guard lock(mutex_);
        state_ = std::move(st);
        return {};
    }

    boost::asio::awaitable<std::optional<Completion>> get(std::string const& key) {
        auto st = state();
        if (!st) co_return std::nullopt;
        std::vector<std::string> args{"GET", st->cfg.key_prefix + key};  // named: see GCC PR 100611
        auto const started = detail::Episodes::clock::now();
        auto r = co_await st->client->command(std::move(args));
        if (!r || r->type == redis::Reply::Type::error) {
            st->episodes->failed("read", r ? r->str : r.error().message());
            co_return std::nullopt;
        }
        st->episodes->succeeded(started);
        if (r->type != redis::Reply::Type::string) co_return std::nullopt;
        co_return decode(r->str);
    }

    boost::asio::awaitable<void> put(std::string const& key, Completion const& c) {
        auto st = state();
        if (!st) co_return;
        std::vector<std::string> args{"SET", st->cfg.key_prefix + key, encode(c), "EX", std::to_string(st->cfg.ttl.count())};
        auto const started = detail::Episodes::clock::now();
        auto r = co_await st->client->command(std::move(args));
        if (!r || r->type == redis::Reply::Type::error)
            st->episodes->failed("write", r ? r->str : r.error().message());
        else
            st->episodes->succeeded(started);
    }

    /// @brief Failed operations so far (each a miss or a lost write).
    std::uint64_t errors() const {
        auto st = state();
        return st ? st->episodes->errors() : 0;
    }

    static std::string encode(Completion const& c) {
        boost::json::object o{{"text", c.text},
                              {"label", c.label},
                              {"model", c.model},
                              {"finish_reason", c.finish_reason},
                              {"prompt_tokens", c.usage.prompt_tokens},
                              {"completion_tokens", c.usage.completion_tokens},
                              {"cost_usd", c.cost_usd}};
        return boost::json::serialize(o);
    }

    static std::optional<Completion> decode(std::string_view s) {
        boost::system::error_code ec;
        auto v = boost::json::parse(s, ec);
        if (ec || !v.is_object()) return std::nullopt;
        auto const& o = v.get_object();
        auto str = [&](char const* k) {
            auto const* f = o.if_contains(k);
            return f && f->is_string() ? std::string(f->get_string()) : std::string();
        };
        auto num = [&](char const* k) -> std::uint32_t {
            auto const* f = o.if_contains(k);
            return f && f->is_int64() ? static_cast<std::uint32_t>(f->get_int64()) : f && f->is_uint64() ? static_cast<std::uint32_t>(f->get_uint64()) : 0;
        };
        Completion c;
        c.text = str("text");
        c.label = str("label");
        c.model = str("model");
        c.finish_reason = str("finish_reason");
        c.usage.prompt_tokens = num("prompt_tokens");
        c.usage.completion_tokens = num("completion_tokens");
        if (auto const* f = o.if_contains("cost_usd"); f && f->is_number()) c.cost_usd = f->to_number<double>();
        if (c.text.empty()) return std::nullopt;
        return c;
    }

private:
    struct State {
        std::shared_ptr<redis::Client> client;
        RedisCacheConfig cfg;
        std::unique_ptr<detail::Episodes> episodes;
    };

    std::shared_ptr<State> state() const {
        std::lock_guard lock(mutex_);
        return state_;
    }

    mutable std::mutex mutex_;
    std::shared_ptr<State> state_;
};

} // namespace cascade
