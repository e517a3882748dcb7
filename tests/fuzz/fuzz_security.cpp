// libFuzzer target: HTML escaping, redaction and signed URLs. The first byte picks the mode:
//   0  the rest is text to escape: no raw < > " ' in the output, and unescaping gives the text back;
//   1  the rest is "secret\ntext" to redact: no configured secret and no planted key survives;
//   2  the rest is "secret\npath": a URL signed then changed in one byte never verifies;
//   3  the rest is a URL to verify: never crashes, and only a correctly signed one is valid.

#include <cascade/security/hmac.hpp>
#include <cascade/security/html.hpp>
#include <cascade/security/redact.hpp>

#include <algorithm>
#include <array>
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

std::string unescape_html(std::string_view s) {
    static constexpr std::pair<std::string_view, char> entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}};
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        bool matched = false;
        if (s[i] == '&') {
            for (auto [entity, c] : entities)
                if (s.substr(i, entity.size()) == entity) {
                    out += c;
                    i += entity.size();
                    matched = true;
                    break;
                }
            if (!matched) fail("escaped text holds only our entities");
        }
        if (!matched) out += s[i++];
    }
    return out;
}

void html(std::string_view text) {
    auto out = cascade::escape_html(text);
    if (out.find_first_of("<>\"'") != std::string::npos) fail("escaped text has no raw < > \" '");
    if (unescape_html(out) != text) fail("escaped text unescapes to the input");
}

void redaction(std::string_view in) {
    auto nl = in.find('\n');
    if (nl == std::string_view::npos) return;
    auto secret = in.substr(0, nl);
    std::string text(in.substr(nl + 1));
    // Plant a Groq-shaped key where the text says, at a word boundary.
    constexpr std::string_view key = "gsk_Zq7Xw2Lp9Rt4Vb8Nm3Kc6Hj1Fd5Gs0Ya";
    bool const key_was_there = text.find(key.substr(4, 8)) != std::string::npos;
    for (auto pos = text.find('@'); pos != std::string::npos; pos = text.find('@', pos)) {
        text.replace(pos, 1, " " + std::string(key) + " ");
        pos += key.size() + 2;
    }
    std::array<std::string_view, 1> secrets{secret};
    auto out = cascade::redact(text, secrets);
    // A secret of 4 characters or more, made of what keys are made of, never survives.
    bool const keylike = secret.size() >= 4 && secret.find('*') == std::string_view::npos;
    if (keylike && out.find(secret) != std::string::npos) fail("a configured secret never survives redaction");
    if (!key_was_there && out.find(key.substr(4, 8)) != std::string::npos) fail("a planted key never survives redaction");
}

void signed_url(std::string_view in) {
    auto nl = in.find('\n');
    if (nl == std::string_view::npos || nl + 1 >= in.size()) return;
    auto secret = in.substr(0, nl);
    auto rest = in.substr(nl + 1);
    std::size_t const pos_seed = static_cast<unsigned char>(rest[0]);
    unsigned char const flip = static_cast<unsigned char>(rest.size() > 1 ? rest[1] : 1) | 1;  // never 0: a real change
    auto path = rest.substr(std::min<std::size_t>(rest.size(), 2));
    std::int64_t const expires = 1'800'000'000 + static_cast<std::int64_t>(path.size());
    auto url = cascade::sign_url(path, expires, secret);
    if (cascade::verify_url(url, secret, expires - 1) != cascade::UrlCheck::valid) fail("a signed URL verifies before it expires");
    if (cascade::verify_url(url, secret, expires) != cascade::UrlCheck::expired) fail("a signed URL is expired at its expiry");
    auto changed = url;
    auto at = (pos_seed * 131 + path.size()) % changed.size();
    changed[at] = static_cast<char>(changed[at] ^ flip);
    if (cascade::verify_url(changed, secret, expires - 1) == cascade::UrlCheck::valid) fail("a URL changed in one byte never verifies");
    // Another secret does not verify it either (unless it is the same secret).
    std::string other(secret);
    other += 'x';
    if (cascade::verify_url(url, other, expires - 1) == cascade::UrlCheck::valid) fail("another secret never verifies a URL");
}

void verify(std::string_view url) {
    auto r = cascade::verify_url(url, "report-secret", 1'700'000'000);
    if (r == cascade::UrlCheck::valid) {
        // Valid means the signature is the HMAC of what precedes "&sig=".
        auto sig_pos = url.rfind("&sig=");
        if (sig_pos == std::string_view::npos ||
            url.substr(sig_pos + 5) != cascade::detail::hmac_sha256_hex("report-secret", url.substr(0, sig_pos)))
            fail("a valid URL carries the HMAC of what it signs");
    }
    (void)cascade::to_string(r);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<char const*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0: html(in); break;
    case 1: redaction(in); break;
    case 2: signed_url(in); break;
    default: verify(in); break;
    }
    return 0;
}
