#pragma once
/// @file
/// @brief HTTP/1.1 messages written out by hand: a request or a response head in one string, so that a
/// message goes out in one gather write of at most two buffers.
///
/// Beast's serializer walks a tower of buffer-sequence adapters (the fields, chunk markers, the body)
/// on every write; on the proxy's hot path that walk cost about a fifth of the user-space instructions
/// of a request (callgrind, docs/benchmarks.md). Parsing stays Beast's.

#include <cascade/core/verdict.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace cascade::net::wire {

/// @brief Can `s` stand in a header line? Not with a CR, an LF or a NUL (a header injection).
inline bool header_safe(std::string_view s) noexcept {
    for (char c : s)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

/// @brief A field name: a non-empty HTTP token (RFC 9110, section 5.6.2).
inline bool token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        bool const ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

/// @brief An HTTP/1.1 request, head and body, in one string.
///
/// `Host` and `User-Agent` come first; a header of `headers` with the same name replaces them, and of
/// several headers of one name the last wins. The transport owns framing and keep-alive: `Content-Length`
/// (sent when the body is not empty, and always for POST, PUT, PATCH and OPTIONS), `Transfer-Encoding` and
/// `Connection` given in `headers` are left out. A field name that is not a token fails with
/// `http::error::bad_field`, a value (or the method, target or host) with a CR, LF or NUL with
/// `http::error::bad_value`: nothing is sent.
inline boost::system::result<std::string> request(std::string_view method, std::string_view target, std::string_view host,
                                                  std::string_view user_agent, cascade::Headers const& headers, std::string_view body) {
    namespace http = boost::beast::http;
    if (!token(method)) return boost::system::error_code(http::error::bad_method);
    if (target.empty()) target = "/";
    for (char c : target)
        if (c == ' ' || c == '\r' || c == '\n' || c == '\0') return boost::system::error_code(http::error::bad_target);
    if (!header_safe(host) || !header_safe(user_agent)) return boost::system::error_code(http::error::bad_value);
    auto const owned = [](std::string_view name) {
        return cascade::Headers::iequals(name, "content-length") || cascade::Headers::iequals(name, "transfer-encoding") ||
               cascade::Headers::iequals(name, "connection");
    };
    // The last header of each name, and whether it replaces Host or User-Agent.
    bool own_host = false, own_agent = false;
    std::size_t size = method.size() + target.size() + host.size() + user_agent.size() + body.size() + 96;
    for (auto const& f : headers) {
        if (!token(f.name)) return boost::system::error_code(http::error::bad_field);
        if (!header_safe(f.value)) return boost::system::error_code(http::error::bad_value);
        own_host = own_host || cascade::Headers::iequals(f.name, "host");
        own_agent = own_agent || cascade::Headers::iequals(f.name, "user-agent");
        size += f.name.size() + f.value.size() + 4;
    }
    auto const last_of_its_name = [&](auto it) {
        for (auto later = it + 1; later != headers.end(); ++later)
            if (cascade::Headers::iequals(later->name, it->name)) return false;
        return true;
    };

    std::string out;
    out.reserve(size);
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    if (!own_host) out.append("Host: ").append(host).append("\r\n");
    if (!own_agent) out.append("User-Agent: ").append(user_agent).append("\r\n");
    for (auto it = headers.begin(); it != headers.end(); ++it) {
        if (owned(it->name) || !last_of_its_name(it)) continue;
        out.append(it->name).append(": ").append(it->value).append("\r\n");
    }
    bool const says_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH" || method == "OPTIONS";
    if (says_length) out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    out.append("\r\n").append(body);
    return out;
}

/// @brief A response's head: status line, fields in their order, blank line. The body (Beast's
/// `Content-Length` or `Transfer-Encoding` fields, as `prepare_payload` or `chunked` set them, frame it)
/// goes in a buffer of its own, after it.
template <class Fields>
std::string head(boost::beast::http::response_header<Fields> const& h) {
    std::size_t size = 32;
    for (auto const& f : h) size += f.name_string().size() + f.value().size() + 4;
    std::string out;
    out.reserve(size);
    unsigned const v = h.version();
    out.append("HTTP/").append(1, static_cast<char>('0' + v / 10)).append(".").append(1, static_cast<char>('0' + v % 10)).append(" ");
    out.append(std::to_string(h.result_int())).append(" ");
    auto const reason = h.reason();
    out.append(reason.data(), reason.size()).append("\r\n");
    for (auto const& f : h) {
        auto const name = f.name_string();
        auto const value = f.value();
        out.append(name.data(), name.size()).append(": ").append(value.data(), value.size()).append("\r\n");
    }
    out.append("\r\n");
    return out;
}

/// @brief A whole response as two buffers (head, body) for one gather write; `head_storage` keeps the
/// head alive until the write completes.
template <class Fields>
std::array<boost::asio::const_buffer, 2> response_buffers(boost::beast::http::response<boost::beast::http::string_body, Fields> const& res,
                                                          std::string& head_storage) {
    head_storage = head(res.base());
    return {boost::asio::buffer(head_storage), boost::asio::buffer(res.body())};
}

} // namespace cascade::net::wire
