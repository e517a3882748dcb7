#pragma once
/// @file
/// @brief The cache key: SHA-256 over the normalised request and its tags.
///
/// The hashed text is, in order, each line ending in `\n`:
/// `cascade-cache-v2`; per message `<role>:<byte length>:<content>`; then only for the fields the request
/// sets, in this order: `max_tokens=<n>` (when positive: 0 or less is sent as unset, so keyed as unset);
/// `temperature=<value rounded to 3 decimals>` (`-0` written as `0`, NaN as `nan`); `top_p=<likewise>`;
/// `seed=<n>`; one `stop:<byte length>:<sequence>` per stop sequence, in order; `model:<byte
/// length>:<model>`; `response_format:<byte length>:<JSON>` (re-serialised when it is a JSON object, so
/// white space does not matter); `extra:<byte length>:<JSON>` when `extra` is not empty; then the tags sorted
/// and de-duplicated, one `tag:<byte length>:<tag>` line each. A field left unset writes no line, so a
/// request keeps the key it had before the field existed (v2 always wrote `max_tokens` and `temperature`,
/// whose defaults were 1024 and 0.7: a request setting those two has the same key as then). Byte lengths
/// make the encoding unambiguous: a tag or a message holding a newline cannot pass for two (v1 wrote `tag=<tag>`, so the tag
/// `lang=de\ntag=tone=formal` had the key of the two tags `lang=de` and `tone=formal`). Sorting makes tag
/// order irrelevant. The key is the lowercase hex digest: stable across runs, machines and compilers (no
/// std::hash, no pointer values).

#include <cascade/core/request.hpp>

#include <cascade/detail/episodes.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace cascade {

namespace detail {
// A number rounded to 3 decimals: + 0.0 turns -0 (from -0.0004, say) into 0, and every NaN is one `nan`:
// equal after rounding, equal key.
inline std::string key_number(double value) {
    double const rounded = std::round(value * 1000.0) / 1000.0 + 0.0;
    char text[32];
    if (std::isnan(rounded)) std::snprintf(text, sizeof text, "nan");
    else std::snprintf(text, sizeof text, "%.3f", rounded);
    return text;
}

// `<name>:<byte length>:<value>\n`: the length keeps a value holding a newline from passing for two lines.
inline void key_field(std::string& s, std::string_view name, std::string_view value) {
    s += name;
    s += ':';
    s += std::to_string(value.size());
    s += ':';
    s += value;
    s += '\n';
}
} // namespace detail

/// @brief The normalised text a request's cache key is the SHA-256 of (see the file comment).
inline std::string cache_key_material(Request const& req) {
    std::string s = "cascade-cache-v2\n";
    for (auto const& m : req.messages) {
        s += m.role == Role::system ? "system" : m.role == Role::assistant ? "assistant" : "user";
        s += ':';
        s += std::to_string(m.content.size());
        s += ':';
        s += m.content;
        s += '\n';
    }
    if (req.max_tokens && *req.max_tokens > 0) s += "max_tokens=" + std::to_string(*req.max_tokens) + "\n";
    if (req.temperature) s += "temperature=" + detail::key_number(*req.temperature) + "\n";
    if (req.top_p) s += "top_p=" + detail::key_number(*req.top_p) + "\n";
    if (req.seed) s += "seed=" + std::to_string(*req.seed) + "\n";
    for (auto const& stop : req.stop) detail::key_field(s, "stop", stop);
    if (req.model) detail::key_field(s, "model", *req.model);
    if (req.response_format) {
        boost::system::error_code ec;
        auto v = boost::json::parse(*req.response_format, ec);
        detail::key_field(s, "response_format", !ec && v.is_object() ? boost::json::serialize(v) : *req.response_format);
    }
    if (!req.extra.empty()) detail::key_field(s, "extra", boost::json::serialize(req.extra));
    std::vector<std::string> tags = req.tags;
    std::sort(tags.begin(), tags.end());
    tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
    for (auto const& t : tags) {
        s += "tag:";
        s += std::to_string(t.size());
        s += ':';
        s += t;
        s += '\n';
    }
    return s;
}

/// @brief Lowercase hex SHA-256 of `data`.
inline std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return detail::to_hex(md, len);
}

/// @brief The cache key of a request: 64 lowercase hex characters.
inline std::string cache_key(Request const& req) { return sha256_hex(cache_key_material(req)); }

} // namespace cascade
