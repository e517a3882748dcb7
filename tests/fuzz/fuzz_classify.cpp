// libFuzzer target: the default classifier on one failed attempt. The input is two bytes of status
// (big-endian, modulo 1000), then `name: value` header lines up to an empty line, then the body. Two header
// lines are the harness's, not the response's: `@transport: <c><n>` sets the transport error (category `f`
// a cascade::Fault, `s` system, `h` Beast HTTP, `a` Asio misc; `n` its value) and `@detail: <text>` the
// tier's own words (Observation::detail). Every `@KEY@` in the body or the words is replaced by a
// Groq-shaped key, which must never reach the verdict's detail. Each input is also classified as every
// Fault a tier may name (and one past the last), in the input's words: each must come back as itself.

#include <cascade/detail/duration.hpp>
#include <cascade/policy/classify.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

constexpr std::string_view planted_secret = "Zq7Xw2Lp9Rt4Vb8Nm3Kc6Hj1Fd5Gs0Ya";

void check_wait(std::optional<std::chrono::milliseconds> w) {
    if (w && (w->count() < 0 || *w > cascade::detail::longest_wait)) fail("a cooldown is within [0, longest_wait]");
}

std::string plant_keys(std::string_view in) {
    std::string out(in);
    for (auto pos = out.find("@KEY@"); pos != std::string::npos; pos = out.find("@KEY@", pos)) {
        std::string key = " gsk_" + std::string(planted_secret) + " ";
        out.replace(pos, 5, key);
        pos += key.size();
    }
    return out;
}

// `f12` -> Fault 12, `s104` -> ECONNRESET, ...; anything else: no transport error.
boost::system::error_code transport_of(std::string_view spec) {
    if (spec.size() < 2 || spec.size() > 6) return {};
    int n = 0;
    for (char c : spec.substr(1)) {
        if (c < '0' || c > '9') return {};
        n = n * 10 + (c - '0');
    }
    switch (spec.front()) {
    case 'f': return {n, cascade::fault_category()};
    case 's': return {n, boost::system::system_category()};
    case 'h': return {n, boost::beast::http::make_error_code(boost::beast::http::error::bad_version).category()};
    case 'a': return {n, boost::asio::error::get_misc_category()};
    default: return {};
    }
}

void check(cascade::Observation const& obs, cascade::Verdict const& v, bool check_leak) {
    if (v.http_status != obs.status) fail("the verdict carries the response's status");
    check_wait(v.cool_for);
    int const fault = static_cast<int>(v.fault);
    if (fault < static_cast<int>(cascade::Fault::rate_limited) || fault > static_cast<int>(cascade::Fault::overloaded)) fail("the fault is a Fault");
    if (v.scope != cascade::Scope::attempt && v.scope != cascade::Scope::key && v.scope != cascade::Scope::provider) fail("the scope is a Scope");
    if (v.scope == cascade::Scope::provider && v.fault != cascade::Fault::blocked && v.fault != cascade::Fault::rate_limited &&
        v.fault != cascade::Fault::model_unavailable && v.fault != cascade::Fault::overloaded)
        fail("only blocks, edge rate limits, overloads and retired models reach the whole provider");
    if ((v.fault == cascade::Fault::blocked || v.fault == cascade::Fault::model_unavailable) && v.cool_for)
        fail("a block's or a retired model's rest is the chain's setting, not the classifier's");
    if (v.detail.size() > 200) fail("the detail is at most 200 bytes");
    if (check_leak && v.detail.find(planted_secret.substr(0, 8)) != std::string::npos) fail("a planted key never reaches the detail");

    // A fault the tier names itself comes back as that fault, for this attempt only, with no rest or retry.
    if (obs.transport && obs.transport.category() == cascade::fault_category()) {
        int const named = obs.transport.value();
        bool const known = named >= static_cast<int>(cascade::Fault::rate_limited) && named <= static_cast<int>(cascade::Fault::overloaded);
        if (known && fault != named) fail("a fault-coded transport gives back that fault");
        if (!known && v.fault != cascade::Fault::server_error) fail("a code outside the Fault range is a server error");
        if (v.scope != cascade::Scope::attempt || v.retry_same || v.cool_for) fail("a named fault concerns this attempt only");
    } else if (obs.transport && v.scope != cascade::Scope::attempt) {
        fail("a transport error concerns this attempt only");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 2) return 0;
    std::string_view in(reinterpret_cast<char const*>(data), size);
    int const status = ((data[0] << 8) | data[1]) % 1000;
    in.remove_prefix(2);

    cascade::Observation obs;
    obs.status = status;
    std::string_view words;
    while (!in.empty()) {
        auto nl = in.find('\n');
        auto line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto name = line.substr(0, colon);
        auto value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name == "@transport") obs.transport = transport_of(value);
        else if (name == "@detail") words = value;
        else obs.headers.add(std::string(name), std::string(value));
    }
    // Only check for leaks of a key the input did not already spell out in some other way.
    bool const check_leak = std::string_view(reinterpret_cast<char const*>(data), size).find(planted_secret.substr(0, 8)) == std::string_view::npos;
    obs.body = plant_keys(in);
    obs.detail = plant_keys(words);

    cascade::DefaultClassify classifier;
    check(obs, classifier.classify(obs), check_leak);
    // Every fault a tier may name (and one past the last), in this input's words.
    for (int f = static_cast<int>(cascade::Fault::rate_limited); f <= static_cast<int>(cascade::Fault::model_unavailable) + 1; ++f) {
        cascade::Observation named;
        named.status = status;
        named.transport = boost::system::error_code(f, cascade::fault_category());
        named.detail = obs.detail;
        check(named, classifier.classify(named), check_leak);
    }

    // The pieces it is made of.
    auto code = cascade::detail::cloudflare_text_code(obs.body);
    if (code < 0 || code > cascade::detail::max_cloudflare_code) fail("a Cloudflare text code is in range");
    auto html_code = cascade::detail::cloudflare_html_code(obs.body);
    if (html_code < 0 || html_code > 9999) fail("a Cloudflare HTML code has at most 4 digits");
    auto info = cascade::detail::error_info(obs.body);
    if (info.cloudflare_code < 0 || info.cloudflare_code > cascade::detail::max_cloudflare_code) fail("a Cloudflare JSON code is in range");
    if (info.retry_hint) check_wait(*info.retry_hint);
    if (info.block_reason && info.block_reason->empty()) fail("a blocked prompt always has a reason");
    return 0;
}
