// libFuzzer target: the Redis client's reply reader (`cascade::redis::detail::ReplyReader`: hiredis's RESP
// reader with the client's bounds, and the conversion to `Reply`) on any bytes a server could send.
//
// The input is fed whole and in chunks whose sizes come from the input: the same replies and the same end.
// A reader with small bounds gives a prefix of those replies and fails only where the large one failed or
// with `reply_too_large`. No reply holds more array elements than the bound; hiredis never allocates for
// more (libFuzzer's -malloc_limit_mb catches an allocation sized by a length on the wire).

#include <cascade/net/redis.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

namespace {

namespace redis = cascade::redis;

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
void require(bool ok, char const* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant failed: %s\n", what);
        __builtin_trap();
    }
}

struct Outcome {
    std::vector<redis::Reply> replies;
    boost::system::error_code error;
};

template <class SizeOf>
Outcome read(std::string_view in, std::size_t max_bytes, std::size_t max_elements, SizeOf size_of) {
    redis::detail::ReplyReader reader(max_bytes, max_elements);
    Outcome out;
    std::size_t i = 0;
    for (std::size_t at = 0; at < in.size() && !out.error; ++i) {
        std::size_t n = size_of(i);
        if (n > in.size() - at) n = in.size() - at;
        reader.feed(in.data() + at, n);
        at += n;
        for (;;) {
            auto next = reader.next();
            if (!next) {
                out.error = next.error();
                break;
            }
            if (!*next) break;
            out.replies.push_back(std::move(**next));
        }
    }
    return out;
}

bool same(redis::Reply const& a, redis::Reply const& b) {
    if (a.type != b.type || a.str != b.str || a.integer != b.integer || a.elements.size() != b.elements.size()) return false;
    for (std::size_t i = 0; i < a.elements.size(); ++i)
        if (!same(a.elements[i], b.elements[i])) return false;
    return true;
}

// Array elements in `r`, nested arrays included.
std::size_t elements(redis::Reply const& r) {
    std::size_t n = r.elements.size();
    for (auto const& e : r.elements) n += elements(e);
    return n;
}

constexpr std::size_t large_bytes = 1 << 20;  // more than any input: never the reason to fail
constexpr std::size_t large_elements = 4096;
constexpr std::size_t small_bytes = 64;
constexpr std::size_t small_elements = 8;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size == 0 || size >= large_bytes) return 0;
    std::string_view in(reinterpret_cast<char const*>(data), size);
    auto whole = read(in, large_bytes, large_elements, [&](std::size_t) { return size; });
    auto chunked = read(in, large_bytes, large_elements, [&](std::size_t i) { return std::size_t{1} + data[(i * 5) % size] % 16; });

    require(whole.error == chunked.error && whole.replies.size() == chunked.replies.size(),
            "the same replies and end fed whole and in chunks");
    for (std::size_t i = 0; i < whole.replies.size(); ++i) {
        require(same(whole.replies[i], chunked.replies[i]), "the same replies fed whole and in chunks");
        require(elements(whole.replies[i]) <= large_elements, "no reply past the element bound");
    }

    auto small = read(in, small_bytes, small_elements, [&](std::size_t i) { return std::size_t{1} + data[(i * 3) % size] % 32; });
    require(small.replies.size() <= whole.replies.size(), "small bounds give no more replies");
    for (std::size_t i = 0; i < small.replies.size(); ++i) {
        require(same(small.replies[i], whole.replies[i]), "small bounds give a prefix of the replies");
        require(elements(small.replies[i]) <= small_elements, "no reply past the small element bound");
    }
    require(small.error != redis::Error::protocol ||
                (whole.error == redis::Error::protocol && small.replies.size() == whole.replies.size()),
            "small bounds fail as a protocol error only where large ones do");
    require(small.error || (!whole.error && small.replies.size() == whole.replies.size()),
            "small bounds without an error read everything");
    return 0;
}
