#pragma once
/// @file
/// @brief Definitions of `cascade::redis::Client` (declared in `net/redis.hpp`): the pipelined command
/// connection and the unavailable state with its background probe. Subscriptions: `redis_subscribe.hpp`.

#include <cascade/net/redis.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <random>
#include <type_traits>

namespace cascade::redis::detail {

using error_code = boost::system::error_code;
using ReplyHandler = boost::asio::any_completion_handler<void(error_code, Reply)>;
using Clock = std::chrono::steady_clock;
inline constexpr auto tuple_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);

/// @brief Exponential backoff with jitter, apart from any clock: each wait is drawn in [step/2, step) from
/// `unit` in [0, 1), then the step doubles up to `max`.
class Backoff {
public:
    Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) : min_(min), max_(max), step_(min) {}
    std::chrono::milliseconds next(double unit) {
        auto const step = step_.count();
        step_ = std::min(step_ * 2, max_);
        auto const half = step / 2;
        return std::chrono::milliseconds(half + static_cast<long long>(unit * static_cast<double>(step - half)));
    }
    void reset() { step_ = min_; }

private:
    std::chrono::milliseconds min_, max_, step_;
};

struct Conn {
    Conn(boost::asio::any_io_executor ex, Config const& cfg)
        : socket(std::move(ex)), reader(cfg.max_reply_bytes, cfg.max_reply_elements) {}
    void close() {
        error_code ignored;
        socket.close(ignored);
    }
    boost::asio::ip::tcp::socket socket;
    ReplyReader reader;
    // `pong` pushes seen on a subscription connection.
    std::size_t pongs = 0;
};

struct Pending {
    std::string wire;
    Clock::time_point deadline;
    ReplyHandler handler;
};

struct Subscription {
    explicit Subscription(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    std::vector<std::string> channels;
    std::function<void(std::string_view, std::string_view)> on_message;
    std::function<void()> on_ready;
    std::shared_ptr<Conn> conn;
    boost::asio::steady_timer timer;
};

// Everything below the public `Client`; members other than the atomics are touched only on `strand`.
struct ClientState {
    ClientState(boost::asio::any_io_executor ex, Config c)
        : strand(boost::asio::make_strand(std::move(ex))), cfg(std::move(c)), watchdog(strand), probe_timer(strand),
          rng(std::random_device{}()) {}

    boost::asio::strand<boost::asio::any_io_executor> strand;
    Config cfg;
    std::atomic<bool> up{true};
    std::atomic<bool> closing{false};
    std::atomic<std::size_t> opened{0};

    enum class Phase { idle, connecting, connected, down } phase = Phase::idle;
    bool closed = false, writing = false, reading = false;
    // Bumped whenever the command connection is replaced: coroutines of an older one stop.
    std::uint64_t gen = 0, watch_gen = 0;
    std::shared_ptr<Conn> conn, probing;
    // Commands not written yet, and written ones awaiting their reply (FIFO).
    std::deque<Pending> waiting, in_flight;
    boost::asio::steady_timer watchdog, probe_timer;
    std::vector<std::shared_ptr<Subscription>> subs;
    std::minstd_rand rng;

    double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
    std::chrono::milliseconds next_wait(Backoff& b) { return b.next(unit()); }
};
using StatePtr = std::shared_ptr<ClientState>;

// Completes on the caller's executor (the handler's associated one), never inline, so the queues are not
// touched re-entrantly.
inline void complete(StatePtr const& st, Pending& p, error_code ec, Reply r = {}) {
    boost::asio::post(st->strand.get_inner_executor(), boost::asio::append(std::move(p.handler), ec, std::move(r)));
}

inline void fail_all(StatePtr const& st, error_code ec) {
    auto in_flight = std::move(st->in_flight);
    auto waiting = std::move(st->waiting);
    st->in_flight.clear();
    st->waiting.clear();
    for (auto& p : in_flight) complete(st, p, ec);
    for (auto& p : waiting) complete(st, p, ec);
}

inline boost::asio::awaitable<error_code> timed(boost::asio::awaitable<error_code> op, std::chrono::milliseconds d) {
    using namespace boost::asio::experimental::awaitable_operators;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
    auto expiry = timer.async_wait(tuple_awaitable);
    auto raced = co_await (std::move(op) || std::move(expiry));
    if (raced.index() == 1) co_return boost::asio::error::timed_out;
    co_return std::get<0>(raced);
}

inline boost::asio::awaitable<boost::system::result<Reply>> read_reply(Conn& c) {
    std::array<char, 4096> buf{};
    for (;;) {
        auto next = c.reader.next();
        if (!next) co_return next.error();
        if (*next) co_return std::move(**next);
        auto [ec, n] = co_await c.socket.async_read_some(boost::asio::buffer(buf), tuple_awaitable);
        if (ec) co_return ec;
        c.reader.feed(buf.data(), n);
    }
}

inline boost::asio::awaitable<boost::system::result<Reply>> roundtrip(Conn& c, std::vector<std::string> const& args) {
    std::string wire = format(args);
    auto [ec, n] = co_await boost::asio::async_write(c.socket, boost::asio::buffer(wire), tuple_awaitable);
    if (ec) co_return ec;
    co_return co_await read_reply(c);
}

// Connects `c`, then AUTH, SELECT (`select`) and PING (`ping`); an error reply to any is a failure.
inline boost::asio::awaitable<error_code> open(StatePtr st, std::shared_ptr<Conn> c, bool select, bool ping) {
    Config const& cfg = st->cfg;
    boost::asio::ip::tcp::resolver resolver(co_await boost::asio::this_coro::executor);
    auto [rec, eps] = co_await resolver.async_resolve(cfg.host, std::to_string(cfg.port), tuple_awaitable);
    if (rec) co_return rec;
    auto [cec, ep] = co_await boost::asio::async_connect(c->socket, eps, tuple_awaitable);
    if (cec) co_return cec;
    ++st->opened;
    std::vector<std::vector<std::string>> steps;
    if (!cfg.password.empty()) steps.push_back({"AUTH", cfg.password});
    if (select && cfg.database != 0) steps.push_back({"SELECT", std::to_string(cfg.database)});
    if (ping) steps.push_back({"PING"});
    for (auto const& args : steps) {
        auto r = co_await roundtrip(*c, args);
        if (!r) co_return r.error();
        if (r->type == Reply::Type::error)
            co_return args[0] == "AUTH" ? error_code(boost::asio::error::access_denied) : error_code(Error::protocol);
    }
    co_return error_code{};
}

inline boost::asio::awaitable<void> probe(StatePtr st);

// The command connection failed: fail what is pending on it, become unavailable, start the probe.
inline void drop(StatePtr const& st, error_code ec) {
    using Phase = ClientState::Phase;
    if (st->closed || (st->phase != Phase::connecting && st->phase != Phase::connected)) return;
    ++st->gen;
    ++st->watch_gen;
    st->watchdog.expires_at(Clock::time_point::max());  // cancels the wait; arm_watchdog compares expiries
    if (st->conn) st->conn->close();
    st->conn.reset();
    st->writing = st->reading = false;
    st->phase = Phase::down;
    st->up = false;
    fail_all(st, ec);
    if (st->cfg.on_state) st->cfg.on_state(false, ec.message());
    boost::asio::co_spawn(st->strand, probe(st), boost::asio::detached);
}

inline Pending* oldest(ClientState& s) {
    if (!s.in_flight.empty()) return &s.in_flight.front();
    if (!s.waiting.empty()) return &s.waiting.front();
    return nullptr;
}

// One timer for the whole connection, set to the oldest pending command's deadline: past it the
// server is taken as hung and the connection dropped.
inline void arm_watchdog(StatePtr const& st) {
    Pending* front = oldest(*st);
    if (!front || st->watchdog.expiry() == front->deadline) return;
    auto const wgen = ++st->watch_gen;
    st->watchdog.expires_at(front->deadline);
    st->watchdog.async_wait([st, wgen](error_code ec) {
        if (ec || wgen != st->watch_gen || st->closed) return;
        st->watchdog.expires_at(Clock::time_point::max());
        Pending* p = oldest(*st);
        if (p && p->deadline <= Clock::now()) drop(st, boost::asio::error::timed_out);
        else arm_watchdog(st);
    });
}

inline boost::asio::awaitable<void> read_loop(StatePtr st, std::uint64_t gen, std::shared_ptr<Conn> c) {
    std::array<char, 4096> buf{};
    for (;;) {
        for (;;) {
            auto next = c->reader.next();
            if (!next) co_return drop(st, next.error());
            if (!*next) break;
            if (st->in_flight.empty()) co_return drop(st, Error::protocol);  // a reply nobody asked for
            complete(st, st->in_flight.front(), {}, std::move(**next));
            st->in_flight.pop_front();
        }
        if (st->in_flight.empty()) {
            // Nothing awaited: no read stays pending, so an idle client leaves its io_context idle.
            st->reading = false;
            arm_watchdog(st);
            co_return;
        }
        auto [ec, n] = co_await c->socket.async_read_some(boost::asio::buffer(buf), tuple_awaitable);
        if (gen != st->gen) co_return;
        if (ec) co_return drop(st, ec);
        c->reader.feed(buf.data(), n);
    }
}

inline void start_reader(StatePtr const& st) {
    if (st->reading || st->in_flight.empty()) return;
    st->reading = true;
    boost::asio::co_spawn(st->strand, read_loop(st, st->gen, st->conn), boost::asio::detached);
}

// Writes everything queued in one write; what is queued meanwhile goes out together in the next one.
inline boost::asio::awaitable<void> write_loop(StatePtr st, std::uint64_t gen, std::shared_ptr<Conn> c) {
    while (!st->waiting.empty()) {
        std::string batch;
        for (auto& p : st->waiting) {
            batch += p.wire;
            st->in_flight.push_back(std::move(p));
        }
        st->waiting.clear();
        start_reader(st);
        auto [ec, n] = co_await boost::asio::async_write(c->socket, boost::asio::buffer(batch), tuple_awaitable);
        if (gen != st->gen) co_return;
        if (ec) co_return drop(st, ec);
    }
    st->writing = false;
}

inline void start_writer(StatePtr const& st) {
    if (st->writing || st->waiting.empty() || st->phase != ClientState::Phase::connected) return;
    st->writing = true;
    boost::asio::co_spawn(st->strand, write_loop(st, st->gen, st->conn), boost::asio::detached);
}

inline boost::asio::awaitable<void> connect(StatePtr st) {
    auto const gen = st->gen;
    auto c = std::make_shared<Conn>(st->strand, st->cfg);
    st->conn = c;  // so that a drop or close() closes it mid-connect
    auto op = open(st, c, true, false);
    auto ec = co_await timed(std::move(op), st->cfg.command_timeout);
    if (gen != st->gen || st->closed) co_return;
    if (ec) co_return drop(st, ec);
    st->phase = ClientState::Phase::connected;
    start_writer(st);
}

inline boost::asio::awaitable<void> probe(StatePtr st) {
    Backoff backoff(st->cfg.reconnect_min, st->cfg.reconnect_max);
    for (;;) {
        st->probe_timer.expires_after(st->next_wait(backoff));
        co_await st->probe_timer.async_wait(tuple_awaitable);
        if (st->closed) co_return;
        auto c = std::make_shared<Conn>(st->strand, st->cfg);
        st->probing = c;
        auto op = open(st, c, true, true);
        auto ec = co_await timed(std::move(op), st->cfg.command_timeout);
        st->probing.reset();
        if (st->closed) co_return c->close();
        if (ec) {
            c->close();
            continue;
        }
        ++st->gen;
        st->conn = std::move(c);
        st->phase = ClientState::Phase::connected;
        st->up = true;
        if (st->cfg.on_state) st->cfg.on_state(true, "reconnected");
        co_return;
    }
}

inline void submit(StatePtr const& st, Pending p) {
    using Phase = ClientState::Phase;
    if (st->closed) return complete(st, p, boost::asio::error::operation_aborted);
    if (st->phase == Phase::down) return complete(st, p, Error::unavailable);
    st->waiting.push_back(std::move(p));
    arm_watchdog(st);
    if (st->phase == Phase::idle) {
        st->phase = Phase::connecting;
        boost::asio::co_spawn(st->strand, connect(st), boost::asio::detached);
    }
    start_writer(st);
}

inline void close_all(StatePtr const& st) {
    if (st->closed) return;
    st->closed = true;
    st->up = false;
    ++st->gen;
    ++st->watch_gen;
    st->watchdog.expires_at(Clock::time_point::max());  // cancels the wait; arm_watchdog compares expiries
    st->probe_timer.cancel();
    for (auto* c : {&st->conn, &st->probing})
        if (*c) (*c)->close();
    for (auto& sub : st->subs) {
        sub->timer.cancel();
        if (sub->conn) sub->conn->close();
    }
    fail_all(st, boost::asio::error::operation_aborted);
}

inline boost::asio::awaitable<boost::system::result<Reply>> command(StatePtr st, std::vector<std::string> args) {
    if (st->closing) co_return boost::asio::error::operation_aborted;
    if (!st->up) co_return Error::unavailable;
    auto const deadline = Clock::now() + st->cfg.command_timeout;
    // Moved into the queued handler: while it waits, the frame holds no reference to the state (no cycle).
    auto init = [st = std::move(st), wire = format(args), deadline](auto handler) mutable {
        Pending p{std::move(wire), deadline, ReplyHandler(std::move(handler))};
        auto queue = [st, p = std::move(p)]() mutable { submit(st, std::move(p)); };
        boost::asio::dispatch(st->strand, std::move(queue));
    };
    auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
    auto [ec, reply] = co_await boost::asio::async_initiate<decltype(token), void(error_code, Reply)>(std::move(init), token);
    if (ec) co_return ec;
    co_return std::move(reply);
}

} // namespace cascade::redis::detail

namespace cascade::redis {

inline Client::Client(boost::asio::any_io_executor ex, Config cfg)
    : st_(std::make_shared<detail::ClientState>(std::move(ex), std::move(cfg))) {}

inline Client::~Client() { close(); }

inline Config const& Client::config() const noexcept { return st_->cfg; }

inline bool Client::available() const noexcept { return st_->up && !st_->closing; }

inline std::size_t Client::connections_opened() const noexcept { return st_->opened; }

inline void Client::close() {
    if (st_->closing.exchange(true)) return;
    auto done = [st = st_] { detail::close_all(st); };
    boost::asio::post(st_->strand, std::move(done));
}

inline boost::asio::awaitable<boost::system::result<Reply>> Client::command(std::vector<std::string> args) {
    // The frame owns the state from the call on, not the Client: it may be started after the Client died.
    return detail::command(st_, std::move(args));
}

} // namespace cascade::redis

#include <cascade/net/impl/redis_subscribe.hpp>
