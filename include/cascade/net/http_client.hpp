#pragma once
/// @file
/// @brief `HttpClient`: HTTP/1.1 over TCP or TLS (Boost.Beast, OpenSSL) with a keep-alive pool per
/// origin, connect and attempt timeouts, a response size limit and per-operation cancellation.

#include <cascade/core/verdict.hpp>
#include <cascade/net/http_wire.hpp>
#include <cascade/net/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/result.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <cerrno>
#endif

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace cascade::net {

struct HttpRequest {
    std::string method = "POST";
    std::string target;
    cascade::Headers headers;
    std::string body;
};

struct HttpResponse {
    int status = 0;
    cascade::Headers headers;
    std::string body;
};

/// @brief Transport settings; every member has a working default.
struct ClientConfig {
    /// Resolving and connecting (and the TLS handshake) of a new connection.
    std::chrono::milliseconds connect_timeout{10'000};
    /// One whole request: connect, write, read of the complete response. A chain's deadline shortens it.
    std::chrono::milliseconds attempt_timeout{60'000};
    /// Responses with a larger body fail with `http::error::body_limit`.
    std::size_t max_body_bytes = 8u << 20;
    /// Idle keep-alive connections kept per origin. Size it to the requests one upstream has in flight at
    /// once: a connection returned while the pool is full is closed, and the next request past the pool
    /// pays a new TCP (and TLS) handshake. At 64 requests in flight a pool of 8 opened a connection for
    /// about every third request; one of 64 none after the first 64. Each idle connection holds a socket
    /// and its buffers (tens of KB with TLS).
    std::size_t max_idle_per_origin = 64;
    /// An idle connection older than this is closed instead of reused: servers close idle keep-alive
    /// connections on their own schedule (Node 5 s, nginx 75 s), and a request sent on one they are
    /// closing is lost. Below Node's default. Zero: idle connections are never reused.
    std::chrono::milliseconds max_idle_time{4'000};
    /// A pooled connection idle at least this long is checked before reuse: a peek that does not block
    /// (one system call) finds one the server closed, and it is replaced before the request is written. A
    /// connection idle less long is used at once; if the server closed it meanwhile, the write or the read
    /// fails before any byte of the answer and the request goes again on a new connection (a request on a
    /// closed connection never reached the server). Servers close idle connections seconds after their
    /// last answer (Node 5 s, nginx 75 s), not milliseconds. Zero: every reuse is checked.
    std::chrono::milliseconds check_idle_after{1'000};
    /// Exactly one thread runs the executor the client is given (an `io_context` run by one thread, as the
    /// example server's default). Connections then need no strand of their own, and a request runs inside
    /// the calling coroutine instead of a coroutine spawned on the connection's strand: fewer allocations
    /// and hand-overs a request (docs/benchmarks.md). With more threads it would be a data race: the first
    /// thread to run a request owns the client, and a request run by any other thread fails at once with
    /// `errc::operation_not_permitted` (nothing is sent). Leave it false unless one thread runs the executor.
    bool single_thread = false;
    /// Verify the server's certificate chain and host name (SNI is always sent). Turn off only for tests.
    bool verify_peer = true;
    /// PEM of extra certificate authorities to trust, besides the system store (tests, private gateways).
    std::string extra_ca_pem;
    std::string user_agent = "cascade/0.1";
};

/// @brief No bound on a stream's reads but the attempt's end (`HttpClient::request_stream`).
struct NoReadDeadline {
    std::chrono::steady_clock::time_point operator()() const noexcept { return std::chrono::steady_clock::time_point::max(); }
};

/// @brief An HTTP/1.1 client with a keep-alive pool per origin. Thread-safe; share one per provider.
///
/// Errors are returned, never thrown: a timeout is `beast::error::timeout`; a body over the limit
/// `http::error::body_limit`; a close in mid-response `http::error::partial_message` (or
/// `http::error::end_of_stream` before any byte); certificate problems the SSL category's error;
/// cancellation (through the awaiting coroutine's cancellation slot, which reaches the socket)
/// `asio::error::operation_aborted`, and only cancellation.
///
/// Each connection has its own strand (unless `ClientConfig::single_thread`): every handler of its socket and timer, and the exchange itself,
/// run there, whatever threads run the executor. (Without it, on two threads, Beast's timeout handler and
/// the aborted read raced, and a timeout surfaced as `operation_aborted`.) A pooled connection is reused
/// only while younger than `max_idle_time` and still open (checked without blocking before the request is
/// written, once it has been idle `check_idle_after`); a reused connection that fails before any byte of
/// the answer is replaced by a new connection, never by another pooled one.
///
/// The client runs on the executor it is given, never on a strand of it: a strand (a server's usual
/// one-strand-per-connection design, or the chain's caller on one) is replaced by the executor under it,
/// so the upstream sockets of every caller do not all wait on the first caller's strand.
class HttpClient {
public:
    HttpClient(boost::asio::any_io_executor ex, ClientConfig cfg)
        : ex_(beneath_strand(std::move(ex))), cfg_(std::move(cfg)), ssl_(boost::asio::ssl::context::tls_client) {
        // A malformed extra CA is a configuration error, said at once; the system store (a hundred
        // certificates to decode) is loaded on the first TLS connection only.
        if (!cfg_.extra_ca_pem.empty())
            ssl_.add_certificate_authority(boost::asio::buffer(cfg_.extra_ca_pem), ssl_error_);
        ssl_.set_verify_mode(cfg_.verify_peer ? boost::asio::ssl::verify_peer : boost::asio::ssl::verify_none);
    }
    HttpClient(HttpClient const&) = delete;

    /// @brief The executor the client's connections make their strands from (never a strand).
    boost::asio::any_io_executor const& get_executor() const noexcept { return ex_; }

    /// @brief `ex` without its strands: the executor a `strand<...>` wraps, for the strand types Asio
    /// makes (of an `any_io_executor` or of an `io_context`'s executor); any other executor as it is.
    static boost::asio::any_io_executor beneath_strand(boost::asio::any_io_executor ex) {
        using io_ex = boost::asio::io_context::executor_type;
        for (int depth = 0; depth < 4; ++depth) {
            if (auto const* s = ex.target<boost::asio::strand<boost::asio::any_io_executor>>())
                ex = s->get_inner_executor();
            else if (auto const* t = ex.target<boost::asio::strand<io_ex>>())
                ex = t->get_inner_executor();
            else
                break;
        }
        return ex;
    }
    HttpClient& operator=(HttpClient const&) = delete;

    ClientConfig const& config() const noexcept { return cfg_; }

    /// @brief An error adding `extra_ca_pem` (a malformed PEM), if any: a configuration error.
    boost::system::error_code tls_setup_error() const noexcept { return ssl_error_; }

    /// @brief Connections opened so far (all origins).
    std::size_t connections_opened() const {
        std::lock_guard lock(mutex_);
        return opened_;
    }

    /// @brief Pooled connections found closed or too old, and closed instead of reused (all origins).
    std::size_t stale_connections_dropped() const {
        std::lock_guard lock(mutex_);
        return dropped_;
    }

    /// @brief Sends `req` to `origin` and reads the whole response, within min(attempt timeout, deadline).
    boost::asio::awaitable<boost::system::result<HttpResponse>> request(Url const& origin, HttpRequest req,
                                                                       std::chrono::steady_clock::time_point deadline =
                                                                           std::chrono::steady_clock::time_point::max()) {
        auto ready = prepare(origin, req, deadline);
        if (!ready) co_return ready.error();
        auto conn = take(origin);
        if (!conn) conn = new_conn();
        auto exec = conn->executor();
        // Named locals, then moved in: g++ 12 destroys temporaries of a co_await expression twice.
        auto op = exchange_on_strand(origin, std::move(conn), ready->msg, ready->attempt_end);
        auto r = co_await on_conn(std::move(exec), std::move(op));
        co_return r;
    }

    /// @brief Like `request`, but a 2xx body is handed to `on_body(std::string_view)` piece by piece as it
    /// arrives (for `text/event-stream`); the returned response then has an empty body. A non-2xx body is
    /// read whole, as `request` does. The body limit applies to the whole stream.
    ///
    /// `on_body` may return `bool`: false stops reading at once with `operation_aborted` (the connection,
    /// never pooled, is closed). `next_by()` (steady clock) bounds each read besides the attempt's end: a
    /// read past it ends with `beast::error::timeout` (a stream's first-token and stall timeouts).
    template <class OnBody, class NextBy = NoReadDeadline>
    boost::asio::awaitable<boost::system::result<HttpResponse>> request_stream(Url const& origin, HttpRequest req,
                                                                              std::chrono::steady_clock::time_point deadline,
                                                                              OnBody on_body, NextBy next_by = {}) {
        auto ready = prepare(origin, req, deadline);
        if (!ready) co_return ready.error();
        // A fresh connection, never pooled: streams are long and rare. On a strand of its own (unless
        // `single_thread`), like a pooled one.
        auto conn = new_conn();
        auto exec = conn->executor();
        auto op = stream_on_strand(origin, std::move(conn), ready->msg, ready->attempt_end, on_body, next_by);
        auto r = co_await on_conn(std::move(exec), std::move(op));
        co_return r;
    }

private:
    // When one attempt must end: the attempt timeout from now, or the caller's deadline if sooner.
    std::chrono::steady_clock::time_point attempt_end_for(std::chrono::steady_clock::time_point deadline) const {
        auto end = std::chrono::steady_clock::now() + cfg_.attempt_timeout;
        return deadline < end ? deadline : end;
    }

    // A request about to go: the end of its attempt, and the request on the wire (http_wire.hpp: one
    // string, one write).
    struct Ready {
        std::string msg;
        std::chrono::steady_clock::time_point attempt_end;
    };

    // What both kinds of request check before any connection: the attempt's end not already past; a
    // request that can be written (a header with a CR or LF, or a name that is no token, fails here); and
    // with `single_thread`, the thread that owns the client.
    boost::system::result<Ready> prepare(Url const& origin, HttpRequest const& req, std::chrono::steady_clock::time_point deadline) {
        auto const attempt_end = attempt_end_for(deadline);
        if (attempt_end <= std::chrono::steady_clock::now()) return boost::system::error_code(boost::beast::error::timeout);
        auto msg = wire::request(req.method, req.target, origin.host, cfg_.user_agent, req.headers, req.body);
        if (!msg) return msg.error();
        if (cfg_.single_thread && !on_owner_thread())
            return boost::system::errc::make_error_code(boost::system::errc::operation_not_permitted);
        return Ready{std::move(*msg), attempt_end};
    }

    template <class Stream, class OnBody, class NextBy>
    boost::asio::awaitable<boost::system::result<HttpResponse>> stream_on(Stream& stream, boost::beast::flat_buffer& buffer,
                                                                         std::string const& msg, OnBody& on_body, NextBy& next_by,
                                                                         std::chrono::steady_clock::time_point attempt_end) {
        namespace http = boost::beast::http;
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        auto bound_read = [&] { boost::beast::get_lowest_layer(stream).expires_at(std::min(attempt_end, next_by())); };
        auto [wec, wn] = co_await boost::asio::async_write(stream, boost::asio::buffer(msg), as_tuple(use_awaitable));
        if (wec) co_return wec;
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(cfg_.max_body_bytes);
        bound_read();
        auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, as_tuple(use_awaitable));
        if (hec) co_return hec;
        HttpResponse out;
        out.status = static_cast<int>(parser.get().result_int());
        for (auto const& f : parser.get()) out.headers.add(std::string(f.name_string()), std::string(f.value()));
        bool const success = out.status >= 200 && out.status < 300;
        std::array<char, 8192> piece{};
        while (!parser.is_done()) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            if (success) bound_read();
            auto [rec, rn] = co_await http::async_read_some(stream, buffer, parser, as_tuple(use_awaitable));
            if (rec && rec != http::error::need_buffer) co_return rec;
            std::size_t got = piece.size() - parser.get().body().size;
            if (got == 0) continue;
            if (!success) {
                out.body.append(piece.data(), got);
            } else if constexpr (std::is_same_v<decltype(on_body(std::string_view())), bool>) {
                if (!on_body(std::string_view(piece.data(), got))) co_return boost::system::error_code(boost::asio::error::operation_aborted);
            } else {
                on_body(std::string_view(piece.data(), got));
            }
        }
        co_return out;
    }

    using Message = std::string;  // a whole request, head and body (wire::request)

    // One connection, plain or TLS, and the strand all its handlers run on (the client's executor itself
    // when one thread runs it). Its streams are made, used and destroyed there only.
    //
    // The strand is kept as its own type and made an any_io_executor only where one is needed: copies of
    // one any_io_executor holding a strand share a reference count that Asio releases with a fence,
    // which ThreadSanitizer cannot see, so a copy dropped on one thread and the last one on the strand's
    // thread were reported as a race under the fault soak.
    struct Conn {
        explicit Conn(boost::asio::any_io_executor e) : io(std::move(e)) {}
        explicit Conn(boost::asio::strand<boost::asio::any_io_executor> s) : strand(std::move(s)) {}
        std::optional<boost::asio::strand<boost::asio::any_io_executor>> strand;  // none with single_thread
        boost::asio::any_io_executor io;                                        // with single_thread
        boost::asio::any_io_executor executor() const {
            if (strand) return *strand;
            return io;
        }
        std::unique_ptr<boost::beast::tcp_stream> plain;
        std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls;
        boost::beast::flat_buffer buffer;
        std::chrono::steady_clock::time_point idle_since{};

        bool open() const noexcept { return plain || tls; }
        void reset() {
            tls.reset();
            plain.reset();
            buffer.clear();
        }
        boost::beast::tcp_stream& lowest() { return plain ? *plain : boost::beast::get_lowest_layer(*tls); }
        void expires_at(std::chrono::steady_clock::time_point t) { lowest().expires_at(t); }
    };

    // Runs `op` on `strand` and awaits it, carrying the caller's cancellation there. Not through
    // co_spawn's own forwarding: in Asio 1.81 it queues the emit with a pointer into the caller's
    // cancellation slot, which is freed as soon as the operation completes (a use-after-free that
    // ThreadSanitizer found under the fault soak). Here the signal lives as long as any emit queued for it.
    static boost::asio::awaitable<boost::system::result<HttpResponse>> on_strand(boost::asio::any_io_executor strand,
                                                                                boost::asio::awaitable<boost::system::result<HttpResponse>> op) {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            co_return boost::system::error_code(boost::asio::error::operation_aborted);
        auto signal = std::make_shared<boost::asio::cancellation_signal>();
        auto slot = cs.slot();
        if (slot.is_connected())
            slot.assign([signal, strand](boost::asio::cancellation_type type) {
                boost::asio::post(strand, [signal, type] { signal->emit(type); });
            });
        auto token = boost::asio::bind_cancellation_slot(signal->slot(), boost::asio::use_awaitable);
        auto r = co_await boost::asio::co_spawn(strand, std::move(op), token);
        if (slot.is_connected()) slot.clear();
        co_return r;
    }

    // Awaits `op`, the work on one connection: with `single_thread` in the calling coroutine (no strand to go
    // to), otherwise on the connection's strand (`on_strand`). Not a coroutine: no frame of its own.
    boost::asio::awaitable<boost::system::result<HttpResponse>> on_conn(boost::asio::any_io_executor exec,
                                                                        boost::asio::awaitable<boost::system::result<HttpResponse>> op) const {
        if (cfg_.single_thread) return op;
        return on_strand(std::move(exec), std::move(op));
    }

    // Can an idle pooled connection carry a request? Not if it holds bytes nobody asked for, nor (checked
    // with a peek that does not block, when it has been idle `check_idle_after`) if the server closed it
    // (a read would see EOF). Only on the connection's strand.
    bool still_open(Conn& c) const {
        if (c.buffer.size() != 0) return false;
        if (std::chrono::steady_clock::now() - c.idle_since < cfg_.check_idle_after) return true;
#if defined(_WIN32)
        return true;
#else
        char byte;
        auto n = ::recv(c.lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
#endif
    }

    // The whole request on `conn`'s strand: a pooled connection is checked first; a reused connection that
    // fails before any byte of the answer arrives is replaced by a new one (never another pooled one).
    boost::asio::awaitable<boost::system::result<HttpResponse>> exchange_on_strand(Url const& origin, std::unique_ptr<Conn> conn,
                                                                                  Message const& msg,
                                                                                  std::chrono::steady_clock::time_point attempt_end) {
        // Cancellation arrives as operation_aborted from the operation in flight, not as an exception.
        co_await boost::asio::this_coro::throw_if_cancelled(false);
        bool reused = conn->open();
        if (reused && !still_open(*conn)) {
            conn->reset();
            reused = false;
            std::lock_guard lock(mutex_);
            ++dropped_;
        }
        for (;;) {
            if (!conn->open()) {
                auto ec = co_await connect(origin, *conn, attempt_end);
                if (ec) co_return ec;
            }
            conn->expires_at(attempt_end);
            Exchange ex = co_await exchange(*conn, msg);
            if (ex.error) {
                if (reused && !ex.got_bytes && is_stale(ex.error)) {
                    conn->reset();
                    reused = false;
                    continue;
                }
                co_return ex.error;
            }
            if (ex.keep_alive) give_back(origin, std::move(conn));
            co_return std::move(ex.response);
        }
    }

    template <class OnBody, class NextBy>
    boost::asio::awaitable<boost::system::result<HttpResponse>> stream_on_strand(Url const& origin, std::unique_ptr<Conn> conn,
                                                                                Message const& msg,
                                                                                std::chrono::steady_clock::time_point attempt_end,
                                                                                OnBody& on_body, NextBy& next_by) {
        co_await boost::asio::this_coro::throw_if_cancelled(false);
        if (auto ec = co_await connect(origin, *conn, attempt_end)) co_return ec;
        conn->expires_at(attempt_end);
        // Two statements, not a conditional: g++ 12 mis-destroys temporaries of a co_await inside ?:.
        if (conn->tls) {
            auto r = co_await stream_on(*conn->tls, conn->buffer, msg, on_body, next_by, attempt_end);
            co_return r;
        }
        auto r = co_await stream_on(*conn->plain, conn->buffer, msg, on_body, next_by, attempt_end);
        co_return r;
    }

    struct Exchange {
        boost::system::error_code error;
        bool got_bytes = false;
        bool keep_alive = false;
        HttpResponse response;
    };

    static bool is_stale(boost::system::error_code ec) {
        return ec == boost::beast::http::error::end_of_stream || ec == boost::asio::error::connection_reset ||
               ec == boost::asio::error::broken_pipe || ec == boost::asio::error::eof;
    }

    // The most recently used idle connection of `origin` younger than `max_idle_time`; older ones are
    // closed (on their own strands).
    std::unique_ptr<Conn> take(Url const& origin) {
        std::vector<std::unique_ptr<Conn>> expired;
        std::unique_ptr<Conn> c;
        {
            std::lock_guard lock(mutex_);
            auto it = idle_.find(origin);
            if (it == idle_.end()) return nullptr;
            auto& v = it->second;  // oldest first
            auto const oldest_usable = std::chrono::steady_clock::now() - cfg_.max_idle_time;
            auto first_fresh = v.begin();
            while (first_fresh != v.end() && (cfg_.max_idle_time.count() <= 0 || (*first_fresh)->idle_since <= oldest_usable))
                ++first_fresh;
            expired.assign(std::make_move_iterator(v.begin()), std::make_move_iterator(first_fresh));
            v.erase(v.begin(), first_fresh);
            dropped_ += expired.size();
            if (!v.empty()) {
                c = std::move(v.back());
                v.pop_back();
            }
        }
        for (auto& e : expired) close_on_strand(std::move(e));
        return c;
    }

    // Called on `c`'s strand.
    void give_back(Url const& origin, std::unique_ptr<Conn> c) {
        c->idle_since = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        auto it = idle_.find(origin);
        if (it == idle_.end()) it = idle_.emplace(OriginKey{origin.tls, origin.host, origin.port}, std::vector<std::unique_ptr<Conn>>{}).first;
        if (it->second.size() < cfg_.max_idle_per_origin) it->second.push_back(std::move(c));
    }

    // With `single_thread`: is this the thread that owns the client (the first to run a request here)?
    bool on_owner_thread() noexcept {
        auto const me = std::this_thread::get_id();
        auto owner = std::thread::id{};
        if (single_thread_owner_.compare_exchange_strong(owner, me)) return true;
        return owner == me;
    }

    std::unique_ptr<Conn> new_conn() const {
        if (cfg_.single_thread) return std::make_unique<Conn>(ex_);
        return std::make_unique<Conn>(boost::asio::make_strand(ex_));
    }

    static void close_on_strand(std::unique_ptr<Conn> c) {
        std::shared_ptr<Conn> owned(std::move(c));
        if (owned->strand) {
            auto strand = *owned->strand;
            boost::asio::post(strand, [owned]() mutable { owned.reset(); });
        } else {
            auto io = owned->io;
            boost::asio::post(io, [owned]() mutable { owned.reset(); });
        }
    }

    // Opens `c` (TCP, then TLS) on its strand, within the connect timeout and the attempt's end.
    boost::asio::awaitable<boost::system::error_code> connect(Url const& origin, Conn& c,
                                                              std::chrono::steady_clock::time_point attempt_end) {
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        auto connect_end = std::chrono::steady_clock::now() + cfg_.connect_timeout;
        if (attempt_end < connect_end) connect_end = attempt_end;
        c.reset();
        boost::asio::ip::tcp::resolver resolver(c.executor());
        auto [rec, eps] = co_await resolver.async_resolve(origin.host, std::to_string(origin.port), as_tuple(use_awaitable));
        if (rec) co_return rec;
        if (origin.tls) {
            std::call_once(system_store_loaded_, [this] {
                boost::system::error_code ignored;  // no system store: only extra_ca_pem is trusted
                ssl_.set_default_verify_paths(ignored);
            });
            c.tls = std::make_unique<boost::beast::ssl_stream<boost::beast::tcp_stream>>(c.executor(), ssl_);
            // SNI, and the name the certificate must carry.
            if (!SSL_set_tlsext_host_name(c.tls->native_handle(), origin.host.c_str()))
                co_return boost::system::error_code(static_cast<int>(::ERR_get_error()), boost::asio::error::get_ssl_category());
            if (cfg_.verify_peer) c.tls->set_verify_callback(boost::asio::ssl::host_name_verification(origin.host));
        } else {
            c.plain = std::make_unique<boost::beast::tcp_stream>(c.executor());
        }
        c.expires_at(connect_end);
        auto [cec, ep] = co_await c.lowest().async_connect(eps, as_tuple(use_awaitable));
        if (cec) {
            c.reset();
            co_return cec;
        }
        {
            std::lock_guard lock(mutex_);
            ++opened_;
        }
        if (c.tls) {
            auto [hec] = co_await c.tls->async_handshake(boost::asio::ssl::stream_base::client, as_tuple(use_awaitable));
            if (hec) {
                c.reset();
                co_return hec;
            }
        }
        co_return boost::system::error_code{};
    }

    template <class Stream>
    boost::asio::awaitable<Exchange> exchange_on(Stream& stream, boost::beast::flat_buffer& buffer, Message const& msg) {
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        Exchange ex;
        auto [wec, wn] = co_await boost::asio::async_write(stream, boost::asio::buffer(msg), as_tuple(use_awaitable));
        if (wec) {
            ex.error = wec;
            co_return ex;
        }
        boost::beast::http::response_parser<boost::beast::http::string_body> parser;
        parser.body_limit(cfg_.max_body_bytes);
        auto [rec, rn] = co_await boost::beast::http::async_read(stream, buffer, parser, as_tuple(use_awaitable));
        ex.got_bytes = parser.got_some();
        if (rec) {
            ex.error = rec;
            co_return ex;
        }
        auto& res = parser.get();
        ex.keep_alive = res.keep_alive() && parser.is_done();
        ex.response.status = static_cast<int>(res.result_int());
        ex.response.headers.reserve(static_cast<std::size_t>(std::distance(res.begin(), res.end())));
        for (auto const& f : res) ex.response.headers.add(std::string(f.name_string()), std::string(f.value()));
        ex.response.body = std::move(res.body());
        co_return ex;
    }

    boost::asio::awaitable<Exchange> exchange(Conn& c, Message const& msg) {
        if (c.tls) return exchange_on(*c.tls, c.buffer, msg);
        return exchange_on(*c.plain, c.buffer, msg);
    }

    boost::asio::any_io_executor ex_;
    ClientConfig cfg_;
    boost::asio::ssl::context ssl_;
    boost::system::error_code ssl_error_;
    std::once_flag system_store_loaded_;
    mutable std::mutex mutex_;
    // The pool's key: scheme, host and port, compared with a Url as it is (no key string made a request).
    struct OriginKey {
        bool tls;
        std::string host;
        std::uint16_t port;
    };
    struct OriginLess {
        using is_transparent = void;
        template <class A, class B>
        bool operator()(A const& a, B const& b) const noexcept {
            if (a.tls != b.tls) return a.tls < b.tls;
            if (a.port != b.port) return a.port < b.port;
            return a.host < b.host;
        }
    };
    std::map<OriginKey, std::vector<std::unique_ptr<Conn>>, OriginLess> idle_;
    std::size_t opened_ = 0;
    std::size_t dropped_ = 0;
    std::atomic<std::thread::id> single_thread_owner_{};
};

} // namespace cascade::net
