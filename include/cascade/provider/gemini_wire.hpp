#pragma once
/// @file
/// @brief The Gemini `generateContent` wire format (Vertex AI and the Gemini API), sans-io.

#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace cascade::gemini {

/// @brief The JSON body of `:generateContent`: system instruction, contents, generationConfig.
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
    if (req.max_tokens > 0) gen["maxOutputTokens"] = req.max_tokens;
    gen["temperature"] = req.temperature;
    body["generationConfig"] = std::move(gen);
    return boost::json::serialize(body);
}

/// @brief What a 200 `generateContent` body says.
struct Reply {
    std::string text;
    std::string model;
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
    if (auto const* um = o.if_contains("usageMetadata"); um && um->is_object()) {
        auto const& u = um->get_object();
        r.usage.prompt_tokens = count_of(u, "promptTokenCount");
        r.usage.cached_prompt_tokens = count_of(u, "cachedContentTokenCount");  // part of the prompt's count
        std::uint64_t const output = std::uint64_t{count_of(u, "candidatesTokenCount")} + count_of(u, "thoughtsTokenCount");
        r.usage.completion_tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(output, std::numeric_limits<std::uint32_t>::max()));
    }
    auto const* cands = o.if_contains("candidates");
    if (!cands || !cands->is_array() || cands->get_array().empty()) {
        if (auto const* pf = o.if_contains("promptFeedback"); pf && pf->is_object()) {
            if (auto const* br = pf->get_object().if_contains("blockReason"); br && br->is_string()) {
                r.prompt_blocked = true;
                // An empty reason still blocks; the trail should say so rather than "prompt blocked: ".
                r.finish_reason = br->get_string().empty() ? std::string("BLOCK_REASON_UNSPECIFIED") : std::string(br->get_string());
                return r;
            }
        }
        return ParseError::no_candidates;
    }
    auto const* cand = cands->get_array()[0].if_object();
    if (!cand) return ParseError::no_candidates;
    if (auto const* fr = cand->if_contains("finishReason"); fr && fr->is_string()) r.finish_reason = std::string(fr->get_string());
    if (auto const* content = cand->if_contains("content"); content && content->is_object()) {
        if (auto const* parts = content->get_object().if_contains("parts"); parts && parts->is_array()) {
            for (auto const& p : parts->get_array()) {
                auto const* po = p.if_object();
                if (!po) continue;
                // Parts marked `thought` are the model's reasoning, not the answer.
                if (auto const* th = po->if_contains("thought"); th && th->is_bool() && th->get_bool()) continue;
                if (auto const* t = po->if_contains("text"); t && t->is_string()) r.text += t->get_string();
            }
        }
    }
    return r;
}

} // namespace cascade::gemini
