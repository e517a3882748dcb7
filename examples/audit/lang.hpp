#pragma once
/// @file
/// @brief The audit's three languages: their codes, their names, and the choice from an Accept-Language header.

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace audit {

/// @brief A language the questionnaire and its reports are written in.
enum class Lang { en, ru, es };

/// Every language, in the order the data files list them.
inline constexpr std::array<Lang, 3> all_langs{Lang::en, Lang::ru, Lang::es};

/// @brief The language's code as the API and the tags spell it: "en", "ru", "es".
constexpr std::string_view code(Lang lang) noexcept {
    switch (lang) {
    case Lang::ru: return "ru";
    case Lang::es: return "es";
    case Lang::en: break;
    }
    return "en";
}

/// @brief The language's English name ("Russian"), as the LLM prompt names it.
constexpr std::string_view english_name(Lang lang) noexcept {
    switch (lang) {
    case Lang::ru: return "Russian";
    case Lang::es: return "Spanish";
    case Lang::en: break;
    }
    return "English";
}

/// @brief The language of an exact code ("en", "ru", "es", lower case); nullopt for anything else.
///
/// Strict on purpose: it reads the API's `lang` field and the answers tag, where "RU" or "ru-RU" is a
/// client's mistake to report, not to guess. Headers go through `lang_from_accept_language`.
constexpr std::optional<Lang> parse_lang(std::string_view s) noexcept {
    for (Lang l : all_langs)
        if (s == code(l)) return l;
    return std::nullopt;
}

namespace detail {

constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

constexpr char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// An RFC 9110 qvalue ("0", "0.5", "1.000") in thousandths; nullopt when malformed.
constexpr std::optional<int> parse_qvalue(std::string_view s) noexcept {
    if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
    int value = (s[0] - '0') * 1000;
    if (s.size() == 1) return value;
    if (s[1] != '.' || s.size() > 5) return std::nullopt;
    int scale = 100;
    for (std::size_t i = 2; i < s.size(); ++i, scale /= 10) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        value += (s[i] - '0') * scale;
    }
    if (value > 1000) return std::nullopt;
    return value;
}

// The supported language whose code is the tag's primary subtag ("ru" of "ru-RU", any case).
constexpr std::optional<Lang> lang_of_tag(std::string_view tag) noexcept {
    std::size_t const end = tag.find_first_of("-_");
    std::string_view const primary = tag.substr(0, end);
    if (primary.size() != 2) return std::nullopt;
    for (Lang l : all_langs)
        if (lower(primary[0]) == code(l)[0] && lower(primary[1]) == code(l)[1]) return l;
    return std::nullopt;
}

} // namespace detail

/// @brief The visitor's language from an HTTP Accept-Language header; English when nothing fits.
///
/// Each entry's primary subtag is matched case-insensitively ("ru-RU" and "RU" are Russian), its
/// `q` weight honoured (default 1; `q=0` means "not this one"), and the highest weight wins, the
/// earlier entry on a tie. Malformed entries and unsupported languages are skipped, "*" included.
/// @code
/// lang_from_accept_language("ru-RU,ru;q=0.9,en;q=0.8");  // Lang::ru
/// lang_from_accept_language("es;q=0.1, en;q=0.9");       // Lang::en
/// @endcode
constexpr Lang lang_from_accept_language(std::string_view header) noexcept {
    Lang best = Lang::en;
    int best_q = 0;
    while (!header.empty()) {
        std::size_t const comma = header.find(',');
        std::string_view entry = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);

        std::size_t const semi = entry.find(';');
        std::optional<Lang> const lang = detail::lang_of_tag(detail::trim_ows(entry.substr(0, semi)));
        std::optional<int> q = 1000;
        for (std::string_view params = semi == std::string_view::npos ? std::string_view{} : entry.substr(semi + 1);
             !params.empty();) {
            std::size_t const next = params.find(';');
            std::string_view const param = detail::trim_ows(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
            if (param.size() >= 2 && detail::lower(param[0]) == 'q' && param[1] == '=')
                q = detail::parse_qvalue(param.substr(2));
        }
        if (lang && q && *q > best_q) {
            best = *lang;
            best_q = *q;
        }
    }
    return best;
}

} // namespace audit
