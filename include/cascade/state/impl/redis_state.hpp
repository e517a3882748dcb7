#pragma once
// Definitions of RedisState (state/redis_state.hpp).

#include <cascade/state/redis_state.hpp>  // the face: this file holds its definitions

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cascade {

namespace detail::redis_state {

inline long long unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::chrono::system_clock::time_point from_ms(long long ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

inline std::string key_field(std::string const& tier, std::string const& id) { return "key:" + tier + ":" + id; }
inline std::string circuit_field(std::string const& tier) { return "circuit:" + tier; }

/// A value as `<kind><unix ms>`; nullopt for anything else.
inline std::optional<RedisState::Entry> parse(std::string_view v) {
    if (v.size() < 2 || v.size() > 21 || (v[0] != 'k' && v[0] != 'd' && v[0] != 'o' && v[0] != 'c')) return std::nullopt;
    long long ms = 0;
    for (char c : v.substr(1)) {
        if (c < '0' || c > '9') return std::nullopt;
        ms = ms * 10 + (c - '0');
    }
    return RedisState::Entry{v[0], ms};
}

/// Whether an entry still says something at `now_ms`: a rest until it ends, a close for a day (so that an
/// instance that reconnects learns of it).
inline bool current(RedisState::Entry const& e, long long now_ms) {
    return e.kind == 'c' ? e.ms + 86'400'000 > now_ms : e.ms > now_ms;
}

// Writes one piece of news and publishes it, atomically. A cooldown keeps the later rest (a disabled key
// stays disabled until its time); an open circuit keeps the later open; a close replaces an open. Ended
// entries are pruned; the hash expires with its last entry. KEYS[1] hash; ARGV field, value, channel.
inline constexpr char const* news_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f, v = ARGV[1], ARGV[2]
local kind, ms = string.sub(v, 1, 1), tonumber(string.sub(v, 2))
local old = redis.call('HGET', KEYS[1], f)
if old then
  local ok, oms = string.sub(old, 1, 1), tonumber(string.sub(old, 2))
  if kind == 'k' and ((ok == 'd' and oms > now) or (ok == 'k' and oms >= ms)) then return 0 end
  if kind == 'o' and ok == 'o' and oms >= ms then return 0 end
end
redis.call('HSET', KEYS[1], f, v)
local all = redis.call('HGETALL', KEYS[1])
local last = now
for i = 1, #all, 2 do
  local k, m = string.sub(all[i + 1], 1, 1), tonumber(string.sub(all[i + 1], 2)) or 0
  local ends = m
  if k == 'c' then ends = m + 86400000 end
  if ends <= now then redis.call('HDEL', KEYS[1], all[i]) elseif ends > last then last = ends end
end
if last > now then redis.call('PEXPIREAT', KEYS[1], last + 1000) end
redis.call('PUBLISH', ARGV[3], f .. '\n' .. v)
return 1
)lua";

// GCRA over up to four budgets per quota group: for the first group (in order) whose every limited budget
// has the request's need left, advances each budget's theoretical arrival time by the grant (the need, or
// `share` of what is left when more) and returns {index (1-based), grants...}; {0} when none fits.
// KEYS: 4 per group; ARGV: n, share, then per group and budget: capacity, period ms, need.
inline constexpr char const* reserve_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n, share = tonumber(ARGV[1]), tonumber(ARGV[2])
for c = 0, n - 1 do
  local fits, grant, tat = true, {0, 0, 0, 0}, {}
  for b = 1, 4 do
    local i = c * 4 + b
    local a = 3 + (i - 1) * 3
    local cap, period, need = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    if cap > 0 then
      local interval = period / cap
      local at = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
      if at < now then at = now end
      local free = cap - (at - now) / interval
      if free + 1e-6 < need then fits = false; break end
      local g = math.floor(free * share)
      if g < need then g = need end
      if g > free then g = free end
      grant[b] = g
      tat[b] = at + g * interval
    end
  end
  if fits then
    for b = 1, 4 do
      if tat[b] then
        redis.call('SET', KEYS[c * 4 + b], string.format('%.3f', tat[b]), 'PX', math.ceil(tat[b] - now) + 1000)
      end
    end
    return {c + 1, tostring(grant[1]), tostring(grant[2]), tostring(grant[3]), tostring(grant[4])}
  end
end
return {0}
)lua";

inline char const* const budget_suffix[4] = {"tm", "rm", "td", "rd"};

inline std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

} // namespace detail::redis_state

inline RedisState::~RedisState() {
    if (!mirror_) return;
    mirror_->closed.store(true, std::memory_order_release);
    if (mirror_->client) mirror_->client->close();
}

inline std::string RedisState::configure(boost::asio::any_io_executor ex, RedisStateConfig cfg) {
    if (auto err = redis::check(cfg.server, "redis state"); !err.empty()) return err;
    if (cfg.key_prefix.empty()) return "redis state: key_prefix is empty";
    if (!(cfg.lease_share >= 0.0 && cfg.lease_share <= 1.0)) return "redis state: lease_share must be between 0 and 1";
    if (cfg.max_entries == 0) return "redis state: max_entries is 0";
    std::lock_guard lock(configure_mutex_);
    if (mirror_) return "redis state: configured already (configure once, before the first request)";
    auto m = std::make_shared<Mirror>(ex, std::move(cfg));
    std::weak_ptr<Mirror> weak = m;
    auto on_message = [weak](std::string_view, std::string_view payload) {
        auto self = weak.lock();
        if (!self) return;
        auto nl = payload.find('\n');
        if (nl == std::string_view::npos) return;
        self->apply(payload.substr(0, nl), payload.substr(nl + 1));
    };
    // Subscribed (at start, or again after Redis was away): load what was published meanwhile.
    auto on_ready = [weak, ex] {
        if (auto self = weak.lock()) boost::asio::co_spawn(ex, Mirror::load(std::move(self)), boost::asio::detached);
    };
    std::vector<std::string> channels{m->channel};
    m->client->subscribe(std::move(channels), std::move(on_message), std::move(on_ready));
    mirror_ = m;
    raw_.store(m.get(), std::memory_order_release);
    return {};
}

inline std::optional<SharedTierState> RedisState::snapshot(std::string const& tier, std::vector<std::string> const& ids) const {
    auto* m = raw_.load(std::memory_order_acquire);
    if (!m) return std::nullopt;
    namespace rs = detail::redis_state;
    auto const now = rs::unix_ms(std::chrono::system_clock::now());
    SharedTierState out;
    out.keys.resize(ids.size());
    std::lock_guard lock(m->mutex);
    if (m->entries.empty()) return out;
    if (auto it = m->entries.find(rs::circuit_field(tier)); it != m->entries.end() && rs::current(it->second, now)) {
        if (it->second.kind == 'o') out.circuit_until = rs::from_ms(it->second.ms);
        if (it->second.kind == 'c') out.circuit_closed_at = rs::from_ms(it->second.ms);
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto it = m->entries.find(rs::key_field(tier, ids[i]));
        if (it == m->entries.end() || !rs::current(it->second, now)) continue;
        if (it->second.kind == 'd') out.keys[i].disabled = true;
        else if (it->second.kind == 'k') out.keys[i].cool_until = rs::from_ms(it->second.ms);
    }
    return out;
}

inline std::size_t RedisState::mirror_size() const {
    auto* m = raw_.load(std::memory_order_acquire);
    if (!m) return 0;
    std::lock_guard lock(m->mutex);
    return m->entries.size();
}

inline void RedisState::push_key(std::string const& tier, std::string const& id, std::chrono::system_clock::time_point until,
                                 bool disabled) {
    auto m = mirror_;
    if (!m) return;
    namespace rs = detail::redis_state;
    auto const now = std::chrono::system_clock::now();
    if (disabled) until = now + m->cfg.disabled_for;
    if (until <= now) return;
    std::string value = (disabled ? "d" : "k") + std::to_string(rs::unix_ms(until));
    boost::asio::co_spawn(m->ex, Mirror::send(m, rs::key_field(tier, id), std::move(value)), boost::asio::detached);
}

inline void RedisState::push_circuit(std::string const& tier, std::chrono::system_clock::time_point until) {
    auto m = mirror_;
    if (!m) return;
    namespace rs = detail::redis_state;
    auto const now = std::chrono::system_clock::now();
    std::string value;
    if (until == std::chrono::system_clock::time_point{}) value = "c" + std::to_string(rs::unix_ms(now));
    else if (until > now) value = "o" + std::to_string(rs::unix_ms(until));
    else return;
    boost::asio::co_spawn(m->ex, Mirror::send(m, rs::circuit_field(tier), std::move(value)), boost::asio::detached);
}

inline boost::asio::awaitable<LeaseGrant> RedisState::reserve(std::string const& tier, std::vector<LeaseAsk> const& asks) {
    namespace rs = detail::redis_state;
    LeaseGrant out;
    auto m = mirror_;
    if (!m || asks.empty()) co_return out;
    std::vector<std::string> args{"EVAL", rs::reserve_script, std::to_string(asks.size() * 4)};
    for (auto const& a : asks)
        for (auto const* suffix : rs::budget_suffix) args.push_back(m->cfg.key_prefix + "budget:" + tier + ":" + a.group + ":" + suffix);
    args.push_back(std::to_string(asks.size()));
    args.push_back(rs::number(m->cfg.lease_share));
    for (auto const& a : asks)
        for (std::size_t b = 0; b < 4; ++b) {
            args.push_back(rs::number(a.capacity[b]));
            args.push_back(std::to_string(a.period[b].count()));
            args.push_back(rs::number(a.need[b]));
        }
    m->reservations.fetch_add(1, std::memory_order_relaxed);
    auto const started = detail::Episodes::clock::now();
    auto r = co_await m->client->command(std::move(args));
    using T = redis::Reply::Type;
    if (!r || r->type != T::array || r->elements.empty() || r->elements[0].type != T::integer) {
        m->episodes.failed("reserve budget", r ? (r->type == T::error ? r->str : std::string("unexpected reply")) : r.error().message());
        co_return out;
    }
    m->episodes.succeeded(started);
    auto const index = r->elements[0].integer;
    if (index <= 0 || static_cast<std::size_t>(index) > asks.size() || r->elements.size() != 5) {
        out.kind = LeaseGrant::Kind::refused;
        co_return out;
    }
    out.kind = LeaseGrant::Kind::granted;
    out.index = static_cast<std::size_t>(index - 1);
    for (std::size_t b = 0; b < 4; ++b) {
        auto const& e = r->elements[b + 1];
        out.amounts[b] = e.type == T::string ? std::strtod(e.str.c_str(), nullptr) : 0.0;
    }
    co_return out;
}

inline void RedisState::Mirror::apply(std::string_view field, std::string_view value) {
    namespace rs = detail::redis_state;
    auto e = rs::parse(value);
    if (!e || field.empty()) return;
    auto const now = rs::unix_ms(std::chrono::system_clock::now());
    {
        std::lock_guard lock(mutex);
        auto it = entries.find(std::string(field));
        if (it == entries.end() && entries.size() >= cfg.max_entries) {
            std::erase_if(entries, [now](auto const& kv) { return !rs::current(kv.second, now); });
            if (entries.size() >= cfg.max_entries) {
                if (!overflow_said.exchange(true))
                    episodes.failed("keep news", "the mirror holds max_entries = " + std::to_string(cfg.max_entries) + " entries");
                return;
            }
        }
        entries[std::string(field)] = *e;
    }
    generation.fetch_add(1, std::memory_order_acq_rel);
}

inline void RedisState::Mirror::replace(std::unordered_map<std::string, Entry> fresh) {
    {
        std::lock_guard lock(mutex);
        entries = std::move(fresh);
    }
    loads.fetch_add(1, std::memory_order_relaxed);
    generation.fetch_add(1, std::memory_order_acq_rel);
}

inline boost::asio::awaitable<void> RedisState::Mirror::load(std::shared_ptr<Mirror> self) {
    namespace rs = detail::redis_state;
    // The subscription may be back before the command connection is: retry, with backoff, until the
    // load succeeds, a newer subscription asks for its own load, or the state is closed.
    auto const ticket = self->load_ticket.fetch_add(1, std::memory_order_acq_rel) + 1;
    auto wait = self->cfg.server.reconnect_min;
    boost::asio::steady_timer timer(self->ex);
    for (;;) {
        std::vector<std::string> args{"HGETALL", self->hash};
        auto const started = detail::Episodes::clock::now();
        auto r = co_await self->client->command(std::move(args));
        if (r && r->type == redis::Reply::Type::array) {
            self->episodes.succeeded(started);
            auto const now = rs::unix_ms(std::chrono::system_clock::now());
            std::unordered_map<std::string, Entry> fresh;
            for (std::size_t i = 0; i + 1 < r->elements.size() && fresh.size() < self->cfg.max_entries; i += 2) {
                auto e = rs::parse(r->elements[i + 1].str);
                if (e && rs::current(*e, now)) fresh[r->elements[i].str] = *e;
            }
            self->replace(std::move(fresh));
            co_return;
        }
        if (!r && r.error() == boost::asio::error::operation_aborted) co_return;  // closed
        self->episodes.failed("load the news", r ? (r->type == redis::Reply::Type::error ? r->str : std::string("unexpected reply"))
                                                 : r.error().message());
        if (self->closed.load(std::memory_order_acquire) || self->load_ticket.load(std::memory_order_acquire) != ticket) co_return;
        timer.expires_after(wait);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec || self->closed.load(std::memory_order_acquire) || self->load_ticket.load(std::memory_order_acquire) != ticket) co_return;
        wait = std::min(wait * 2, self->cfg.server.reconnect_max);
    }
}

inline boost::asio::awaitable<void> RedisState::Mirror::send(std::shared_ptr<Mirror> self, std::string field, std::string value) {
    std::vector<std::string> args{"EVAL", detail::redis_state::news_script, "1", self->hash, std::move(field), std::move(value), self->channel};
    auto const started = detail::Episodes::clock::now();
    auto r = co_await self->client->command(std::move(args));
    if (!r || r->type == redis::Reply::Type::error) {
        self->episodes.failed("publish news", r ? r->str : r.error().message());
        co_return;
    }
    self->episodes.succeeded(started);
}

} // namespace cascade
