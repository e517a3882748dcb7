#pragma once
/// @file
/// @brief Removing secrets from text before it reaches a trail, a log or an exception.

#include <span>
#include <string>
#include <string_view>

namespace cascade {

namespace detail {
inline bool is_key_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}
} // namespace detail

/// @brief `text` with every occurrence of each of `secrets` (of at least 4 characters) replaced by `***`,
/// and with anything shaped like an API key replaced too: `gsk_…` (Groq), `sk-…` (OpenAI, DeepSeek,
/// OpenRouter's `sk-or-…`), `hf_…`, `AIza…` (Google), `ya29.…` (Google access tokens), the word after
/// `Bearer `, and masked echoes such as `****_KEY` or `sk-VKMIs****wjh3`.
inline std::string redact(std::string_view text, std::span<std::string_view const> secrets = {}) {
    std::string out(text);
    for (auto s : secrets) {
        if (s.size() < 4) continue;
        for (auto pos = out.find(s); pos != std::string::npos; pos = out.find(s, pos + 3)) out.replace(pos, s.size(), "***");
    }
    static constexpr std::string_view prefixes[] = {"gsk_", "sk-", "hf_", "AIza", "ya29.", "Bearer "};
    std::string result;
    result.reserve(out.size());
    std::size_t i = 0;
    while (i < out.size()) {
        bool at_word_start = i == 0 || !detail::is_key_char(out[i - 1]);
        std::size_t matched = 0;
        if (at_word_start) {
            for (auto p : prefixes)
                if (out.compare(i, p.size(), p) == 0) matched = p.size();
        }
        // A run of mask characters (`****`) inside a token marks a masked key echoed back.
        bool masked = false;
        if (!matched && at_word_start) {
            std::size_t j = i;
            while (j < out.size() && (detail::is_key_char(out[j]) || out[j] == '*')) ++j;
            auto token = std::string_view(out).substr(i, j - i);
            masked = token.find("***") != std::string_view::npos && token.size() >= 6;
            if (masked) {
                result += "***";
                i = j;
                continue;
            }
        }
        if (matched) {
            std::size_t j = i + matched;
            std::size_t body = j;
            while (j < out.size() && (detail::is_key_char(out[j]) || out[j] == '*')) ++j;
            if (j - body >= 4) {
                if (out.compare(i, 7, "Bearer ") == 0) result += "Bearer ";
                result += "***";
                i = j;
                continue;
            }
        }
        result += out[i];
        ++i;
    }
    return result;
}

} // namespace cascade
