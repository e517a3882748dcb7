#pragma once
/// @file
/// @brief Report URLs signed with HMAC-SHA256, valid until they expire.

#include <cascade/detail/episodes.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cascade {

/// @brief Why a signed URL was refused.
enum class UrlCheck { valid, malformed, bad_signature, expired };

inline std::string_view to_string(UrlCheck c) noexcept {
    switch (c) {
    case UrlCheck::valid: return "valid";
    case UrlCheck::malformed: return "malformed: no expires= or sig= parameter";
    case UrlCheck::bad_signature: return "bad signature";
    case UrlCheck::expired: return "expired";
    }
    return "unknown";
}

namespace detail {
inline std::string hmac_sha256_hex(std::string_view secret, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<unsigned char const*>(data.data()),
         data.size(), md, &len);
    return detail::to_hex(md, len);
}
} // namespace detail

/// @brief `path` (which may carry a query) with `expires=<unix seconds>&sig=<hex HMAC-SHA256>` appended;
/// the signature covers the path, its query and the expiry.
inline std::string sign_url(std::string_view path, std::int64_t expires_unix, std::string_view secret) {
    std::string unsigned_url(path);
    unsigned_url += unsigned_url.find('?') == std::string::npos ? '?' : '&';
    unsigned_url += "expires=" + std::to_string(expires_unix);
    return unsigned_url + "&sig=" + detail::hmac_sha256_hex(secret, unsigned_url);
}

/// @brief Checks a URL made by `sign_url`: the signature (compared in constant time), then the expiry.
inline UrlCheck verify_url(std::string_view url, std::string_view secret,
                           std::int64_t now_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                                       std::chrono::system_clock::now().time_since_epoch())
                                                       .count()) {
    auto sig_pos = url.rfind("&sig=");
    if (sig_pos == std::string_view::npos) return UrlCheck::malformed;
    auto signed_part = url.substr(0, sig_pos);
    auto sig = url.substr(sig_pos + 5);
    auto exp_pos = signed_part.rfind("expires=");
    if (exp_pos == std::string_view::npos || exp_pos == 0 || (signed_part[exp_pos - 1] != '?' && signed_part[exp_pos - 1] != '&'))
        return UrlCheck::malformed;
    auto exp_text = signed_part.substr(exp_pos + 8);
    if (exp_text.empty() || exp_text.size() > 18) return UrlCheck::malformed;
    std::int64_t expires = 0;
    for (char c : exp_text) {
        if (c < '0' || c > '9') return UrlCheck::malformed;
        expires = expires * 10 + (c - '0');
    }
    auto expected = detail::hmac_sha256_hex(secret, signed_part);
    if (sig.size() != expected.size() || CRYPTO_memcmp(sig.data(), expected.data(), expected.size()) != 0)
        return UrlCheck::bad_signature;
    if (now_unix >= expires) return UrlCheck::expired;
    return UrlCheck::valid;
}

} // namespace cascade
