#pragma once
/// @file
/// @brief The Gemini `generateContent` wire format (Vertex AI and the Gemini API), sans-io.

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
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace cascade::gemini {

/// @brief Why `req` cannot go to a Gemini tier, or empty when it can. Carried: `response_format` of type
/// `text` (nothing to send) or `json_object` (`responseMimeType: application/json`); a `json_schema`
/// (JSON Schema, where Gemini's `responseSchema` is an OpenAPI subset) or any other type is not, nor are
/// provider-specific `extra` fields, nor a `model` override that cannot be a URL path segment. The tier
/// fails its attempt with `Fault::bad_request` and this text rather than drop the field.
inline std::string request_problem(Request const& req) {
    if (req.response_format) {
        auto rf = openai::parse_response_format(*req.response_format);
        if (!rf) return "response_format is not a JSON object";
        auto const* type = rf->if_contains("type");
        std::string_view const t = type && type->is_string() ? std::string_view(type->get_string()) : std::string_view();
        if (t != "text" && t != "json_object")
            return "response_format of type '" + std::string(t) + "' is not supported by Gemini tiers (text and json_object are)";
    }
    if (!req.extra.empty()) return "extra fields are sent only to OpenAI-compatible tiers, not to Gemini";
    if (req.model) {
        auto const& m = *req.model;
        bool const segment = !m.empty() && std::all_of(m.begin(), m.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '@';
        });
        if (!segment) return "model '" + m + "' cannot be put in a Gemini URL";
    }
    return {};
}

/// @brief The JSON body of `:generateContent`: system instruction, contents, generationConfig.
///
/// `generationConfig` holds only what the request sets: `maxOutputTokens` (when positive), `temperature`,
/// `topP` (a NaN is not sent), `seed`, `stopSequences` (when not empty), `responseMimeType` for a
/// `json_object` response format; it is left out when empty. Check `request_problem` first: what it
/// names is not sent. The model is in the URL (`req.model` when set, the tier's otherwise).
inline std::string request_body(Request const& req) {
    boost::json::object body;
    boost::json::array contents;
    std::string system;
    for (auto const& m : req.messages) {
        if (m.role == Role::system) {
            if (!system.empty()) system += "\n\n";
            system += m.content;
            continue;
        }
        boost::json::object part{{"text", m.content}};
        boost::json::object content;
        content["role"] = m.role == Role::assistant ? "model" : "user";
        content["parts"] = boost::json::array{std::move(part)};
        contents.push_back(std::move(content));
    }
    if (!system.empty()) body["systemInstruction"] = boost::json::object{{"parts", boost::json::array{boost::json::object{{"text", system}}}}};
    body["contents"] = std::move(contents);
    boost::json::object gen;
    if (req.max_tokens && *req.max_tokens > 0) gen["maxOutputTokens"] = *req.max_tokens;
    if (req.temperature && !std::isnan(*req.temperature)) gen["temperature"] = *req.temperature;
    if (req.top_p && !std::isnan(*req.top_p)) gen["topP"] = *req.top_p;
    if (req.seed) gen["seed"] = *req.seed;
    if (!req.stop.empty()) {
        boost::json::array stop;
        for (auto const& s : req.stop) stop.emplace_back(s);
        gen["stopSequences"] = std::move(stop);
    }
    if (req.response_format)
        if (auto rf = openai::parse_response_format(*req.response_format))
            if (auto const* t = rf->if_contains("type"); t && t->is_string() && t->get_string() == "json_object")
                gen["responseMimeType"] = "application/json";
    if (!gen.empty()) body["generationConfig"] = std::move(gen);
    return boost::json::serialize(body);
}

/// @brief What a 200 `generateContent` body says.
struct Reply {
    std::string text;
    std::string model;
    /// `responseId`, empty if none.
    std::string id;
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, `RECITATION`, `PROHIBITED_CONTENT`, ... or the prompt's block
    /// reason (`promptFeedback.blockReason`) when there is no candidate.
    std::string finish_reason;
    Usage usage;
    /// The prompt itself was blocked (no candidates, `promptFeedback.blockReason`).
    bool prompt_blocked = false;
};

enum class ParseError { not_json, error_object, no_candidates };

/// @brief Finish reasons that mean the model refused: the chain moves to its next tier.
inline bool is_refusal(std::string_view finish_reason) noexcept {
    return finish_reason == "SAFETY" || finish_reason == "RECITATION" || finish_reason == "PROHIBITED_CONTENT" ||
           finish_reason == "BLOCKLIST" || finish_reason == "SPII";
}

// A token count: negative or not an integer is 0; one past 32 bits saturates rather than wrapping to a
// small number.
inline std::uint32_t count_of(boost::json::object const& o, std::string_view key) noexcept {
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    auto const* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64() <= 0 ? 0 : v->as_int64() >= top ? top : static_cast<std::uint32_t>(v->as_int64());
    if (v->is_uint64()) return v->as_uint64() >= top ? top : static_cast<std::uint32_t>(v->as_uint64());
    return 0;
}

// Completion tokens: the answer's and the thinking's (billed as output), saturating at 32 bits.
inline std::uint32_t output_tokens(std::uint32_t candidates, std::uint32_t thoughts) noexcept {
    std::uint64_t const sum = std::uint64_t{candidates} + thoughts;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, std::numeric_limits<std::uint32_t>::max()));
}

// Appends the answer text of a candidate's parts. Parts marked `thought` are the model's reasoning, not
// the answer.
inline void append_answer_text(boost::json::object const& candidate, std::string& text) {
    auto const* content = candidate.if_contains("content");
    if (!content || !content->is_object()) return;
    auto const* parts = content->get_object().if_contains("parts");
    if (!parts || !parts->is_array()) return;
    for (auto const& p : parts->get_array()) {
        auto const* po = p.if_object();
        if (!po) continue;
        if (auto const* th = po->if_contains("thought"); th && th->is_bool() && th->get_bool()) continue;
        if (auto const* t = po->if_contains("text"); t && t->is_string()) text += t->get_string();
    }
}

// The first candidate, or null when there is none (a blocked prompt).
inline boost::json::object const* first_candidate(boost::json::object const& o) noexcept {
    auto const* cands = o.if_contains("candidates");
    if (!cands || !cands->is_array() || cands->get_array().empty()) return nullptr;
    return cands->get_array()[0].if_object();
}

inline bool has_candidates(boost::json::object const& o) noexcept {
    auto const* cands = o.if_contains("candidates");
    return cands && cands->is_array() && !cands->get_array().empty();
}

// `promptFeedback.blockReason` into `r` (prompt_blocked, finish_reason); false when there is none.
inline bool read_block_reason(boost::json::object const& o, Reply& r) {
    auto const* pf = o.if_contains("promptFeedback");
    if (!pf || !pf->is_object()) return false;
    auto const* br = pf->get_object().if_contains("blockReason");
    if (!br || !br->is_string()) return false;
    r.prompt_blocked = true;
    // An empty reason still blocks; the trail should say so rather than "prompt blocked: ".
    if (br->get_string().empty())
        r.finish_reason = "BLOCK_REASON_UNSPECIFIED";
    else
        r.finish_reason = std::string_view(br->get_string());
    return true;
}

/// @brief Parses a `generateContent` body. Thinking tokens count as output (they are billed as output).
inline boost::system::result<Reply, ParseError> parse_reply(std::string_view body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) return ParseError::not_json;
    // streamGenerateContent without alt=sse wraps bodies in an array.
    if (v.is_array() && !v.get_array().empty()) v = v.get_array()[0];
    if (!v.is_object()) return ParseError::not_json;
    auto const& o = v.get_object();
    if (o.contains("error")) return ParseError::error_object;
    Reply r;
    if (auto const* m = o.if_contains("modelVersion"); m && m->is_string()) r.model = std::string(m->get_string());
    if (auto const* id = o.if_contains("responseId"); id && id->is_string()) r.id = std::string(id->get_string());
    if (auto const* um = o.if_contains("usageMetadata"); um && um->is_object()) {
        auto const& u = um->get_object();
        r.usage.prompt_tokens = count_of(u, "promptTokenCount");
        r.usage.cached_prompt_tokens = count_of(u, "cachedContentTokenCount");  // part of the prompt's count
        r.usage.completion_tokens = output_tokens(count_of(u, "candidatesTokenCount"), count_of(u, "thoughtsTokenCount"));
    }
    if (!has_candidates(o)) {
        if (read_block_reason(o, r)) return r;
        return ParseError::no_candidates;
    }
    auto const* cand = first_candidate(o);
    if (!cand) return ParseError::no_candidates;
    if (auto const* fr = cand->if_contains("finishReason"); fr && fr->is_string()) r.finish_reason = std::string(fr->get_string());
    append_answer_text(*cand, r.text);
    return r;
}

/// @brief Builds one reply from a streamed answer (`:streamGenerateContent?alt=sse`). Each event's data
/// is one `GenerateContentResponse`: `candidates[0].content.parts[].text` is that chunk's new text
/// (thought parts are not the answer); `usageMetadata` is cumulative, the last chunk (with
/// `finishReason`) having the output counts, so a count a chunk carries replaces the one before and
/// chunks are never added together. There is no `[DONE]`: a stream is whole once a finish reason came
/// (or the prompt was blocked, which is the whole answer). An error comes as a data event whose JSON is an
/// error envelope, `{"error":{"code":503,"message":...,"status":"UNAVAILABLE"}}`.
class StreamAssembler {
public:
    /// @brief Feeds one SSE event's data. Returns false once the stream reported an error.
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
        if (error_event || o.contains("error")) {
            if (!malformed_) failed_data_ = std::string(data);
            errored_ = true;
            if (auto const* e = o.if_contains("error"); e && e->is_object())
                if (auto const* m = e->get_object().if_contains("message"); m && m->is_string()) error_ = std::string(m->get_string());
            if (error_.empty()) error_ = "an error occurred during streaming";
            return false;
        }
        if (auto const* m = o.if_contains("modelVersion"); m && m->is_string()) reply_.model = std::string_view(m->get_string());
        if (auto const* id = o.if_contains("responseId"); id && id->is_string()) reply_.id = std::string_view(id->get_string());
        if (auto const* um = o.if_contains("usageMetadata"); um && um->is_object()) {
            auto const& u = um->get_object();
            read_count(u, "promptTokenCount", reply_.usage.prompt_tokens);
            read_count(u, "cachedContentTokenCount", reply_.usage.cached_prompt_tokens);
            read_count(u, "candidatesTokenCount", candidates_tokens_);
            read_count(u, "thoughtsTokenCount", thoughts_tokens_);
            reply_.usage.completion_tokens = output_tokens(candidates_tokens_, thoughts_tokens_);
        }
        if (!has_candidates(o)) {
            read_block_reason(o, reply_);
            return true;
        }
        if (auto const* cand = first_candidate(o)) {
            append_answer_text(*cand, reply_.text);
            if (auto const* fr = cand->if_contains("finishReason"); fr && fr->is_string() && !fr->get_string().empty())
                reply_.finish_reason = std::string_view(fr->get_string());
        }
        return true;
    }

    bool errored() const noexcept { return errored_; }
    std::string const& error_message() const noexcept { return error_; }
    /// An event whose data is not a JSON object.
    bool malformed() const noexcept { return malformed_; }
    /// A finish reason arrived (or the prompt was blocked); one cut before lost part of the answer.
    bool complete() const noexcept { return !reply_.finish_reason.empty(); }
    /// `promptFeedback.blockReason` with no candidates; `reply().finish_reason` holds the reason.
    bool prompt_blocked() const noexcept { return reply_.prompt_blocked; }
    /// The data of the first error event or unreadable event, as it came.
    std::string const& failed_data() const noexcept { return failed_data_; }
    /// Text so far, model, finish reason and usage (the latest counts).
    Reply& reply() noexcept { return reply_; }

private:
    // A count the chunk carries replaces the one before; one it lacks keeps its value.
    static void read_count(boost::json::object const& u, std::string_view key, std::uint32_t& into) noexcept {
        if (u.contains(key)) into = count_of(u, key);
    }

    Reply reply_;
    std::string error_;
    std::string failed_data_;
    std::uint32_t candidates_tokens_ = 0;
    std::uint32_t thoughts_tokens_ = 0;
    bool errored_ = false;
    bool malformed_ = false;
};

} // namespace cascade::gemini
