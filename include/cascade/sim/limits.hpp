#pragma once
/// @file
/// @brief A modelled provider account's limits (`AccountLimits`) and the meters that enforce them in
/// simulated time (`Account`): requests and tokens per minute and per day, per key or per quota group,
/// concurrency, and a request too large for the minute's tokens.
///
/// Windows are either `rolling` (a bucket that refills continuously, as Groq's limits do: its reset headers
/// say how long until enough is back) or `calendar` (a count that resets at each UTC minute or day, as
/// OpenRouter's free-model limits do). A request is admitted when its prompt tokens plus the answer tokens
/// it may use (`max_tokens`) fit every token window; the windows are then charged that much, and settled to
/// the real usage when the answer is known. That is how Groq's `Requested` figure in its 429 reads; where a
/// provider counts differently, the model is an approximation and says so in docs/economics.md.

#include <cascade/engine/clock.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cascade::sim {

/// @brief What refused (or spoiled) one attempt at a modelled provider.
enum class Limit : std::uint8_t {
    requests_per_minute,
    requests_per_day,
    tokens_per_minute,
    tokens_per_day,
    concurrency,        ///< more requests in flight than the account allows (DeepSeek's 429)
    request_too_large,  ///< prompt plus max_tokens over the minute's whole token limit (Groq's 413)
    blocked,            ///< an episode: the caller's IP blocked at the edge (Cloudflare 1010)
    credits,            ///< an episode: the balance is spent (402)
    quota,              ///< an episode: a key's or region's quota exhausted (Vertex's 429)
    outage,             ///< an episode: the provider answers 503
    short_answer,       ///< an episode: a 200 whose answer is too short to accept
};
inline constexpr std::size_t limit_count = 11;

/// @brief The name of a limit as reports print it.
constexpr std::string_view limit_name(Limit l) noexcept {
    constexpr std::array<std::string_view, limit_count> names{
        "requests per minute", "requests per day", "tokens per minute", "tokens per day", "concurrency", "request too large",
        "blocked (1010)",      "credits spent",    "quota exhausted",   "outage (503)",   "short answer"};
    return names[static_cast<std::size_t>(l)];
}

/// @brief How a window refills.
enum class Window : std::uint8_t {
    rolling,   ///< continuously: a minute's limit comes back at limit/60 s per second
    calendar,  ///< all at once, at each UTC minute or day boundary
};

/// @brief One account's limits, per key or per quota group; zero means none.
struct AccountLimits {
    std::uint32_t requests_per_minute = 0;
    std::uint32_t requests_per_day = 0;
    std::uint32_t tokens_per_minute = 0;
    std::uint32_t tokens_per_day = 0;
    /// Requests in flight at once, across the whole account (not per group).
    std::uint32_t max_concurrent = 0;
    Window window = Window::rolling;
};

/// @brief The simulated instant: the chain's clock, and the wall-clock time it stands for (calendar
/// windows and time-of-day prices read that).
struct Instant {
    Clock::time_point now;
    std::chrono::system_clock::time_point utc;
};

/// @brief Why an attempt was refused, with the figures a provider's message states.
struct Trip {
    Limit limit = Limit::requests_per_minute;
    std::uint64_t limit_value = 0;
    std::uint64_t used = 0;
    std::uint64_t requested = 0;
    /// When enough is back for this request (zero when waiting does not help).
    Clock::duration retry_in{0};
};

/// @brief One limit of one group: a rolling bucket or a calendar count.
class Meter {
public:
    Meter() = default;
    Meter(std::uint32_t limit, Clock::duration period, Window window) : limit_(limit), period_(period), window_(window), level_(limit) {}

    bool active() const noexcept { return limit_ != 0; }
    std::uint32_t limit() const noexcept { return limit_; }

    /// @brief How much of the window is used at `at`.
    std::uint64_t used(Instant at) {
        refill(at);
        return window_ == Window::rolling ? static_cast<std::uint64_t>(std::max(0.0, static_cast<double>(limit_) - level_) + 0.5) : count_;
    }

    /// @brief Zero when `need` fits now; otherwise how long until it does.
    Clock::duration wait_for(std::uint64_t need, Instant at) {
        refill(at);
        if (window_ == Window::rolling) {
            double const missing = static_cast<double>(need) - level_;
            if (missing <= 0.0) return Clock::duration::zero();
            double const per_second = static_cast<double>(limit_) / std::chrono::duration<double>(period_).count();
            auto d = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(missing / per_second));
            return std::max(d, Clock::duration(std::chrono::milliseconds(1)));
        }
        if (count_ + need <= limit_) return Clock::duration::zero();
        return std::max(next_boundary(at.utc) - at.utc, std::chrono::system_clock::duration(std::chrono::milliseconds(1)));
    }

    /// @brief Uses `amount` (may go below zero: an answer larger than reserved).
    void take(double amount, Instant at) {
        refill(at);
        if (window_ == Window::rolling) level_ -= amount;
        else count_ = static_cast<std::uint64_t>(std::max(0.0, static_cast<double>(count_) + amount));
    }

private:
    void refill(Instant at) {
        if (window_ == Window::rolling) {
            if (last_ != Clock::time_point{} && at.now > last_) {
                double const per = static_cast<double>(limit_) / std::chrono::duration<double>(period_).count();
                level_ = std::min(static_cast<double>(limit_), level_ + per * std::chrono::duration<double>(at.now - last_).count());
            }
            last_ = std::max(last_, at.now);
        } else {
            auto const start = boundary_before(at.utc);
            if (start != window_start_) {
                window_start_ = start;
                count_ = 0;
            }
        }
    }
    std::chrono::system_clock::time_point boundary_before(std::chrono::system_clock::time_point utc) const {
        auto const p = std::chrono::duration_cast<std::chrono::system_clock::duration>(period_);
        auto const since = utc.time_since_epoch();
        return std::chrono::system_clock::time_point(since - since % p);
    }
    std::chrono::system_clock::time_point next_boundary(std::chrono::system_clock::time_point utc) const {
        return boundary_before(utc) + std::chrono::duration_cast<std::chrono::system_clock::duration>(period_);
    }

    std::uint32_t limit_ = 0;
    Clock::duration period_{std::chrono::minutes(1)};
    Window window_ = Window::rolling;
    double level_ = 0.0;
    Clock::time_point last_{};
    std::uint64_t count_ = 0;
    std::chrono::system_clock::time_point window_start_{};
};

/// @brief The meters of every quota group of one account, and the account's requests in flight.
/// Not thread-safe: a simulation runs on one thread.
class Account {
public:
    Account() = default;
    explicit Account(AccountLimits limits) : limits_(limits) {}

    AccountLimits const& limits() const noexcept { return limits_; }

    /// @brief Admits a request of `prompt` tokens that may produce `max_out` in `group` at `at`: charges
    /// its windows and counts it in flight, or returns the first limit it trips.
    std::optional<Trip> admit(std::string const& group, std::uint64_t prompt, std::uint64_t max_out, Instant at) {
        auto& g = group_of(group);
        std::uint64_t const tokens = prompt + max_out;
        if (limits_.tokens_per_minute && tokens > limits_.tokens_per_minute)
            return Trip{Limit::request_too_large, limits_.tokens_per_minute, 0, tokens, Clock::duration::zero()};
        if (limits_.max_concurrent && in_flight_ >= limits_.max_concurrent)
            return Trip{Limit::concurrency, limits_.max_concurrent, in_flight_, 1, std::chrono::seconds(1)};
        struct Check {
            Meter* meter;
            Limit limit;
            std::uint64_t need;
        };
        std::array<Check, 4> const checks{Check{&g.rpm, Limit::requests_per_minute, 1}, Check{&g.rpd, Limit::requests_per_day, 1},
                                          Check{&g.tpm, Limit::tokens_per_minute, tokens}, Check{&g.tpd, Limit::tokens_per_day, tokens}};
        for (auto const& c : checks) {
            if (!c.meter->active()) continue;
            if (c.need > c.meter->limit()) return Trip{Limit::request_too_large, c.meter->limit(), 0, c.need, Clock::duration::zero()};
            if (auto w = c.meter->wait_for(c.need, at); w != Clock::duration::zero())
                return Trip{c.limit, c.meter->limit(), c.meter->used(at), c.need, w};
        }
        g.rpm.take(1, at);
        g.rpd.take(1, at);
        g.tpm.take(static_cast<double>(tokens), at);
        g.tpd.take(static_cast<double>(tokens), at);
        ++in_flight_;
        return std::nullopt;
    }

    /// @brief Ends an admitted request: `reserved` tokens were charged, `used` is what the answer used
    /// (zero when it failed before answering: the provider counts the prompt, so pass the prompt then).
    void settle(std::string const& group, std::uint64_t reserved, std::uint64_t used, Instant at) {
        auto& g = group_of(group);
        double const diff = static_cast<double>(used) - static_cast<double>(reserved);
        if (g.tpm.active()) g.tpm.take(diff, at);
        if (g.tpd.active()) g.tpd.take(diff, at);
        if (in_flight_) --in_flight_;
    }

    /// @brief What the minute and day windows of `group` have used at `at` (for rate-limit headers).
    struct Usage {
        std::uint64_t requests_minute = 0, requests_day = 0, tokens_minute = 0, tokens_day = 0;
    };
    Usage usage(std::string const& group, Instant at) {
        auto& g = group_of(group);
        Usage u;
        if (g.rpm.active()) u.requests_minute = g.rpm.used(at);
        if (g.rpd.active()) u.requests_day = g.rpd.used(at);
        if (g.tpm.active()) u.tokens_minute = g.tpm.used(at);
        if (g.tpd.active()) u.tokens_day = g.tpd.used(at);
        return u;
    }

    std::uint64_t in_flight() const noexcept { return in_flight_; }

private:
    struct Group {
        Meter rpm, rpd, tpm, tpd;
    };
    Group& group_of(std::string const& name) {
        auto it = groups_.find(name);
        if (it != groups_.end()) return it->second;
        using namespace std::chrono;
        Group g{Meter(limits_.requests_per_minute, minutes(1), limits_.window), Meter(limits_.requests_per_day, hours(24), limits_.window),
                Meter(limits_.tokens_per_minute, minutes(1), limits_.window), Meter(limits_.tokens_per_day, hours(24), limits_.window)};
        return groups_.emplace(name, g).first->second;
    }

    AccountLimits limits_;
    std::unordered_map<std::string, Group> groups_;
    std::uint64_t in_flight_ = 0;
};

} // namespace cascade::sim
