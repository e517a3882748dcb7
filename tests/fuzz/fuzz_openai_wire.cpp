// libFuzzer target: the OpenAI chat-completions wire format. The first byte picks what the rest is:
// a reply body, a stream (one SSE data payload per line; a line starting with '!' is an `error` event),
// or message contents for a request body. No UB; usage is what the JSON says, saturated to 32 bits.

#include <cascade/provider/openai_wire.hpp>

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

// What a token count in the JSON should become: negative or not an integer is 0, too large is saturated.
std::uint32_t expected_count(boost::json::value const* v) {
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64() <= 0 ? 0 : v->get_int64() >= top ? top : static_cast<std::uint32_t>(v->get_int64());
    if (v->is_uint64()) return v->get_uint64() >= top ? top : static_cast<std::uint32_t>(v->get_uint64());
    return 0;
}

cascade::Usage expected_usage(boost::json::object const& o) {
    boost::json::value const* usage = o.if_contains("usage");
    if (!usage || !usage->is_object()) {
        usage = nullptr;
        if (auto const* xg = o.if_contains("x_groq"); xg && xg->is_object()) usage = xg->get_object().if_contains("usage");
    }
    cascade::Usage u;
    if (usage && usage->is_object()) {
        u.prompt_tokens = expected_count(usage->get_object().if_contains("prompt_tokens"));
        u.completion_tokens = expected_count(usage->get_object().if_contains("completion_tokens"));
    }
    return u;
}

bool same(cascade::Usage a, cascade::Usage b) { return a.prompt_tokens == b.prompt_tokens && a.completion_tokens == b.completion_tokens; }

bool ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

void reply(std::string_view body) {
    auto r = cascade::openai::parse_reply(body);
    if (!r) return;
    auto text = body;
    while (!text.empty() && (text.front() == '\n' || text.front() == '\r' || text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) fail("a reply is only made of a JSON object");
    if (!same(r->usage, expected_usage(v.get_object()))) fail("reply usage is what the JSON says, saturated to 32 bits");
}

void stream(std::string_view in) {
    cascade::openai::StreamAssembler s;
    while (!in.empty()) {
        auto nl = in.find('\n');
        auto line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        bool const error_event = !line.empty() && line.front() == '!';
        if (error_event) line.remove_prefix(1);
        auto before = s.reply().usage;
        bool const go_on = s.on_data(line, error_event);
        if (go_on == s.errored()) fail("on_data returns false exactly when the stream errored");
        if (!go_on) {
            if (s.error_message().empty()) fail("an errored stream has a message");
            return;
        }
        // A chunk with usage replaces it; a chunk without keeps the last.
        boost::system::error_code ec;
        auto v = boost::json::parse(line, ec);
        if (!ec && v.is_object()) {
            auto u = expected_usage(v.get_object());
            if (u.prompt_tokens || u.completion_tokens) {
                if (!same(s.reply().usage, u)) fail("a chunk's usage replaces the last");
            } else if (!same(s.reply().usage, before)) {
                fail("a chunk without usage keeps the last");
            }
        }
        if (line == "[DONE]" && !s.complete()) fail("[DONE] completes a stream");
    }
}

void request(std::string_view in) {
    auto nl = in.find('\n');
    auto req = cascade::Request::chat(std::string(in.substr(0, nl)), nl == std::string_view::npos ? std::string() : std::string(in.substr(nl + 1)));
    req.max_tokens = static_cast<int>(in.size()) - 8;
    req.temperature = static_cast<double>(in.size() % 200) / 100.0;
    auto body = cascade::openai::request_body(req, "llama-3.3-70b-versatile", in.size() % 2 == 0);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (!ascii(in)) return;  // invalid UTF-8 is sent as it is; a JSON parser may refuse it
    if (ec || !v.is_object()) fail("an ASCII request body is JSON");
    auto const& msgs = v.get_object().at("messages").as_array();
    if (msgs.size() != req.messages.size()) fail("the request body has every message");
    for (std::size_t i = 0; i < msgs.size(); ++i)
        if (msgs[i].at("content").as_string() != req.messages[i].content ||
            msgs[i].at("role").as_string() != cascade::openai::role_name(req.messages[i].role))
            fail("the request body's messages round-trip");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<char const*>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0: reply(in); break;
    case 1: stream(in); break;
    default: request(in); break;
    }
    return 0;
}
