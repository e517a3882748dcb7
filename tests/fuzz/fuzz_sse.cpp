// libFuzzer target: `SseParser` on any bytes. The input is the stream. It is fed whole, in chunks whose
// sizes are drawn from the input's own bytes, and byte by byte: the three must give the same events, the
// same comment count and the same end, and each byte is searched for a line end exactly once.

#include <cascade/net/sse_parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
void require(bool ok, char const* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant failed: %s\n", what);
        __builtin_trap();
    }
}

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

    require(same(whole, chunked), "the same events fed whole and in chunks");
    require(same(whole, bytewise), "the same events fed whole and byte by byte");
    require(whole.scanned == size && chunked.scanned == size && bytewise.scanned == size,
            "each byte is searched for a line end once");
    for (auto const& e : whole.events) {
        // Lines end at LF (CRLF included; a lone CR is not a line end here): the event name holds none.
        require(e.event.find('\n') == std::string::npos, "no line end in an event name");
        require(!e.done || e.data == "[DONE]", "done only for data [DONE]");
        require(!e.error || e.event == "error" || (!e.data.empty() && e.data.front() == '{'),
                "an error event is event: error or a JSON object");
    }
    bool any_done = std::find_if(whole.events.begin(), whole.events.end(), [](auto const& e) { return e.done; }) !=
                    whole.events.end();
    require(whole.finished == any_done, "finished() exactly when a [DONE] event was seen");
    return 0;
}
