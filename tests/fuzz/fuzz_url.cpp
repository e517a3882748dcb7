// libFuzzer target: `cascade::net::Origin::parse` on any string. A parsed origin has a host, a port in
// 1..65535, a base path that is empty or starts with '/' and does not end with '/', and nothing of a query
// or fragment anywhere. Written back as a URL (the host in brackets when it holds a ':'), it parses to the
// same origin.

#include <cascade/net/http_client.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool has_query_or_fragment(std::string_view s) { return s.find_first_of("?#") != std::string_view::npos; }

std::string unparse(cascade::net::Origin const& o) {
    std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    return (o.tls ? "https://" : "http://") + host + ":" + std::to_string(o.port) + o.base_path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view url(reinterpret_cast<char const*>(data), size);
    auto parsed = cascade::net::Origin::parse(url);
    if (!parsed) return 0;
    auto const& o = *parsed;
    if (o.host.empty() || o.port == 0) __builtin_trap();
    if (has_query_or_fragment(o.host) || has_query_or_fragment(o.base_path)) __builtin_trap();
    if (!o.base_path.empty() && (o.base_path.front() != '/' || o.base_path.back() == '/')) __builtin_trap();

    auto again = cascade::net::Origin::parse(unparse(o));
    if (!again) __builtin_trap();
    if (again->tls != o.tls || again->host != o.host || again->port != o.port || again->base_path != o.base_path)
        __builtin_trap();
    if (again->key() != o.key()) __builtin_trap();
    return 0;
}
