#pragma once
/// @file
/// @brief `RedisState`: key cooldowns, provider circuits and token use shared by every instance through
/// Redis (TTL'd keys; token counters with atomic increments).
///
/// Layout, under `key_prefix` (default `cascade:state:`):
/// - `<tier>:circuit` = unix ms until which the tier's circuit is open, expiring then;
/// - `<tier>:key:<id>:cool` = unix ms until which key `<id>` cools down, or `disabled`;
/// - `<tier>:key:<id>:tokens:<minute>` = tokens used in that minute (INCRBY, expires after two minutes).
/// Link hiredis (`-lhiredis`) to use it.

#include <cascade/detail/episodes.hpp>
#include <cascade/net/redis.hpp>
#include <cascade/policy/shared_state.hpp>

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

/// @brief Settings of `RedisState`.
struct RedisStateConfig {
    redis::Config server;
    std::string key_prefix = "cascade:state:";
    /// How long a disabled key (401) stays disabled for every instance.
    std::chrono::hours disabled_for{24 * 30};
    /// Called once when the store starts failing and once when it recovers; default: a line on stderr.
    std::function<void(std::string_view)> log;
};

/// @brief Shared state in Redis. Unreachable Redis means "nothing shared" (each instance then learns on
/// its own), after the command timeout; failures are counted and logged once per episode.
class RedisState {
public:
    RedisState() = default;

    /// @brief Points the state at a server. Returns an empty string, or what is wrong with `cfg`.
    std::string configure(boost::asio::any_io_executor ex, RedisStateConfig cfg) {
        if (auto err = redis::check(cfg.server, "redis state"); !err.empty()) return err;
        auto st = std::make_shared<State>();
        st->client = std::make_shared<redis::Client>(std::move(ex), cfg.server);
        st->episodes = std::make_unique<detail::Episodes>(
            "redis state " + cfg.server.host + ":" + std::to_string(cfg.server.port), cfg.log);
        st->cfg = std::move(cfg);
        std::lock_guard lock(mutex_);
        state_ = std::move(st);
        return {};
    }

    boost::asio::awaitable<std::optional<SharedTierState>> pull(std::string const& tier, std::vector<std::string> const& ids) {
        auto st = state();
        if (!st) co_return std::nullopt;
        auto minute = std::to_string(unix_ms(std::chrono::system_clock::now()) / 60000);
        std::vector<std::string> args{"MGET", st->key(tier, "circuit")};
        for (auto const& id : ids) {
            args.push_back(st->key(tier, "key:" + id + ":cool"));
            args.push_back(st->key(tier, "key:" + id + ":tokens:" + minute));
        }
        auto const started = detail::Episodes::clock::now();
        auto r = co_await st->client->command(std::move(args));
        if (!r || r->type != redis::Reply::Type::array || r->elements.size() != 1 + 2 * ids.size()) {
            st->episodes->failed("read", r ? (r->type == redis::Reply::Type::error ? r->str : std::string("unexpected reply")) : r.error().message());
            co_return std::nullopt;
        }
        st->episodes->succeeded(started);
        SharedTierState out;
        out.circuit_until = time_of(r->elements[0]);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            SharedKeyState k;
            auto const& cool = r->elements[1 + 2 * i];
            if (cool.type == redis::Reply::Type::string && cool.str == "disabled")
                k.disabled = true;
            else
                k.cool_until = time_of(cool);
            auto const& tokens = r->elements[2 + 2 * i];
            k.tokens_used = tokens.type == redis::Reply::Type::string ? std::strtod(tokens.str.c_str(), nullptr) : 0.0;
            out.keys.push_back(k);
        }
        co_return out;
    }

    boost::asio::awaitable<void> push_key(std::string const& tier, std::string const& id,
                                          std::chrono::system_clock::time_point until, bool disabled) {
        auto st = state();
        if (!st) co_return;
        auto now = std::chrono::system_clock::now();
        auto ms = disabled ? std::chrono::duration_cast<std::chrono::milliseconds>(st->cfg.disabled_for).count()
                           : std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
        if (ms <= 0) co_return;
        std::vector<std::string> args{"SET", st->key(tier, "key:" + id + ":cool"),
                                      disabled ? std::string("disabled") : std::to_string(unix_ms(until)), "PX",
                                      std::to_string(ms)};
        co_await st->run(std::move(args));
    }

    boost::asio::awaitable<void> push_circuit(std::string const& tier, std::chrono::system_clock::time_point until) {
        auto st = state();
        if (!st) co_return;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::system_clock::now()).count();
        if (ms <= 0) co_return;
        std::vector<std::string> args{"SET", st->key(tier, "circuit"), std::to_string(unix_ms(until)), "PX", std::to_string(ms)};
        co_await st->run(std::move(args));
    }

    boost::asio::awaitable<void> push_tokens(std::string const& tier, std::string const& id, std::uint32_t tokens) {
        auto st = state();
        if (!st || tokens == 0) co_return;
        auto key = st->key(tier, "key:" + id + ":tokens:" + std::to_string(unix_ms(std::chrono::system_clock::now()) / 60000));
        std::vector<std::string> incr{"INCRBY", key, std::to_string(tokens)};
        if (!co_await st->run(std::move(incr))) co_return;
        std::vector<std::string> expire{"EXPIRE", key, "120"};
        co_await st->run(std::move(expire));
    }

    std::uint64_t errors() const {
        auto st = state();
        return st ? st->episodes->errors() : 0;
    }

private:
    static long long unix_ms(std::chrono::system_clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    }
    static std::chrono::system_clock::time_point time_of(redis::Reply const& r) {
        if (r.type != redis::Reply::Type::string) return {};
        return std::chrono::system_clock::time_point(std::chrono::milliseconds(std::strtoll(r.str.c_str(), nullptr, 10)));
    }

    struct State {
        std::shared_ptr<redis::Client> client;
        RedisStateConfig cfg;
        std::unique_ptr<detail::Episodes> episodes;

        std::string key(std::string const& tier, std::string const& rest) const { return cfg.key_prefix + tier + ":" + rest; }

        boost::asio::awaitable<bool> run(std::vector<std::string> args) {
            auto const started = detail::Episodes::clock::now();
            auto r = co_await client->command(std::move(args));
            if (!r || r->type == redis::Reply::Type::error) {
                episodes->failed("write", r ? r->str : r.error().message());
                co_return false;
            }
            episodes->succeeded(started);
            co_return true;
        }
    };

    std::shared_ptr<State> state() const {
        std::lock_guard lock(mutex_);
        return state_;
    }

    mutable std::mutex mutex_;
    std::shared_ptr<State> state_;
};

} // namespace cascade
