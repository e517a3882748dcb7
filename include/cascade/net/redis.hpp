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
#include <optional>
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
    /// Bytes one reply may take on the wire: past it, while the reply is still arriving, the command fails
    /// with `Error::reply_too_large` and the connection is dropped. A server that announces
    /// `$2147483647` would otherwise be buffered without bound.
    std::size_t max_reply_bytes = 64 * 1024 * 1024;
    /// Array elements one reply may announce, summed over its nested arrays; past it, the same failure.
    /// hiredis allocates an array's slots when its header arrives: `*2147483647` would be 16 GiB.
    std::size_t max_reply_elements = 1024 * 1024;
};

/// @brief What is wrong with `cfg`, prefixed by `who` (`"redis cache"`), or an empty string.
inline std::string check(Config const& cfg, std::string_view who) {
    if (cfg.host.empty()) return std::string(who) + ": server.host is empty";
    if (cfg.port == 0) return std::string(who) + ": server.port is 0";
    if (cfg.command_timeout.count() <= 0) return std::string(who) + ": server.command_timeout must be positive";
    if (cfg.max_reply_bytes == 0) return std::string(who) + ": server.max_reply_bytes is 0";
    if (cfg.max_reply_elements == 0) return std::string(who) + ": server.max_reply_elements is 0";
    return {};
}

/// @brief One RESP reply.
struct Reply {
    enum class Type { nil, string, status, error, integer, array } type = Type::nil;
    std::string str;
    long long integer = 0;
    std::vector<Reply> elements;
};

/// @brief Errors of the client (besides Asio's). Either one drops the connection.
enum class Error {
    /// The server answered something that is not RESP.
    protocol = 1,
    /// The reply is past `Config::max_reply_bytes` or `Config::max_reply_elements`.
    reply_too_large,
};

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
    std::string message(int ev) const override {
        if (ev == static_cast<int>(Error::reply_too_large))
            return "reply from the redis server past max_reply_bytes or max_reply_elements";
        return "unreadable reply from the redis server";
    }
};
inline ErrorCategory const error_category_instance{};
} // namespace detail

inline boost::system::error_code make_error_code(Error e) noexcept {
    return {static_cast<int>(e), detail::error_category_instance};
}

namespace detail {
// hiredis's own reply constructors, which it keeps private: read from a reader made with them.
inline redisReplyObjectFunctions const& hiredis_functions() {
    static redisReplyObjectFunctions const fns = [] {
        std::unique_ptr<redisReader, ReaderFree> r(redisReaderCreate());
        return *r->fn;
    }();
    return fns;
}

/// @brief RESP replies from the bytes of one connection, sans-io: hiredis's reader with bounds on what one
/// reply may make it allocate. After an error it stays failed (the connection is to be dropped).
class ReplyReader {
public:
    ReplyReader(std::size_t max_bytes, std::size_t max_elements)
        : reader_(redisReaderCreateWithFunctions(&functions())), max_bytes_(max_bytes), max_elements_(max_elements),
          elements_left_(max_elements) {
        if (reader_) reader_->privdata = this;
    }
    ReplyReader(ReplyReader const&) = delete;
    ReplyReader& operator=(ReplyReader const&) = delete;

    /// @brief Adds bytes read from the connection.
    void feed(char const* data, std::size_t n) {
        if (failed_ || !reader_) return;
        if (redisReaderFeed(reader_.get(), data, n) != REDIS_OK) failed_ = Error::protocol;
        fed_ += n;
    }

    /// @brief The next complete reply; `std::nullopt` while it is still arriving; an error for bytes that
    /// are not RESP or a reply past the bounds.
    boost::system::result<std::optional<Reply>> next() {
        if (!reader_) failed_ = Error::protocol;
        if (failed_) return make_error_code(*failed_);
        void* raw = nullptr;
        if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
            failed_ = too_large_ ? Error::reply_too_large : Error::protocol;
            return make_error_code(*failed_);
        }
        if (!raw) {
            if (fed_ - reply_start_ > max_bytes_) {
                failed_ = Error::reply_too_large;
                return make_error_code(*failed_);
            }
            return std::optional<Reply>();
        }
        Reply r = convert(static_cast<redisReply*>(raw));
        functions().freeObject(raw);
        // The next reply starts after the bytes this one consumed.
        reply_start_ = fed_ - (reader_->len - reader_->pos);
        elements_left_ = max_elements_;
        return std::optional<Reply>(std::move(r));
    }

private:
    // Refuses an array past the element budget before hiredis allocates its slots; hiredis then fails the
    // reply (as out of memory), which `next` reports as too large.
    static void* create_array(redisReadTask const* task, int elements) {
        auto* self = static_cast<ReplyReader*>(task->privdata);
        if (elements < 0 || static_cast<std::size_t>(elements) > self->elements_left_) {
            self->too_large_ = true;
            return nullptr;
        }
        self->elements_left_ -= static_cast<std::size_t>(elements);
        return hiredis_functions().createArray(task, elements);
    }

    static redisReplyObjectFunctions& functions() {
        static redisReplyObjectFunctions fns = [] {
            redisReplyObjectFunctions f = hiredis_functions();
            f.createArray = &create_array;
            return f;
        }();
        return fns;
    }

    std::unique_ptr<redisReader, ReaderFree> reader_;
    std::size_t max_bytes_;
    std::size_t max_elements_;
    std::size_t elements_left_;
    // Bytes fed so far, and where among them the reply in progress started.
    std::size_t fed_ = 0;
    std::size_t reply_start_ = 0;
    bool too_large_ = false;
    std::optional<Error> failed_;
};
} // namespace detail

/// @brief An asynchronous Redis client with a small pool of connections. Thread-safe.
class Client {
public:
    Client(boost::asio::any_io_executor ex, Config cfg) : ex_(std::move(ex)), cfg_(std::move(cfg)) {}
    Client(Client const&) = delete;
    Client& operator=(Client const&) = delete;

    Config const& config() const noexcept { return cfg_; }

    /// @brief Sends one command (`{"SET", key, value, "EX", "60"}`) and returns its reply, or an error:
    /// `timed_out` past `command_timeout`, the socket's error, `Error::protocol`, `Error::reply_too_large`
    /// (the last two drop the connection; the next command opens a fresh one). An error reply from the
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
        Connection(boost::asio::any_io_executor ex, Config const& cfg)
            : socket(std::move(ex)), reader(cfg.max_reply_bytes, cfg.max_reply_elements) {}
        boost::asio::ip::tcp::socket socket;
        detail::ReplyReader reader;
        bool ready = false;
    };

    std::shared_ptr<Connection> take() {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
        return std::make_shared<Connection>(ex_, cfg_);
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
            auto next = c.reader.next();
            if (!next) co_return next.error();
            if (*next) co_return std::move(**next);
            auto [rec, n] = co_await c.socket.async_read_some(boost::asio::buffer(buf), boost::asio::as_tuple(boost::asio::use_awaitable));
            if (rec) co_return rec;
            c.reader.feed(buf.data(), n);
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
