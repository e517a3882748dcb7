#pragma once
/// @file
/// @brief Streaming a chain's answer: `StreamOptions`, `StreamResult`, the caller's `TextStream`.
///
/// `chain.stream(req)` starts the request and returns a `TextStream`: `co_await s.next()` gives each text
/// delta as it arrives, then nothing; `s.result()` says how the stream ended. Before the first delta
/// reaches the caller (or the hold-back ends) every failure is invisible: the chain moves to the next key
/// or tier exactly as for whole answers. After it, a cut, a stall, an error event or a missing `[DONE]`
/// ends the stream `incomplete`, never as a clean end.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/stream_sink.hpp>
#include <cascade/policy/accept.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace cascade {

/// @brief How a stream judges the start of an attempt's text inside the hold-back: `Acceptance::yes()`
/// commits it; a refusal drops the attempt unseen and the chain moves on.
using PrefixJudge = std::function<Acceptance(std::string_view prefix, Request const& req)>;

/// @brief The default `PrefixJudge`: an empty (white space only) start, or a refusal's usual opening in
/// English, Russian or Spanish ("I'm sorry, but I can't", "I cannot help", "As an AI", "Извините, но я не
/// могу", "Lo siento, pero no puedo"), is refused.
inline Acceptance refusal_prefix(std::string_view prefix, Request const&) {
    std::size_t b = 0;
    while (b < prefix.size() && (prefix[b] == ' ' || prefix[b] == '\n' || prefix[b] == '\r' || prefix[b] == '\t')) ++b;
    auto const start = prefix.substr(b);
    if (start.empty()) return Acceptance::no(Fault::empty, "the stream started with nothing but white space");
    static constexpr std::array<std::string_view, 14> openings{
        "I'm sorry, but I can", "I’m sorry, but I can", "I am sorry, but I can", "I'm sorry, I can't", "I cannot help",
        "I can't help", "I can't assist", "I cannot assist", "I'm unable to", "As an AI", "Извините, но я не могу",
        "Я не могу помочь", "Lo siento, pero no puedo", "No puedo ayudar"};
    for (auto o : openings)
        if (start.substr(0, o.size()) == o) return Acceptance::no(Fault::rejected, "the stream started with a refusal");
    return Acceptance::yes();
}

/// @brief How a stream behaves. Every member has a working default.
struct StreamOptions {
    /// No first delta from an attempt within this: the attempt fails (`timeout`) and the chain moves on.
    std::chrono::milliseconds first_token_timeout{15'000};
    /// No delta for this long after one came: the attempt fails (`timeout`); after commit the stream ends
    /// `incomplete`.
    std::chrono::milliseconds stall_timeout{30'000};
    /// Hold-back: the first `hold_chars` characters of an attempt are held, and judged by `judge`, before
    /// any reaches the caller. Zero: no hold by size.
    std::size_t hold_chars = 0;
    /// Hold-back by time: the hold ends at the first delta this long after the attempt's first (or when
    /// `hold_chars` are in, whichever comes first). Zero: no hold by time.
    std::chrono::milliseconds hold_time{0};
    /// Judges a held start; empty: `refusal_prefix`.
    PrefixJudge judge;
};

/// @brief How a stream ended.
enum class StreamEnd : std::uint8_t {
    complete,    ///< the whole answer was delivered; `completion` has its label, usage and cost
    incomplete,  ///< text was delivered, then the attempt failed (`error` says how): what came is kept
    failed,      ///< a fallible chain found no answer before any text was delivered (`error`: the fault)
    cancelled,   ///< the caller cancelled
};

inline std::string_view to_string(StreamEnd e) noexcept {
    switch (e) {
    case StreamEnd::complete: return "complete";
    case StreamEnd::incomplete: return "incomplete";
    case StreamEnd::failed: return "failed";
    case StreamEnd::cancelled: return "cancelled";
    }
    return "unknown";
}

/// @brief What a stream delivered, and how it ended.
struct StreamResult {
    StreamEnd end = StreamEnd::failed;
    /// `text`: every delta delivered, in order. `label`: what produced them (for `incomplete`, the attempt
    /// that was cut). `usage` and `cost_usd`: the answer's (for `incomplete`, estimated from the text and
    /// the request, `cost_known` false). `trail`: the attempts before, and the cut one.
    Completion completion;
    /// Why the stream is not `complete` (a `Fault`); empty when it is.
    boost::system::error_code error;
    /// From the call of `stream` to the first delta delivered (zero if none was).
    std::chrono::microseconds time_to_first_token{0};
    /// Deltas delivered.
    std::size_t deltas = 0;

    explicit operator bool() const noexcept { return end == StreamEnd::complete; }
};

namespace detail {

/// The state one stream's producer (the chain, through `StreamSink`) and consumer (`TextStream`) share.
class StreamState final : public StreamSink {
public:
    using Clock = std::chrono::steady_clock;
    using OnDelta = std::function<void(std::string_view)>;

    StreamState(boost::asio::any_io_executor ex, StreamOptions opts, Request req, OnDelta on_delta = {})
        : opts_(std::move(opts)), req_(std::move(req)), on_delta_(std::move(on_delta)), wake_(ex, 1),
          strand_(boost::asio::make_strand(ex)), started_at_(Clock::now()) {
        if (!opts_.judge) opts_.judge = &refusal_prefix;
    }

    // --- StreamSink: the producer's side (the attempt's strand) ---
    void begin() noexcept override {
        std::lock_guard lock(mutex_);
        held_.clear();
        attempt_started_ = false;
        attempt_committed_ = false;
        refusal_ = {};
        attempt_begin_ = Clock::now();
    }

    bool delta(std::string_view text) override {
        if (cancelled_.load(std::memory_order_relaxed)) return false;
        if (text.empty()) return true;
        auto const now = Clock::now();
        std::unique_lock lock(mutex_);
        if (!attempt_started_) {
            attempt_started_ = true;
            first_delta_ = now;
        }
        last_delta_ = now;
        if (attempt_committed_) {
            deliver(lock, std::string(text), now);
            return true;
        }
        held_.append(text);
        bool const by_size = opts_.hold_chars > 0 && held_.size() >= opts_.hold_chars;
        bool const by_time = opts_.hold_time.count() > 0 && now - first_delta_ >= opts_.hold_time;
        bool const no_hold = opts_.hold_chars == 0 && opts_.hold_time.count() == 0;
        if (!(by_size || by_time || no_hold)) return true;
        if (!no_hold) {
            auto verdict = opts_.judge(held_, req_);
            if (!verdict) {
                refusal_ = verdict.reason;
                return false;
            }
        }
        attempt_committed_ = true;
        std::string out;
        out.swap(held_);
        deliver(lock, std::move(out), now);
        return true;
    }

    bool committed() const noexcept override {
        std::lock_guard lock(mutex_);
        return attempt_committed_;
    }
    bool started() const noexcept override {
        std::lock_guard lock(mutex_);
        return attempt_started_;
    }
    Clock::time_point next_by() const noexcept override {
        std::lock_guard lock(mutex_);
        return attempt_started_ ? last_delta_ + opts_.stall_timeout : attempt_begin_ + opts_.first_token_timeout;
    }
    std::string_view refusal() const noexcept override { return refusal_; }

    // --- The chain's side, once the request is over ---
    /// A whole answer that reached the caller by no delta of its own (a tier that does not stream, the
    /// template, a hold-back the stream ended inside): delivered as one delta.
    void deliver_whole(std::string_view text) {
        std::unique_lock lock(mutex_);
        if (attempt_committed_ || text.empty()) return;
        attempt_committed_ = true;
        held_.clear();
        deliver(lock, std::string(text), Clock::now());
    }
    std::size_t deltas() const {
        std::lock_guard lock(mutex_);
        return deltas_;
    }
    std::chrono::microseconds time_to_first_token() const {
        std::lock_guard lock(mutex_);
        return first_token_ ? std::chrono::duration_cast<std::chrono::microseconds>(*first_token_ - started_at_)
                            : std::chrono::microseconds{0};
    }
    /// The text delivered so far.
    std::string delivered() const {
        std::lock_guard lock(mutex_);
        return delivered_;
    }
    void end(StreamResult r) {
        {
            std::lock_guard lock(mutex_);
            r.time_to_first_token = first_token_ ? std::chrono::duration_cast<std::chrono::microseconds>(*first_token_ - started_at_)
                                                 : std::chrono::microseconds{0};
            r.deltas = deltas_;
            result_ = std::move(r);
            ended_ = true;
        }
        wake_.try_send(boost::system::error_code{});
    }

    // --- The consumer's side ---
    /// The next delta, or nothing once the stream ended.
    boost::asio::awaitable<std::optional<std::string>> next() {
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                if (!queue_.empty()) {
                    std::string d = std::move(queue_.front());
                    queue_.pop_front();
                    co_return std::optional<std::string>(std::move(d));
                }
                if (ended_) co_return std::nullopt;
            }
            co_await wake_.async_receive(boost::asio::use_awaitable);
        }
    }
    bool done() const {
        std::lock_guard lock(mutex_);
        return ended_ && queue_.empty();
    }
    bool ended() const {
        std::lock_guard lock(mutex_);
        return ended_;
    }
    StreamResult const& result() const noexcept { return result_; }

    /// Cancels the request: the attempt in flight stops and its connection closes; nothing more is delivered.
    void cancel() {
        if (cancelled_.exchange(true)) return;
        auto signal = signal_;
        boost::asio::post(strand_, [signal] { signal->emit(boost::asio::cancellation_type::terminal); });
    }
    bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

    boost::asio::cancellation_slot slot() { return signal_->slot(); }
    boost::asio::strand<boost::asio::any_io_executor> const& strand() const noexcept { return strand_; }
    Request const& request() const noexcept { return req_; }
    Clock::time_point started_at() const noexcept { return started_at_; }

private:
    void deliver(std::unique_lock<std::mutex>& lock, std::string text, Clock::time_point now) {
        if (!first_token_) first_token_ = now;
        ++deltas_;
        delivered_ += text;
        if (on_delta_) {
            // Called in order, one at a time: the producer is one attempt at a time.
            lock.unlock();
            on_delta_(text);
            return;
        }
        queue_.push_back(std::move(text));
        lock.unlock();
        wake_.try_send(boost::system::error_code{});
    }

    StreamOptions opts_;
    Request req_;
    OnDelta on_delta_;
    mutable std::mutex mutex_;
    std::deque<std::string> queue_;
    std::string held_;
    std::string delivered_;
    std::string_view refusal_;
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> wake_;
    boost::asio::strand<boost::asio::any_io_executor> strand_;
    std::shared_ptr<boost::asio::cancellation_signal> signal_ = std::make_shared<boost::asio::cancellation_signal>();
    Clock::time_point started_at_;
    Clock::time_point attempt_begin_ = Clock::now();
    Clock::time_point first_delta_{};
    Clock::time_point last_delta_{};
    std::optional<Clock::time_point> first_token_;
    std::size_t deltas_ = 0;
    StreamResult result_;
    std::atomic<bool> cancelled_{false};
    bool attempt_started_ = false;
    bool attempt_committed_ = false;
    bool ended_ = false;
};

} // namespace detail

/// @brief The caller's end of a stream (`BasicChain::stream`).
///
/// `co_await next()` returns each delta as it arrives, then `std::nullopt` once the stream ended; then
/// `result()` says how. One consumer at a time. Destroying the `TextStream` (or `cancel()`) cancels the
/// request: the attempt in flight stops and its upstream connection closes at once. The chain must outlive
/// the stream's request (until `next()` returned `std::nullopt`, or after `cancel()` until it did).
class TextStream {
public:
    explicit TextStream(std::shared_ptr<detail::StreamState> st) : st_(std::move(st)) {}
    TextStream(TextStream&&) noexcept = default;
    TextStream& operator=(TextStream&& o) noexcept {
        if (this != &o) {
            release();
            st_ = std::move(o.st_);
        }
        return *this;
    }
    TextStream(TextStream const&) = delete;
    TextStream& operator=(TextStream const&) = delete;
    ~TextStream() { release(); }

    /// @brief The next text delta, or `std::nullopt` once the stream ended.
    boost::asio::awaitable<std::optional<std::string>> next() { return st_->next(); }
    /// @brief How the stream ended; meaningful once `next()` returned `std::nullopt`.
    StreamResult const& result() const noexcept { return st_->result(); }
    /// @brief Whether the stream ended and every delta was taken.
    bool done() const { return st_->done(); }
    /// @brief Stops the request: the upstream connection closes; `next()` then drains what came and ends.
    void cancel() { st_->cancel(); }

private:
    void release() {
        if (st_ && !st_->ended()) st_->cancel();
    }
    std::shared_ptr<detail::StreamState> st_;
};

} // namespace cascade
