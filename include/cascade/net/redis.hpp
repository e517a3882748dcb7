#pragma once
/// @file
/// @brief A small asynchronous Redis client: hiredis's RESP formatter and reader for the protocol, Asio
/// for the I/O, so nothing blocks the `io_context`. Commands are pipelined on one connection, every command
/// has a bounded timeout, and a failed or hung server makes the client unavailable (commands fail at once)
/// until a background probe reconnects. Definitions are in `impl/redis.hpp`.
///
/// Link hiredis (`-lhiredis`) to use it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <functional>
#include <chrono>
#include <cstdint>
#include <memory>
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
    /// First wait before a reconnection attempt (command connection and subscriptions); it doubles after
    /// each failed attempt up to `reconnect_max`. Each wait is drawn at random in [step/2, step).
    std::chrono::milliseconds reconnect_min{50};
    /// Longest step between reconnection attempts.
    std::chrono::milliseconds reconnect_max{2'000};
    /// How often a subscription connection sends `PING`; no answer within `command_timeout` drops it.
    std::chrono::milliseconds subscriber_ping{1'000};
    /// Called on the client's strand once when the client becomes unavailable (`up` false, `why` the
    /// error's message, never the password) and once when it is available again (`up` true).
    std::function<void(bool up, std::string_view why)> on_state;
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
    if (cfg.reconnect_min.count() <= 0) return std::string(who) + ": server.reconnect_min must be positive";
    if (cfg.reconnect_max < cfg.reconnect_min) return std::string(who) + ": server.reconnect_max is below reconnect_min";
    if (cfg.subscriber_ping.count() <= 0) return std::string(who) + ": server.subscriber_ping must be positive";
    return {};
}

/// @brief One RESP reply.
struct Reply {
    enum class Type { nil, string, status, error, integer, array } type = Type::nil;
    std::string str;
    long long integer = 0;
    std::vector<Reply> elements;
};

/// @brief Errors of the client (besides Asio's).
enum class Error {
    /// The server answered something that is not RESP. Drops the connection.
    protocol = 1,
    /// The reply is past `Config::max_reply_bytes` or `Config::max_reply_elements`. Drops the connection.
    reply_too_large,
    /// The connection failed recently and has not been re-established yet: the command was not sent.
    unavailable,
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
        if (ev == static_cast<int>(Error::unavailable)) return "redis server unavailable; reconnecting in the background";
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

struct ClientState;
} // namespace detail

/// @brief An asynchronous Redis client: one pipelined connection for commands, one per subscription.
/// Thread-safe: callers may be on several threads of one `io_context`; the state is kept on a strand.
///
/// The connection opens with the first command (`AUTH` if `password`, `SELECT` if `database`). Any failure
/// of it (refused, reset, unreadable or oversized reply, a command past `command_timeout`) fails every
/// command pending on it and makes the client unavailable: `command` then fails at once with
/// `Error::unavailable` while a background probe reconnects (backoff `reconnect_min`..`reconnect_max`,
/// then `PING`). Destroy the client before its `io_context`; operations still running keep the internal
/// state alive, so destroying it while they run is safe.
/// @code
/// cascade::redis::Client client(io.get_executor(), cfg);
/// std::vector<std::string> args{"INCR", "hits"};  // a named local: see GCC PR 100611
/// auto r = co_await client.command(std::move(args));
/// if (r && r->type == cascade::redis::Reply::Type::integer) use(r->integer);
/// @endcode
class Client {
public:
    Client(boost::asio::any_io_executor ex, Config cfg);
    /// @brief Calls `close()`.
    ~Client();
    Client(Client const&) = delete;
    Client& operator=(Client const&) = delete;

    Config const& config() const noexcept;

    /// @brief Sends one command (`{"SET", key, value, "EX", "60"}`) and returns its reply, or an error:
    /// `Error::unavailable` at once while the client is unavailable; `timed_out` when a command on the
    /// connection (this one or an earlier one) was not answered within `command_timeout`; the socket's
    /// error, `Error::protocol` or `Error::reply_too_large` when the connection failed;
    /// `operation_aborted` after `close()`. An error reply from the server (`-ERR ...`) is a Reply of type
    /// `error`, not a failure. Not cancellable: it always completes within `command_timeout`.
    boost::asio::awaitable<boost::system::result<Reply>> command(std::vector<std::string> args);

    /// @brief Subscribes to `channels` on a connection of its own (`AUTH`, no `SELECT`), kept up in the
    /// background: `on_ready()` after every (re)subscription (reload what may have been missed), then
    /// `on_message(channel, payload)` per message. A connection that does not answer `PING` (every
    /// `subscriber_ping`) within `command_timeout` is dropped and re-established. Handlers run on the
    /// client's strand; the views are valid during the call. No channels: nothing happens.
    void subscribe(std::vector<std::string> channels,
                   std::function<void(std::string_view channel, std::string_view payload)> on_message,
                   std::function<void()> on_ready);

    /// @brief False from a failure of the command connection until the probe re-established it.
    bool available() const noexcept;

    /// @brief Stops everything: pending commands fail with `operation_aborted`, sockets and timers close,
    /// later commands fail at once. Idempotent.
    void close();

    /// @brief Connections opened so far (command, probe and subscription connections).
    std::size_t connections_opened() const noexcept;

private:
    std::shared_ptr<detail::ClientState> st_;
};

} // namespace cascade::redis

template <>
struct boost::system::is_error_code_enum<cascade::redis::Error> : std::true_type {};

#include <cascade/net/impl/redis.hpp>
