#pragma once
/// @file
/// @brief `Flight`: one operation whose result several waiters share (single flight, token refresh).

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace cascade::detail {

// One operation shared by several requests: the first request leads, later ones wait for its result.
template <class Result>
class Flight {
public:
    // Completes `token` once the leader has finished, on the token's executor (else `fallback`).
    template <class Token>
    auto async_wait(boost::asio::any_io_executor fallback, Token&& token) {
        return boost::asio::async_initiate<Token, void()>(
            [this](auto handler, boost::asio::any_io_executor fb) {
                boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler, fb);
                std::unique_lock lock(mutex_);
                if (done_) {
                    lock.unlock();
                    boost::asio::post(ex, std::move(handler));
                    return;
                }
                waiters_.emplace_back(std::move(ex), boost::asio::any_completion_handler<void()>(std::move(handler)));
            },
            token, std::move(fallback));
    }

    void finish(Result r, bool leader_cancelled) {
        std::vector<std::pair<boost::asio::any_io_executor, boost::asio::any_completion_handler<void()>>> waiters;
        {
            std::lock_guard lock(mutex_);
            result_.emplace(std::move(r));
            leader_cancelled_ = leader_cancelled;
            done_ = true;
            waiters.swap(waiters_);
        }
        for (auto& [ex, h] : waiters) boost::asio::post(ex, std::move(h));
    }

    // Valid after the wait completed.
    Result const& result() const { return *result_; }
    bool leader_cancelled() const { return leader_cancelled_; }

private:
    std::mutex mutex_;
    bool done_ = false;
    bool leader_cancelled_ = false;
    std::optional<Result> result_;
    std::vector<std::pair<boost::asio::any_io_executor, boost::asio::any_completion_handler<void()>>> waiters_;
};
} // namespace cascade::detail
