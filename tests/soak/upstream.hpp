#pragma once
// The soak's upstream: a real HTTP/1.1 server (Boost.Beast) on 127.0.0.1 whose every answer the test
// decides. Beside what support/loopback.hpp does, it closes a keep-alive connection that stays idle
// longer than `idle_close` (as Node's keepAliveTimeout does, only shorter), and it stops and starts
// again on the same port, so a client meets refused connections and then a fresh server.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace cascade::soak {

using Time = std::chrono::steady_clock::time_point;

// What the upstream does with one request.
struct Answer {
    enum class Shape {
        whole,              // status line, headers, the whole body (content-length)
        hang,               // never answers; the connection stays open until the client leaves
        cut_mid_body,       // announces the whole body's length, sends half of it, closes
        chunks,             // chunked: each chunk after its pause, then the last (empty) chunk
        chunks_then_close,  // chunked: each chunk after its pause, then closes without the last chunk
    };
    Shape shape = Shape::whole;
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // Wait this long before sending anything.
    std::chrono::milliseconds delay{0};
    std::vector<std::pair<std::chrono::milliseconds, std::string>> chunks;
};

// One request as it arrived: what the test's decision may look at.
struct Arrival {
    std::string_view target;
    // The bearer token of the Authorization header, empty when there is none.
    std::string_view bearer;
    Time at;
};

struct UpstreamConfig {
    // A keep-alive connection with no request for this long is closed by the server.
    std::chrono::milliseconds idle_close{300};
    // A hanging answer gives up after this long even if the client stays (keeps the test bounded).
    std::chrono::milliseconds hang_cap{10'000};
};

class Upstream {
public:
    using Decide = std::function<Answer(Arrival const&)>;

    // Runs its own thread; `decide` is called on it, one request at a time.
    explicit Upstream(Decide decide, UpstreamConfig cfg = {})
        : decide_(std::move(decide)), cfg_(cfg), guard_(io_.get_executor()) {
        thread_ = std::thread([this] { io_.run(); });
    }
    Upstream(Upstream const&) = delete;
    Upstream& operator=(Upstream const&) = delete;
    ~Upstream() { shut_down(); }

    // Listens on 127.0.0.1: a free port the first time, the same port every later time.
    void start() {
        on_thread([this] {
            acceptor_.emplace(io_);
            boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port_);
            acceptor_->open(ep.protocol());
            acceptor_->set_option(boost::asio::socket_base::reuse_address(true));
            acceptor_->bind(ep);
            acceptor_->listen();
            port_ = acceptor_->local_endpoint().port();
            stopping_ = false;
            boost::asio::co_spawn(io_, accept_loop(&*acceptor_), boost::asio::detached);
        });
    }

    // Stops listening (new connections are refused) and closes idle connections. A request being
    // answered gets its answer, then its connection closes: nothing already read is dropped unanswered.
    void stop() {
        on_thread([this] {
            stopping_ = true;
            if (acceptor_) {
                boost::system::error_code ignored;
                acceptor_->close(ignored);
            }
            for (auto const& s : sessions_)
                if (!s->busy) s->stream.close();
        });
    }

    std::uint16_t port() const noexcept { return port_; }
    std::string base_url(std::string_view path = "") const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }
    // Connections accepted, and closed by the server for being idle.
    std::size_t accepted() const noexcept { return accepted_.load(); }
    std::size_t idle_closed() const noexcept { return idle_closed_.load(); }

private:
    struct Session {
        explicit Session(boost::asio::ip::tcp::socket s) : stream(std::move(s)) {}
        boost::beast::tcp_stream stream;
        boost::beast::flat_buffer buffer;
        // True from a request's arrival until its answer is written.
        bool busy = false;
    };

    // Runs `f` on the server's thread and waits for it; rethrows what it threw.
    template <class F>
    void on_thread(F f) {
        std::promise<void> done;
        auto fut = done.get_future();
        boost::asio::post(io_, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
            throw std::runtime_error("soak upstream: its thread did not answer within 10 s");
        fut.get();
    }

    void shut_down() {
        if (!thread_.joinable()) return;
        try {
            on_thread([this] {
                stopping_ = true;
                boost::system::error_code ignored;
                if (acceptor_) acceptor_->close(ignored);
                for (auto const& s : sessions_) s->stream.close();
            });
        } catch (...) {
        }
        guard_.reset();
        io_.stop();
        thread_.join();
    }

    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor* acceptor) {
        for (;;) {
            auto [ec, sock] = co_await acceptor->async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;  // closed by stop(); a later start() runs a new loop
            ++accepted_;
            auto s = std::make_shared<Session>(std::move(sock));
            sessions_.insert(s);
            boost::asio::co_spawn(io_, serve(s), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> serve(std::shared_ptr<Session> s) {
        co_await serve_requests(*s);
        s->stream.close();
        sessions_.erase(s);
    }

    boost::asio::awaitable<void> serve_requests(Session& s) {
        namespace http = boost::beast::http;
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        for (;;) {
            if (stopping_) co_return;
            s.busy = false;
            s.stream.expires_after(cfg_.idle_close);
            http::request<http::string_body> req;
            auto [rec, rn] = co_await http::async_read(s.stream, s.buffer, req, as_tuple(use_awaitable));
            if (rec) {
                if (rec == boost::beast::error::timeout) ++idle_closed_;
                co_return;
            }
            s.busy = true;
            s.stream.expires_after(cfg_.hang_cap);
            std::string_view bearer;
            if (auto it = req.find(http::field::authorization); it != req.end()) {
                std::string_view v(it->value().data(), it->value().size());
                if (v.rfind("Bearer ", 0) == 0) bearer = v.substr(7);
            }
            Arrival arrival;
            arrival.target = std::string_view(req.target().data(), req.target().size());
            arrival.bearer = bearer;
            arrival.at = std::chrono::steady_clock::now();
            Answer answer = decide_(arrival);
            if (!co_await perform(s, answer)) co_return;
        }
    }

    // Sends `a`; false when the connection is done (closed on purpose, or broken).
    boost::asio::awaitable<bool> perform(Session& s, Answer const& a) {
        namespace http = boost::beast::http;
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        boost::asio::steady_timer timer(io_);
        if (a.shape == Answer::Shape::hang) {
            // Read until the client gives up and closes (or hang_cap ends it).
            char sink[256];
            for (int i = 0; i < 1000; ++i) {
                auto [ec, n] = co_await s.stream.async_read_some(boost::asio::buffer(sink), as_tuple(use_awaitable));
                if (ec) break;
            }
            co_return false;
        }
        if (a.delay.count() > 0) {
            timer.expires_after(a.delay);
            co_await timer.async_wait(as_tuple(use_awaitable));
        }
        bool const closes = a.shape == Answer::Shape::cut_mid_body || a.shape == Answer::Shape::chunks_then_close;
        std::string head = "HTTP/1.1 " + std::to_string(a.status) + " " +
                           std::string(http::obsolete_reason(static_cast<http::status>(a.status))) + "\r\n";
        for (auto const& [n, v] : a.headers) head += n + ": " + v + "\r\n";
        if (closes) head += "connection: close\r\n";
        if (a.shape == Answer::Shape::chunks || a.shape == Answer::Shape::chunks_then_close) {
            head += "transfer-encoding: chunked\r\n\r\n";
            auto [hec, hn] = co_await boost::asio::async_write(s.stream, boost::asio::buffer(head), as_tuple(use_awaitable));
            if (hec) co_return false;
            for (auto const& [pause, piece] : a.chunks) {
                if (pause.count() > 0) {
                    timer.expires_after(pause);
                    co_await timer.async_wait(as_tuple(use_awaitable));
                }
                if (piece.empty()) continue;
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
                std::string frame = std::string(size) + piece + "\r\n";
                auto [cec, cn] = co_await boost::asio::async_write(s.stream, boost::asio::buffer(frame), as_tuple(use_awaitable));
                if (cec) co_return false;
            }
            if (a.shape == Answer::Shape::chunks) {
                std::string end = "0\r\n\r\n";
                auto [eec, en] = co_await boost::asio::async_write(s.stream, boost::asio::buffer(end), as_tuple(use_awaitable));
                if (eec) co_return false;
            }
        } else {
            head += "content-length: " + std::to_string(a.body.size()) + "\r\n\r\n";
            std::string payload = head + (a.shape == Answer::Shape::cut_mid_body ? a.body.substr(0, a.body.size() / 2) : a.body);
            auto [wec, wn] = co_await boost::asio::async_write(s.stream, boost::asio::buffer(payload), as_tuple(use_awaitable));
            if (wec) co_return false;
        }
        if (closes) {
            boost::system::error_code ignored;
            s.stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
            co_return false;
        }
        co_return true;
    }

    Decide decide_;
    UpstreamConfig cfg_;
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
    std::atomic<std::uint16_t> port_{0};
    bool stopping_ = false;  // only touched on the server's thread
    std::set<std::shared_ptr<Session>> sessions_;  // only touched on the server's thread
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::size_t> idle_closed_{0};
    std::thread thread_;
};

} // namespace cascade::soak
