#pragma once
/// @file
/// @brief Google service-account credentials: the key file, the RS256-signed JWT assertion and the
/// token endpoint's answer, sans-io (OpenSSL for the signature).

#include <cascade/core/config_error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/result.hpp>
#include <boost/throw_exception.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace cascade::google {

using cascade::ConfigError;

/// @brief The fields of a service-account JSON key file that signing needs.
struct ServiceAccount {
    std::string project_id;
    std::string private_key_id;
    std::string private_key_pem;
    std::string client_email;
    std::string token_uri;
};

namespace detail {
inline std::string base64url(std::string_view in) {
    static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
        out += tbl[(n >> 18) & 63];
        out += tbl[(n >> 12) & 63];
        out += tbl[(n >> 6) & 63];
        out += tbl[n & 63];
    }
    if (i + 1 == in.size()) {
        auto n = std::uint32_t(std::uint8_t(in[i])) << 16;
        out += tbl[(n >> 18) & 63];
        out += tbl[(n >> 12) & 63];
    } else if (i + 2 == in.size()) {
        auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8);
        out += tbl[(n >> 18) & 63];
        out += tbl[(n >> 12) & 63];
        out += tbl[(n >> 6) & 63];
    }
    return out;
}

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

// OpenSSL's default password callback prompts "Enter PEM pass phrase:" on the terminal (or reads stdin)
// and waits: a service must fail at once instead. Records that a pass phrase was asked for.
inline int refuse_pass_phrase(char*, int, int, void* asked) noexcept {
    if (asked) *static_cast<bool*>(asked) = true;
    return -1;
}

struct PrivateKey {
    std::unique_ptr<EVP_PKEY, PkeyFree> key;
    bool encrypted = false;  ///< the PEM asked for a pass phrase
};

// Whether the key's parts belong together (n = p q, d inverts e, the CRT values match).
inline bool consistent_key_pair(EVP_PKEY* key) noexcept {
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(key, nullptr));
    bool const ok = ctx && EVP_PKEY_pairwise_check(ctx.get()) == 1;
    ERR_clear_error();
    return ok;
}

// The PEM's private key, never prompting; OpenSSL's error queue is left empty either way.
inline PrivateKey read_private_key(std::string_view pem) {
    PrivateKey out;
    if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return out;
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (bio) out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, &refuse_pass_phrase, &out.encrypted));
    ERR_clear_error();
    return out;
}
} // namespace detail

/// @brief Reads a service-account key file's JSON text. A missing or malformed field is an error that
/// names the field (and `where`, e.g. the file's path); the private key itself is never echoed.
inline boost::system::result<ServiceAccount, ConfigError> parse_service_account(std::string_view json,
                                                                                std::string_view where = "service account key") {
    boost::system::error_code ec;
    auto v = boost::json::parse(json, ec);
    if (ec || !v.is_object())
        return ConfigError{std::string(where) + ": not a JSON object (" + (ec ? ec.message() : std::string("wrong type")) + ")"};
    auto const& o = v.get_object();
    auto field = [&](std::string_view name, std::string& out) -> std::optional<ConfigError> {
        auto const* f = o.if_contains(name);
        if (!f) return ConfigError{std::string(where) + ": missing field '" + std::string(name) + "'"};
        if (!f->is_string() || f->get_string().empty())
            return ConfigError{std::string(where) + ": field '" + std::string(name) + "' must be a non-empty string"};
        out = std::string(f->get_string());
        return std::nullopt;
    };
    std::string type;
    if (auto e = field("type", type)) return *e;
    if (type != "service_account")
        return ConfigError{std::string(where) + ": field 'type' is '" + type + "', expected 'service_account'"};
    ServiceAccount sa;
    for (auto [name, out] : {std::pair{"project_id", &sa.project_id}, std::pair{"private_key_id", &sa.private_key_id},
                             std::pair{"private_key", &sa.private_key_pem}, std::pair{"client_email", &sa.client_email},
                             std::pair{"token_uri", &sa.token_uri}}) {
        if (auto e = field(name, *out)) return *e;
    }
    if (sa.private_key_pem.find("-----BEGIN") == std::string::npos)
        return ConfigError{std::string(where) + ": field 'private_key' is not a PEM private key"};
    auto key = detail::read_private_key(sa.private_key_pem);
    if (key.encrypted && !key.key)
        return ConfigError{std::string(where) +
                           ": field 'private_key' is encrypted; a service account key must be an unencrypted PEM key, as Google issues it "
                           "(decrypt it with `openssl pkey -in encrypted.pem -out key.pem`)"};
    if (!key.key) return ConfigError{std::string(where) + ": field 'private_key' could not be read as a PEM private key"};
    if (EVP_PKEY_base_id(key.key.get()) != EVP_PKEY_RSA)
        return ConfigError{std::string(where) + ": field 'private_key' is not an RSA key (RS256 needs RSA)"};
    // A damaged key can still parse: its signatures would then fail, or be refused by Google at every
    // token exchange. Better said once, now, than as invalid_grant on every request.
    if (!detail::consistent_key_pair(key.key.get()))
        return ConfigError{std::string(where) + ": field 'private_key' is damaged: its RSA parts do not belong together"};
    return sa;
}

/// @brief Reads a key file from `path`, or from `GOOGLE_APPLICATION_CREDENTIALS` when `path` is empty.
inline boost::system::result<ServiceAccount, ConfigError> load_service_account(std::string path = {}) {
    if (path.empty()) {
        char const* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS");
        if (!env || !*env) return ConfigError{"no service account key: set GOOGLE_APPLICATION_CREDENTIALS or give a path"};
        path = env;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return ConfigError{path + ": cannot open the service account key file"};
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_service_account(ss.str(), path);
}

/// The OAuth scope Vertex AI needs.
inline constexpr std::string_view cloud_platform_scope = "https://www.googleapis.com/auth/cloud-platform";

/// @brief The signed JWT assertion: header `{"alg":"RS256","typ":"JWT","kid":...}`, claims `iss`, `scope`,
/// `aud` (the token URI), `iat`, `exp` (iat + lifetime, at most one hour).
inline boost::system::result<std::string, ConfigError> make_assertion(ServiceAccount const& sa, std::int64_t iat_unix,
                                                                       std::chrono::seconds lifetime = std::chrono::seconds(3600),
                                                                       std::string_view scope = cloud_platform_scope) {
    lifetime = std::clamp(lifetime, std::chrono::seconds(0), std::chrono::seconds(3600));
    if (iat_unix > std::numeric_limits<std::int64_t>::max() - 3600) return ConfigError{"JWT issue time out of range"};
    boost::json::object header{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", sa.private_key_id}};
    boost::json::object claims{{"iss", sa.client_email},
                               {"scope", scope},
                               {"aud", sa.token_uri},
                               {"iat", iat_unix},
                               {"exp", iat_unix + lifetime.count()}};
    std::string signing_input = detail::base64url(boost::json::serialize(header)) + "." + detail::base64url(boost::json::serialize(claims));

    auto pkey = detail::read_private_key(sa.private_key_pem);
    if (!pkey.key) return ConfigError{pkey.encrypted ? "service account private key is encrypted" : "service account private key could not be read"};
    auto const& key = pkey.key;
    std::unique_ptr<EVP_MD_CTX, detail::MdCtxFree> ctx(EVP_MD_CTX_new());
    std::size_t sig_len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &sig_len, reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) != 1)
        return ConfigError{"RS256 signing failed"};
    std::string sig(sig_len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                       reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) != 1)
        return ConfigError{"RS256 signing failed"};
    sig.resize(sig_len);
    return boost::system::result<std::string, ConfigError>(boost::system::in_place_value,
                                                           signing_input + "." + detail::base64url(sig));
}

/// @brief The form body of the token request.
inline std::string token_request_body(std::string_view assertion) {
    return "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + std::string(assertion);
}

/// The longest lifetime a token answer is believed for (Google's last an hour); a longer `expires_in` is
/// clamped to it, so that adding it to a clock cannot overflow.
inline constexpr std::chrono::seconds longest_token_lifetime = std::chrono::hours(24);

/// @brief An access token and how long it lives.
struct AccessToken {
    std::string value;
    std::chrono::seconds expires_in{0};
};

/// @brief Parses the token endpoint's answer: `{"access_token":...,"expires_in":3599,"token_type":"Bearer"}`,
/// or `{"error":"invalid_grant","error_description":...}` (returned as the error's message). A missing
/// `expires_in` is an hour, a negative one is an error, one over `longest_token_lifetime` is clamped to it.
inline boost::system::result<AccessToken, ConfigError> parse_token_response(std::string_view body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return ConfigError{"token endpoint: answer is not a JSON object"};
    auto const& o = v.get_object();
    if (auto const* err = o.if_contains("error")) {
        std::string msg = "token endpoint: ";
        msg += err->is_string() ? std::string(err->get_string()) : std::string("error");
        if (auto const* d = o.if_contains("error_description"); d && d->is_string()) msg += ": " + std::string(d->get_string());
        return ConfigError{msg};
    }
    auto const* tok = o.if_contains("access_token");
    if (!tok || !tok->is_string() || tok->get_string().empty()) return ConfigError{"token endpoint: no access_token in the answer"};
    AccessToken t;
    t.value = std::string(tok->get_string());
    t.expires_in = std::chrono::seconds(3600);
    if (auto const* e = o.if_contains("expires_in"); e && e->is_number()) {
        auto const longest = longest_token_lifetime.count();
        if ((e->is_int64() && e->get_int64() < 0) || (e->is_double() && !(e->get_double() >= 0.0)))
            return ConfigError{"token endpoint: expires_in is negative (" + boost::json::serialize(*e) + ")"};
        if (e->is_int64()) t.expires_in = std::chrono::seconds(std::min<std::int64_t>(e->get_int64(), longest));
        else if (e->is_uint64()) t.expires_in = longest_token_lifetime;
        else t.expires_in = std::chrono::seconds(static_cast<std::int64_t>(std::min(std::floor(e->get_double()), static_cast<double>(longest))));
    }
    return t;
}

} // namespace cascade::google
