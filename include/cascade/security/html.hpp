#pragma once
/// @file
/// @brief Escaping LLM output before it goes into HTML.

#include <string>
#include <string_view>

namespace cascade {

/// @brief `text` safe as HTML element content and as a quoted attribute value: `& < > " '` become
/// entities. Everything else, UTF-8 included, is kept byte for byte.
inline std::string escape_html(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

} // namespace cascade
