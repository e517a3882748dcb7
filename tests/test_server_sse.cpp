// `cascade::server::OpenAISseWriter`: a stream as OpenAI `chat.completion.chunk` server-sent events.
// Every event must be one `data: ` line that Boost.JSON parses (no raw newline may break the framing),
// the text must round-trip exactly, and only a complete stream may end cleanly with `[DONE]`.

#include <cascade/server/openai_sse.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace json = boost::json;
using cascade::Fault;
using cascade::StreamEnd;
using cascade::StreamResult;
using cascade::server::OpenAISseWriter;

namespace {

// The payloads (what follows `data: `) of the events in `out`, checking each event's framing.
std::vector<std::string> payloads(std::string_view out) {
    std::vector<std::string> p;
    while (!out.empty()) {
        auto const end = out.find("\n\n");
        REQUIRE(end != std::string_view::npos);
        auto const event = out.substr(0, end);
        REQUIRE(event.substr(0, 6) == "data: ");
        CHECK(event.find('\n') == std::string_view::npos);  // one line: a raw newline would split the event
        CHECK(event.find('\r') == std::string_view::npos);
        p.emplace_back(event.substr(6));
        out.remove_prefix(end + 2);
    }
    return p;
}

// The one event in `out`, parsed (Boost.JSON rejects invalid UTF-8 too).
json::value parsed(std::string_view out) {
    auto p = payloads(out);
    REQUIRE(p.size() == 1);
    json::error_code ec;
    json::value v = json::parse(p[0], ec);
    INFO(p[0]);
    REQUIRE_FALSE(ec);
    return v;
}

std::string content_of(std::string_view event) {
    auto v = parsed(event);
    return std::string(v.at("choices").at(0).at("delta").at("content").as_string());
}

StreamResult result(StreamEnd end, std::string finish = "stop", boost::system::error_code ec = {}) {
    StreamResult r;
    r.end = end;
    r.completion.text = "Revenue grew.";
    r.completion.finish_reason = std::move(finish);
    r.completion.usage.prompt_tokens = 21;
    r.completion.usage.completion_tokens = 7;
    r.error = ec;
    return r;
}

bool has_finish_stop(std::vector<std::string> const& ps) {
    for (auto const& p : ps) {
        if (p == "[DONE]") continue;
        auto v = json::parse(p);
        auto const* choices = v.as_object().if_contains("choices");
        if (!choices) continue;
        for (auto const& c : choices->as_array())
            if (c.at("finish_reason").is_string() && c.at("finish_reason").as_string() == "stop") return true;
    }
    return false;
}

} // namespace

TEST_CASE("the opening chunk carries the id, created, model and the assistant role with empty content", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-42", "gpt-4o-mini", 1739895917);
    auto v = parsed(w.first());
    CHECK(v.at("id").as_string() == "chatcmpl-42");
    CHECK(v.at("object").as_string() == "chat.completion.chunk");
    CHECK(v.at("created").to_number<std::int64_t>() == 1739895917);
    CHECK(v.at("model").as_string() == "gpt-4o-mini");
    auto const& choice = v.at("choices").at(0);
    CHECK(choice.at("index").to_number<int>() == 0);
    CHECK(choice.at("delta").at("role").as_string() == "assistant");
    CHECK(choice.at("delta").at("content").as_string() == "");
    CHECK(choice.at("finish_reason").is_null());
}

TEST_CASE("a delta round-trips its text exactly: quotes, backslashes, newlines, control characters, multibyte UTF-8",
          "[server][sse]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1);
    std::string const text = GENERATE(as<std::string>{}, "plain", "He said \"no\".", "back\\slash \\n not a newline",
                                      "line one\nline two\r\n", "\n\n", "data: [DONE]\n\n", "tab\there", "bell\x07 esc\x1b unit\x1f del\x7f",
                                      "Привет, мир", "数据 📈 grew 12%", "</script><!--", "\xEF\xBB\xBF BOM and \xE2\x80\xA8 LS");
    INFO(text);
    auto const event = w.delta(text);
    auto v = parsed(event);
    CHECK(v.at("choices").at(0).at("finish_reason").is_null());
    CHECK(content_of(event) == text);
}

TEST_CASE("an empty delta sends nothing", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1);
    CHECK(w.delta("").empty());
}

TEST_CASE("invalid UTF-8 becomes U+FFFD, as a decoder would show it, and the event still parses", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1);
    CHECK(content_of(w.delta("a\xFF" "b")) == "a\xEF\xBF\xBD" "b");
    CHECK(content_of(w.delta("\xC0\xAF")) == "\xEF\xBF\xBD\xEF\xBF\xBD");           // overlong: each byte apart
    CHECK(content_of(w.delta("x\xED\xA0\x80y")) == "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy");  // a surrogate
    CHECK(content_of(w.delta("\xE2\x82" "z")) == "\xEF\xBF\xBD" "z");              // a cut sequence: one U+FFFD
    CHECK(content_of(w.delta("\xF4\x90\x80\x80")).find("\xEF\xBF\xBD") == 0);    // above U+10FFFF
    CHECK(content_of(w.delta("\x80 lone continuation")) == "\xEF\xBF\xBD lone continuation");
}

TEST_CASE("a code point split across two deltas is held back and sent whole with the second", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1);
    CHECK(content_of(w.delta("при\xD0")) == "при");  // "при" and the first byte of "в"
    CHECK(content_of(w.delta("\xB2" "ет")) == "вет");
    // 📈 (F0 9F 93 88) over three deltas: nothing until it is whole
    CHECK(w.delta("\xF0").empty());
    CHECK(w.delta("\x9F\x93").empty());
    CHECK(content_of(w.delta("\x88!")) == "📈!");
    // a held start the next delta does not continue is invalid
    CHECK(content_of(w.delta("a\xD0")) == "a");
    CHECK(content_of(w.delta("x")) == "\xEF\xBF\xBDx");
}

TEST_CASE("the deltas' concatenation round-trips when code points are split anywhere", "[server][sse]") {
    std::string const text = "Выручка 数据 📈 ok";
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        OpenAISseWriter w("chatcmpl-1", "m", 1);
        std::string got;
        for (auto part : {std::string_view(text).substr(0, cut), std::string_view(text).substr(cut)}) {
            auto const ev = w.delta(part);
            if (!ev.empty()) got += content_of(ev);
        }
        auto const tail = payloads(w.end(result(StreamEnd::complete)));
        INFO("cut at byte " << cut);
        CHECK(got == text);
        CHECK(tail.back() == "[DONE]");
    }
}

TEST_CASE("a stream that ends inside a code point sends it as U+FFFD before its end", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1);
    CHECK(content_of(w.delta("ok \xF0\x9F")) == "ok ");
    auto ps = payloads(w.end(result(StreamEnd::complete)));
    REQUIRE(ps.size() == 3);
    CHECK(json::parse(ps[0]).at("choices").at(0).at("delta").at("content").as_string() == "\xEF\xBF\xBD");
    CHECK(ps[2] == "[DONE]");
}

TEST_CASE("a complete stream ends with the finish chunk, then [DONE]", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-7", "m", 5);
    auto ps = payloads(w.end(result(StreamEnd::complete)));
    REQUIRE(ps.size() == 2);
    auto v = json::parse(ps[0]);
    CHECK(v.at("id").as_string() == "chatcmpl-7");
    CHECK(v.at("object").as_string() == "chat.completion.chunk");
    auto const& choice = v.at("choices").at(0);
    CHECK(choice.at("delta").as_object().empty());
    CHECK(choice.at("finish_reason").as_string() == "stop");
    CHECK(v.as_object().if_contains("usage") == nullptr);
    CHECK(ps[1] == "[DONE]");
}

TEST_CASE("with include_usage, the usage chunk (no choices) comes between the finish chunk and [DONE]", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-7", "m", 5, true);
    auto r = result(StreamEnd::complete);
    r.completion.usage.cached_prompt_tokens = 4;
    auto ps = payloads(w.end(r));
    REQUIRE(ps.size() == 3);
    CHECK(json::parse(ps[0]).at("choices").at(0).at("finish_reason").as_string() == "stop");
    auto u = json::parse(ps[1]);
    CHECK(u.at("object").as_string() == "chat.completion.chunk");
    CHECK(u.at("choices").as_array().empty());
    CHECK(u.at("usage").at("prompt_tokens").to_number<int>() == 21);
    CHECK(u.at("usage").at("completion_tokens").to_number<int>() == 7);
    CHECK(u.at("usage").at("total_tokens").to_number<int>() == 28);
    CHECK(u.at("usage").at("prompt_tokens_details").at("cached_tokens").to_number<int>() == 4);
    CHECK(ps[2] == "[DONE]");
}

TEST_CASE("the provider's finish reason maps to OpenAI's: length, content_filter, else stop", "[server][sse]") {
    CHECK(OpenAISseWriter::finish_reason("stop") == "stop");
    CHECK(OpenAISseWriter::finish_reason("") == "stop");
    CHECK(OpenAISseWriter::finish_reason("STOP") == "stop");
    CHECK(OpenAISseWriter::finish_reason("end_turn") == "stop");
    CHECK(OpenAISseWriter::finish_reason("tool_calls") == "stop");
    CHECK(OpenAISseWriter::finish_reason("length") == "length");
    CHECK(OpenAISseWriter::finish_reason("MAX_TOKENS") == "length");
    CHECK(OpenAISseWriter::finish_reason("max_tokens") == "length");
    CHECK(OpenAISseWriter::finish_reason("content_filter") == "content_filter");
    CHECK(OpenAISseWriter::finish_reason("SAFETY") == "content_filter");
    CHECK(OpenAISseWriter::finish_reason("RECITATION") == "content_filter");
    CHECK(OpenAISseWriter::finish_reason("refusal") == "content_filter");

    OpenAISseWriter w("chatcmpl-1", "m", 1);
    auto ps = payloads(w.end(result(StreamEnd::complete, "MAX_TOKENS")));
    CHECK(json::parse(ps[0]).at("choices").at(0).at("finish_reason").as_string() == "length");
}

TEST_CASE("an incomplete stream ends with an error event the SDKs raise, no finish_reason stop and no [DONE]",
          "[server][sse][incomplete]") {
    OpenAISseWriter w("chatcmpl-1", "m", 1, true);
    std::string all = w.first() + w.delta("One ") + w.delta("two ");
    all += w.end(result(StreamEnd::incomplete, "", cascade::make_error_code(Fault::timeout)));
    auto ps = payloads(all);
    REQUIRE(ps.size() == 4);
    auto e = json::parse(ps.back());
    CHECK(e.as_object().size() == 1);
    CHECK(e.at("error").at("type").as_string() == "stream_incomplete");
    CHECK(e.at("error").at("code").as_string() == "timeout");
    CHECK(e.at("error").at("message").as_string().find("partial") != json::string::npos);
    CHECK_FALSE(has_finish_stop(ps));
    for (auto const& p : ps) {
        CHECK(p != "[DONE]");
        CHECK(json::parse(p).as_object().if_contains("usage") == nullptr);
    }
}

TEST_CASE("a failed or cancelled stream ends with its own error type, never with [DONE]", "[server][sse]") {
    SECTION("failed") {
        OpenAISseWriter w("chatcmpl-1", "m", 1);
        auto ps = payloads(w.end(result(StreamEnd::failed, "", cascade::make_error_code(Fault::exhausted))));
        REQUIRE(ps.size() == 1);
        auto e = json::parse(ps[0]);
        CHECK(e.at("error").at("type").as_string() == "upstream_unavailable");
        CHECK(e.at("error").at("code").as_string() == "exhausted");
    }
    SECTION("cancelled") {
        OpenAISseWriter w("chatcmpl-1", "m", 1);
        auto ps = payloads(w.end(result(StreamEnd::cancelled)));
        REQUIRE(ps.size() == 1);
        auto e = json::parse(ps[0]);
        CHECK(e.at("error").at("type").as_string() == "stream_cancelled");
        CHECK(e.at("error").at("code").as_string() == "cancelled");
    }
}

TEST_CASE("an id or model with quotes, newlines or invalid UTF-8 is escaped, never breaks an event", "[server][sse]") {
    OpenAISseWriter w("chatcmpl-\"x\"\n", "model\\\"\xFF", 1);
    for (auto const& ev : {w.first(), w.delta("t")}) {
        auto v = parsed(ev);
        CHECK(v.at("id").as_string() == "chatcmpl-\"x\"\n");
        CHECK(v.at("model").as_string() == "model\\\"\xEF\xBF\xBD");
    }
    auto e = parsed(OpenAISseWriter::error_event("bad \"input\"\n", "invalid_request_error", "x"));
    CHECK(e.at("error").at("message").as_string() == "bad \"input\"\n");
}
