#pragma once
/// @file
/// @brief The cache key: SHA-256 over the normalised request and its tags.
///
/// The hashed text is, in order, each line ending in `\n`:
/// `cascade-cache-v2`; per message `<role>:<byte length>:<content>`; `max_tokens=<n>`;
/// `temperature=<value rounded to 3 decimals>` (`-0` written as `0`, NaN as `nan`); then the tags sorted
/// and de-duplicated, one `tag:<byte length>:<tag>` line each. Byte lengths make the encoding
/// unambiguous: a tag or a message holding a newline cannot pass for two (v1 wrote `tag=<tag>`, so the tag
/// `lang=de\ntag=tone=formal` had the key of the two tags `lang=de` and `tone=formal`). Sorting makes tag
/// order irrelevant. The key is the lowercase hex digest: stable across runs, machines and compilers (no
/// std::hash, no pointer values).

#include <cascade/core/request.hpp>

#include <cascade/detail/episodes.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace cascade {

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
    s += "max_tokens=" + std::to_string(req.max_tokens) + "\n";
    // + 0.0 turns -0 (from -0.0004, say) into 0, and every NaN is one `nan`: equal after rounding, equal key.
    double const temperature = std::round(req.temperature * 1000.0) / 1000.0 + 0.0;
    char temp[32];
    if (std::isnan(temperature)) std::snprintf(temp, sizeof temp, "nan");
    else std::snprintf(temp, sizeof temp, "%.3f", temperature);
    s += "temperature=";
    s += temp;
    s += '\n';
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
