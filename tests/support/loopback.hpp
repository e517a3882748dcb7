#pragma once
// The loopback upstream: a real HTTP/1.1 server (Boost.Beast) on 127.0.0.1, plain or TLS with a
// certificate made at test time, scriptable per route and per key, recording every request. It plays
// Groq, DeepSeek, Vertex, the Google token endpoint... with their real wire formats (see wire.hpp).

#include "certs.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cascade::test {

// What the upstream answers to one request.
struct Reply {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // Wait this long before sending anything.
    std::chrono::milliseconds delay{0};
    // Never answer (the connection stays open until the upstream stops).
    bool hang = false;
    // Announce the whole body's length, send half of it, close.
    bool close_mid_body = false;
    // Send the body in chunks (chunked transfer encoding), each after its pause; `body` is then unused.
    std::vector<std::pair<std::chrono::milliseconds, std::string>> chunks;
    // With `chunks`: after the last one, close without the final empty chunk (a stream cut mid-way).
    bool cut_after_chunks = false;
    // Close the connection after this response.
    bool close_after = false;
    // Answer as keep-alive, then close without saying so: a server's idle timeout firing right away.
    bool close_silently_after = false;

    Reply&& header(std::string name, std::string value) && {
        headers.emplace_back(std::move(name), std::move(value));
        return std::move(*this);
    }
    Reply&& after(std::chrono::milliseconds d) && {
        delay = d;
        return std::move(*this);
    }
};

// A reply with a status, a content type and a body.
inline Reply reply(int status, std::string content_type, std::string body) {
    Reply r;
    r.status = status;
    r.headers.emplace_back("content-type", std::move(content_type));
    r.body = std::move(body);
    return r;
}

// One request as the upstream saw it.
struct Recorded {
    std::string method;
    std::string target;
    std::string body;
    // The bearer token, `x-goog-api-key`, `x-api-key` or `api-key`; empty when there was none.
    std::string key;
    std::map<std::string, std::string> headers;  // lowercase names
};

class Loopback {
public:
    using Handler = std::function<Reply(Recorded const&)>;

    // Plain HTTP, or TLS with `pki` (a certificate made for the test).
    explicit Loopback(std::optional<TestPki> pki = std::nullopt)
        : pki_(std::move(pki)), ssl_(boost::asio::ssl::context::tls_server),
          acceptor_(io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
        if (pki_) {
            ssl_.use_certificate_chain(boost::asio::buffer(pki_->server_cert_pem));
            ssl_.use_private_key(boost::asio::buffer(pki_->server_key_pem), boost::asio::ssl::context::pem);
        }
        port_ = acceptor_.local_endpoint().port();
        boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    Loopback(Loopback const&) = delete;
    Loopback& operator=(Loopback const&) = delete;
    ~Loopback() { stop(); }

    void stop() {
        if (thread_.joinable()) {
            io_.stop();
            thread_.join();
        }
    }

    std::uint16_t port() const noexcept { return port_; }
    std::string base_url(std::string const& path = "") const {
        return std::string(pki_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::string const& ca_pem() const { return pki_->ca_pem; }

    // Replies for requests whose target starts with `prefix` and (when `key` is not empty) carry `key`,
    // used in order; `otherwise` answers once the queue is empty.
    Loopback& queue(std::string prefix, Reply r, std::string key = {}) {
        std::lock_guard lock(mutex_);
        routes_[{std::move(prefix), std::move(key)}].queued.push_back(std::move(r));
        return *this;
    }
    Loopback& otherwise(std::string prefix, Reply r, std::string key = {}) {
        std::lock_guard lock(mutex_);
        routes_[{std::move(prefix), std::move(key)}].fallback = std::move(r);
        return *this;
    }
    Loopback& handle(std::string prefix, Handler h, std::string key = {}) {
        std::lock_guard lock(mutex_);
        routes_[{std::move(prefix), std::move(key)}].handler = std::move(h);
        return *this;
    }

    std::size_t accepted_connections() const { return accepted_.load(); }
    // Waits (at most `limit`) until the server closed `n` connections after a reply (`close_after`,
    // `close_silently_after`, `close_mid_body`).
    bool wait_closed_after_reply(std::size_t n, std::chrono::milliseconds limit) const {
        std::unique_lock lock(mutex_);
        return closed_cv_.wait_for(lock, limit, [&] { return closed_after_reply_ >= n; });
    }
    // Connections whose request was left hanging (`Reply::hang`) and that the client then closed.
    std::size_t hung_connections_closed() const {
        std::lock_guard lock(mutex_);
        return hung_closed_;
    }
    // Waits (on a condition variable, at most `limit`) until `n` hanging connections were closed.
    bool wait_hung_connections_closed(std::size_t n, std::chrono::milliseconds limit) const {
        std::unique_lock lock(mutex_);
        return closed_cv_.wait_for(lock, limit, [&] { return hung_closed_ >= n; });
    }
    std::vector<Recorded> requests() const {
        std::lock_guard lock(mutex_);
        return log_;
    }
    // When the client closed a connection that was sending chunks (steady clock), in order.
    std::vector<std::chrono::steady_clock::time_point> chunked_closed() const {
        std::lock_guard lock(mutex_);
        return chunked_closed_;
    }
    // Waits (at most `limit`) until `n` chunked replies were closed by the client.
    bool wait_chunked_closed(std::size_t n, std::chrono::milliseconds limit) const {
        std::unique_lock lock(mutex_);
        return closed_cv_.wait_for(lock, limit, [&] { return chunked_closed_.size() >= n; });
    }
    int hits(std::string const& prefix) const {
        std::lock_guard lock(mutex_);
        int n = 0;
        for (auto const& r : log_) n += r.target.rfind(prefix, 0) == 0;
        return n;
    }
    int hits_for_key(std::string const& key) const {
        std::lock_guard lock(mutex_);
        int n = 0;
        for (auto const& r : log_) n += r.key == key;
        return n;
    }

private:
    struct Route {
        std::deque<Reply> queued;
        std::optional<Reply> fallback;
        Handler handler;
    };

    Reply decide(Recorded const& rec) {
        std::lock_guard lock(mutex_);
        log_.push_back(rec);
        // The longest matching prefix wins; a key-specific route beats a keyless one.
        Route* best = nullptr;
        std::size_t best_len = 0;
        bool best_keyed = false;
        for (auto& [k, route] : routes_) {
            auto const& [prefix, key] = k;
            if (rec.target.rfind(prefix, 0) != 0) continue;
            if (!key.empty() && key != rec.key) continue;
            bool keyed = !key.empty();
            if (!best || prefix.size() > best_len || (prefix.size() == best_len && keyed && !best_keyed)) {
                best = &route;
                best_len = prefix.size();
                best_keyed = keyed;
            }
        }
        if (!best) return reply(404, "text/plain", "no route\n");
        if (!best->queued.empty()) {
            Reply r = std::move(best->queued.front());
            best->queued.pop_front();
            return r;
        }
        if (best->handler) return best->handler(rec);
        if (best->fallback) return *best->fallback;
        return reply(404, "text/plain", "route has nothing left\n");
    }

    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, sock] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;
            ++accepted_;
            if (pki_) {
                auto stream = std::make_shared<boost::beast::ssl_stream<boost::beast::tcp_stream>>(std::move(sock), ssl_);
                boost::asio::co_spawn(io_, tls_session(stream), boost::asio::detached);
            } else {
                auto stream = std::make_shared<boost::beast::tcp_stream>(std::move(sock));
                boost::asio::co_spawn(io_, session(stream), boost::asio::detached);
            }
        }
    }

    boost::asio::awaitable<void> tls_session(std::shared_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> s) {
        auto [ec] = co_await s->async_handshake(boost::asio::ssl::stream_base::server, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) co_return;  // the client refused our certificate: nothing to serve
        co_await session(s);
    }

    template <class Stream>
    boost::asio::awaitable<void> session(std::shared_ptr<Stream> s) {
        namespace http = boost::beast::http;
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [rec, rn] = co_await http::async_read(*s, buffer, req, as_tuple(use_awaitable));
            if (rec) co_return;
            Recorded r;
            r.method = std::string(req.method_string());
            r.target = std::string(req.target());
            r.body = req.body();
            for (auto const& f : req) {
                std::string name(f.name_string());
                for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                r.headers[name] = std::string(f.value());
            }
            if (auto it = r.headers.find("authorization"); it != r.headers.end() && it->second.rfind("Bearer ", 0) == 0)
                r.key = it->second.substr(7);
            else if (auto g = r.headers.find("x-goog-api-key"); g != r.headers.end())
                r.key = g->second;
            else if (auto a = r.headers.find("x-api-key"); a != r.headers.end())  // Anthropic
                r.key = a->second;
            else if (auto z = r.headers.find("api-key"); z != r.headers.end())  // Azure OpenAI
                r.key = z->second;
            Reply reply = decide(r);
            boost::asio::steady_timer timer(io_);
            if (reply.hang) {
                // Never answers; notes when the client gives up and closes the connection.
                char byte;
                auto [hec, hn] = co_await boost::beast::get_lowest_layer(*s).socket().async_read_some(boost::asio::buffer(&byte, 1),
                                                                                                     as_tuple(use_awaitable));
                if (hec) {
                    std::lock_guard lock(mutex_);
                    ++hung_closed_;
                    closed_cv_.notify_all();
                }
                co_return;
            }
            if (reply.delay.count() > 0) {
                timer.expires_after(reply.delay);
                co_await timer.async_wait(as_tuple(use_awaitable));
            }
            std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                               std::string(http::obsolete_reason(static_cast<http::status>(reply.status))) + "\r\n";
            for (auto const& [n, v] : reply.headers) head += n + ": " + v + "\r\n";
            if (reply.close_after || reply.close_mid_body) head += "connection: close\r\n";
            if (!reply.chunks.empty()) {
                head += "transfer-encoding: chunked\r\n\r\n";
                auto [hec, hn] = co_await boost::asio::async_write(*s, boost::asio::buffer(head), as_tuple(use_awaitable));
                if (hec) co_return;
                // Notes the moment the client closes while chunks are still to come, and cuts the pause short.
                auto closed = std::make_shared<bool>(false);
                auto watch = [](std::shared_ptr<Stream> st, std::shared_ptr<boost::asio::steady_timer> t, std::shared_ptr<bool> done,
                                Loopback* self) -> boost::asio::awaitable<void> {
                    char byte;
                    auto [wec, wn] = co_await boost::beast::get_lowest_layer(*st).socket().async_read_some(boost::asio::buffer(&byte, 1),
                                                                                                          as_tuple(use_awaitable));
                    if (!wec || *done) co_return;
                    *done = true;
                    {
                        std::lock_guard lock(self->mutex_);
                        self->chunked_closed_.push_back(std::chrono::steady_clock::now());
                        self->closed_cv_.notify_all();
                    }
                    t->cancel();
                };
                auto pause = std::make_shared<boost::asio::steady_timer>(io_);
                auto watcher = watch(s, pause, closed, this);
                boost::asio::co_spawn(io_, std::move(watcher), boost::asio::detached);
                for (auto const& [pause_for, piece] : reply.chunks) {
                    if (*closed) co_return;
                    if (pause_for.count() > 0) {
                        pause->expires_after(pause_for);
                        co_await pause->async_wait(as_tuple(use_awaitable));
                        if (*closed) co_return;
                    }
                    if (piece.empty()) continue;
                    char size[32];
                    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
                    std::string frame = std::string(size) + piece + "\r\n";
                    auto [cec, cn] = co_await boost::asio::async_write(*s, boost::asio::buffer(frame), as_tuple(use_awaitable));
                    if (cec) co_return;
                }
                // Every chunk is out: the watcher's read is stopped before the next request is read.
                if (*closed) co_return;
                *closed = true;
                {
                    boost::system::error_code ignored;
                    boost::beast::get_lowest_layer(*s).socket().cancel(ignored);
                }
                if (reply.cut_after_chunks) {
                    boost::system::error_code ignored;
                    boost::beast::get_lowest_layer(*s).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
                    boost::beast::get_lowest_layer(*s).socket().close(ignored);
                    co_return;
                }
                std::string end = "0\r\n\r\n";
                auto [eec, en] = co_await boost::asio::async_write(*s, boost::asio::buffer(end), as_tuple(use_awaitable));
                if (eec) co_return;
            } else {
                head += "content-length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
                std::string payload = head + (reply.close_mid_body ? reply.body.substr(0, reply.body.size() / 2) : reply.body);
                auto [wec, wn] = co_await boost::asio::async_write(*s, boost::asio::buffer(payload), as_tuple(use_awaitable));
                if (wec) co_return;
            }
            if (reply.close_after || reply.close_mid_body || reply.close_silently_after) {
                boost::system::error_code ignored;
                boost::beast::get_lowest_layer(*s).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
                {
                    std::lock_guard lock(mutex_);
                    ++closed_after_reply_;
                }
                closed_cv_.notify_all();
                co_return;
            }
        }
    }

    std::optional<TestPki> pki_;
    boost::asio::io_context io_;
    boost::asio::ssl::context ssl_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<std::size_t> accepted_{0};
    std::size_t hung_closed_ = 0;
    std::size_t closed_after_reply_ = 0;
    std::vector<std::chrono::steady_clock::time_point> chunked_closed_;
    mutable std::condition_variable closed_cv_;
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, Route> routes_;
    std::vector<Recorded> log_;
};

} // namespace cascade::test
