// Keys (environment, files, Secret), redaction, HTML escaping and signed report URLs.

#include <cascade/provider/keys.hpp>
#include <cascade/security/hmac.hpp>
#include <cascade/security/html.hpp>
#include <cascade/security/redact.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace {
struct EnvGuard {
    std::vector<std::string> names;
    void set(std::string const& n, std::string const& v) {
        ::setenv(n.c_str(), v.c_str(), 1);
        names.push_back(n);
    }
    ~EnvGuard() {
        for (auto const& n : names) ::unsetenv(n.c_str());
    }
};
std::vector<std::string> revealed(std::vector<cascade::Secret> const& keys) {
    std::vector<std::string> out;
    for (auto const& k : keys) out.emplace_back(k.reveal());
    return out;
}
} // namespace

TEST_CASE("keys load from numbered variables, a comma list and the plain variable, trimmed and de-duplicated", "[keys]") {
    EnvGuard env;
    env.set("CASCADE_TEST_API_KEY_1", " key-one \n");
    env.set("CASCADE_TEST_API_KEY_3", "key-three");  // a gap is fine
    env.set("CASCADE_TEST_API_KEYS", "key-four, ,key-one,key-five");
    env.set("CASCADE_TEST_API_KEY", "key-six");
    auto keys = cascade::keys_from_env("CASCADE_TEST_API_KEY");
    CHECK(revealed(keys) == std::vector<std::string>{"key-one", "key-three", "key-four", "key-five", "key-six"});
    CHECK(cascade::keys_from_env("CASCADE_NOTHING_SET").empty());
}

TEST_CASE("a secret prints as stars", "[keys][secrets]") {
    cascade::Secret s{"gsk_live_secret"};
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "***");
    CHECK(s.reveal() == "gsk_live_secret");
}

TEST_CASE("keys load one per file, a missing or empty file is an error naming the path, never the contents", "[keys]") {
    std::string dir = "/tmp/cascade-keys-" + std::to_string(::getpid());
    std::string a = dir + "-a", b = dir + "-b", empty = dir + "-empty", two = dir + "-two";
    std::ofstream(a) << "  first-key\n";
    std::ofstream(b) << "second-key";
    std::ofstream(empty) << " \n";
    std::ofstream(two) << "one-key other-key";
    auto ok = cascade::keys_from_files({a, b});
    REQUIRE(ok.has_value());
    CHECK(revealed(*ok) == std::vector<std::string>{"first-key", "second-key"});
    auto missing = cascade::keys_from_files({a, dir + "-missing"});
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message == "cannot read key file '" + dir + "-missing'");
    CHECK(cascade::keys_from_files({empty}).error().message == "key file '" + empty + "' is empty");
    auto both = cascade::keys_from_files({two});
    REQUIRE_FALSE(both.has_value());
    CHECK(both.error().message.find("one-key") == std::string::npos);
    for (auto const& p : {a, b, empty, two}) std::remove(p.c_str());
}

TEST_CASE("redaction removes configured secrets and anything shaped like a key", "[secrets]") {
    std::string_view secrets[] = {"my-custom-secret-123"};
    auto out = cascade::redact("key my-custom-secret-123 failed; Authorization: Bearer abcdefghijkl; gsk_abcDEF123456 "
                               "sk-proj-abcdef123456 sk-or-v1-0123456789 hf_abcdefghij AIzaSyA123456789 ya29.a0Af_token "
                               "Your api key: ****_KEY is invalid; sk-VKMIs*****wjh3.",
                               secrets);
    for (auto leaked : {"my-custom-secret", "abcdefghijkl", "gsk_abc", "sk-proj", "sk-or-v1", "hf_abc", "AIzaSy", "ya29.a0", "****_KEY",
                        "VKMIs", "wjh3"})
        CHECK(out.find(leaked) == std::string::npos);
    CHECK(out.find("Bearer ***") != std::string::npos);
    CHECK(cascade::redact("Rate limit reached for model `llama-3.3-70b-versatile`") ==
          "Rate limit reached for model `llama-3.3-70b-versatile`");
}

TEST_CASE("LLM output is escaped before it goes into HTML", "[html]") {
    CHECK(cascade::escape_html(R"(<script>alert("x")</script>)") == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    CHECK(cascade::escape_html(R"(<img src=x onerror='steal()'>)") == "&lt;img src=x onerror=&#39;steal()&#39;&gt;");
    CHECK(cascade::escape_html("Tom &amp; Jerry") == "Tom &amp;amp; Jerry");
    CHECK(cascade::escape_html("Umsatz +12 % — Größe ✓") == "Umsatz +12 % — Größe ✓");
}

TEST_CASE("a signed report URL verifies until it expires, and any tampering is refused", "[hmac]") {
    std::string const secret = "report-signing-secret";
    auto url = cascade::sign_url("/reports/42?lang=de", 2000, secret);
    CHECK(url.rfind("/reports/42?lang=de&expires=2000&sig=", 0) == 0);
    CHECK(cascade::verify_url(url, secret, 1999) == cascade::UrlCheck::valid);
    CHECK(cascade::verify_url(url, secret, 2000) == cascade::UrlCheck::expired);
    CHECK(cascade::verify_url(url, "another-secret", 1000) == cascade::UrlCheck::bad_signature);
    auto other_report = url;
    other_report.replace(other_report.find("42"), 2, "43");
    CHECK(cascade::verify_url(other_report, secret, 1000) == cascade::UrlCheck::bad_signature);
    auto later = url;
    later.replace(later.find("expires=2000"), 12, "expires=9999");
    CHECK(cascade::verify_url(later, secret, 1000) == cascade::UrlCheck::bad_signature);
    CHECK(cascade::verify_url("/reports/42", secret, 1000) == cascade::UrlCheck::malformed);
    CHECK(cascade::verify_url("/reports/42?expires=abc&sig=00", secret, 1000) == cascade::UrlCheck::malformed);
    CHECK(cascade::sign_url("/r", 5, secret).find("/r?expires=5&sig=") == 0);
}
