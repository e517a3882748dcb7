#pragma once
// An RSA key pair made at test time (no key material in the repository) and a service-account JSON
// around it; plus RS256 verification for the loopback token endpoint.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::test {

struct RsaKeyPair {
    std::string private_pem;
    std::string public_pem;
};

inline RsaKeyPair make_rsa_key(int bits = 2048) {
    EVP_PKEY* raw = EVP_RSA_gen(static_cast<unsigned>(bits));
    if (!raw) throw std::runtime_error("EVP_RSA_gen failed");
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, &EVP_PKEY_free);
    auto to_string = [](BIO* b) {
        char* data = nullptr;
        long n = BIO_get_mem_data(b, &data);
        std::string s(data, static_cast<std::size_t>(n));
        BIO_free(b);
        return s;
    };
    BIO* priv = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    BIO* pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(pub, key.get());
    return {to_string(priv), to_string(pub)};
}

// The private half of `k` encrypted with `pass_phrase`: PKCS#8 ("BEGIN ENCRYPTED PRIVATE KEY"), or the
// traditional form ("Proc-Type: 4,ENCRYPTED") when `traditional`.
inline std::string encrypted_private_pem(RsaKeyPair const& k, std::string const& pass_phrase, bool traditional = false) {
    BIO* in = BIO_new_mem_buf(k.private_pem.data(), static_cast<int>(k.private_pem.size()));
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr), &EVP_PKEY_free);
    BIO_free(in);
    if (!key) throw std::runtime_error("cannot read the test key");
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
    auto* pass = reinterpret_cast<unsigned char*>(const_cast<char*>(pass_phrase.data()));
    int len = static_cast<int>(pass_phrase.size());
    int ok = traditional ? PEM_write_bio_PrivateKey_traditional(out.get(), key.get(), EVP_aes_256_cbc(), pass, len, nullptr, nullptr)
                         : PEM_write_bio_PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(), pass, len, nullptr, nullptr);
    if (ok != 1) throw std::runtime_error("cannot encrypt the test key");
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// A damaged private key that still parses: `k`'s parts with one bit of the modulus flipped, so n is not p q.
inline std::string mismatched_private_pem(RsaKeyPair const& k) {
    BIO* in = BIO_new_mem_buf(k.private_pem.data(), static_cast<int>(k.private_pem.size()));
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr), &EVP_PKEY_free);
    BIO_free(in);
    if (!key) throw std::runtime_error("cannot read the test key");
    char const* const names[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_D,
                                 OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                 OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), &OSSL_PARAM_BLD_free);
    std::vector<std::unique_ptr<BIGNUM, decltype(&BN_free)>> parts;
    for (auto const* name : names) {
        BIGNUM* bn = nullptr;
        if (EVP_PKEY_get_bn_param(key.get(), name, &bn) != 1) throw std::runtime_error("cannot read an RSA part");
        parts.emplace_back(bn, &BN_free);
        if (parts.size() == 1) {  // the modulus: flip a bit in its middle
            int bit = BN_num_bits(bn) / 2;
            if (BN_is_bit_set(bn, bit)) BN_clear_bit(bn, bit);
            else BN_set_bit(bn, bit);
        }
        OSSL_PARAM_BLD_push_BN(bld.get(), name, bn);
    }
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), &OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), &EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 || EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) != 1)
        throw std::runtime_error("cannot build the damaged key");
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> bad(raw, &EVP_PKEY_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(out.get(), bad.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

inline std::string service_account_json(RsaKeyPair const& k, std::string const& token_uri) {
    boost::json::object o{{"type", "service_account"},
                          {"project_id", "cascade-test"},
                          {"private_key_id", "test-key-1"},
                          {"private_key", k.private_pem},
                          {"client_email", "tester@cascade-test.iam.gserviceaccount.com"},
                          {"client_id", "123456789"},
                          {"token_uri", token_uri}};
    return boost::json::serialize(o);
}

inline std::string base64url_decode(std::string_view in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '-') return 62;
        if (c == '_') return 63;
        return -1;
    };
    std::string out;
    int buf = 0, bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) throw std::runtime_error("bad base64url");
        buf = (buf << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xff);
        }
    }
    return out;
}

// Verifies an RS256 JWT against a PEM public key; returns the decoded claims JSON, or throws.
inline std::string verify_rs256(std::string_view jwt, std::string const& public_pem) {
    auto d1 = jwt.find('.');
    auto d2 = jwt.find('.', d1 == std::string_view::npos ? 0 : d1 + 1);
    if (d1 == std::string_view::npos || d2 == std::string_view::npos) throw std::runtime_error("not a JWT");
    auto signing_input = jwt.substr(0, d2);
    auto sig = base64url_decode(jwt.substr(d2 + 1));
    BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr), &EVP_PKEY_free);
    BIO_free(bio);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!key || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), reinterpret_cast<unsigned char const*>(sig.data()), sig.size(),
                         reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size()) != 1)
        throw std::runtime_error("invalid JWT signature");
    return base64url_decode(jwt.substr(d1 + 1, d2 - d1 - 1));
}

} // namespace cascade::test
