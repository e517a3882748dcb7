#pragma once
/// @file
/// @brief The OpenAI chat-completions wire format (Groq, DeepSeek, OpenRouter, Hugging Face, Ollama, vLLM):
/// request bodies and response parsing, sans-io.

#include <cascade/core/completion.hpp>
#include <cascade/core/prices.hpp>
#include <cascade/core/request.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace cascade {

namespace openai {

inline std::string_view role_name(Role r) noexcept {
    switch (r) {
    case Role::system: return "system";
    case Role::assistant: return "assistant";
    case Role::user: break;
    }
    return "user";
}

/// @brief The JSON body of `POST /chat/completions`.
inline std::string request_body(Request const& req, std::string_view model, bool stream = false, bool stream_usage = true) {
    boost::json::object body;
    body["model"] = model;
    boost::json::array messages;
    for (auto const& m : req.messages) {
        boost::json::object msg;
        msg["role"] = role_name(m.role);
        msg["content"] = m.content;
        messages.push_back(std::move(msg));
    }
    body["messages"] = std::move(messages);
    if (req.max_tokens > 0) body["max_tokens"] = req.max_tokens;
    body["temperature"] = req.temperature;
    if (stream) {
        body["stream"] = true;
        if (stream_usage) body["stream_options"] = boost::json::object{{"include_usage", true}};
    }
    return boost::json::serialize(body);
}

/// @brief What a successful chat-completions body says.
struct ChatReply {
    std::string text;
    std::string model;
    std::string finish_reason;
    Usage usage;
};

/// @brief Why a 2xx body is not a usable reply.
enum class ParseError {
    not_json,      ///< blank (keep-alive lines, then a close), truncated, or not JSON at all
    error_object,  ///< a JSON `error` member inside a 2xx (OpenRouter, mid-stream errors)
    no_choices,    ///< JSON without `choices[0].message`
};

// A token count: negative or not an integer is 0; one past 32 bits saturates rather than wrapping to a
// small number (4294967382 is not 86 tokens).
inline std::uint32_t to_u32(boost::json::value const* v) noexcept {
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64() <= 0 ? 0 : v->as_int64() >= top ? top : static_cast<std::uint32_t>(v->as_int64());
    if (v->is_uint64()) return v->as_uint64() >= top ? top : static_cast<std::uint32_t>(v->as_uint64());
    return 0;
}

/// @brief Usage from an OpenAI-style object (Groq streams put it under `x_groq.usage`).
inline Usage parse_usage(boost::json::object const& o) noexcept {
    Usage u;
    auto const* usage = o.if_contains("usage");
    if ((!usage || !usage->is_object()) && o.contains("x_groq")) {
        if (auto const* xg = o.at("x_groq").if_object()) usage = xg->if_contains("usage");
    }
    if (usage && usage->is_object()) {
        auto const& uo = usage->get_object();
        u.prompt_tokens = to_u32(uo.if_contains("prompt_tokens"));
        u.completion_tokens = to_u32(uo.if_contains("completion_tokens"));
        // Prompt tokens served from the provider's cache: DeepSeek's cache hits, OpenAI's (and Groq's) details.
        u.cached_prompt_tokens = to_u32(uo.if_contains("prompt_cache_hit_tokens"));
        if (auto const* d = uo.if_contains("prompt_tokens_details"); d && d->is_object() && !u.cached_prompt_tokens)
            u.cached_prompt_tokens = to_u32(d->get_object().if_contains("cached_tokens"));
    }
    return u;
}

/// @brief Parses a non-streamed chat-completions body. Leading white space (DeepSeek sends blank lines
/// while a request waits in its queue) is skipped.
inline boost::system::result<ChatReply, ParseError> parse_reply(std::string_view body) {
    while (!body.empty() && (body.front() == '\n' || body.front() == '\r' || body.front() == ' ' || body.front() == '\t'))
        body.remove_prefix(1);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return ParseError::not_json;
    auto const& o = v.get_object();
    if (auto const* err = o.if_contains("error"); err && !err->is_null()) return ParseError::error_object;
    auto const* choices = o.if_contains("choices");
    if (!choices || !choices->is_array() || choices->get_array().empty()) return ParseError::no_choices;
    auto const* choice = choices->get_array()[0].if_object();
    if (!choice) return ParseError::no_choices;
    ChatReply r;
    if (auto const* msg = choice->if_contains("message"); msg && msg->is_object()) {
        if (auto const* content = msg->get_object().if_contains("content"); content && content->is_string())
            r.text = std::string(content->get_string());
    } else {
        return ParseError::no_choices;
    }
    if (auto const* fr = choice->if_contains("finish_reason"); fr && fr->is_string()) r.finish_reason = std::string(fr->get_string());
    if (auto const* m = o.if_contains("model"); m && m->is_string()) r.model = std::string(m->get_string());
    r.usage = parse_usage(o);
    return r;
}

/// @brief Builds one reply from a streamed chat completion (SSE chunks with `choices[0].delta.content`;
/// usage in the last chunk, or under `x_groq.usage` on Groq).
class StreamAssembler {
public:
    /// @brief Feeds one event's data. Returns false once the stream reported an error.
    bool on_data(std::string_view data, bool error_event) {
        if (data == "[DONE]") {
            done_ = true;
            return true;
        }
        boost::system::error_code ec;
        auto v = boost::json::parse(data, ec);
        if (ec || !v.is_object()) {
            if (!malformed_ && !errored_) failed_data_ = std::string(data);
            malformed_ = true;
            return true;
        }
        auto const& o = v.get_object();
        if (error_event || (o.contains("error") && !o.at("error").is_null())) {
            if (!errored_) failed_data_ = std::string(data);
            errored_ = true;
            if (auto const* e = o.if_contains("error"); e && e->is_object()) {
                if (auto const* m = e->get_object().if_contains("message"); m && m->is_string()) error_ = std::string(m->get_string());
            }
            if (error_.empty()) error_ = "an error occurred during streaming";
            return false;
        }
        if (auto const* m = o.if_contains("model"); m && m->is_string()) reply_.model = std::string(m->get_string());
        if (auto const* choices = o.if_contains("choices"); choices && choices->is_array() && !choices->get_array().empty()) {
            if (auto const* choice = choices->get_array()[0].if_object()) {
                if (auto const* delta = choice->if_contains("delta"); delta && delta->is_object())
                    if (auto const* c = delta->get_object().if_contains("content"); c && c->is_string()) reply_.text += c->get_string();
                if (auto const* fr = choice->if_contains("finish_reason"); fr && fr->is_string()) reply_.finish_reason = std::string(fr->get_string());
            }
        }
        auto u = parse_usage(o);
        // Not u.total(): it is 32 bits and wraps, so 4294967295 + 1 tokens would read as none.
        if (u.prompt_tokens || u.completion_tokens) reply_.usage = u;
        return true;
    }

    bool errored() const noexcept { return errored_; }
    std::string const& error_message() const noexcept { return error_; }
    /// A stream that stopped before `[DONE]` or a finish reason was cut.
    bool complete() const noexcept { return done_ || !reply_.finish_reason.empty(); }
    bool malformed() const noexcept { return malformed_; }
    /// The data of the first error event or unreadable event, as it came.
    std::string const& failed_data() const noexcept { return failed_data_; }
    ChatReply& reply() noexcept { return reply_; }

private:
    ChatReply reply_;
    std::string error_;
    std::string failed_data_;
    bool done_ = false;
    bool errored_ = false;
    bool malformed_ = false;
};

} // namespace openai
} // namespace cascade
