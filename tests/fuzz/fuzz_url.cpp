// libFuzzer target: `cascade::net::Url::parse` on any string. A parsed origin has a host, a port in
// 1..65535, a base path that is empty or starts with '/' and does not end with '/', and nothing of a query
// or fragment anywhere. Written back as a URL (the host in brackets when it holds a ':'), it parses to the
// same origin.

#include <cascade/net/http_client.hpp>

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
void require(bool ok, char const* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant failed: %s\n", what);
        __builtin_trap();
    }
}

bool has_query_or_fragment(std::string_view s) { return s.find_first_of("?#") != std::string_view::npos; }

std::string unparse(cascade::net::Url const& o) {
    std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    return (o.tls ? "https://" : "http://") + host + ":" + std::to_string(o.port) + o.base_path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view url(reinterpret_cast<char const*>(data), size);
    auto parsed = cascade::net::Url::parse(url);
    if (!parsed) return 0;
    auto const& o = *parsed;
    require(!o.host.empty(), "a parsed origin has a host");
    require(o.port != 0, "a parsed origin has a port in 1..65535");
    require(!has_query_or_fragment(o.host), "no query or fragment in the host");
    require(!has_query_or_fragment(o.base_path), "no query or fragment in the base path");
    require(o.base_path.empty() || (o.base_path.front() == '/' && o.base_path.back() != '/'),
            "the base path is empty or starts with '/' and does not end with '/'");

    auto again = cascade::net::Url::parse(unparse(o));
    require(again.has_value(), "the origin written back as a URL parses");
    if (!again) return 0;
    require(again->tls == o.tls && again->host == o.host && again->port == o.port && again->base_path == o.base_path,
            "the origin written back as a URL parses to the same origin");
    require(again->key() == o.key(), "the round trip keeps the pool key");
    return 0;
}
