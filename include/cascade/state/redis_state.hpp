#pragma once
/// @file
/// @brief `RedisState`: cooldowns, disabled keys and circuits pushed to every instance through Redis, and
/// budgets every instance spends, reserved atomically in Redis.
///
/// The request path reads a local mirror, never Redis: a request that changes nothing makes no round trip.
/// - **News.** A key that cools or is disabled, a circuit that opens or closes, is written once to one hash
///   and published on one channel (one Lua script: atomic, one round trip, in the background). Every
///   instance subscribes and applies it to its mirror; an instance that starts, or reconnects after Redis
///   was away, loads the hash once. The mirror is bounded and drops entries whose rest has ended.
/// - **Budgets.** A quota group's per-minute and per-day token and request budgets are kept in Redis as
///   GCRA buckets (a theoretical arrival time per budget): a reservation takes, atomically and for the
///   first group that has it, what the request needs plus a share of what is left (a lease). The instance
///   spends the lease locally and settles each answer's real usage against it, so a key far from its limits
///   costs a round trip every many requests, and every instance together never reserves more than the
///   budgets allow.
/// - **Redis away or hung.** The client stops waiting after one timeout (its own circuit) and reconnects
///   in the background; meanwhile each instance goes on alone with its own budgets. Logged once.
///
/// Layout, under `key_prefix` (default `cascade:state:`) — see docs/operations.md:
/// - `<prefix>news` (hash): field `key:<tier>:<key id>` = `k<unix ms>` (cools until) or `d<unix ms>`
///   (disabled until); field `circuit:<tier>` = `o<unix ms>` (open until) or `c<unix ms>` (closed at);
/// - `<prefix>news` (channel): `<field>\n<value>` for each change;
/// - `<prefix>budget:<tier>:<group>:<tm|rm|td|rd>` (string): the bucket's theoretical arrival time, in unix
///   ms, expiring when the bucket is full again.
/// Link hiredis (`-lhiredis`) to use it.

#include <cascade/detail/episodes.hpp>
#include <cascade/net/redis.hpp>
#include <cascade/policy/shared_state.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cascade {

/// @brief Settings of `RedisState`.
struct RedisStateConfig {
    redis::Config server;
    /// Prefix of every key and of the channel, so that several applications can share one Redis.
    std::string key_prefix = "cascade:state:";
    /// How long a disabled key (401) stays disabled for every instance.
    std::chrono::hours disabled_for{24 * 30};
    /// The share of a budget's headroom a reservation leases to the instance beyond what the request needs
    /// (0 to 1): larger means fewer round trips while far from the limits, and more budget held by one
    /// instance. Near the limits the lease shrinks with the headroom.
    double lease_share = 0.25;
    /// Entries (a key's rest, a circuit) the local mirror holds at most; news past it is dropped and logged.
    std::size_t max_entries = 10'000;
    /// Called once when the store starts failing and once when it recovers; default: a line on stderr.
    std::function<void(std::string_view)> log;
};

/// @brief Shared state in Redis. Unreachable Redis means "nothing shared": each instance then learns on
/// its own and keeps to its own budgets; failures are counted and logged once per episode.
///
/// `configure` once, before the chain's first request.
class RedisState {
public:
    RedisState() = default;
    RedisState(RedisState const&) = delete;
    RedisState& operator=(RedisState const&) = delete;
    ~RedisState();

    /// @brief Points the state at a server: subscribes to the news and loads what is known. Returns an
    /// empty string, or what is wrong with `cfg` (also when configured already).
    std::string configure(boost::asio::any_io_executor ex, RedisStateConfig cfg);

    /// @brief Lock-free: changes whenever the mirror does.
    std::uint64_t generation() const noexcept {
        auto* m = raw_.load(std::memory_order_acquire);
        return m ? m->generation.load(std::memory_order_acquire) : 0;
    }

    /// @brief What the mirror knows of `tier` and its keys `ids`; nullopt when not configured.
    std::optional<SharedTierState> snapshot(std::string const& tier, std::vector<std::string> const& ids) const;

    /// @brief Publishes that key `id` of `tier` cools until `until`, or is disabled. Returns at once.
    void push_key(std::string const& tier, std::string const& id, std::chrono::system_clock::time_point until, bool disabled);

    /// @brief Publishes that `tier`'s circuit is open until `until`, or (the epoch) closed now. Returns at once.
    void push_circuit(std::string const& tier, std::chrono::system_clock::time_point until);

    /// @brief Reserves budget for the first of `asks` that has its need left, in one round trip.
    boost::asio::awaitable<LeaseGrant> reserve(std::string const& tier, std::vector<LeaseAsk> const& asks);

    /// @brief Failed commands so far.
    std::uint64_t errors() const noexcept {
        auto* m = raw_.load(std::memory_order_acquire);
        return m ? m->episodes.errors() : 0;
    }
    /// @brief Times the mirror was loaded from Redis (at start and after each reconnection).
    std::uint64_t loads() const noexcept {
        auto* m = raw_.load(std::memory_order_acquire);
        return m ? m->loads.load(std::memory_order_relaxed) : 0;
    }
    /// @brief Entries in the mirror.
    std::size_t mirror_size() const;
    /// @brief Reservations sent to Redis so far.
    std::uint64_t reservations() const noexcept {
        auto* m = raw_.load(std::memory_order_acquire);
        return m ? m->reservations.load(std::memory_order_relaxed) : 0;
    }

    // One entry of the mirror: a kind (`k` cools, `d` disabled, `o` open, `c` closed) and an instant.
    struct Entry {
        char kind = 'k';
        long long ms = 0;
    };
    // The mirror and the connection behind it, shared with the background work that outlives a request.
    struct Mirror {
        Mirror(boost::asio::any_io_executor e, RedisStateConfig c)
            : cfg(std::move(c)), ex(std::move(e)), client(std::make_shared<redis::Client>(ex, cfg.server)),
              episodes("redis state " + cfg.server.host + ":" + std::to_string(cfg.server.port), cfg.log),
              hash(cfg.key_prefix + "news"), channel(cfg.key_prefix + "news") {}
        RedisStateConfig cfg;
        boost::asio::any_io_executor ex;
        std::shared_ptr<redis::Client> client;
        detail::Episodes episodes;
        std::string hash;
        std::string channel;
        std::atomic<std::uint64_t> generation{1};
        std::atomic<std::uint64_t> loads{0};
        std::atomic<std::uint64_t> reservations{0};
        std::atomic<bool> overflow_said{false};
        std::atomic<bool> closed{false};
        // The latest load asked for (each subscription asks for one); an older one's retries stop.
        std::atomic<std::uint64_t> load_ticket{0};
        mutable std::mutex mutex;
        std::unordered_map<std::string, Entry> entries;

        void apply(std::string_view field, std::string_view value);
        void replace(std::unordered_map<std::string, Entry> fresh);
        static boost::asio::awaitable<void> load(std::shared_ptr<Mirror> self);
        static boost::asio::awaitable<void> send(std::shared_ptr<Mirror> self, std::string field, std::string value);
    };

private:
    std::shared_ptr<Mirror> mirror_;
    std::atomic<Mirror*> raw_{nullptr};
    std::mutex configure_mutex_;
};

} // namespace cascade

#include <cascade/state/impl/redis_state.hpp>
