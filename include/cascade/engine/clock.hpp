#pragma once
/// @file
/// @brief The chain's clock, a replaceable policy: `SteadyClock` (the monotonic clock, the default) and
/// `ManualClock` (time that moves only when told: tests and simulations run hours in milliseconds).
///
/// Every time the engine compares (cooldowns, budgets, circuits, deadlines, waits) is a `Clock::time_point`
/// read from the chain's clock. The transport keeps real time: `to_steady` turns a time of the chain's
/// clock into the steady-clock time a socket's timer understands.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace cascade {

/// The time type of every decision the chain makes. Its epoch is the steady clock's.
using Clock = std::chrono::steady_clock;

/// @brief A clock policy: what time it is for the chain, and a timer on that time.
///
/// Requirements, for `c` a `C const&` and `t` a `Clock::time_point` (all callable from several threads):
/// - `c.now()`: the time for latencies, cooldowns and budgets; may lag real time by up to `c.slack()`;
/// - `c.precise_now()`: the time a request's budget starts from;
/// - `c.slack()`: how far `now()` may lag (a budget with less than that left is treated as spent);
/// - `c.to_steady(t)` / `c.from_steady(t)`: the steady-clock time of `t` (what the transport's timers
///   use), and back;
/// - `c.wait_until(t)`: `awaitable<boost::system::error_code>` completing at `t` of this clock, with
///   `operation_aborted` when the awaiting coroutine is cancelled.
template <class C>
concept ClockPolicy = requires(C const& c, Clock::time_point t) {
    { c.now() } -> std::same_as<Clock::time_point>;
    { c.precise_now() } -> std::same_as<Clock::time_point>;
    { c.slack() } -> std::convertible_to<Clock::duration>;
    { c.to_steady(t) } -> std::same_as<Clock::time_point>;
    { c.from_steady(t) } -> std::same_as<Clock::time_point>;
    { c.wait_until(t) } -> std::same_as<boost::asio::awaitable<boost::system::error_code>>;
};

/// @brief The monotonic clock: the default.
///
/// `now()` reads Linux's coarse monotonic clock (the kernel tick): a few nanoseconds where a precise read
/// costs tens, several times per request, and LLM latencies are hundreds of milliseconds. A request's
/// budget starts from a precise read, so it never ends early.
struct SteadyClock {
    Clock::time_point now() const noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
        timespec ts;
        if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
            return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                                 std::chrono::nanoseconds(ts.tv_nsec)));
#endif
        return Clock::now();
    }
    Clock::time_point precise_now() const noexcept { return Clock::now(); }

    /// The coarse clock's resolution, read once (one kernel tick: 1 to 10 ms).
    Clock::duration slack() const noexcept {
        static Clock::duration const resolution = [] {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
            timespec ts;
            if (::clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0)
                return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
#endif
            return Clock::duration::zero();
        }();
        return resolution;
    }

    Clock::time_point to_steady(Clock::time_point t) const noexcept { return t; }
    Clock::time_point from_steady(Clock::time_point t) const noexcept { return t; }

    boost::asio::awaitable<boost::system::error_code> wait_until(Clock::time_point t) const {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, t);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return ec;
    }
};

/// @brief A clock that moves only when told: `advance`, `advance_to`, or `advance_to_next` (jump to the
/// earliest pending wait). Waits on it complete when it reaches their time, so a chain waiting ten
/// minutes for a cooldown answers as soon as the test says ten minutes have passed.
///
/// Copies share one time: give a chain a copy (`chain.clock() = clock`) and keep one to move it.
/// A simulation runs every ready handler, then jumps to the next wait:
/// @code
/// while (!done) { io.poll(); if (!clock.advance_to_next()) io.run_one(); }
/// @endcode
/// Thread-safe. The transport still runs in real time: a request sent to a socket takes what it takes.
class ManualClock {
public:
    /// Starts one hour after the steady clock's epoch (zero is reserved for "never set").
    ManualClock() : state_(std::make_shared<State>()) {}

    Clock::time_point now() const {
        std::lock_guard lock(state_->mutex);
        return state_->now;
    }
    Clock::time_point precise_now() const { return now(); }
    Clock::duration slack() const noexcept { return Clock::duration::zero(); }

    /// @brief The wall-clock time of this clock's now, for time-of-day prices: the instant given to
    /// `set_utc` (the real time at construction by default) moved on by as much as this clock has since.
    std::chrono::system_clock::time_point utc_now() const {
        std::lock_guard lock(state_->mutex);
        return state_->utc_at_set + std::chrono::duration_cast<std::chrono::system_clock::duration>(state_->now - state_->now_at_set);
    }

    /// @brief Says that this clock's now is `utc` on the wall clock (a simulation starting on a Monday at 00:00 UTC).
    void set_utc(std::chrono::system_clock::time_point utc) {
        std::lock_guard lock(state_->mutex);
        state_->utc_at_set = utc;
        state_->now_at_set = state_->now;
    }

    /// The steady-clock time as far from now as `t` is from this clock's now (saturating).
    Clock::time_point to_steady(Clock::time_point t) const { return shift(t, now(), Clock::now()); }
    Clock::time_point from_steady(Clock::time_point t) const { return shift(t, Clock::now(), now()); }

    /// Moves time forward by `d` and completes every wait that is due.
    void advance(Clock::duration d) { advance_to(now() + d); }

    /// Moves time to `t` (never backwards) and completes every wait due by then, in time order.
    void advance_to(Clock::time_point t) {
        std::vector<Waiter> due;
        {
            std::lock_guard lock(state_->mutex);
            if (t > state_->now) state_->now = t;
            auto end = state_->waiters.upper_bound(Key{state_->now, UINT64_MAX});
            for (auto it = state_->waiters.begin(); it != end; ++it) due.push_back(std::move(it->second));
            state_->waiters.erase(state_->waiters.begin(), end);
        }
        for (auto& w : due) complete(std::move(w), {});
    }

    /// Jumps to the earliest pending wait and completes it (and any other due then). False when no wait
    /// is pending.
    bool advance_to_next() {
        auto next = next_wake();
        if (!next) return false;
        advance_to(*next);
        return true;
    }

    /// When the earliest pending wait is due, if any.
    std::optional<Clock::time_point> next_wake() const {
        std::lock_guard lock(state_->mutex);
        if (state_->waiters.empty()) return std::nullopt;
        return state_->waiters.begin()->first.first;
    }

    /// Waits pending now.
    std::size_t waiting() const {
        std::lock_guard lock(state_->mutex);
        return state_->waiters.size();
    }

    /// @brief Completes `token` with `void(boost::system::error_code)` once this clock reaches `t`, on the
    /// token's associated executor (else `ex`); with `operation_aborted` when its cancellation slot fires.
    template <class Token>
    auto async_wait_until(boost::asio::any_io_executor ex, Clock::time_point t, Token&& token) const {
        return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
            [state = state_](auto handler, boost::asio::any_io_executor fallback, Clock::time_point when) {
                auto slot = boost::asio::get_associated_cancellation_slot(handler);
                auto ex = boost::asio::get_associated_executor(handler, fallback);
                // Built in place: Asio 1.81's move assignment of any_completion_handler recurses without end.
                Waiter w{std::move(ex), boost::asio::any_completion_handler<void(boost::system::error_code)>(std::move(handler))};
                std::unique_lock lock(state->mutex);
                if (when <= state->now) {
                    lock.unlock();
                    complete(std::move(w), {});
                    return;
                }
                Key key{when, state->next_id++};
                state->waiters.emplace(key, std::move(w));
                lock.unlock();
                if (slot.is_connected()) slot.template emplace<Canceller>(state, key);
            },
            token, std::move(ex), t);
    }

    boost::asio::awaitable<boost::system::error_code> wait_until(Clock::time_point t) const {
        auto [ec] = co_await async_wait_until(co_await boost::asio::this_coro::executor, t,
                                              boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return ec;
    }

private:
    using Key = std::pair<Clock::time_point, std::uint64_t>;
    struct Waiter {
        boost::asio::any_io_executor ex;
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler;
    };
    struct State {
        std::mutex mutex;
        Clock::time_point now = Clock::time_point(std::chrono::hours(1));
        std::uint64_t next_id = 0;
        std::map<Key, Waiter> waiters;
        std::chrono::system_clock::time_point utc_at_set = std::chrono::system_clock::now();
        Clock::time_point now_at_set = now;
    };
    // Takes a cancelled wait out of the queue and completes it with operation_aborted.
    struct Canceller {
        std::shared_ptr<State> state;
        Key key;
        Canceller(std::shared_ptr<State> s, Key k) : state(std::move(s)), key(k) {}
        void operator()(boost::asio::cancellation_type) {
            std::optional<Waiter> w;
            {
                std::lock_guard lock(state->mutex);
                auto it = state->waiters.find(key);
                if (it == state->waiters.end()) return;
                w.emplace(std::move(it->second));
                state->waiters.erase(it);
            }
            complete(std::move(*w), boost::asio::error::operation_aborted);
        }
    };

    static void complete(Waiter w, boost::system::error_code ec) {
        auto ex = w.ex;
        boost::asio::post(ex, [h = std::move(w.handler), ec]() mutable { std::move(h)(ec); });
    }

    static Clock::time_point shift(Clock::time_point t, Clock::time_point from, Clock::time_point to) {
        if (t == Clock::time_point::max()) return t;
        if (t <= from) return to - (from - t);
        auto room = Clock::time_point::max() - to;
        return t - from >= room ? Clock::time_point::max() : to + (t - from);
    }

    std::shared_ptr<State> state_;
};

static_assert(ClockPolicy<SteadyClock>);
static_assert(ClockPolicy<ManualClock>);

} // namespace cascade
