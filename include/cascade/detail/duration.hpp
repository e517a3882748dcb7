#pragma once
/// @file
/// @brief Parsing the durations providers send: Go `time.Duration` strings (`x-ratelimit-reset-*`),
/// `retry-after` (seconds or an HTTP date), `retry-after-ms`, "try again in 5.289s" in messages.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace cascade::detail {

/// @brief The longest wait a response can ask for. A longer one, a far-future date or a number too large
/// to hold is this long: a key or provider that is out for a month is out, and no clock addition overflows.
inline constexpr std::chrono::milliseconds longest_wait = std::chrono::hours(24 * 30);

/// @brief `ms` clamped to [0, `longest_wait`]; NaN is 0. For waits computed in floating point.
inline std::chrono::milliseconds saturating_wait(double ms) noexcept {
    if (!(ms > 0.0)) return std::chrono::milliseconds(0);
    if (ms >= static_cast<double>(longest_wait.count())) return longest_wait;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

/// @brief `count` units of `unit_ms` milliseconds clamped to [0, `longest_wait`], without overflowing.
inline std::chrono::milliseconds saturating_wait(std::int64_t count, std::int64_t unit_ms) noexcept {
    if (count <= 0 || unit_ms <= 0) return std::chrono::milliseconds(0);
    if (count >= longest_wait.count() / unit_ms + 1) return longest_wait;
    return std::min(std::chrono::milliseconds(count * unit_ms), longest_wait);
}

/// @brief A Go duration (`7.66s`, `2m59.56s`, `1h2m3s`, `172.799999ms`, `60.2ms`, `1ms`, `0s`, `500us`,
/// `10ns`), rounded up to whole milliseconds (a positive duration is never 0 ms) and saturated at
/// `longest_wait`. Nothing for garbage (a sign, a unit without digits, an unknown unit).
inline std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view s) {
    if (s.empty()) return std::nullopt;
    double total_ns = 0.0;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t start = i;
        bool digit = false;
        while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) digit |= s[i++] != '.';
        if (!digit) return std::nullopt;
        double value = 0.0, scale = 0.0;
        bool dot = false;
        for (std::size_t j = start; j < i; ++j) {
            if (s[j] == '.') {
                if (dot) return std::nullopt;
                dot = true;
                scale = 1.0;
                continue;
            }
            int d = s[j] - '0';
            if (dot) {
                scale /= 10.0;
                value += d * scale;
            } else {
                value = value * 10.0 + d;
            }
        }
        double unit = 0.0;
        auto rest = s.substr(i);
        if (rest.rfind("ns", 0) == 0) { unit = 1.0; i += 2; }
        else if (rest.rfind("us", 0) == 0) { unit = 1e3; i += 2; }
        else if (rest.rfind("\xC2\xB5s", 0) == 0) { unit = 1e3; i += 3; }  // µs
        else if (rest.rfind("ms", 0) == 0) { unit = 1e6; i += 2; }
        else if (rest.rfind("s", 0) == 0) { unit = 1e9; i += 1; }
        else if (rest.rfind("m", 0) == 0) { unit = 60e9; i += 1; }
        else if (rest.rfind("h", 0) == 0) { unit = 3600e9; i += 1; }
        else return std::nullopt;
        total_ns += value * unit;  // digits alone can reach infinity, which saturates below
    }
    if (!(total_ns < static_cast<double>(longest_wait.count()) * 1e6)) return longest_wait;
    // Whole nanoseconds first, so that 5.289 s is 5289 ms and not 5290 from a rounding error.
    auto ns = static_cast<std::int64_t>(std::llround(total_ns));
    return std::chrono::milliseconds((ns + 999'999) / 1'000'000);
}

// A non-negative decimal number (`30`, `1.5`, `.5`), surrounding spaces allowed; nothing for anything else.
inline std::optional<double> parse_decimal(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    double v = 0.0, scale = 0.0;
    bool dot = false, digit = false;
    for (char ch : s) {
        if (ch == '.') {
            if (dot) return std::nullopt;
            dot = true;
            scale = 1.0;
        } else if (ch >= '0' && ch <= '9') {
            digit = true;
            if (dot) {
                scale /= 10.0;
                v += (ch - '0') * scale;
            } else {
                v = v * 10.0 + (ch - '0');
            }
        } else {
            return std::nullopt;
        }
    }
    if (!digit) return std::nullopt;
    return v;  // may be infinity for hundreds of digits: callers saturate
}

/// @brief Seconds as an integer or a decimal (`30`, `1.5`), rounded up to milliseconds and saturated at
/// `longest_wait`.
inline std::optional<std::chrono::milliseconds> parse_seconds(std::string_view s) {
    auto v = parse_decimal(s);
    if (!v) return std::nullopt;
    // The epsilon keeps 1.001 s at 1001 ms despite binary rounding.
    return saturating_wait(*v * 1000.0 - 1e-6);
}

/// @brief Milliseconds as an integer or a decimal (`retry-after-ms: 1500`), rounded up, saturated at
/// `longest_wait`.
inline std::optional<std::chrono::milliseconds> parse_milliseconds(std::string_view s) {
    auto v = parse_decimal(s);
    if (!v) return std::nullopt;
    return saturating_wait(*v - 1e-9);
}

/// @brief Days from 1970-01-01 to `year`-`month`-`day` (month 1 to 12, year 1970 or later), no time zone
/// involved (Howard Hinnant's days_from_civil).
inline std::int64_t days_from_civil(int year, int month, int day) noexcept {
    int y = year - (month <= 2);
    int era = y / 400;
    int yoe = y - era * 400;
    int mp = (month + 9) % 12;  // March is 0
    int doy = (153 * mp + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

/// @brief An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as whole seconds since 1970, for any year
/// from 1970 to 9999 (seconds, not the system clock's nanoseconds, which end in 2262).
inline std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view s) {
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s[3] != ',' || s.substr(26) != "GMT") return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len) -> int {
        int v = 0;
        for (std::size_t k = pos; k < pos + len; ++k) {
            if (s[k] < '0' || s[k] > '9') return -1;
            v = v * 10 + (s[k] - '0');
        }
        return v;
    };
    int day = num(5, 2), year = num(12, 4), hh = num(17, 2), mm = num(20, 2), ss = num(23, 2);
    int month = -1;
    for (int m = 0; m < 12; ++m)
        if (s.substr(8, 3) == months[m]) month = m;
    if (day < 1 || day > 31 || year < 1970 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || month < 0)
        return std::nullopt;
    std::int64_t days = days_from_civil(year, month + 1, day);
    return std::chrono::sys_seconds(std::chrono::seconds(days * 86400 + hh * 3600 + mm * 60 + ss));
}

/// @brief An RFC 3339 instant (`2026-08-09T16:21:55Z`, `2026-08-09T16:21:55.5+02:00`) as whole seconds since
/// 1970 (fractions dropped), for years 1970 to 9999; nothing for anything else.
inline std::optional<std::chrono::sys_seconds> parse_rfc3339(std::string_view s) {
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len) -> int {
        int v = 0;
        for (std::size_t k = pos; k < pos + len; ++k) {
            if (s[k] < '0' || s[k] > '9') return -1;
            v = v * 10 + (s[k] - '0');
        }
        return v;
    };
    int year = num(0, 4), month = num(5, 2), day = num(8, 2), hh = num(11, 2), mm = num(14, 2), ss = num(17, 2);
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return std::nullopt;
    std::size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        ++i;
        std::size_t digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
        if (digits == 0) return std::nullopt;
    }
    std::int64_t offset = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
    } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = num(i + 1, 2), om = num(i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return std::nullopt;
        offset = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
        return std::nullopt;
    }
    std::int64_t days = days_from_civil(year, month, day);
    return std::chrono::sys_seconds(std::chrono::seconds(days * 86400 + hh * 3600 + mm * 60 + ss - offset));
}

/// @brief How long until a rate-limit window resets, from its reset header in any provider's form: an
/// RFC 3339 instant (Anthropic), seconds as an integer or a decimal (Cerebras, Together, Mistral), an epoch
/// instant in seconds or milliseconds (a number of 1e9 or more; OpenRouter), or a Go duration (`6m0s`:
/// OpenAI, Groq). An instant in the past is 0; all saturate at `longest_wait`.
inline std::optional<std::chrono::milliseconds> parse_reset(std::string_view v,
                                                            std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    if (auto n = parse_decimal(v)) {
        // No window lasts 30 years: a number that large is an instant (OpenRouter: epoch milliseconds).
        if (*n >= 1e9) {
            double const when_ms = *n >= 1e12 ? *n : *n * 1000.0;
            double const now_ms = static_cast<double>(std::chrono::floor<std::chrono::milliseconds>(now).time_since_epoch().count());
            return saturating_wait(when_ms - now_ms);
        }
        return parse_seconds(v);
    }
    if (auto when = parse_rfc3339(v)) {
        std::int64_t when_ms = when->time_since_epoch().count() * 1000;
        std::int64_t now_ms = std::chrono::floor<std::chrono::milliseconds>(now).time_since_epoch().count();
        if (now_ms >= when_ms) return std::chrono::milliseconds(0);
        return saturating_wait(when_ms - now_ms, 1);
    }
    return parse_go_duration(v);
}

/// @brief A `retry-after` value: seconds, or an HTTP date (relative to `now`). A date in the past is 0;
/// a far-future one is `longest_wait`.
inline std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view v,
                                                                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    if (auto secs = parse_seconds(v)) return secs;
    if (auto when = parse_http_date(v)) {
        // In milliseconds of int64 on both sides: `*when - now` would convert a date past 2262 to the
        // clock's nanoseconds and wrap. ceil(when - now) == when - floor(now) as `when` is whole seconds.
        std::int64_t when_ms = when->time_since_epoch().count() * 1000;  // year 9999 is 2.5e14 ms
        std::int64_t now_ms = std::chrono::floor<std::chrono::milliseconds>(now).time_since_epoch().count();
        if (now_ms >= when_ms) return std::chrono::milliseconds(0);
        return saturating_wait(when_ms - now_ms, 1);
    }
    return std::nullopt;
}

/// @brief The duration after "try again in " in a provider's message (`Please try again in 5.289s.`,
/// `... in 1m47.5854s`).
inline std::optional<std::chrono::milliseconds> parse_try_again_in(std::string_view message) {
    constexpr std::string_view marker = "try again in ";
    auto pos = message.find(marker);
    if (pos == std::string_view::npos) return std::nullopt;
    auto rest = message.substr(pos + marker.size());
    std::size_t end = 0;
    while (end < rest.size() && rest[end] != ' ' && rest[end] != ',') ++end;
    auto token = rest.substr(0, end);
    while (!token.empty() && token.back() == '.') token.remove_suffix(1);
    return parse_go_duration(token);
}

/// "retry after 20 seconds" / "try again in 2 minutes" / "retry in 38.8s": a wait written in words inside
/// an error message (Azure OpenAI's peak-load 429), or nullopt. Saturates like parse_go_duration.
inline std::optional<std::chrono::milliseconds> parse_wait_in_words(std::string_view message) {
    for (std::string_view marker : {std::string_view("retry after "), std::string_view("try again in "), std::string_view("retry in ")}) {
        auto pos = message.find(marker);
        if (pos == std::string_view::npos) continue;
        auto rest = message.substr(pos + marker.size());
        std::size_t end = 0;
        while (end < rest.size() && rest[end] != ' ' && rest[end] != ',') ++end;
        auto token = rest.substr(0, end);
        while (!token.empty() && token.back() == '.') token.remove_suffix(1);
        if (auto d = parse_go_duration(token)) return d;
        // A bare number, then its unit as a word.
        auto unit = rest.substr(std::min(end + 1, rest.size()));
        auto const unit_end = unit.find_first_of(" .,;");
        unit = unit.substr(0, unit_end);
        std::string_view suffix;
        if (unit == "seconds" || unit == "second" || unit == "secs" || unit == "sec") suffix = "s";
        else if (unit == "minutes" || unit == "minute" || unit == "mins" || unit == "min") suffix = "m";
        else if (unit == "milliseconds" || unit == "millisecond") suffix = "ms";
        else continue;
        std::string spelled(token);
        spelled += suffix;
        if (auto d = parse_go_duration(spelled)) return d;
    }
    return std::nullopt;
}

} // namespace cascade::detail
