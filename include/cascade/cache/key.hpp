#pragma once
/// @file
/// @brief The cache key: SHA-256 over the normalised request and its tags.
///
/// The hashed text is, in order, each line ending in `\n`:
/// `cascade-cache-v1`; per message `<role>:<byte length>:<content>`; `max_tokens=<n>`;
/// `temperature=<value rounded to 3 decimals>`; then the tags sorted and de-duplicated, one `tag=<tag>`
/// line each. Lengths make the encoding unambiguous; sorting makes tag order irrelevant. The key is the
/// lowercase hex digest: stable across runs, machines and compilers (no std::hash, no pointer values).

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
    std::string s = "cascade-cache-v1\n";
    for (auto const& m : req.messages) {
        s += m.role == Role::system ? "system" : m.role == Role::assistant ? "assistant" : "user";
        s += ':';
        s += std::to_string(m.content.size());
        s += ':';
        s += m.content;
        s += '\n';
    }
    s += "max_tokens=" + std::to_string(req.max_tokens) + "\n";
    char temp[32];
    std::snprintf(temp, sizeof temp, "%.3f", std::round(req.temperature * 1000.0) / 1000.0);
    s += "temperature=";
    s += temp;
    s += '\n';
    std::vector<std::string> tags = req.tags;
    std::sort(tags.begin(), tags.end());
    tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
    for (auto const& t : tags) s += "tag=" + t + "\n";
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
