// libFuzzer target: the default classifier on (status, headers, body). The input is two bytes of status
// (big-endian, modulo 1000), then `name: value` header lines up to an empty line, then the body. Every
// `@KEY@` in the body is replaced by a Groq-shaped key, which must never reach the verdict's detail.

#include <cascade/detail/duration.hpp>
#include <cascade/policy/classify.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

constexpr std::string_view planted_secret = "Zq7Xw2Lp9Rt4Vb8Nm3Kc6Hj1Fd5Gs0Ya";

void check_wait(std::chrono::milliseconds w) {
    if (w.count() < 0 || w > cascade::detail::longest_wait) fail("a cooldown is within [0, longest_wait]");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 2) return 0;
    std::string_view in(reinterpret_cast<char const*>(data), size);
    int const status = ((data[0] << 8) | data[1]) % 1000;
    in.remove_prefix(2);

    cascade::Headers headers;
    while (!in.empty()) {
        auto nl = in.find('\n');
        auto line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        headers.add(std::string(line.substr(0, colon)), std::string(value));
    }
    // Only check for leaks of a key the input did not already spell out in some other way.
    bool const check_leak = std::string_view(reinterpret_cast<char const*>(data), size).find(planted_secret.substr(0, 8)) == std::string_view::npos;
    std::string body(in);
    for (auto pos = body.find("@KEY@"); pos != std::string::npos; pos = body.find("@KEY@", pos)) {
        std::string key = " gsk_" + std::string(planted_secret) + " ";
        body.replace(pos, 5, key);
        pos += key.size();
    }

    cascade::Observation obs;
    obs.status = status;
    obs.headers = &headers;
    obs.body = body;
    cascade::DefaultClassify classifier;
    auto v = classifier.classify(obs);

    if (v.http_status != status) fail("the verdict carries the response's status");
    check_wait(v.cool_for);
    int const fault = static_cast<int>(v.fault);
    if (fault < static_cast<int>(cascade::Fault::rate_limited) || fault > static_cast<int>(cascade::Fault::exhausted)) fail("the fault is a Fault");
    if (v.scope != cascade::Scope::attempt && v.scope != cascade::Scope::key && v.scope != cascade::Scope::provider) fail("the scope is a Scope");
    if (v.scope == cascade::Scope::provider && v.fault != cascade::Fault::blocked && v.fault != cascade::Fault::rate_limited) fail("only blocks and rate limits reach the whole provider");
    if (v.fault == cascade::Fault::blocked && v.cool_for.count() != 0) fail("a block's rest is the chain's setting, not the classifier's");
    if (v.detail.size() > 200) fail("the detail is at most 200 bytes");
    if (check_leak && v.detail.find(planted_secret.substr(0, 8)) != std::string::npos) fail("a planted key never reaches the detail");

    // The pieces it is made of.
    auto code = cascade::detail::cloudflare_text_code(body);
    if (code < 0 || code > cascade::detail::max_cloudflare_code) fail("a Cloudflare text code is in range");
    auto html_code = cascade::detail::cloudflare_html_code(body);
    if (html_code < 0 || html_code > 9999) fail("a Cloudflare HTML code has at most 4 digits");
    auto info = cascade::detail::error_info(body);
    if (info.cloudflare_code < 0 || info.cloudflare_code > cascade::detail::max_cloudflare_code) fail("a Cloudflare JSON code is in range");
    if (info.retry_hint) check_wait(*info.retry_hint);
    return 0;
}
