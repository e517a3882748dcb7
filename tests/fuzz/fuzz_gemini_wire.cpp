// libFuzzer target: the Gemini generateContent wire format. The first byte picks what the rest is: a
// reply body (also a stream chunk: streamGenerateContent wraps bodies in an array), or message contents
// for a request body. No UB; usage is what usageMetadata says, saturated to 32 bits, thoughts billed as
// output.

#include <cascade/provider/gemini_wire.hpp>

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

constexpr auto top = std::numeric_limits<std::uint32_t>::max();

// What a token count in the JSON should become: negative or not an integer is 0, too large is saturated.
std::uint64_t expected_count(boost::json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64() <= 0 ? 0 : v->get_int64() >= top ? top : static_cast<std::uint64_t>(v->get_int64());
    if (v->is_uint64()) return v->get_uint64() >= top ? top : v->get_uint64();
    return 0;
}

bool ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

void reply(std::string_view body) {
    auto r = cascade::gemini::parse_reply(body);
    if (!r) return;
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) fail("a reply is only made of JSON");
    if (v.is_array() && !v.get_array().empty()) v = v.get_array()[0];
    if (!v.is_object()) fail("a reply is only made of a JSON object");
    auto const& o = v.get_object();
    std::uint64_t prompt = 0, completion = 0;
    if (auto const* um = o.if_contains("usageMetadata"); um && um->is_object()) {
        prompt = expected_count(um->get_object(), "promptTokenCount");
        completion = expected_count(um->get_object(), "candidatesTokenCount") + expected_count(um->get_object(), "thoughtsTokenCount");
    }
    if (completion > top) completion = top;
    if (r->usage.prompt_tokens != prompt || r->usage.completion_tokens != completion) fail("usage is what usageMetadata says, saturated, thoughts as output");
    if (r->prompt_blocked && r->finish_reason.empty()) fail("a blocked prompt names a reason");
}

void request(std::string_view in) {
    // Up to three messages separated by newlines: system, user, assistant.
    cascade::Request req;
    cascade::Role const roles[] = {cascade::Role::system, cascade::Role::user, cascade::Role::assistant};
    for (int i = 0; i < 3 && !in.empty(); ++i) {
        auto nl = in.find('\n');
        req.messages.push_back(cascade::Message{roles[i], std::string(in.substr(0, nl))});
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    }
    req.max_tokens = static_cast<int>(in.size()) - 8;
    auto body = cascade::gemini::request_body(req);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    bool all_ascii = true;
    for (auto const& m : req.messages) all_ascii = all_ascii && ascii(m.content);
    if (!all_ascii) return;  // invalid UTF-8 is sent as it is; a JSON parser may refuse it
    if (ec || !v.is_object()) fail("an ASCII request body is JSON");
    auto const& o = v.get_object();
    auto const& contents = o.at("contents").as_array();
    std::size_t k = 0;
    for (auto const& m : req.messages) {
        if (m.role == cascade::Role::system) {
            if (!m.content.empty() && o.at("systemInstruction").at("parts").as_array()[0].at("text").as_string() != m.content) fail("the system instruction round-trips");
            continue;
        }
        if (k >= contents.size() || contents[k].at("parts").as_array()[0].at("text").as_string() != m.content ||
            contents[k].at("role").as_string() != (m.role == cascade::Role::assistant ? "model" : "user"))
            fail("contents round-trip, roles mapped");
        ++k;
    }
    if (k != contents.size()) fail("every non-system message is in contents");
    // generationConfig holds only what the request sets, and is left out when that is nothing.
    auto const* gen = o.if_contains("generationConfig");
    bool const sent = gen && gen->is_object() && gen->get_object().contains("maxOutputTokens");
    if ((req.max_tokens.value_or(0) > 0) != sent) fail("maxOutputTokens is sent exactly when max_tokens is positive");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<char const*>(data) + 1, size - 1);
    if (data[0] % 4 == 3) request(in);
    else reply(in);
    return 0;
}
