#pragma once
/// @file
/// @brief API keys: `Secret` (prints as `***`), loaded from the environment or from files.

#include <cascade/core/config_error.hpp>

#include <boost/system/result.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace cascade {

/// @brief A key or token. It prints as `***`; only `reveal()` gives the value, for the transport.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}

    /// The value itself: for the Authorization header and nothing else.
    std::string_view reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

    friend bool operator==(Secret const& a, Secret const& b) noexcept { return a.value_ == b.value_; }
    friend std::ostream& operator<<(std::ostream& os, Secret const&) { return os << "***"; }

private:
    std::string value_;
};

namespace detail {
inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}
inline void add_key(std::vector<Secret>& keys, std::string_view raw) {
    auto k = trim(raw);
    if (k.empty()) return;
    Secret s{std::string(k)};
    if (std::find(keys.begin(), keys.end(), s) == keys.end()) keys.push_back(std::move(s));
}
} // namespace detail

/// @brief Keys from the environment, for `name` = `GROQ_API_KEY`: `GROQ_API_KEY_1` .. `GROQ_API_KEY_32`
/// (gaps allowed), then the comma-separated `GROQ_API_KEYS`, then `GROQ_API_KEY` itself. White space is
/// trimmed, empty entries ignored, duplicates dropped; order is kept (it is the pool's order).
inline std::vector<Secret> keys_from_env(std::string const& name) {
    std::vector<Secret> keys;
    for (int i = 1; i <= 32; ++i)
        if (char const* v = std::getenv((name + "_" + std::to_string(i)).c_str())) detail::add_key(keys, v);
    if (char const* list = std::getenv((name + "S").c_str())) {
        std::string_view rest(list);
        while (!rest.empty()) {
            auto comma = rest.find(',');
            detail::add_key(keys, rest.substr(0, comma));
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    if (char const* one = std::getenv(name.c_str())) detail::add_key(keys, one);
    return keys;
}

/// @brief One key per file (as Docker and Kubernetes mount secrets), white space trimmed. A missing,
/// unreadable or empty file is an error naming the path (never the contents).
inline boost::system::result<std::vector<Secret>, ConfigError> keys_from_files(std::vector<std::filesystem::path> const& files) {
    std::vector<Secret> keys;
    for (auto const& path : files) {
        std::ifstream in(path, std::ios::binary);
        if (!in) return ConfigError("cannot read key file '" + path.string() + "'");
        std::ostringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        if (detail::trim(text).empty()) return ConfigError("key file '" + path.string() + "' is empty");
        if (detail::trim(text).find_first_of(" \t\r\n") != std::string_view::npos)
            return ConfigError("key file '" + path.string() + "' holds more than one word; put one key per file");
        detail::add_key(keys, text);
    }
    return keys;
}

} // namespace cascade
