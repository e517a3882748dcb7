// libFuzzer target: Google service-account credentials. The first byte picks the mode:
//   0  the rest is a service-account JSON file;
//   1  a PEM made at start-up (plain, encrypted PKCS#8 or encrypted traditional; no key material in the
//      repository) edited by the rest as (position, byte) pairs, inside a valid key file;
//   2  the rest is a token endpoint answer;
//   3  the rest gives the claims (email, token URI, key id, scope separated by newlines) and the issue
//      time of a JWT assertion signed with the start-up key, which must verify.
// Errors are fine; crashes, UB, a pass phrase prompt (a hang) or an echoed private key are not.

#include <cascade/provider/google_jwt.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

struct Keys {
    EVP_PKEY* key = nullptr;
    std::string plain, pkcs8_encrypted, traditional_encrypted;
};

std::string pem_of(EVP_PKEY* key, EVP_CIPHER const* cipher, bool traditional) {
    BIO* b = BIO_new(BIO_s_mem());
    unsigned char pass[] = "fuzz pass phrase";
    int ok = traditional ? PEM_write_bio_PrivateKey_traditional(b, key, cipher, pass, cipher ? 16 : 0, nullptr, nullptr)
                         : PEM_write_bio_PrivateKey(b, key, cipher, cipher ? pass : nullptr, cipher ? 16 : 0, nullptr, nullptr);
    if (ok != 1) fail("the start-up key can be written as PEM");
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

Keys const& keys() {
    static Keys const k = [] {
        Keys k;
        k.key = EVP_RSA_gen(1024);  // small: signing runs on every input of mode 3
        if (!k.key) fail("the start-up key is made");
        k.plain = pem_of(k.key, nullptr, false);
        k.pkcs8_encrypted = pem_of(k.key, EVP_aes_256_cbc(), false);
        k.traditional_encrypted = pem_of(k.key, EVP_aes_256_cbc(), true);
        return k;
    }();
    return k;
}

std::string key_file(std::string const& pem, std::string_view email = "fuzz@cascade-test.iam.gserviceaccount.com",
                     std::string_view token_uri = "https://oauth2.googleapis.com/token", std::string_view kid = "fuzz-key") {
    boost::json::object o{{"type", "service_account"},   {"project_id", "cascade-fuzz"}, {"private_key_id", kid},
                          {"private_key", pem},          {"client_email", email},        {"token_uri", token_uri}};
    return boost::json::serialize(o);
}

std::string base64url_decode(std::string_view in) {
    std::string out;
    int buf = 0, bits = 0;
    for (char c : in) {
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (v < 0) fail("a JWT is base64url");
        buf = ((buf << 6) | v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xff);
        }
    }
    return out;
}

bool ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

void key_file_text(std::string_view json) {
    auto sa = cascade::google::parse_service_account(json, "fuzz.json");
    boost::system::error_code ec;
    auto v = boost::json::parse(json, ec);
    if (sa) {
        if (sa->private_key_pem.empty() || sa->client_email.empty() || sa->token_uri.empty()) fail("an accepted key file has its fields");
        if (!cascade::google::make_assertion(*sa, 1'700'000'000)) fail("a key that was read once signs");
        return;
    }
    // The error names the field, never the key.
    if (!ec && v.is_object())
        if (auto const* pk = v.get_object().if_contains("private_key"); pk && pk->is_string() && pk->get_string().size() >= 16)
            if (sa.error().message.find(std::string_view(pk->get_string())) != std::string::npos) fail("an error never echoes the private key");
}

void edited_pem(std::string_view in) {
    if (in.empty()) return;
    auto const& k = keys();
    std::string pem = in[0] % 3 == 0 ? k.plain : in[0] % 3 == 1 ? k.pkcs8_encrypted : k.traditional_encrypted;
    bool const encrypted = in[0] % 3 != 0;
    in.remove_prefix(1);
    bool const edited = in.size() >= 3;
    for (; in.size() >= 3; in.remove_prefix(3)) {
        std::size_t pos = (static_cast<unsigned char>(in[0]) << 8 | static_cast<unsigned char>(in[1])) % (pem.size() + 1);
        if (pos == pem.size()) pem.resize(pos / 2);  // a cut
        else pem[pos] = in[2];
    }
    auto sa = cascade::google::parse_service_account(key_file(pem), "fuzz.json");
    if (!edited && encrypted) {
        if (sa || sa.error().message.find("field 'private_key' is encrypted") == std::string::npos) fail("an encrypted key fails at once, saying it is encrypted");
    }
    if (!edited && !encrypted && !sa) fail("the plain start-up key is accepted");
    if (sa && !cascade::google::make_assertion(*sa, 1'700'000'000)) fail("an accepted edited key signs");
    if (!sa && sa.error().message.find("pass phrase") != std::string::npos) fail("no pass phrase is asked for");
}

void token_answer(std::string_view body) {
    auto t = cascade::google::parse_token_response(body);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (t) {
        if (t->value.empty()) fail("a token has a value");
        if (t->expires_in.count() < 0 || t->expires_in > cascade::google::longest_token_lifetime) fail("expires_in is within [0, 24 h]");
        if (ec || !v.is_object()) fail("a token is only made of a JSON object");
        // A negative expires_in is never accepted.
        if (auto const* e = v.get_object().if_contains("expires_in"))
            if ((e->is_int64() && e->get_int64() < 0) || (e->is_double() && e->get_double() < 0)) fail("a negative expires_in is never accepted");
    } else if (t.error().message.rfind("token endpoint: ", 0) != 0) {
        fail("a token endpoint error says where it comes from");
    }
}

void assertion(std::string_view in) {
    if (in.size() < 8) return;
    std::int64_t iat = 0;
    std::memcpy(&iat, in.data(), 8);
    in.remove_prefix(8);
    std::string_view fields[4] = {"fuzz@cascade-test.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token", "fuzz-key",
                                  cascade::google::cloud_platform_scope};
    for (auto& f : fields) {
        if (in.empty()) break;
        auto nl = in.find('\n');
        f = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    }
    cascade::google::ServiceAccount sa;
    sa.private_key_pem = keys().plain;
    sa.client_email = std::string(fields[0]);
    sa.token_uri = std::string(fields[1]);
    sa.private_key_id = std::string(fields[2]);
    auto lifetime = std::chrono::seconds(static_cast<std::int64_t>(in.size()) * 97 - 1000);
    auto jwt = cascade::google::make_assertion(sa, iat, lifetime, fields[3]);
    if (!jwt) {
        if (iat <= std::numeric_limits<std::int64_t>::max() - 3600) fail("an assertion is made for any issue time that does not overflow");
        return;
    }
    auto d1 = jwt->find('.'), d2 = jwt->rfind('.');
    if (d1 == std::string::npos || d1 == d2 || jwt->find('.', d1 + 1) != d2) fail("a JWT has three parts");
    auto sig = base64url_decode(std::string_view(*jwt).substr(d2 + 1));
    auto input = std::string_view(*jwt).substr(0, d2);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, keys().key) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<unsigned char const*>(sig.data()), sig.size(),
                               reinterpret_cast<unsigned char const*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) fail("a JWT verifies with the key's public half");
    auto claims_text = base64url_decode(std::string_view(*jwt).substr(d1 + 1, d2 - d1 - 1));
    boost::system::error_code ec;
    auto claims = boost::json::parse(claims_text, ec);
    bool const plain = ascii(fields[0]) && ascii(fields[1]) && ascii(fields[3]);
    if (!plain) return;  // invalid UTF-8 is signed as it is; a JSON parser may refuse it
    if (ec || !claims.is_object()) fail("ASCII claims are JSON");
    auto const& c = claims.get_object();
    if (c.at("iss").as_string() != fields[0] || c.at("aud").as_string() != fields[1] || c.at("scope").as_string() != fields[3]) fail("iss, aud and scope are what was given");
    auto exp = c.at("exp").as_int64() - c.at("iat").as_int64();
    if (c.at("iat").as_int64() != iat || exp < 0 || exp > 3600) fail("iat is what was given and exp is at most an hour later");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<char const*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0: key_file_text(in); break;
    case 1: edited_pem(in); break;
    case 2: token_answer(in); break;
    default: assertion(in); break;
    }
    return 0;
}
