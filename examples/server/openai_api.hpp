#pragma once
// The OpenAI wire format, apart from any socket: a chat request parsed into a cascade::Request, the
// response JSON of a whole answer, the model list, and errors in OpenAI's shape (`{"error":{"message",
// "type","param","code"}}`) with the status the SDKs map to their classes (400 BadRequestError, 404
// NotFoundError, 413, 502/503 APIError).

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/server/openai_sse.hpp>

#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace app {

/// What a client asked for, read from its JSON body.
struct ChatCall {
    cascade::Request req;
    /// The body's `model`, empty when it named none.
    std::string model;
    bool stream = false;
    bool include_usage = false;
};

/// An error answered in OpenAI's shape.
struct ApiError {
    unsigned status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param;  ///< the offending field; empty: null
    std::string code;   ///< empty: null
};

inline std::string error_body(ApiError const& e) {
    boost::json::object err;
    err["message"] = e.message;
    err["type"] = e.type;
    if (e.param.empty()) err["param"] = nullptr;
    else err["param"] = e.param;
    if (e.code.empty()) err["code"] = nullptr;
    else err["code"] = e.code;
    boost::json::object o;
    o["error"] = std::move(err);
    return boost::json::serialize(o);
}

inline ApiError bad_field(std::string param, std::string message) {
    return ApiError{400, std::move(message), "invalid_request_error", std::move(param), {}};
}

namespace detail {

inline std::optional<cascade::Role> role_of(std::string_view r) {
    if (r == "system" || r == "developer") return cascade::Role::system;
    if (r == "user") return cascade::Role::user;
    if (r == "assistant") return cascade::Role::assistant;
    return std::nullopt;
}

// A message's content: a string, null (an assistant's tool call), or text parts.
inline std::optional<std::string> content_of(boost::json::value const& c) {
    if (c.is_string()) return std::string(c.get_string());
    if (c.is_null()) return std::string();
    if (!c.is_array()) return std::nullopt;
    std::string text;
    for (auto const& part : c.get_array()) {
        auto const* o = part.if_object();
        auto const* type = o ? o->if_contains("type") : nullptr;
        auto const* t = o ? o->if_contains("text") : nullptr;
        if (!type || !type->is_string() || type->get_string() != "text" || !t || !t->is_string()) return std::nullopt;
        text += t->get_string();
    }
    return text;
}

// The field `name` of `o`, or null when it is absent or JSON null (the SDKs send null for "unset").
inline boost::json::value const* field(boost::json::object const& o, std::string_view name) {
    auto const* v = o.if_contains(name);
    return v && !v->is_null() ? v : nullptr;
}

inline std::optional<std::int64_t> integer_of(boost::json::value const& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double()) {  // 12.0 is an integer in JSON's eyes; 12.5 is not
        double const d = v.get_double();
        if (d == static_cast<double>(static_cast<std::int64_t>(d)) && d >= -9.0e18 && d <= 9.0e18) return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
}


} // namespace detail

/// The fields `parse_chat` reads itself; every other top-level field goes to `Request::extra`, as it is.
inline constexpr std::string_view known_fields[] = {"messages", "model", "stream", "stream_options", "max_tokens",
                                                    "max_completion_tokens", "temperature", "top_p", "seed", "stop",
                                                    "response_format"};

/// @brief The call a chat-completions body asks for, or the 400 that says what is wrong with it.
inline std::variant<ChatCall, ApiError> parse_chat(std::string_view body) {
    namespace json = boost::json;
    using detail::field;
    json::error_code ec;
    // Parsed into an arena on the stack (heap beyond it): the call copies out what it keeps, and `extra`
    // (its own storage) copies what it is given.
    unsigned char arena[8192];
    json::monotonic_resource mr(arena, sizeof arena);
    json::value v = json::parse(body, ec, &mr);
    if (ec) return ApiError{400, "We could not parse the JSON body of your request (" + ec.message() + ")", "invalid_request_error", {}, {}};
    auto const* o = v.if_object();
    if (!o) return ApiError{400, "The body of your request must be a JSON object", "invalid_request_error", {}, {}};

    ChatCall call;
    auto const* messages = field(*o, "messages");
    if (!messages) return bad_field("messages", "Missing required parameter: 'messages'");
    if (!messages->is_array()) return bad_field("messages", "Invalid type for 'messages': expected an array");
    if (messages->get_array().empty()) return bad_field("messages", "'messages' must be a non-empty array");
    std::size_t i = 0;
    for (auto const& m : messages->get_array()) {
        std::string const where = "messages[" + std::to_string(i++) + "]";
        auto const* mo = m.if_object();
        if (!mo) return bad_field(where, "Invalid type for '" + where + "': expected an object");
        auto const* role = field(*mo, "role");
        if (!role) return bad_field(where + ".role", "Missing required parameter: '" + where + ".role'");
        auto const r = role->is_string() ? detail::role_of(role->get_string()) : std::nullopt;
        if (!r) return bad_field(where + ".role", "Invalid value for '" + where + ".role': expected system, developer, user or assistant");
        auto const* content = mo->if_contains("content");
        if (!content) return bad_field(where + ".content", "Missing required parameter: '" + where + ".content'");
        auto text = detail::content_of(*content);
        if (!text) return bad_field(where + ".content", "Invalid type for '" + where + ".content': expected a string or an array of text parts");
        call.req.messages.push_back(cascade::Message{*r, std::move(*text)});
    }

    if (auto const* model = field(*o, "model")) {
        if (!model->is_string()) return bad_field("model", "Invalid type for 'model': expected a string");
        call.model = model->get_string();
    }
    if (auto const* s = field(*o, "stream")) {
        if (!s->is_bool()) return bad_field("stream", "Invalid type for 'stream': expected a boolean");
        call.stream = s->get_bool();
    }
    if (auto const* so = field(*o, "stream_options")) {
        if (!so->is_object()) return bad_field("stream_options", "Invalid type for 'stream_options': expected an object");
        if (auto const* u = field(so->get_object(), "include_usage")) {
            if (!u->is_bool()) return bad_field("stream_options.include_usage", "Invalid type for 'stream_options.include_usage': expected a boolean");
            call.include_usage = u->get_bool();
        }
    }
    // max_completion_tokens is the current name; max_tokens the deprecated one. The first present wins.
    for (char const* name : {"max_completion_tokens", "max_tokens"}) {
        auto const* n = field(*o, name);
        if (!n) continue;
        auto const value = detail::integer_of(*n);
        if (!value || *value < 1 || *value > std::numeric_limits<int>::max())
            return bad_field(name, std::string("Invalid value for '") + name + "': expected a positive integer");
        call.req.max_tokens = static_cast<int>(*value);
        break;
    }
    if (auto const* t = field(*o, "temperature")) {
        if (!t->is_number()) return bad_field("temperature", "Invalid type for 'temperature': expected a number");
        double const x = t->to_number<double>();
        if (!(x >= 0.0 && x <= 2.0)) return bad_field("temperature", "Invalid value for 'temperature': expected a number from 0 to 2");
        call.req.temperature = x;
    }
    if (auto const* p = field(*o, "top_p")) {
        if (!p->is_number()) return bad_field("top_p", "Invalid type for 'top_p': expected a number");
        double const x = p->to_number<double>();
        if (!(x >= 0.0 && x <= 1.0)) return bad_field("top_p", "Invalid value for 'top_p': expected a number from 0 to 1");
        call.req.top_p = x;
    }
    if (auto const* s = field(*o, "seed")) {
        auto const value = detail::integer_of(*s);
        if (!value) return bad_field("seed", "Invalid type for 'seed': expected an integer");
        call.req.seed = *value;
    }
    if (auto const* s = field(*o, "stop")) {
        if (s->is_string()) {
            call.req.stop.emplace_back(s->get_string());
        } else if (s->is_array()) {
            for (auto const& x : s->get_array()) {
                if (!x.is_string()) return bad_field("stop", "Invalid type for 'stop': expected a string or an array of strings");
                call.req.stop.emplace_back(x.get_string());
            }
        } else {
            return bad_field("stop", "Invalid type for 'stop': expected a string or an array of strings");
        }
    }
    if (auto const* f = field(*o, "response_format")) {
        if (!f->is_object()) return bad_field("response_format", "Invalid type for 'response_format': expected an object");
        call.req.response_format = json::serialize(*f);  // kept raw: json_schema objects pass as they are
    }
    for (auto const& kv : *o) {
        std::string_view const key(kv.key().data(), kv.key().size());
        bool known = false;
        for (auto k : known_fields) known = known || k == key;
        if (!known) call.req.extra[kv.key()] = kv.value();
    }
    return call;
}

/// A response id, `chatcmpl-` and 24 hex digits, for an answer whose upstream gave none.
inline std::string response_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "chatcmpl-";
    for (int i = 0; i < 24; ++i) id += hex[rng() % 16];
    return id;
}

inline std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// @brief A whole answer as a `chat.completion` object naming `model` (what the client asked for): the
/// upstream's id, created and system_fingerprint when it gave them, a generated id and now otherwise.
inline std::string completion_body(cascade::Completion const& c, std::string_view model) {
    // Written straight out, in the order OpenAI's answers have (no JSON tree to build and throw away);
    // strings are made valid UTF-8 and escaped as the stream's chunks are (cascade::server).
    using cascade::server::detail::append_json_text;
    std::string out;
    out.reserve(c.text.size() + model.size() + c.id.size() + 400);
    out += R"({"id":)";
    append_json_text(out, c.id.empty() ? response_id() : c.id);
    out += R"(,"object":"chat.completion","created":)";
    out += std::to_string(c.created > 0 ? c.created : unix_now());
    out += R"(,"model":)";
    append_json_text(out, model);
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
    append_json_text(out, c.text);
    out += R"(,"refusal":null},"logprobs":null,"finish_reason":)";
    append_json_text(out, cascade::server::OpenAISseWriter::finish_reason(c.finish_reason));
    out += R"(}],"usage":{"prompt_tokens":)";
    out += std::to_string(c.usage.prompt_tokens);
    out += R"(,"completion_tokens":)";
    out += std::to_string(c.usage.completion_tokens);
    out += R"(,"total_tokens":)";
    out += std::to_string(c.usage.total());
    if (c.usage.cached_prompt_tokens > 0) {
        out += R"(,"prompt_tokens_details":{"cached_tokens":)";
        out += std::to_string(c.usage.cached_prompt_tokens);
        out += '}';
    }
    out += R"(},"system_fingerprint":)";
    if (c.system_fingerprint.empty()) out += "null";
    else append_json_text(out, c.system_fingerprint);
    out += '}';
    return out;
}

/// @brief `GET /v1/models`: the chains served, in OpenAI's list format.
inline std::string models_body(std::span<std::string const> names, std::int64_t created) {
    namespace json = boost::json;
    json::array data;
    for (auto const& n : names) data.push_back(json::object{{"id", n}, {"object", "model"}, {"created", created}, {"owned_by", "cascade"}});
    return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

/// @brief The error for a fallible chain that has no answer: 503 when waiting may help (rate limits, 5xx,
/// timeouts, open circuits), 502 otherwise; the message names the fault, the last HTTP status and the
/// trail (labels and faults, never a key).
inline ApiError failure_error(cascade::Failure const& f) {
    bool const transient = f.code == cascade::Condition::transient;
    std::string message = "No upstream could answer (" + f.code.message();
    if (f.http_status) message += ", last HTTP status " + std::to_string(f.http_status);
    message += "): " + f.message();
    std::string code = f.code.category() == cascade::fault_category() ? f.code.message() : std::string("upstream_error");
    return ApiError{transient ? 503u : 502u, std::move(message), "upstream_error", {}, std::move(code)};
}

} // namespace app
