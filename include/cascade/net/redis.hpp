#pragma once
/// @file
/// @brief A small asynchronous Redis client: hiredis's RESP formatter and reader for the protocol, Asio
/// for the I/O, so nothing blocks the `io_context`. Every command has a bounded timeout.
///
/// Link hiredis (`-lhiredis`) to use it.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/result.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cascade::redis {

/// @brief Where the server is and how long to wait for it.
struct Config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    /// `AUTH` password; empty for none. Never logged.
    std::string password;
    /// `SELECT` database index.
    int database = 0;
    /// Whole round trip of one command, connecting included; past it the command fails with `timed_out`.
    std::chrono::milliseconds command_timeout{100};
    /// Idle connections kept for reuse.
    std::size_t max_idle = 4;
};

/// @brief What is wrong with `cfg`, prefixed by `who` (`"redis cache"`), or an empty string.
inline std::string check(Config const& cfg, std::string_view who) {
    if (cfg.host.empty()) return std::string(who) + ": server.host is empty";
    if (cfg.port == 0) return std::string(who) + ": server.port is 0";
    if (cfg.command_timeout.count() <= 0) return std::string(who) + ": server.command_timeout must be positive";
    return {};
}

/// @brief One RESP reply.
struct Reply {
    enum class Type { nil, string, status, error, integer, array } type = Type::nil;
    std::string str;
    long long integer = 0;
    std::vector<Reply> elements;
};

/// @brief Errors of the client (besides Asio's): the server answered something unreadable.
enum class Error { protocol = 1 };

namespace detail {
inline Reply convert(redisReply const* r) {
    Reply out;
    switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::integer; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
        out.type = Reply::Type::array;
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
    default: out.type = Reply::Type::nil; break;
    }
    return out;
}

struct ReaderFree {
    void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
};

inline std::string format(std::vector<std::string> const& args) {
    std::vector<char const*> argv;
    std::vector<std::size_t> lens;
    for (auto const& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
    std::string out = n > 0 ? std::string(cmd, static_cast<std::size_t>(n)) : std::string();
    if (cmd) redisFreeCommand(cmd);
    return out;
}

class ErrorCategory final : public boost::system::error_category {
public:
    char const* name() const noexcept override { return "cascade.redis"; }
    std::string message(int) const override { return "unreadable reply from the redis server"; }
};
inline ErrorCategory const error_category_instance{};
} // namespace detail

inline boost::system::error_code make_error_code(Error e) noexcept {
    return {static_cast<int>(e), detail::error_category_instance};
}

/// @brief An asynchronous Redis client with a small pool of connections. Thread-safe.
class Client {
public:
    Client(boost::asio::any_io_executor ex, Config cfg) : ex_(std::move(ex)), cfg_(std::move(cfg)) {}
    Client(Client const&) = delete;
    Client& operator=(Client const&) = delete;

    Config const& config() const noexcept { return cfg_; }

    /// @brief Sends one command (`{"SET", key, value, "EX", "60"}`) and returns its reply, or an error:
    /// `timed_out` past `command_timeout`, the socket's error, `Error::protocol`. An error reply from the
    /// server (`-ERR ...`) is a Reply of type `error`, not a failure of the call.
    boost::asio::awaitable<boost::system::result<Reply>> command(std::vector<std::string> args) {
        using namespace boost::asio::experimental::awaitable_operators;
        std::string wire = detail::format(args);
        std::shared_ptr<Connection> conn = take();
        boost::asio::steady_timer timer(ex_, cfg_.command_timeout);
        auto exchange = run(conn, std::move(wire));
        auto expiry = timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        auto raced = co_await (std::move(exchange) || std::move(expiry));
        if (raced.index() == 1) co_return boost::system::error_code(boost::asio::error::timed_out);
        auto r = std::move(std::get<0>(raced));
        if (r) give_back(std::move(conn));
        co_return r;
    }

    /// @brief Connections opened so far.
    std::size_t connections_opened() const {
        std::lock_guard lock(mutex_);
        return opened_;
    }

private:
    struct Connection {
        explicit Connection(boost::asio::any_io_executor ex) : socket(std::move(ex)), reader(redisReaderCreate()) {}
        boost::asio::ip::tcp::socket socket;
        std::unique_ptr<redisReader, detail::ReaderFree> reader;
        bool ready = false;
    };

    std::shared_ptr<Connection> take() {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
        return std::make_shared<Connection>(ex_);
    }

    void give_back(std::shared_ptr<Connection> c) {
        std::lock_guard lock(mutex_);
        if (idle_.size() < cfg_.max_idle) idle_.push_back(std::move(c));
    }

    boost::asio::awaitable<boost::system::result<Reply>> roundtrip(Connection& c, std::string const& wire) {
        auto [wec, wn] = co_await boost::asio::async_write(c.socket, boost::asio::buffer(wire),
                                                           boost::asio::as_tuple(boost::asio::use_awaitable));
        if (wec) co_return wec;
        std::array<char, 4096> buf{};
        for (;;) {
            void* raw = nullptr;
            if (redisReaderGetReply(c.reader.get(), &raw) != REDIS_OK) co_return make_error_code(Error::protocol);
            if (raw) {
                Reply r = detail::convert(static_cast<redisReply*>(raw));
                freeReplyObject(raw);
                co_return r;
            }
            auto [rec, n] = co_await c.socket.async_read_some(boost::asio::buffer(buf), boost::asio::as_tuple(boost::asio::use_awaitable));
            if (rec) co_return rec;
            if (redisReaderFeed(c.reader.get(), buf.data(), n) != REDIS_OK) co_return make_error_code(Error::protocol);
        }
    }

    boost::asio::awaitable<boost::system::result<Reply>> run(std::shared_ptr<Connection> conn, std::string wire) {
        if (!conn->ready) {
            boost::asio::ip::tcp::resolver resolver(ex_);
            auto [rec, eps] = co_await resolver.async_resolve(cfg_.host, std::to_string(cfg_.port),
                                                              boost::asio::as_tuple(boost::asio::use_awaitable));
            if (rec) co_return rec;
            auto [cec, ep] = co_await boost::asio::async_connect(conn->socket, eps, boost::asio::as_tuple(boost::asio::use_awaitable));
            if (cec) co_return cec;
            {
                std::lock_guard lock(mutex_);
                ++opened_;
            }
            if (!cfg_.password.empty()) {
                // Named locals: g++ 12 miscompiles braced temporaries inside a co_await expression.
                std::vector<std::string> args{"AUTH", cfg_.password};
                std::string wire_auth = detail::format(args);
                auto auth = co_await roundtrip(*conn, wire_auth);
                if (!auth) co_return auth.error();
                if (auth->type == Reply::Type::error) co_return boost::system::error_code(boost::asio::error::access_denied);
            }
            if (cfg_.database != 0) {
                std::vector<std::string> args{"SELECT", std::to_string(cfg_.database)};
                std::string wire_select = detail::format(args);
                auto sel = co_await roundtrip(*conn, wire_select);
                if (!sel) co_return sel.error();
            }
            conn->ready = true;
        }
        co_return co_await roundtrip(*conn, wire);
    }

    boost::asio::any_io_executor ex_;
    Config cfg_;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<Connection>> idle_;
    std::size_t opened_ = 0;
};

} // namespace cascade::redis

template <>
struct boost::system::is_error_code_enum<cascade::redis::Error> : std::true_type {};
