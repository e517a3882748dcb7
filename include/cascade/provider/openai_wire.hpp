#pragma once
/// @file
/// @brief The OpenAI chat-completions wire format (Groq, DeepSeek, OpenRouter, Hugging Face, Ollama, vLLM):
/// request bodies and response parsing, sans-io.

#include <cascade/core/completion.hpp>
#include <cascade/core/prices.hpp>
#include <cascade/core/request.hpp>

#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
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

/// @brief A `Request::response_format` as a JSON object, or nothing when it is not one.
inline std::optional<boost::json::object> parse_response_format(std::string_view raw) {
    boost::system::error_code ec;
    auto v = boost::json::parse(raw, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.get_object());
}

/// @brief Why `req` cannot go to an OpenAI-compatible tier (a `response_format` that is not a JSON object),
/// or empty when it can. The tier fails its attempt with `Fault::bad_request` and this text.
inline std::string request_problem(Request const& req) {
    if (req.response_format && !parse_response_format(*req.response_format)) return "response_format is not a JSON object";
    return {};
}

/// @brief Fields `Request::extra` cannot set: the tier owns them.
inline bool is_reserved(std::string_view field) noexcept {
    return field == "model" || field == "messages" || field == "stream" || field == "stream_options";
}

/// @brief The JSON body of `POST /chat/completions`.
///
/// `model` is `req.model` when set, else `model`. Only what the request sets is sent: `max_tokens` (when
/// positive), `temperature`, `top_p` (a NaN is not sent), `seed`, `stop` (an array, when not empty),
/// `response_format` (as given; check `request_problem` first). Then each field of `req.extra` that
/// the body does not already have, except `model`, `messages`, `stream` and `stream_options`.
inline std::string request_body(Request const& req, std::string_view model, bool stream = false, bool stream_usage = true) {
    // Built in an arena on the stack (heap beyond it), freed at once: the body is thrown away once serialized.
    unsigned char arena[4096];
    boost::json::monotonic_resource mr(arena, sizeof arena);
    boost::json::storage_ptr const sp(&mr);
    boost::json::object body(sp);
    body["model"] = req.model ? std::string_view(*req.model) : model;
    boost::json::array messages(sp);
    for (auto const& m : req.messages) {
        boost::json::object msg(sp);
        msg["role"] = role_name(m.role);
        msg["content"] = m.content;
        messages.push_back(std::move(msg));
    }
    body["messages"] = std::move(messages);
    if (req.max_tokens && *req.max_tokens > 0) body["max_tokens"] = *req.max_tokens;
    if (req.temperature && !std::isnan(*req.temperature)) body["temperature"] = *req.temperature;
    if (req.top_p && !std::isnan(*req.top_p)) body["top_p"] = *req.top_p;
    if (req.seed) body["seed"] = *req.seed;
    if (!req.stop.empty()) {
        boost::json::array stop(sp);
        for (auto const& s : req.stop) stop.emplace_back(s);
        body["stop"] = std::move(stop);
    }
    if (req.response_format)
        if (auto rf = parse_response_format(*req.response_format)) body["response_format"] = std::move(*rf);
    if (stream) {
        body["stream"] = true;
        if (stream_usage) body["stream_options"] = boost::json::object({{"include_usage", true}}, sp);
    }
    for (auto const& field : req.extra)
        if (!is_reserved(field.key()) && !body.contains(field.key())) body[field.key()] = field.value();
    return boost::json::serialize(body);
}

/// @brief What a successful chat-completions body says.
struct ChatReply {
    std::string text;
    std::string model;
    std::string finish_reason;
    Usage usage;
    /// The response's `id` (`chatcmpl-...`), empty if none.
    std::string id;
    /// The response's `created`, unix seconds; 0 if none.
    std::int64_t created = 0;
    /// The response's `system_fingerprint`, empty if none.
    std::string system_fingerprint;
};

/// @brief Reads `id`, `created` and `system_fingerprint` where `o` has them; the others keep their value.
inline void read_identity(boost::json::object const& o, ChatReply& r) {
    if (auto const* id = o.if_contains("id"); id && id->is_string()) r.id = std::string(id->get_string());
    if (auto const* c = o.if_contains("created")) {
        if (c->is_int64()) r.created = c->as_int64();
        else if (c->is_uint64() && c->as_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            r.created = static_cast<std::int64_t>(c->as_uint64());
    }
    if (auto const* f = o.if_contains("system_fingerprint"); f && f->is_string()) r.system_fingerprint = std::string(f->get_string());
}

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
    // Parsed into an arena on the stack (heap beyond it): what the reply keeps is copied out below.
    unsigned char arena[8192];
    boost::json::monotonic_resource mr(arena, sizeof arena);
    auto v = boost::json::parse(body, ec, &mr);
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
    read_identity(o, r);
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
        read_identity(o, reply_);
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
