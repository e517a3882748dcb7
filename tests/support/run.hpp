#pragma once
// Runs an awaitable to completion on an io_context and returns its value: in real time (`run`), or in
// simulated time on a manual clock (`run_simulated`).

#include <cascade/engine/clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <utility>

namespace cascade::test {

// Runs the handlers that are ready (an io_context that ran out of work must be restarted first).
inline std::size_t poll(boost::asio::io_context& io) {
    io.restart();
    return io.poll();
}

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> aw) {
    auto fut = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
    io.restart();
    io.run();
    return fut.get();
}

// Runs everything that is ready; when nothing is, `clock` jumps to its next wait; real I/O (a loopback
// upstream) is waited for only when no simulated wait is pending. Nothing here sleeps.
template <class T>
T run_simulated(boost::asio::io_context& io, ManualClock& clock, boost::asio::awaitable<T> aw) {
    auto fut = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
    for (;;) {
        io.restart();
        io.poll();
        if (fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return fut.get();
        if (clock.advance_to_next()) continue;
        io.restart();
        if (io.run_one() == 0 && clock.waiting() == 0 && fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            throw std::logic_error("run_simulated: nothing left to run and the operation has not finished");
    }
}

} // namespace cascade::test
