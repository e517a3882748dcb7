#pragma once
/// @file
/// @brief `Url`: a provider's base URL (`https://api.groq.com/openai/v1`) as scheme, host, port and path,
/// checked so that nothing in it can reach a request line or a header.

#include <cascade/core/config_error.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cascade::net {

/// @brief Scheme, host and port of a base URL, and its path (`https://api.groq.com/openai/v1`).
struct Url {
    bool tls = true;
    std::string host;
    std::uint16_t port = 443;
    /// The URL's path without a trailing slash (`/openai/v1`), prefixed to every request target.
    std::string base_path;

    /// @brief Parses `http://` and `https://` URLs; a bad one is an error saying what and where.
    ///
    /// The host is a name (letters, digits, `-`, `.`, `_`), an IPv4 address or a bracketed IPv6 address;
    /// the path holds visible ASCII only; a query, a fragment or credentials are refused (they would end up
    /// in the Host header, the pool key or every request line).
    static boost::system::result<Url, ConfigError> parse(std::string_view url) {
        auto bad = [&](char const* what) { return ConfigError(std::string("URL '") + std::string(url) + "' " + what); };
        Url o;
        std::string_view rest;
        if (url.rfind("https://", 0) == 0) {
            rest = url.substr(8);
        } else if (url.rfind("http://", 0) == 0) {
            o.tls = false;
            o.port = 80;
            rest = url.substr(7);
        } else {
            return bad("must start with http:// or https://");
        }
        if (rest.find_first_of("?#") != std::string_view::npos) return bad("must not carry a query or fragment");
        auto slash = rest.find('/');
        std::string_view authority = rest.substr(0, slash);
        std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
        if (authority.empty()) return bad("has no host");
        if (authority.find('@') != std::string_view::npos) return bad("carries credentials; give keys in the configuration");
        std::string_view host = authority;
        bool bracketed = false;
        if (authority.front() == '[') {
            auto close = authority.find(']');
            if (close == std::string_view::npos) return bad("has an unclosed [IPv6] host");
            host = authority.substr(1, close - 1);
            bracketed = true;
            authority.remove_prefix(close + 1);
            if (!authority.empty() && authority.front() != ':') return bad("has junk after the [IPv6] host");
            if (!authority.empty()) authority.remove_prefix(1);
        } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            authority.remove_prefix(colon + 1);
        } else {
            authority = {};
        }
        if (!authority.empty()) {
            unsigned port = 0;
            for (char ch : authority) {
                if (ch < '0' || ch > '9' || port > 65535) return bad("has a bad port");
                port = port * 10 + static_cast<unsigned>(ch - '0');
            }
            if (port == 0 || port > 65535) return bad("has a bad port");
            o.port = static_cast<std::uint16_t>(port);
        }
        if (host.empty()) return bad("has no host");
        auto is_alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); };
        auto is_hex = [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'); };
        for (char ch : host) {
            bool const ok = bracketed ? (is_hex(ch) || ch == ':' || ch == '.') : (is_alnum(ch) || ch == '-' || ch == '.' || ch == '_');
            if (!ok) return bad(bracketed ? "has a character that is not part of an IPv6 address in its [host]"
                                          : "has a character that is not allowed in a host name (an IPv6 address goes in [brackets])");
        }
        if (bracketed && host.find(':') == std::string_view::npos) return bad("has a [host] that is not an IPv6 address");
        for (char ch : path)
            if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f)
                return bad("has a space, a control character or a non-ASCII byte in its path (percent-encode it)");
        o.host = std::string(host);
        while (!path.empty() && path.back() == '/') path.remove_suffix(1);
        o.base_path = std::string(path);
        return o;
    }

    /// @brief `https://host:port`: what the connection pool keys on.
    std::string key() const { return (tls ? "https://" : "http://") + host + ":" + std::to_string(port); }
};

} // namespace cascade::net
