// libFuzzer target: the durations providers send (Go durations in x-ratelimit-reset-*, retry-after as
// seconds or an HTTP date, retry-after-ms, "try again in ..."). Never negative, never over longest_wait,
// never UB; an HTTP date agrees with timegm.

#include <cascade/detail/duration.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

namespace d = cascade::detail;

void check_wait(std::optional<std::chrono::milliseconds> w) {
    if (w && (w->count() < 0 || *w > d::longest_wait)) fail("a wait is within [0, longest_wait]");
}

// The fields of an IMF-fixdate as timegm sees them, or nothing if the text is not one (same shape test
// as the parser, so that the two can be compared).
std::optional<std::int64_t> timegm_of(std::string_view s) {
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (s.size() != 29) return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len) {
        int v = 0;
        for (std::size_t k = pos; k < pos + len; ++k) v = v * 10 + (s[k] - '0');
        return v;
    };
    std::tm tm{};
    tm.tm_mday = num(5, 2);
    tm.tm_year = num(12, 4) - 1900;
    tm.tm_hour = num(17, 2);
    tm.tm_min = num(20, 2);
    tm.tm_sec = num(23, 2);
    tm.tm_mon = -1;
    for (int m = 0; m < 12; ++m)
        if (s.substr(8, 3) == months[m]) tm.tm_mon = m;
    if (tm.tm_mon < 0) return std::nullopt;
    return static_cast<std::int64_t>(timegm(&tm));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view s(reinterpret_cast<char const*>(data), size);

    auto go = d::parse_go_duration(s);
    check_wait(go);
    check_wait(d::parse_try_again_in(s));
    auto secs = d::parse_seconds(s);
    check_wait(secs);
    auto ms = d::parse_milliseconds(s);
    check_wait(ms);
    // The same number read as seconds is never a shorter wait than read as milliseconds.
    if (secs.has_value() != ms.has_value() || (secs && *secs < *ms)) fail("a number read as seconds is never shorter than read as milliseconds, and both read it or neither");

    auto date = d::parse_http_date(s);
    if (date) {
        auto t = date->time_since_epoch().count();
        if (t < 0 || t > 253'402'387'200) fail("an HTTP date is between 1970 and the end of 9999");  // 1970 .. 9999-12-31 + a few days of overflow
        auto expected = timegm_of(s);
        if (!expected || *expected != t) fail("an HTTP date agrees with timegm");
    }

    using clock = std::chrono::system_clock;
    std::optional<std::chrono::milliseconds> earlier;
    // In increasing order: a later now never means a longer wait.
    for (auto now : {clock::time_point::min(), clock::time_point{}, clock::time_point(std::chrono::seconds(1'795'478'400)),
                     clock::time_point::max()}) {
        auto ra = d::parse_retry_after(s, now);
        check_wait(ra);
        // A number is read as seconds whatever the clock; a date only counts from now.
        if (secs && ra != secs) fail("a retry-after number is seconds whatever the clock");
        if (!secs && ra.has_value() != date.has_value()) fail("retry-after is a value exactly when it is a number or an HTTP date");
        if (earlier && ra && *ra > *earlier) fail("a later now never means a longer wait");
        earlier = ra;
        if (date && !secs && now == clock::time_point{} &&
            ra != std::min(d::longest_wait, std::chrono::milliseconds(date->time_since_epoch().count() * 1000)))
            fail("an HTTP date counted from the epoch is its own seconds, capped");
    }
    return 0;
}
