// libFuzzer target: `SseParser` on any bytes. The input is the stream. It is fed whole, in chunks whose
// sizes are drawn from the input's own bytes, and byte by byte: the three must give the same events, the
// same comment count and the same end, and each byte is searched for a line end exactly once.

#include <cascade/net/sse_parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

struct Outcome {
    std::vector<cascade::net::SseEvent> events;
    std::size_t comments = 0;
    bool finished = false;
    std::size_t scanned = 0;
};

// Feeds `in` in pieces: `size_of(i)` gives the i-th piece's size (at least 1).
template <class SizeOf>
Outcome feed(std::string_view in, SizeOf size_of) {
    cascade::net::SseParser p;
    Outcome out;
    auto sink = [&](cascade::net::SseEvent const& e) { out.events.push_back(e); };
    std::size_t i = 0;
    for (std::size_t at = 0; at < in.size(); ++i) {
        std::size_t n = size_of(i);
        if (n > in.size() - at) n = in.size() - at;
        p.feed(in.substr(at, n), sink);
        at += n;
    }
    p.feed({}, sink);  // an empty chunk changes nothing
    out.comments = p.comments();
    out.finished = p.finished();
    out.scanned = p.scanned_bytes();
    return out;
}

bool same(Outcome const& a, Outcome const& b) {
    if (a.events.size() != b.events.size() || a.comments != b.comments || a.finished != b.finished) return false;
    for (std::size_t i = 0; i < a.events.size(); ++i) {
        auto const& x = a.events[i];
        auto const& y = b.events[i];
        if (x.event != y.event || x.data != y.data || x.done != y.done || x.error != y.error) return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view in(reinterpret_cast<char const*>(data), size);
    Outcome whole = feed(in, [&](std::size_t) { return size == 0 ? std::size_t{1} : size; });
    Outcome chunked = feed(in, [&](std::size_t i) { return std::size_t{1} + data[(i * 7) % size] % 64; });
    Outcome bytewise = feed(in, [](std::size_t) { return std::size_t{1}; });

    if (!same(whole, chunked) || !same(whole, bytewise)) __builtin_trap();
    if (whole.scanned != size || chunked.scanned != size || bytewise.scanned != size) __builtin_trap();
    for (auto const& e : whole.events) {
        // Lines end at LF (CRLF included; a lone CR is not a line end here): the event name holds none.
        if (e.event.find('\n') != std::string::npos) __builtin_trap();
        if (e.done && e.data != "[DONE]") __builtin_trap();
        if (e.error && e.event != "error" && (e.data.empty() || e.data.front() != '{')) __builtin_trap();
    }
    if (whole.finished != (std::find_if(whole.events.begin(), whole.events.end(), [](auto const& e) { return e.done; }) !=
                           whole.events.end()))
        __builtin_trap();
    return 0;
}
