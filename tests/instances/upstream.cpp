// instances_upstream: a loopback OpenAI-compatible upstream for the multi-instance test (run.py), which
// logs who was sent what, when, so the driver can check what several instances sent between them.
//
//   POST .../chat/completions   200 with a fixed chat.completion (content >= 400 characters, usage total
//                               `--tokens`), after `--delay-ms`; or the refusal the control mode says
//   POST /control/429/<key>     from now on <key> answers 429, `retry-after: 60`, OpenAI's rate-limit JSON
//   POST /control/1010          from now on every key answers 403 text/plain "error code: 1010" (Cloudflare)
//   POST /control/reset         back to answering 200
//   GET  /control/log[?since=N] JSON array of {t_us, key, status, sent_us} since start (or arrivals >= N)
//
// Times are steady-clock microseconds since the upstream started: `t_us` when the request was read,
// `sent_us` when its response was written (0 if it never was). Keys are fake test keys, logged as they are.
//
// Usage: instances_upstream <port|0> [--tokens N] [--delay-ms N]; prints "listening on <port>" (flushed).
// 127.0.0.1 only, two threads, keep-alive.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct Options {
    unsigned short port = 0;
    std::uint32_t tokens = 100;
    std::chrono::milliseconds delay{0};
};

struct LogEntry {
    std::int64_t t_us = 0;
    std::string key;
    int status = 0;
    std::int64_t sent_us = 0;
};

// What the upstream answers and what it was asked, shared by both threads.
class Upstream {
public:
    explicit Upstream(Options o) : opts_(o), start_(std::chrono::steady_clock::now()) {
        // Long enough that the chain's minimum-length acceptance never refuses it.
        std::string content = "This is the loopback upstream's fixed answer for the multi-instance test. ";
        while (content.size() < 480) content += "It carries no information, only length, so every accepted answer is the same. ";
        auto const prompt = opts_.tokens / 2;
        boost::json::value body = {
            {"id", "chatcmpl-instances"},
            {"object", "chat.completion"},
            {"created", 1764547200},
            {"model", "mock-model"},
            {"choices", boost::json::array{boost::json::object{
                            {"index", 0},
                            {"message", {{"role", "assistant"}, {"content", content}}},
                            {"finish_reason", "stop"}}}},
            {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", opts_.tokens - prompt}, {"total_tokens", opts_.tokens}}}};
        completion_ = boost::json::serialize(body);
    }

    Options const& options() const noexcept { return opts_; }

    std::int64_t now_us() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_).count();
    }

    // Logs an arrival on `key` and says how to answer it: 200, 429 or 403. Returns the log index.
    std::pair<std::size_t, int> arrive(std::string key) {
        std::lock_guard lock(mutex_);
        int status = 200;
        if (block_1010_) status = 403;
        else if (limited_.count(key)) status = 429;
        log_.push_back(LogEntry{now_us(), std::move(key), status, 0});
        return {log_.size() - 1, status};
    }

    void sent(std::size_t index) {
        std::lock_guard lock(mutex_);
        log_[index].sent_us = now_us();
    }

    void limit(std::string key) {
        std::lock_guard lock(mutex_);
        limited_.insert(std::move(key));
    }
    void block() {
        std::lock_guard lock(mutex_);
        block_1010_ = true;
    }
    void reset() {
        std::lock_guard lock(mutex_);
        limited_.clear();
        block_1010_ = false;
    }

    std::string log_json(std::int64_t since) const {
        boost::json::array out;
        std::lock_guard lock(mutex_);
        for (auto const& e : log_)
            if (e.t_us >= since)
                out.push_back(boost::json::object{{"t_us", e.t_us}, {"key", e.key}, {"status", e.status}, {"sent_us", e.sent_us}});
        return boost::json::serialize(out);
    }

    std::string const& completion() const noexcept { return completion_; }

private:
    Options opts_;
    std::chrono::steady_clock::time_point start_;
    std::string completion_;
    mutable std::mutex mutex_;
    std::vector<LogEntry> log_;
    std::set<std::string> limited_;
    bool block_1010_ = false;
};

constexpr std::string_view rate_limit_body =
    R"({"error":{"message":"Rate limit reached for model `mock-model` in organization `org_instances` on tokens per minute (TPM): )"
    R"(Limit 6000, Used 6000, Requested 200. Please try again in 1m0s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})";

using Response = http::response<http::string_body>;

Response make(http::status status, std::string_view type, std::string body, unsigned version, bool keep_alive) {
    Response res{status, version};
    res.set(http::field::content_type, type);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string bearer_key(http::request<http::string_body> const& req) {
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return {};
    std::string_view v(it->value().data(), it->value().size());
    constexpr std::string_view prefix = "Bearer ";
    if (v.substr(0, prefix.size()) == prefix) v.remove_prefix(prefix.size());
    return std::string(v);
}

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// A control request's answer; `handled` false when the target is not a control endpoint.
Response control(Upstream& up, http::request<http::string_body> const& req, std::string_view target, bool& handled) {
    handled = true;
    auto const version = req.version();
    auto const keep = req.keep_alive();
    std::string_view path = target.substr(0, target.find('?'));
    constexpr std::string_view limit_prefix = "/control/429/";
    if (req.method() == http::verb::post && path.substr(0, limit_prefix.size()) == limit_prefix) {
        up.limit(std::string(path.substr(limit_prefix.size())));
        return make(http::status::ok, "text/plain", "ok\n", version, keep);
    }
    if (req.method() == http::verb::post && path == "/control/1010") {
        up.block();
        return make(http::status::ok, "text/plain", "ok\n", version, keep);
    }
    if (req.method() == http::verb::post && path == "/control/reset") {
        up.reset();
        return make(http::status::ok, "text/plain", "ok\n", version, keep);
    }
    if (req.method() == http::verb::get && path == "/control/log") {
        std::int64_t since = 0;
        if (auto q = target.find("since="); q != std::string_view::npos)
            since = std::strtoll(std::string(target.substr(q + 6)).c_str(), nullptr, 10);
        return make(http::status::ok, "application/json", up.log_json(since), version, keep);
    }
    handled = false;
    return make(http::status::not_found, "text/plain", "not found\n", version, keep);
}

asio::awaitable<void> serve(Upstream& up, tcp::socket socket) {
    beast::flat_buffer buffer;
    asio::steady_timer timer(socket.get_executor());
    for (;;) {
        http::request<http::string_body> req;
        auto [rec, rn] = co_await http::async_read(socket, buffer, req, tuple_awaitable);
        if (rec) co_return;
        std::string_view target(req.target().data(), req.target().size());
        bool handled = false;
        auto res = control(up, req, target, handled);
        std::size_t logged = 0;
        bool completion = false;
        if (!handled && req.method() == http::verb::post && ends_with(target.substr(0, target.find('?')), "/chat/completions")) {
            completion = true;
            auto [index, status] = up.arrive(bearer_key(req));
            logged = index;
            if (status == 429) {
                res = make(http::status::too_many_requests, "application/json", std::string(rate_limit_body), req.version(), req.keep_alive());
                res.set(http::field::retry_after, "60");
            } else if (status == 403) {
                res = make(http::status::forbidden, "text/plain; charset=UTF-8", "error code: 1010", req.version(), req.keep_alive());
            } else {
                if (up.options().delay.count() > 0) {
                    timer.expires_after(up.options().delay);
                    auto [tec] = co_await timer.async_wait(tuple_awaitable);
                    (void)tec;
                }
                res = make(http::status::ok, "application/json", up.completion(), req.version(), req.keep_alive());
            }
        }
        auto [wec, wn] = co_await http::async_write(socket, res, tuple_awaitable);
        if (completion && !wec) up.sent(logged);
        if (wec || !req.keep_alive()) co_return;
    }
}

asio::awaitable<void> listen(Upstream& up, tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            continue;
        }
        socket.set_option(tcp::no_delay(true));
        // Each connection on the io_context's executor: with two threads, two connections run at once.
        asio::co_spawn(acceptor.get_executor(), serve(up, std::move(socket)), asio::detached);
    }
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> long {
            if (i + 1 >= argc) {
                std::cerr << "instances_upstream: " << a << " needs a value\n";
                std::exit(2);
            }
            return std::strtol(argv[++i], nullptr, 10);
        };
        if (a == "--tokens") o.tokens = static_cast<std::uint32_t>(value());
        else if (a == "--delay-ms") o.delay = std::chrono::milliseconds(value());
        else if (!a.empty() && a[0] != '-') o.port = static_cast<unsigned short>(std::strtoul(argv[i], nullptr, 10));
        else {
            std::cerr << "usage: instances_upstream <port|0> [--tokens N] [--delay-ms N]\n";
            std::exit(2);
        }
    }
    return o;
}

} // namespace

int main(int argc, char** argv) {
    Upstream up(parse(argc, argv));
    asio::io_context io(2);
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), up.options().port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) {
        acceptor.close();
        io.stop();
    });
    asio::co_spawn(io, listen(up, acceptor), asio::detached);
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: run.py reads it
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
}
