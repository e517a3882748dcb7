// libFuzzer target: Anthropic's Messages wire format. The first byte picks what the rest is: a reply body,
// a stream as raw SSE bytes (fed whole and in two pieces: the same reply either way), a stream as one data
// payload per line (a line starting with '!' is an `error` event), or message contents for a request body.
// No UB; token counts are what the JSON says, saturated to 32 bits; the prompt is their saturated sum.

#include <cascade/net/sse_parser.hpp>
#include <cascade/provider/anthropic_wire.hpp>

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
std::uint32_t expected_count(boost::json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64() <= 0 ? 0 : v->get_int64() >= top ? top : static_cast<std::uint32_t>(v->get_int64());
    if (v->is_uint64()) return v->get_uint64() >= top ? top : static_cast<std::uint32_t>(v->get_uint64());
    return 0;
}

bool same(cascade::anthropic::TokenCounts const& a, cascade::anthropic::TokenCounts const& b) {
    return a.input_tokens == b.input_tokens && a.cache_creation_input_tokens == b.cache_creation_input_tokens &&
           a.cache_read_input_tokens == b.cache_read_input_tokens && a.output_tokens == b.output_tokens;
}

void check_usage(cascade::anthropic::TokenCounts const& t) {
    std::uint64_t const sum = std::uint64_t{t.input_tokens} + t.cache_creation_input_tokens + t.cache_read_input_tokens;
    auto const u = t.usage();
    if (u.prompt_tokens != (sum > top ? top : sum)) fail("the prompt is the saturated sum of the input counts");
    if (u.completion_tokens != t.output_tokens) fail("the completion is output_tokens");
}

bool ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

void reply(std::string_view body) {
    auto r = cascade::anthropic::parse_reply(body);
    if (!r) return;
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) fail("a reply is only made of a JSON object");
    auto const& o = v.get_object();
    cascade::anthropic::TokenCounts expected;
    std::string text;
    if (auto const* u = o.if_contains("usage"); u && u->is_object()) {
        expected.input_tokens = expected_count(u->get_object(), "input_tokens");
        expected.cache_creation_input_tokens = expected_count(u->get_object(), "cache_creation_input_tokens");
        expected.cache_read_input_tokens = expected_count(u->get_object(), "cache_read_input_tokens");
        expected.output_tokens = expected_count(u->get_object(), "output_tokens");
    }
    for (auto const& b : o.at("content").as_array()) {
        auto const* bo = b.if_object();
        if (!bo) continue;
        auto const* type = bo->if_contains("type");
        auto const* t = bo->if_contains("text");
        if (type && type->is_string() && type->get_string() == "text" && t && t->is_string()) text += t->get_string();
    }
    if (!same(r->tokens, expected)) fail("reply usage is what the JSON says, saturated to 32 bits");
    if (r->text != text) fail("the answer is the text blocks, in order, and nothing else");
    check_usage(r->tokens);
}

struct Assembled {
    cascade::anthropic::StreamAssembler a;
    cascade::net::SseParser sse;
    void feed(std::string_view bytes) {
        sse.feed(bytes, [&](cascade::net::SseEvent const& e) { a.on_data(e.data, e.error); });
    }
};

void raw_stream(std::string_view in) {
    Assembled whole, split;
    whole.feed(in);
    std::size_t const at = in.empty() ? 0 : static_cast<unsigned char>(in[0]) % in.size();
    split.feed(in.substr(0, at));
    split.feed(in.substr(at));
    auto& x = whole.a;
    auto& y = split.a;
    if (x.reply().text != y.reply().text || x.reply().model != y.reply().model || x.reply().stop_reason != y.reply().stop_reason ||
        !same(x.reply().tokens, y.reply().tokens) || x.errored() != y.errored() || x.malformed() != y.malformed() ||
        x.complete() != y.complete() || x.failed_data() != y.failed_data())
        fail("a stream reads the same however it is split");
    check_usage(x.reply().tokens);
}

void line_stream(std::string_view in) {
    cascade::anthropic::StreamAssembler s;
    while (!in.empty()) {
        auto nl = in.find('\n');
        auto line = in.substr(0, nl);
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        bool const error_event = !line.empty() && line.front() == '!';
        if (error_event) line.remove_prefix(1);
        auto const before = s.reply().tokens;
        bool const go_on = s.on_data(line, error_event);
        if (go_on == s.errored()) fail("on_data returns false exactly when the stream errored");
        if (!go_on) {
            if (s.error_message().empty()) fail("an errored stream has a message");
            if (!same(s.reply().tokens, before)) fail("an error event changes no count");
            return;
        }
        check_usage(s.reply().tokens);
        boost::system::error_code ec;
        auto v = boost::json::parse(line, ec);
        if (ec || !v.is_object()) continue;
        auto const& o = v.get_object();
        auto const* type = o.if_contains("type");
        // message_delta's usage is cumulative: each count it has replaces the last; those it lacks stay.
        if (type && type->is_string() && type->get_string() == "message_delta") {
            auto const* u = o.if_contains("usage");
            if (u && u->is_object()) {
                auto const& uo = u->get_object();
                if (uo.contains("output_tokens") && s.reply().tokens.output_tokens != expected_count(uo, "output_tokens"))
                    fail("message_delta's output_tokens replaces the last");
                if (!uo.contains("input_tokens") && s.reply().tokens.input_tokens != before.input_tokens)
                    fail("a count message_delta lacks stays");
            } else if (!same(s.reply().tokens, before)) {
                fail("an event without usage keeps the counts");
            }
        }
        if (type && type->is_string() && type->get_string() == "message_stop" && !s.complete()) fail("message_stop completes a stream");
    }
}

void request(std::string_view in) {
    // Up to four messages separated by newlines: system, user, assistant, user.
    cascade::Request req;
    cascade::Role const roles[] = {cascade::Role::system, cascade::Role::user, cascade::Role::assistant, cascade::Role::user};
    for (int i = 0; i < 4 && !in.empty(); ++i) {
        auto nl = in.find('\n');
        req.messages.push_back(cascade::Message{roles[i], std::string(in.substr(0, nl))});
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    }
    req.max_tokens = static_cast<int>(in.size()) - 8;
    req.temperature = static_cast<double>(in.size() % 300) / 100.0 - 0.5;
    auto body = cascade::anthropic::request_body(req, "claude-haiku-4-5", static_cast<int>(in.size() % 5) - 1, in.size() % 2 == 0);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    bool all_ascii = true;
    for (auto const& m : req.messages) all_ascii = all_ascii && ascii(m.content);
    if (!all_ascii) return;  // invalid UTF-8 is sent as it is; a JSON parser may refuse it
    if (ec || !v.is_object()) fail("an ASCII request body is JSON");
    auto const& o = v.get_object();
    if (o.at("max_tokens").as_int64() < 1) fail("max_tokens is at least 1");
    if (req.max_tokens > 0 && o.at("max_tokens").as_int64() != req.max_tokens) fail("a positive max_tokens is sent as it is");
    double const t = o.at("temperature").to_number<double>();
    if (t < 0.0 || t > 1.0) fail("temperature is within 0..1");
    auto const& msgs = o.at("messages").as_array();
    std::size_t k = 0;
    for (auto const& m : req.messages) {
        if (m.role == cascade::Role::system) {
            if (!m.content.empty() && o.at("system").as_string() != m.content) fail("the system message is the top-level system");
            continue;
        }
        if (k >= msgs.size() || msgs[k].at("content").as_string() != m.content ||
            msgs[k].at("role").as_string() != (m.role == cascade::Role::assistant ? "assistant" : "user"))
            fail("the turns round-trip in order, roles mapped");
        ++k;
    }
    if (k != msgs.size()) fail("every non-system message is in messages");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<char const*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0: reply(in); break;
    case 1: raw_stream(in); break;
    case 2: line_stream(in); break;
    default: request(in); break;
    }
    return 0;
}
