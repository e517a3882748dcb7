#pragma once
/// @file
/// @brief `StreamSink`: where a tier that can stream puts its text deltas while a chain streams a request.
///
/// A chain streaming a request (`BasicChain::stream`) sets `Context::sink`. A tier that can stream then
/// asks its provider for a stream and hands each text delta to `delta` as it arrives; a tier that cannot
/// ignores the sink and answers whole (the chain then delivers the answer as one delta). The sink decides
/// when text reaches the caller: before it does (a hold-back, or no delta yet) every failure of the attempt
/// is invisible and the chain moves on as for whole answers; after it does, the attempt is committed and
/// a failure ends the stream `incomplete`.

#include <chrono>
#include <string_view>

namespace cascade {

/// @brief The chain's side of a stream, as a tier sees it. Called from the attempt's own strand, never
/// concurrently for one stream.
class StreamSink {
public:
    virtual ~StreamSink() = default;

    /// @brief An attempt starts: text an earlier, failed attempt held back is dropped.
    virtual void begin() noexcept = 0;
    /// @brief A text delta of the attempt in flight. False: stop the attempt now and close its connection
    /// (its start was refused inside the hold-back, see `refusal`, or the caller cancelled).
    virtual bool delta(std::string_view text) = 0;
    /// @brief Whether any text of the attempt in flight has reached the caller.
    virtual bool committed() const noexcept = 0;
    /// @brief Whether the attempt in flight has produced a delta yet (held back or delivered).
    virtual bool started() const noexcept = 0;
    /// @brief The instant (steady clock) by which the attempt's next delta must come: the first-token
    /// timeout before its first delta, the stall timeout after. A tier reading past it ends the attempt
    /// with `Fault::timeout`.
    virtual std::chrono::steady_clock::time_point next_by() const noexcept = 0;
    /// @brief Why `delta` returned false, for the trail (empty when the caller cancelled).
    virtual std::string_view refusal() const noexcept = 0;
};

} // namespace cascade
