#pragma once
/// @file
/// @brief `OpenAISseWriter`: a chain's stream as the server-sent events of OpenAI's chat-completions
/// stream (`chat.completion.chunk`), so a server built on cascade streams to clients that use the OpenAI SDKs.
///
/// One writer per response. The events, in order:
/// - `first()`: the opening chunk, `delta: {"role":"assistant","content":""}` (the SDKs' stream helpers
///   need the role);
/// - `delta(text)` for each text delta, the text JSON-escaped (Boost.JSON) and made valid UTF-8;
/// - `end(result)`: for a `complete` stream the finish chunk (`finish_reason` "stop", "length" or
///   "content_filter"), the usage chunk when the client asked for it (`stream_options.include_usage`),
///   then `data: [DONE]`. For any other end an error event, `data: {"error":{...}}`, and no `[DONE]`:
///   the OpenAI SDKs raise `APIError` when they read an event holding `error`, while a stream that just
///   stops (or ends with `[DONE]`) would pass a cut answer off as a whole one.
///
/// @code
/// cascade::server::OpenAISseWriter w("chatcmpl-42", "gpt-4o-mini", 1739895917, include_usage);
/// write(w.first());
/// while (auto d = co_await s.next())
///     if (auto ev = w.delta(*d); !ev.empty()) write(ev);
/// write(w.end(s.result()));
/// @endcode

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/stream.hpp>

#include <boost/json/serializer.hpp>
#include <boost/json/string_view.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace cascade::server {

/// @brief Writes one response's stream as OpenAI `chat.completion.chunk` server-sent events.
///
/// Each call returns whole events (`data: ...\n\n`), ready to write to the client as they are. Text is
/// made valid UTF-8 on the way: an invalid byte sequence becomes U+FFFD (as a browser's or Node's
/// decoder would show it), and a code point split across two deltas is held back from the first and
/// sent whole with the second, so the deltas' concatenation round-trips. Not thread-safe: one writer
/// per response, used by the coroutine that writes it.
class OpenAISseWriter {
public:
    /// The event that ends a complete stream.
    static constexpr std::string_view done_event = "data: [DONE]\n\n";

    /// @brief A writer for the response `id` (`chatcmpl-...`), naming `model`, created at `created`
    /// (unix seconds). With `include_usage` (the request's `stream_options.include_usage`) a complete
    /// stream ends with a usage chunk (`"choices":[]`) before `[DONE]`.
    OpenAISseWriter(std::string_view id, std::string_view model, std::int64_t created, bool include_usage = false);

    /// @brief The opening chunk: role `assistant`, empty content.
    std::string first() const;

    /// @brief The chunk carrying `text`. Empty when there is nothing to send yet (an empty `text`, or only
    /// the start of a code point that the next delta completes): write nothing then.
    std::string delta(std::string_view text);

    /// @brief The events that end the stream; call once, after the last `delta`.
    ///
    /// `complete`: the finish chunk (`finish_reason(r.completion.finish_reason)`), the usage chunk if asked
    /// for, `[DONE]`. `incomplete`, `failed`, `cancelled`: one error event (`error_event`) with type
    /// `stream_incomplete`, `upstream_unavailable` or `stream_cancelled` and the fault's name as its code
    /// (`timeout`, `network`...), and no `[DONE]`. Bytes held back from the last delta come first, as U+FFFD.
    std::string end(StreamResult const& r);

    /// @brief OpenAI's finish reason for a provider's: "length" for `length`, `max_tokens`, `MAX_TOKENS`;
    /// "content_filter" for `content_filter`, `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`,
    /// `SPII`, `refusal`; "stop" for everything else (`stop`, `STOP`, `end_turn`, none). The writer sends
    /// text only, so a tool call's reason is "stop" too: "tool_calls" would promise deltas it never sent.
    static std::string_view finish_reason(std::string_view provider_reason) noexcept;

    /// @brief An error event, `data: {"error":{"message":...,"type":...,"code":...}}`, the shape the
    /// OpenAI SDKs raise `APIError` for.
    static std::string error_event(std::string_view message, std::string_view type, std::string_view code);

private:
    std::string chunk(std::size_t reserve) const;

    // `data: {"id":...,"object":"chat.completion.chunk","created":...,"model":...,"choices":[`, escaped once.
    std::string head_;
    // The start of a code point whose remaining bytes the next delta brings.
    std::array<char, 4> carry_{};
    std::size_t carry_len_ = 0;
    bool include_usage_ = false;
};

namespace detail {

enum class Utf8 : std::uint8_t { ok, invalid, truncated };

/// The UTF-8 sequence starting at `s[i]`: `ok` and its length; `invalid` and the length of the maximal
/// subpart to replace by one U+FFFD (Unicode 3.9, as WHATWG decoders do); `truncated` when `s` ends inside
/// a sequence that more bytes could complete.
constexpr std::pair<Utf8, std::size_t> utf8_step(std::string_view s, std::size_t i) noexcept {
    auto const c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return {Utf8::ok, 1};
    std::size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;  // no overlong forms
        if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;  // no overlong forms
        if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {Utf8::invalid, 1};
    }
    for (std::size_t k = 1; k <= need; ++k) {
        if (i + k >= s.size()) return {Utf8::truncated, k};
        auto const t = static_cast<unsigned char>(s[i + k]);
        if (t < lo || t > hi) return {Utf8::invalid, k};
        lo = 0x80;
        hi = 0xBF;
    }
    return {Utf8::ok, need + 1};
}

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

/// `in` as valid UTF-8: `in` itself when it is (no copy), else a copy in `scratch` with each invalid
/// sequence replaced by U+FFFD. With `tail`, a truncated sequence at the end is left out and its length
/// stored there; without, it is replaced too.
inline std::string_view valid_utf8(std::string_view in, std::string& scratch, std::size_t* tail = nullptr) {
    bool copied = false;
    std::size_t i = 0;
    while (i < in.size()) {
        auto [kind, n] = utf8_step(in, i);
        if (kind == Utf8::ok) {
            if (copied) scratch.append(in.substr(i, n));
        } else if (kind == Utf8::truncated && tail) {
            *tail = in.size() - i;
            return copied ? std::string_view(scratch) : in.substr(0, i);
        } else {
            if (!copied) {
                copied = true;
                scratch.assign(in.substr(0, i));
            }
            scratch.append(replacement_character);
        }
        i += n;
    }
    if (tail) *tail = 0;
    return copied ? std::string_view(scratch) : in;
}

/// Appends `s` (valid UTF-8) as a JSON string, quotes included, escaped by Boost.JSON.
inline void append_json_string(std::string& out, std::string_view s) {
    boost::json::serializer sr;
    sr.reset(boost::json::string_view(s.data(), s.size()));
    std::size_t const at = out.size();
    std::size_t const room = s.size() * 6 + 2;  // the worst case: every byte as \u00XX, and the quotes
    out.resize(at + room);
    std::size_t used = 0;
    while (!sr.done()) used += sr.read(out.data() + at + used, room - used).size();
    out.resize(at + used);
}

/// Appends `s` made valid UTF-8, as a JSON string.
inline void append_json_text(std::string& out, std::string_view s) {
    std::string scratch;
    append_json_string(out, valid_utf8(s, scratch));
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

} // namespace detail

inline OpenAISseWriter::OpenAISseWriter(std::string_view id, std::string_view model, std::int64_t created, bool include_usage)
    : include_usage_(include_usage) {
    head_.reserve(96 + id.size() + model.size());
    head_ += "data: {\"id\":";
    detail::append_json_text(head_, id);
    head_ += ",\"object\":\"chat.completion.chunk\",\"created\":";
    head_ += std::to_string(created);
    head_ += ",\"model\":";
    detail::append_json_text(head_, model);
    head_ += ",\"choices\":[";
}

inline std::string OpenAISseWriter::chunk(std::size_t reserve) const {
    std::string out;
    out.reserve(head_.size() + reserve);
    out += head_;
    return out;
}

inline std::string OpenAISseWriter::first() const {
    std::string out = chunk(96);
    out += R"J({"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})J";
    out += "\n\n";
    return out;
}

inline std::string OpenAISseWriter::delta(std::string_view text) {
    std::string joined;
    if (carry_len_ > 0) {
        joined.reserve(carry_len_ + text.size());
        joined.assign(carry_.data(), carry_len_);
        joined += text;
        text = joined;
        carry_len_ = 0;
    }
    std::string scratch;
    std::size_t tail = 0;
    std::string_view const valid = detail::valid_utf8(text, scratch, &tail);
    for (std::size_t k = 0; k < tail; ++k) carry_[k] = text[text.size() - tail + k];
    carry_len_ = tail;
    if (valid.empty()) return {};

    static constexpr std::string_view open = R"J({"index":0,"delta":{"content":)J";
    static constexpr std::string_view close = "},\"finish_reason\":null}]}\n\n";
    std::string out = chunk(open.size() + valid.size() * 6 + 2 + close.size());
    out += open;
    detail::append_json_string(out, valid);
    out += close;
    return out;
}

inline std::string OpenAISseWriter::end(StreamResult const& r) {
    std::string out;
    if (carry_len_ > 0) {
        // The stream ended inside a code point: what came of it is invalid, and shown as such.
        carry_len_ = 0;
        out += chunk(64);
        out += R"J({"index":0,"delta":{"content":"\ufffd"},"finish_reason":null}]})J";
        out += "\n\n";
    }
    if (r.end != StreamEnd::complete) {
        std::string_view type = "stream_incomplete";
        std::string message;
        if (r.end == StreamEnd::incomplete) {
            message = "The answer stopped before it was complete";
        } else if (r.end == StreamEnd::failed) {
            type = "upstream_unavailable";
            message = "No upstream could answer";
        } else {
            type = "stream_cancelled";
            message = "The stream was cancelled";
        }
        std::string code = r.error && r.error.category() == fault_category() ? r.error.message()
                           : r.end == StreamEnd::cancelled                   ? std::string("cancelled")
                                                                             : std::string("unknown");
        message += " (" + code + ")";
        if (r.end == StreamEnd::incomplete) message += "; the text received so far is partial";
        out += error_event(message, type, code);
        return out;
    }
    out += chunk(64);
    out += R"J({"index":0,"delta":{},"finish_reason":")J";
    out += finish_reason(r.completion.finish_reason);
    out += "\"}]}\n\n";
    if (include_usage_) {
        auto const& u = r.completion.usage;
        out += head_;
        out += "],\"usage\":{\"prompt_tokens\":" + std::to_string(u.prompt_tokens) +
               ",\"completion_tokens\":" + std::to_string(u.completion_tokens) + ",\"total_tokens\":" + std::to_string(u.total());
        if (u.cached_prompt_tokens > 0)
            out += ",\"prompt_tokens_details\":{\"cached_tokens\":" + std::to_string(u.cached_prompt_tokens) + "}";
        out += "}}\n\n";
    }
    out += done_event;
    return out;
}

inline std::string_view OpenAISseWriter::finish_reason(std::string_view p) noexcept {
    for (std::string_view l : {"length", "max_tokens", "model_length"})
        if (detail::iequals(p, l)) return "length";
    for (std::string_view f : {"content_filter", "safety", "recitation", "blocklist", "prohibited_content", "spii", "refusal"})
        if (detail::iequals(p, f)) return "content_filter";
    return "stop";
}

inline std::string OpenAISseWriter::error_event(std::string_view message, std::string_view type, std::string_view code) {
    std::string out;
    out.reserve(48 + message.size() + type.size() + code.size());
    out += "data: {\"error\":{\"message\":";
    detail::append_json_text(out, message);
    out += ",\"type\":";
    detail::append_json_text(out, type);
    out += ",\"code\":";
    detail::append_json_text(out, code);
    out += "}}\n\n";
    return out;
}

} // namespace cascade::server
