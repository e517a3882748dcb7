// The SSE parser with the providers' real streams, fed whole and one byte at a time.

#include <cascade/net/sse_parser.hpp>

#include <catch2/catch.hpp>

#include <vector>

namespace {

std::vector<cascade::net::SseEvent> parse(std::string_view stream, bool bytewise) {
    cascade::net::SseParser p;
    std::vector<cascade::net::SseEvent> events;
    auto sink = [&](cascade::net::SseEvent const& e) { events.push_back(e); };
    if (bytewise)
        for (char c : stream) p.feed(std::string_view(&c, 1), sink);
    else
        p.feed(stream, sink);
    return events;
}

// O7 (OpenAI) and G2 (Groq's last chunk with x_groq.usage), then [DONE].
std::string const openai_stream =
    "data: {\"id\":\"chatcmpl-ADxFKtX6xIwdWRN42QvBj2u1RZpCK\",\"object\":\"chat.completion.chunk\",\"created\":1727889370,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_f85bea6784\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-ADxFKtX6xIwdWRN42QvBj2u1RZpCK\",\"object\":\"chat.completion.chunk\",\"created\":1727889370,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_f85bea6784\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: [DONE]\n\n";

} // namespace

TEST_CASE("an OpenAI stream yields its chunks and ends at [DONE], fed whole or byte by byte", "[sse]") {
    for (bool bytewise : {false, true}) {
        auto events = parse(openai_stream, bytewise);
        REQUIRE(events.size() == 3);
        CHECK(events[1].data.find("\"content\":\"Hello\"") != std::string::npos);
        CHECK_FALSE(events[1].error);
        CHECK(events[2].done);
    }
}

TEST_CASE("keep-alive comments and CRLF line ends are handled", "[sse]") {
    cascade::net::SseParser p;
    std::vector<cascade::net::SseEvent> events;
    p.feed(": keep-alive\r\n\r\n: OPENROUTER PROCESSING\r\n\r\ndata: {\"a\":1}\r\n\r\n", [&](auto const& e) { events.push_back(e); });
    REQUIRE(events.size() == 1);
    CHECK(events[0].data == "{\"a\":1}");
    CHECK(p.comments() == 2);
}

TEST_CASE("several data lines join with newlines and an event name is kept", "[sse]") {
    auto events = parse("event: message_delta\ndata: line one\ndata: line two\n\n", false);
    REQUIRE(events.size() == 1);
    CHECK(events[0].event == "message_delta");
    CHECK(events[0].data == "line one\nline two");
}

TEST_CASE("an error mid-stream is an error event: event: error, or a data JSON with an error member", "[sse]") {
    auto responses_api = parse(
        "event: error\ndata: {\"error\":{\"code\":\"server_is_overloaded\",\"message\":\"Our servers are currently overloaded. Please try again later.\",\"param\":null,\"type\":\"service_unavailable_error\"},\"sequence_number\":2,\"type\":\"error\"}\n\n",
        true);
    REQUIRE(responses_api.size() == 1);
    CHECK(responses_api[0].error);
    auto openrouter = parse(
        ": OPENROUTER PROCESSING\n\ndata: {\"id\":\"cmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1234567890,\"model\":\"openai/gpt-4o\",\"provider\":\"openai\",\"error\":{\"code\":\"server_error\",\"message\":\"Provider disconnected unexpectedly\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n",
        false);
    REQUIRE(openrouter.size() == 1);
    CHECK(openrouter[0].error);
    auto groq = parse("data: {\"error\":{\"message\":\"Service Unavailable\",\"type\":\"internal_server_error\"}}\n\n", false);
    CHECK(groq[0].error);
    auto not_error = parse("data: {\"choices\":[],\"error\":null}\n\n", false);
    CHECK_FALSE(not_error[0].error);
}

TEST_CASE("an unterminated event is not dispatched until its blank line arrives", "[sse]") {
    cascade::net::SseParser p;
    int n = 0;
    p.feed("data: partial", [&](auto const&) { ++n; });
    CHECK(n == 0);
    p.feed("\n", [&](auto const&) { ++n; });
    CHECK(n == 0);
    p.feed("\n", [&](auto const&) { ++n; });
    CHECK(n == 1);
    CHECK_FALSE(p.finished());
}

namespace {
// Feeds `stream` in chunks of `size` bytes (the last one shorter).
std::vector<cascade::net::SseEvent> parse_chunked(std::string_view stream, std::size_t size, cascade::net::SseParser& p) {
    std::vector<cascade::net::SseEvent> events;
    for (std::size_t at = 0; at < stream.size(); at += size)
        p.feed(stream.substr(at, size), [&](cascade::net::SseEvent const& e) { events.push_back(e); });
    return events;
}

bool same(std::vector<cascade::net::SseEvent> const& a, std::vector<cascade::net::SseEvent> const& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].event != b[i].event || a[i].data != b[i].data || a[i].done != b[i].done || a[i].error != b[i].error)
            return false;
    return true;
}
} // namespace

TEST_CASE("a stream gives the same events fed whole, in chunks of any size, or byte by byte", "[sse][property]") {
    std::string const stream = ": keep-alive\r\n\r\nevent: message_delta\r\ndata: one\r\ndata: two\r\n\r\n" + openai_stream +
                               "event: error\ndata: {\"error\":{\"message\":\"x\"}}\n\n" + std::string(3000, 'x') + "\n\n";
    cascade::net::SseParser whole_parser;
    auto whole = parse_chunked(stream, stream.size(), whole_parser);
    REQUIRE(whole.size() == 5);  // the long line without a colon is a field nobody uses
    for (std::size_t size : {1u, 2u, 3u, 7u, 13u, 64u, 255u, 256u, 1000u, 4096u}) {
        cascade::net::SseParser p;
        INFO("chunk size " << size);
        CHECK(same(parse_chunked(stream, size, p), whole));
        CHECK(p.comments() == whole_parser.comments());
        CHECK(p.finished() == whole_parser.finished());
    }
}

TEST_CASE("feeding is linear: each byte is searched for a line end once, however the stream is split", "[sse][property]") {
    // One long line in small chunks: the partial line must not be searched again on every chunk.
    std::string const long_line = "data: " + std::string(1 << 20, 'a') + "\n\n";
    for (std::size_t size : {std::size_t{1}, std::size_t{256}, std::size_t{4096}, long_line.size()}) {
        cascade::net::SseParser p;
        INFO("chunk size " << size);
        auto events = parse_chunked(long_line, size, p);
        REQUIRE(events.size() == 1);
        CHECK(events[0].data.size() == std::size_t{1} << 20);
        CHECK(p.scanned_bytes() == long_line.size());
    }
    cascade::net::SseParser p;
    std::string const stream = openai_stream + openai_stream;
    parse_chunked(stream, 5, p);
    CHECK(p.scanned_bytes() == stream.size());
}
