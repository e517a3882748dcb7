#pragma once
/// @file
/// @brief Definitions of `cascade::redis::Client::subscribe`: one connection per subscription in RESP2
/// subscribe mode, kept up in the background and pinged so that a hung server is noticed.

#include <cascade/net/impl/redis.hpp>

namespace cascade::redis::detail {

// SUBSCRIBE on an open connection, then one confirmation per channel.
inline boost::asio::awaitable<error_code> subscribe_on(StatePtr st, std::shared_ptr<Subscription> sub,
                                                       std::shared_ptr<Conn> c) {
    auto opened = open(st, c, false, false);
    if (auto ec = co_await std::move(opened)) co_return ec;
    std::vector<std::string> args{"SUBSCRIBE"};
    args.insert(args.end(), sub->channels.begin(), sub->channels.end());
    std::string wire = format(args);
    auto [ec, n] = co_await boost::asio::async_write(c->socket, boost::asio::buffer(wire), tuple_awaitable);
    if (ec) co_return ec;
    for (std::size_t i = 0; i < sub->channels.size(); ++i) {
        auto r = co_await read_reply(*c);
        if (!r) co_return r.error();
        if (r->type != Reply::Type::array || r->elements.empty() || r->elements[0].str != "subscribe")
            co_return Error::protocol;
    }
    co_return error_code{};
}

inline boost::asio::awaitable<error_code> subscriber_read(StatePtr st, std::shared_ptr<Subscription> sub,
                                                          std::shared_ptr<Conn> c) {
    for (;;) {
        auto r = co_await read_reply(*c);
        if (!r) co_return r.error();
        if (st->closed) co_return boost::asio::error::operation_aborted;
        if (r->type != Reply::Type::array || r->elements.empty()) continue;
        auto const& kind = r->elements[0].str;
        if (kind == "message" && r->elements.size() == 3) {
            if (sub->on_message) sub->on_message(r->elements[1].str, r->elements[2].str);
        } else if (kind == "pong") {
            ++c->pongs;
        }
    }
}

// A hung server sends nothing, so silence is noticed by asking: PING, and a pong within the timeout.
inline boost::asio::awaitable<error_code> subscriber_ping(StatePtr st, std::shared_ptr<Conn> c) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    std::vector<std::string> args{"PING"};
    std::string const wire = format(args);
    for (;;) {
        timer.expires_after(st->cfg.subscriber_ping);
        auto [tec] = co_await timer.async_wait(tuple_awaitable);
        if (tec) co_return tec;
        auto const before = c->pongs;
        auto [wec, n] = co_await boost::asio::async_write(c->socket, boost::asio::buffer(wire), tuple_awaitable);
        if (wec) co_return wec;
        timer.expires_after(st->cfg.command_timeout);
        auto [wait_ec] = co_await timer.async_wait(tuple_awaitable);
        if (wait_ec) co_return wait_ec;
        if (c->pongs == before) co_return boost::asio::error::timed_out;
    }
}

inline boost::asio::awaitable<void> subscriber(StatePtr st, std::shared_ptr<Subscription> sub) {
    using namespace boost::asio::experimental::awaitable_operators;
    Backoff backoff(st->cfg.reconnect_min, st->cfg.reconnect_max);
    while (!st->closed) {
        auto c = std::make_shared<Conn>(st->strand, st->cfg);
        sub->conn = c;
        auto op = subscribe_on(st, sub, c);
        auto ec = co_await timed(std::move(op), st->cfg.command_timeout);
        if (st->closed) co_return;
        if (!ec) {
            backoff.reset();
            if (sub->on_ready) sub->on_ready();
            auto reading = subscriber_read(st, sub, c);
            auto pinging = subscriber_ping(st, c);
            co_await (std::move(reading) || std::move(pinging));
            if (st->closed) co_return;
        }
        c->close();
        sub->timer.expires_after(st->next_wait(backoff));
        co_await sub->timer.async_wait(tuple_awaitable);
    }
}

} // namespace cascade::redis::detail

namespace cascade::redis {

inline void Client::subscribe(std::vector<std::string> channels,
                              std::function<void(std::string_view channel, std::string_view payload)> on_message,
                              std::function<void()> on_ready) {
    if (channels.empty()) return;
    auto sub = std::make_shared<detail::Subscription>(st_->strand);
    sub->channels = std::move(channels);
    sub->on_message = std::move(on_message);
    sub->on_ready = std::move(on_ready);
    auto start = [st = st_, sub] {
        if (st->closed) return;
        st->subs.push_back(sub);
        boost::asio::co_spawn(st->strand, detail::subscriber(st, sub), boost::asio::detached);
    };
    boost::asio::post(st_->strand, std::move(start));
}

} // namespace cascade::redis
