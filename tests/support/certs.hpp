#pragma once
// A certificate authority and a server certificate for localhost / 127.0.0.1, made at test time with
// OpenSSL (no key material in the repository).

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace cascade::test {

struct TestPki {
    std::string ca_pem;           // trust this
    std::string server_cert_pem;  // signed by the CA, for DNS:localhost and IP:127.0.0.1
    std::string server_key_pem;
};

namespace detail {
inline std::string pem_of(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}
inline std::string pem_of(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}
inline void add_ext(X509* cert, X509* issuer, int nid, char const* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw std::runtime_error("cannot make a certificate extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}
inline X509* make_cert(EVP_PKEY* key, char const* cn, X509* issuer, EVP_PKEY* issuer_key, long serial, bool ca,
                       char const* san) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<unsigned char const*>(cn), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509* iss = issuer ? issuer : x;
    if (ca) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_ext_key_usage, "serverAuth");
        add_ext(x, iss, NID_subject_alt_name, san);
    }
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) throw std::runtime_error("cannot sign a certificate");
    return x;
}
} // namespace detail

// `san` names the server certificate's subjectAltName (e.g. "DNS:example.com" for a name mismatch).
inline TestPki make_test_pki(char const* san = "DNS:localhost,IP:127.0.0.1") {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ca_key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> srv_key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    if (!ca_key || !srv_key) throw std::runtime_error("cannot make test keys");
    std::unique_ptr<X509, decltype(&X509_free)> ca(detail::make_cert(ca_key.get(), "cascade test CA", nullptr, nullptr, 1, true, nullptr),
                                                   &X509_free);
    std::unique_ptr<X509, decltype(&X509_free)> srv(
        detail::make_cert(srv_key.get(), "localhost", ca.get(), ca_key.get(), 2, false, san), &X509_free);
    return {detail::pem_of(ca.get()), detail::pem_of(srv.get()), detail::pem_of(srv_key.get())};
}

} // namespace cascade::test
