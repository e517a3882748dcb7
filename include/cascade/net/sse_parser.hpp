#pragma once
/// @file
/// @brief `SseParser`: server-sent events (`text/event-stream`) as providers stream them, sans-io.
///
/// Handles `data:` lines (several joined with `\n`), `event:` lines, comments and keep-alives
/// (`: keep-alive`, `: OPENROUTER PROCESSING`), blank lines, CRLF or LF line ends, and chunks split at any
/// byte. `data: [DONE]` ends the stream; an `event: error` or a data JSON with an `error` member is
/// reported as an error event.

#include <string>
#include <string_view>

namespace cascade::net {

/// @brief One event of a stream.
struct SseEvent {
    /// The `event:` field; empty for the default `message`.
    std::string event;
    /// The data lines joined with `\n`.
    std::string data;
    /// `data: [DONE]`: the stream is over.
    bool done = false;
    /// `event: error`, or a data JSON carrying an `error` member (OpenAI, OpenRouter mid-stream errors).
    bool error = false;
};

/// @brief An incremental parser: `feed` bytes as they arrive; complete events go to the callback.
class SseParser {
public:
    /// @brief Parses `chunk`; calls `on_event(SseEvent const&)` for each complete event.
    ///
    /// Linear in the bytes fed, however they are split: the buffered partial line is never searched
    /// again for a line end, only the new bytes are.
    template <class F>
    void feed(std::string_view chunk, F&& on_event) {
        line_ += chunk;
        std::size_t start = 0;
        for (;;) {
            auto nl = line_.find('\n', scanned_);
            if (nl == std::string::npos) {
                scanned_bytes_ += line_.size() - scanned_;
                break;
            }
            scanned_bytes_ += nl + 1 - scanned_;
            scanned_ = nl + 1;
            std::string_view line(line_.data() + start, nl - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            handle(line, on_event);
            start = nl + 1;
        }
        // What remains holds no line end: the next chunk's search starts after it.
        line_.erase(0, start);
        scanned_ = line_.size();
    }

    /// @brief Comments (keep-alives) seen so far.
    std::size_t comments() const noexcept { return comments_; }
    /// @brief `data: [DONE]` was seen.
    bool finished() const noexcept { return finished_; }
    /// @brief Bytes searched for a line end so far: each byte fed is searched once, so this equals the
    /// bytes fed (a check that feeding stays linear).
    std::size_t scanned_bytes() const noexcept { return scanned_bytes_; }

private:
    template <class F>
    void handle(std::string_view line, F& on_event) {
        if (line.empty()) {  // dispatch
            if (has_data_ || !event_.event.empty()) {
                if (event_.data == "[DONE]") {
                    event_.done = true;
                    finished_ = true;
                }
                if (event_.event == "error" || looks_like_error(event_.data)) event_.error = true;
                on_event(static_cast<SseEvent const&>(event_));
            }
            event_ = SseEvent{};
            has_data_ = false;
            return;
        }
        if (line.front() == ':') {
            ++comments_;
            return;
        }
        auto colon = line.find(':');
        std::string_view field = line.substr(0, colon);
        std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (field == "data") {
            if (has_data_) event_.data += '\n';
            event_.data += value;
            has_data_ = true;
        } else if (field == "event") {
            event_.event = std::string(value);
        }
        // `id:` and `retry:` are not used by LLM streams.
    }

    // A data JSON object whose top level has a non-null "error" member.
    static bool looks_like_error(std::string_view data) {
        if (data.empty() || data.front() != '{') return false;
        auto pos = data.find("\"error\"");
        if (pos == std::string_view::npos) return false;
        auto after = data.find_first_not_of(" \t", pos + 7);
        if (after == std::string_view::npos || data[after] != ':') return false;
        auto value = data.find_first_not_of(" \t", after + 1);
        return value != std::string_view::npos && data.compare(value, 4, "null") != 0;
    }

    std::string line_;
    // Bytes at the front of `line_` already searched for a line end (none there).
    std::size_t scanned_ = 0;
    std::size_t scanned_bytes_ = 0;
    SseEvent event_;
    bool has_data_ = false;
    bool finished_ = false;
    std::size_t comments_ = 0;
};

} // namespace cascade::net
