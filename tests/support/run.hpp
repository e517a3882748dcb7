#pragma once
// Runs an awaitable to completion on a fresh io_context and returns its value.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <utility>

namespace cascade::test {

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> aw) {
    auto fut = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
    io.restart();
    io.run();
    return fut.get();
}

} // namespace cascade::test
