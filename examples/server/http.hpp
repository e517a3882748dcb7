#pragma once
// The Beast plumbing of the server: an accept loop, a keep-alive read loop with a body limit, and writers
// for a whole response and for a chunked server-sent-event stream. Knows nothing of OpenAI or chains:
// each request goes to `handler.handle(stream, req)`, which writes its response and says whether the
// connection can carry on.

#include <cascade/net/http_wire.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace app::http_io {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

inline constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
/// How long one write may take before the client is taken for gone.
inline constexpr std::chrono::seconds write_timeout{30};
/// How long an idle keep-alive connection is kept.
inline constexpr std::chrono::seconds idle_timeout{60};

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

/// The request's path, without its query.
inline std::string_view path_of(Request const& req) {
    std::string_view target(req.target().data(), req.target().size());
    return target.substr(0, target.find('?'));
}

inline Response make_response(http::status status, std::string_view content_type, std::string body, unsigned version, bool keep_alive) {
    Response res{status, version};
    res.set(http::field::content_type, content_type);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

/// Writes `res`, head and body in one gather write (cascade::net::wire); false when the client went away.
inline asio::awaitable<bool> write(beast::tcp_stream& stream, Response& res) {
    stream.expires_after(write_timeout);
    std::string head;
    auto buffers = cascade::net::wire::response_buffers(res, head);
    auto [ec, n] = co_await asio::async_write(stream, buffers, tuple_awaitable);
    co_return !ec;
}

/// @brief A chunked `text/event-stream` response: `begin` writes the header, each `send` one chunk as it
/// comes (flushed: nothing is buffered), `finish` the last chunk. Each returns false when the client went
/// away; the caller then stops (dropping the chain's stream cancels the upstream request).
class EventStream {
public:
    explicit EventStream(beast::tcp_stream& stream) : stream_(stream) {}

    asio::awaitable<bool> begin(unsigned version, bool keep_alive) {
        http::response<http::empty_body> res{http::status::ok, version};
        res.set(http::field::content_type, "text/event-stream; charset=utf-8");
        res.set(http::field::cache_control, "no-cache");
        res.keep_alive(keep_alive);
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        stream_.expires_after(write_timeout);
        auto [ec, n] = co_await http::async_write_header(stream_, sr, tuple_awaitable);
        co_return !ec;
    }

    asio::awaitable<bool> send(std::string const& data) {
        if (data.empty()) co_return true;
        stream_.expires_after(write_timeout);
        auto chunk = http::make_chunk(asio::buffer(data));
        auto [ec, n] = co_await asio::async_write(stream_, chunk, tuple_awaitable);
        co_return !ec;
    }

    asio::awaitable<bool> finish() {
        stream_.expires_after(write_timeout);
        auto last = http::make_chunk_last();
        auto [ec, n] = co_await asio::async_write(stream_, last, tuple_awaitable);
        co_return !ec;
    }

private:
    beast::tcp_stream& stream_;
};

/// @brief A lingering close, after a response sent before the request was read whole (413): stop
/// sending, then read and drop what the client still sends (until it closes, `linger_time` passes or
/// `linger_bytes` came), so that the close is not a reset that destroys the response before the client,
/// still sending its body, reads it (RFC 9112, section 9.6).
inline constexpr std::chrono::seconds linger_time{2};
inline constexpr std::size_t linger_bytes = 16u << 20;

inline asio::awaitable<void> linger(beast::tcp_stream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream.expires_after(linger_time);
    std::array<char, 16 * 1024> sink;
    for (std::size_t total = 0; total < linger_bytes;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), tuple_awaitable);
        if (ec) break;
        total += n;
    }
}

/// @brief Reads requests from one connection until it closes, is idle for `idle_timeout`, or a response
/// says stop. A body over `body_limit` gets `too_large(version)` and closes the connection (the rest of
/// the body is not read).
///
/// Handler: `asio::awaitable<bool> handle(beast::tcp_stream&, Request&)` and
/// `Response too_large(unsigned version)`; it must outlive every connection.
template <class Handler>
asio::awaitable<void> serve(beast::tcp_stream stream, Handler& handler, std::size_t body_limit) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(body_limit);
        stream.expires_after(idle_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
        if (ec == http::error::body_limit) {
            auto res = handler.too_large(parser.get().version());
            res.keep_alive(false);
            if (co_await write(stream, res)) co_await linger(stream);
            break;
        }
        if (ec) break;
        auto req = parser.release();
        bool const keep_alive = req.keep_alive();
        bool const ok = co_await handler.handle(stream, req);
        if (!ok || !keep_alive) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

/// @brief A timer due within a second, always pending on the calling coroutine's executor, until its
/// io_context stops.
///
/// Asio re-arms the kernel's timer (`timerfd_settime`, a system call) whenever a newly started deadline is
/// the earliest one pending. With every socket operation carrying its own deadline (Beast's `tcp_stream`),
/// at low load each new deadline was the earliest: four system calls a proxied request at one connection.
/// With this tick pending, no I/O deadline (30 s and more away) is ever the earliest, and the kernel's timer
/// is re-armed once a second instead.
inline asio::awaitable<void> tick_every_second() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(tuple_awaitable);
        if (ec) co_return;
    }
}

/// @brief Accepts connections until the acceptor is closed, each served by its own coroutine.
///
/// Each connection's coroutine runs on `ex`, the io_context's plain executor, not on a strand: a chain's
/// tier creates its HTTP client (and its connection pool) on the executor of the first coroutine that
/// calls it (`OpenAICompatible`'s `client_for(co_await this_coro::executor)`), and that client outlives
/// the connection, so it must not be bound to one connection's strand. A connection's coroutine is a
/// single chain of work, so it needs no strand of its own.
template <class Handler>
asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor, asio::any_io_executor ex, Handler& handler, std::size_t body_limit) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) continue;
        asio::co_spawn(ex, serve(beast::tcp_stream(std::move(socket)), handler, body_limit), asio::detached);
    }
}

} // namespace app::http_io
