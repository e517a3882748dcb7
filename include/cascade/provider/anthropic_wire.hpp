#pragma once
/// @file
/// @brief Anthropic's Messages API wire format (`POST /v1/messages`): request bodies, reply parsing and
/// stream assembly, sans-io (shared/reference/provider-formats-2.md §1).

#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/provider/openai_wire.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace cascade::anthropic {

/// @brief Why `req` cannot go to the Messages API, or empty when it can: it has no `response_format`, no
/// `seed`, and no provider-specific `extra` (those are OpenAI's). The tier fails its attempt with
/// `Fault::bad_request` and this text rather than drop the field.
inline std::string request_problem(Request const& req) {
    if (req.response_format) return "response_format is not supported by Anthropic's Messages API";
    if (req.seed) return "seed is not supported by Anthropic's Messages API";
    if (!req.extra.empty()) return "extra fields are sent only to OpenAI-compatible tiers, not to Anthropic";
    return {};
}

/// @brief The JSON body of `POST /v1/messages`.
///
/// System messages go to the top-level `system` (joined by a blank line; there is no system role in
/// `messages`); user and assistant messages keep their order, each with its text as `content`. `model`
/// is `req.model` when set, else `model`. `max_tokens` is required by Anthropic: the request's when set
/// and positive, else `default_max_tokens` (at least 1). `temperature`, when set, is clamped to
/// Anthropic's range, 0 to 1, and left out when it is not a number; `top_p` and `stop_sequences` are
/// sent when set. Check `request_problem` first: what it names is not sent.
inline std::string request_body(Request const& req, std::string_view model, int default_max_tokens, bool stream = false) {
    boost::json::object body;
    body["model"] = req.model ? std::string_view(*req.model) : model;
    body["max_tokens"] = req.max_tokens && *req.max_tokens > 0 ? *req.max_tokens : std::max(1, default_max_tokens);
    std::string system;
    boost::json::array messages;
    for (auto const& m : req.messages) {
        if (m.role == Role::system) {
            if (!system.empty()) system += "\n\n";
            system += m.content;
            continue;
        }
        boost::json::object msg;
        msg["role"] = m.role == Role::assistant ? "assistant" : "user";
        msg["content"] = m.content;
        messages.push_back(std::move(msg));
    }
    if (!system.empty()) body["system"] = system;
    body["messages"] = std::move(messages);
    if (req.temperature && !std::isnan(*req.temperature)) body["temperature"] = std::clamp(*req.temperature, 0.0, 1.0);
    if (req.top_p && !std::isnan(*req.top_p)) body["top_p"] = *req.top_p;
    if (!req.stop.empty()) {
        boost::json::array stop;
        for (auto const& s : req.stop) stop.emplace_back(s);
        body["stop_sequences"] = std::move(stop);
    }
    if (stream) body["stream"] = true;
    return boost::json::serialize(body);
}

/// @brief Anthropic's token counts. `input_tokens` excludes cached tokens: the prompt is the sum of the
/// three input counts ("Total input tokens in a request is the summation of ...").
struct TokenCounts {
    std::uint32_t input_tokens = 0;
    std::uint32_t cache_creation_input_tokens = 0;
    std::uint32_t cache_read_input_tokens = 0;
    std::uint32_t output_tokens = 0;

    /// @brief Every input token (uncached, written to the cache, read from it) as the prompt, saturated.
    Usage usage() const noexcept {
        std::uint64_t const prompt = std::uint64_t{input_tokens} + cache_creation_input_tokens + cache_read_input_tokens;
        Usage u;
        u.prompt_tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(prompt, std::numeric_limits<std::uint32_t>::max()));
        u.completion_tokens = output_tokens;
        u.cached_prompt_tokens = cache_read_input_tokens;
        return u;
    }

    /// @brief USD at `prices`, with Anthropic's prompt-caching multipliers of the input price: cache writes
    /// (5-minute, the default) 1.25 times, cache reads 0.1 times; $0 on a free tier; off-peak as `Prices` says.
    double cost(Prices const& prices, std::chrono::system_clock::time_point when = {}) const noexcept {
        if (prices.free) return 0.0;
        double const input = static_cast<double>(input_tokens) + 1.25 * static_cast<double>(cache_creation_input_tokens) +
                             0.1 * static_cast<double>(cache_read_input_tokens);
        double usd = (input * prices.input_per_million + static_cast<double>(output_tokens) * prices.output_per_million) / 1'000'000.0;
        if (prices.peak.hours != 0) {
            if (when == std::chrono::system_clock::time_point{}) when = std::chrono::system_clock::now();
            if (!prices.peak.is_peak(when)) usd *= prices.peak.off_peak_factor;
        }
        return usd;
    }
};

/// @brief What a successful Messages body says.
struct Reply {
    /// The message's `id` (`msg_...`), empty if none.
    std::string id;
    /// The `text` content blocks, concatenated; `thinking`, `redacted_thinking` and tool blocks are not the answer.
    std::string text;
    std::string model;
    /// `stop_reason` as sent: `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`,
    /// `model_context_window_exceeded`, or a value added later.
    std::string stop_reason;
    TokenCounts tokens;
};

/// @brief Why a 2xx body is not a usable reply.
enum class ParseError {
    not_json,      ///< blank, truncated, or not a JSON object
    error_object,  ///< an error envelope (`"type": "error"`) inside a 2xx
    no_content,    ///< JSON without a `content` array
};

// A token count: negative or not an integer is 0; one past 32 bits saturates rather than wrapping.
inline std::uint32_t count_of(boost::json::object const& o, std::string_view key) noexcept {
    return openai::to_u32(o.if_contains(key));
}

// Reads the counts a `usage` object has; those it lacks keep their value (a stream's message_delta
// repeats only some, and its counts are cumulative: the last one wins).
inline void read_usage(boost::json::value const* usage, TokenCounts& t) noexcept {
    if (!usage || !usage->is_object()) return;
    auto const& u = usage->get_object();
    if (u.contains("input_tokens")) t.input_tokens = count_of(u, "input_tokens");
    if (u.contains("cache_creation_input_tokens")) t.cache_creation_input_tokens = count_of(u, "cache_creation_input_tokens");
    if (u.contains("cache_read_input_tokens")) t.cache_read_input_tokens = count_of(u, "cache_read_input_tokens");
    if (u.contains("output_tokens")) t.output_tokens = count_of(u, "output_tokens");
}

inline bool is_error_envelope(boost::json::object const& o) noexcept {
    if (auto const* t = o.if_contains("type"); t && t->is_string() && t->get_string() == "error") return true;
    auto const* e = o.if_contains("error");
    return e && !e->is_null();
}

/// @brief Parses a non-streamed Messages body (A2).
inline boost::system::result<Reply, ParseError> parse_reply(std::string_view body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return ParseError::not_json;
    auto const& o = v.get_object();
    if (is_error_envelope(o)) return ParseError::error_object;
    auto const* content = o.if_contains("content");
    if (!content || !content->is_array()) return ParseError::no_content;
    Reply r;
    for (auto const& block : content->get_array()) {
        auto const* b = block.if_object();
        if (!b) continue;
        auto const* type = b->if_contains("type");
        if (!type || !type->is_string() || type->get_string() != "text") continue;
        if (auto const* t = b->if_contains("text"); t && t->is_string()) r.text += t->get_string();
    }
    if (auto const* m = o.if_contains("model"); m && m->is_string()) r.model = std::string(m->get_string());
    if (auto const* id = o.if_contains("id"); id && id->is_string()) r.id = std::string(id->get_string());
    if (auto const* s = o.if_contains("stop_reason"); s && s->is_string()) r.stop_reason = std::string(s->get_string());
    read_usage(o.if_contains("usage"), r.tokens);
    return r;
}

/// @brief Builds one reply from a Messages event stream (A3): `message_start` (model, input usage),
/// `content_block_start` / `content_block_delta` (`text_delta`; thinking and tool deltas are not the
/// answer), `message_delta` (stop reason, cumulative usage), `message_stop`, `ping`, `error`. Unknown
/// events are ignored, as Anthropic asks.
class StreamAssembler {
public:
    /// @brief Feeds one event's data (its `event:` name is repeated as the data's `type`). Returns false
    /// once the stream reported an error.
    bool on_data(std::string_view data, bool error_event) {
        if (errored_) return false;
        boost::system::error_code ec;
        auto v = boost::json::parse(data, ec);
        if (ec || !v.is_object()) {
            if (!malformed_) failed_data_ = std::string(data);
            malformed_ = true;
            return true;
        }
        auto const& o = v.get_object();
        if (error_event || is_error_envelope(o)) {
            if (!malformed_) failed_data_ = std::string(data);
            errored_ = true;
            if (auto const* e = o.if_contains("error"); e && e->is_object())
                if (auto const* m = e->get_object().if_contains("message"); m && m->is_string()) error_ = std::string(m->get_string());
            if (error_.empty()) error_ = "an error occurred during streaming";
            return false;
        }
        auto const* type = o.if_contains("type");
        std::string_view const t = type && type->is_string() ? std::string_view(type->get_string()) : std::string_view();
        if (t == "message_start") {
            if (auto const* msg = o.if_contains("message"); msg && msg->is_object()) {
                auto const& m = msg->get_object();
                if (auto const* model = m.if_contains("model"); model && model->is_string()) reply_.model = std::string(model->get_string());
                if (auto const* id = m.if_contains("id"); id && id->is_string()) reply_.id = std::string(id->get_string());
                read_usage(m.if_contains("usage"), reply_.tokens);
            }
        } else if (t == "content_block_start") {
            // A text block may start with text of its own (usually "").
            if (auto const* cb = o.if_contains("content_block"); cb && cb->is_object()) {
                auto const& b = cb->get_object();
                auto const* bt = b.if_contains("type");
                if (bt && bt->is_string() && bt->get_string() == "text")
                    if (auto const* text = b.if_contains("text"); text && text->is_string()) reply_.text += text->get_string();
            }
        } else if (t == "content_block_delta") {
            if (auto const* d = o.if_contains("delta"); d && d->is_object()) {
                auto const& delta = d->get_object();
                auto const* dt = delta.if_contains("type");
                if (dt && dt->is_string() && dt->get_string() == "text_delta")
                    if (auto const* text = delta.if_contains("text"); text && text->is_string()) reply_.text += text->get_string();
            }
        } else if (t == "message_delta") {
            if (auto const* d = o.if_contains("delta"); d && d->is_object())
                if (auto const* s = d->get_object().if_contains("stop_reason"); s && s->is_string())
                    reply_.stop_reason = std::string(s->get_string());
            read_usage(o.if_contains("usage"), reply_.tokens);
        } else if (t == "message_stop") {
            stopped_ = true;
        }
        return true;
    }

    bool errored() const noexcept { return errored_; }
    std::string const& error_message() const noexcept { return error_; }
    bool malformed() const noexcept { return malformed_; }
    /// A stream is whole once `message_stop` came, or the stop reason (sent with the last usage, after the
    /// last content): one cut before either lost part of the answer.
    bool complete() const noexcept { return stopped_ || !reply_.stop_reason.empty(); }
    /// The data of the first error event or unreadable event, as it came.
    std::string const& failed_data() const noexcept { return failed_data_; }
    Reply& reply() noexcept { return reply_; }

private:
    Reply reply_;
    std::string error_;
    std::string failed_data_;
    bool stopped_ = false;
    bool errored_ = false;
    bool malformed_ = false;
};

} // namespace cascade::anthropic
