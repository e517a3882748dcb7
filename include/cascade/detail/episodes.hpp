#pragma once
/// @file
/// @brief Counting failures of a backend and logging them once per episode (when it starts failing and
/// when it recovers), never once per request.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace cascade::detail {

class Episodes {
public:
    Episodes() = default;
    /// `what` names the backend in log lines; `log` receives them (stderr when empty).
    Episodes(std::string what, std::function<void(std::string_view)> log) : what_(std::move(what)), log_(std::move(log)) {}

    using clock = std::chrono::steady_clock;

    void failed(std::string_view action, std::string_view why) {
        ++errors_;
        last_failure_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        if (!failing_.exchange(true))
            write("cascade: " + what_ + " failed to " + std::string(action) + " (" + std::string(why) +
                  "); serving without it until it recovers");
    }

    /// An operation that started at `started` succeeded. Only one that started after the last failure
    /// ends the episode: an answer already on its way when the backend failed proves nothing.
    void succeeded(clock::time_point started) {
        if (!failing_.load(std::memory_order_relaxed)) return;
        if (started.time_since_epoch().count() <= last_failure_.load(std::memory_order_relaxed)) return;
        if (failing_.exchange(false)) write("cascade: " + what_ + " works again");
    }

    std::uint64_t errors() const noexcept { return errors_.load(); }

private:
    void write(std::string const& line) const {
        if (log_)
            log_(line);
        else
            std::fprintf(stderr, "%s\n", line.c_str());
    }

    std::string what_;
    std::function<void(std::string_view)> log_;
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<bool> failing_{false};
    std::atomic<clock::rep> last_failure_{0};
};

/// Lowercase hex of `n` bytes.
inline std::string to_hex(unsigned char const* data, std::size_t n) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = hex[data[i] >> 4];
        out[2 * i + 1] = hex[data[i] & 15];
    }
    return out;
}

} // namespace cascade::detail
