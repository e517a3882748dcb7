#pragma once
/// @file
/// @brief `render_svg`: a standalone SVG picture of simulated traffic, answers per tier per hour as stacked
/// bars above the cumulative cost in USD, for one hour up to a month (744 hours). Standard library only.
///
/// @code
/// cascade::sim::PlotInput in{"seed chain, 1,000 reports/day", {{"groq", groq}, {"cache", cache}}, cost,
///                            "2026-12-01 00:00 UTC"};
/// std::ofstream{"day.svg"} << cascade::sim::render_svg(in);
/// @endcode

#include <cascade/security/html.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::sim {

/// @brief Answers one tier (or "cache", "fallback-template") gave in each simulated hour.
struct HourlySeries {
    std::string name;                     ///< e.g. "groq", "deepseek", "vertex-pro", "fallback-template", "cache"
    std::vector<std::uint64_t> per_hour;  ///< one entry per hour of the simulation
};

/// @brief What `render_svg` draws.
struct PlotInput {
    std::string title;                        ///< e.g. "seed chain, 1,000 reports/day, 5 keys in one organization"
    std::vector<HourlySeries> tiers;          ///< in chain order (bottom of the stack first); same lengths
    std::vector<double> cumulative_cost_usd;  ///< total cost at the end of each hour; its length is the hours
    std::string start_label;                  ///< optional, e.g. "2026-12-01 00:00 UTC"
    /// Hour of day (0-23) at which the first hour begins; the "06:00" and "day 2" labels follow it.
    int start_hour_of_day = 0;
};

namespace detail::plot {

// std::to_chars: the "C" locale whatever the global one; a non-finite value never reaches the output.
inline std::string fixed(double v, int decimals) {
    if (!std::isfinite(v)) v = 0.0;
    char buf[400];
    auto const r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
    std::string s = r.ec == std::errc{} ? std::string(buf, r.ptr) : std::string("0");
    if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // no "-0.00"
    return s;
}

/// A coordinate: two decimals at most, trailing zeros dropped.
inline std::string num(double v) {
    std::string s = fixed(v, 2);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s == "-0" ? "0" : s;
}

/// `1234567.5` as "1,234,567.5": commas in the integer part of a plain decimal string.
inline std::string group(std::string s) {
    std::size_t const start = s[0] == '-' ? 1 : 0;
    std::size_t const dot = std::min(s.find('.'), s.size());
    for (std::size_t i = dot; i > start + 3; i -= 3) s.insert(i - 3, 1, ',');
    return s;
}

inline std::string count(std::uint64_t v) { return group(fixed(static_cast<double>(v), 0)); }

/// Dollars with as many decimals as a value of that size needs: $0.0012, $0.35, $12.50, $1,234.
inline std::string usd(double v) {
    int const d = v >= 1000 ? 0 : v >= 0.01 || v <= 0 ? 2 : std::min(8, 1 - static_cast<int>(std::floor(std::log10(v))));
    return "$" + group(fixed(v, d));
}

/// `text` as XML character data or a quoted attribute value; invalid UTF-8 and control bytes replaced.
inline std::string escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    for (std::size_t i = 0; i < s.size();) {
        auto const c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += c < 0x20 ? ' ' : static_cast<char>(c);
            ++i;
            continue;
        }
        std::size_t const len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = len != 0 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (ok) {  // no overlong forms, surrogates, code points past U+10FFFF, nor U+FFFE / U+FFFF
            auto const d = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0) && !(c == 0xF0 && d < 0x90) &&
                 !(c == 0xF4 && d >= 0x90) && !(c == 0xEF && d == 0xBF && static_cast<unsigned char>(s[i + 2]) >= 0xBE);
        }
        if (ok) out.append(s.substr(i, len)), i += len;
        else out += "\xEF\xBF\xBD", ++i;
    }
    return cascade::escape_html(out);  // the same entities as HTML: & < > " '
}

/// Characters of UTF-8 text, to guess its width.
inline std::size_t glyphs(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

/// A value axis from 0 to `max` in `step`s of 1, 2 or 5 x 10^k, about `target` of them.
struct Axis {
    double max;
    double step;
    int decimals;  ///< what a tick label needs to tell the steps apart
};
inline Axis nice_axis(double top, int target, double min_top, double min_step) {
    if (!std::isfinite(top) || top < min_top) top = min_top;
    double const raw = top / target;
    double const mag = std::pow(10.0, std::floor(std::log10(raw)));
    double const n = raw / mag;
    double const step = std::max(min_step, (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag);
    int const decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    return {std::ceil(top / step - 1e-9) * step, step, decimals};
}

/// Okabe-Ito's colour-blind-safe colours; the template grey and the cache light yellow whatever their place.
inline std::string_view color(std::string_view name, std::size_t index) {
    static constexpr std::string_view palette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"};
    if (name == "fallback-template") return "#999999";
    if (name == "cache") return "#F0E442";
    return palette[index % std::size(palette)];
}

inline constexpr char const* svg_open = R"(<svg xmlns="http://www.w3.org/2000/svg" width="900" height=")";
inline constexpr char const* font = R"(" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">)";

}  // namespace detail::plot

/// @brief A standalone SVG document (UTF-8, 900 x 560 px) with two panels: answers per tier per hour as
/// stacked bars in chain order, with a legend of each tier's name and total, and the cumulative cost in USD
/// as a line. The same input gives the same bytes; numbers are written the same under any global locale.
///
/// Bars carry `class="bar sI"` (I: the tier's index), `data-hour` and `data-count`; legend entries
/// `class="legend sI"` and `data-total`; the cost line `class="cost"`. A non-finite or negative cost is
/// drawn as 0. No hours at all give a small picture that says "no data".
/// @throws std::invalid_argument when a tier's `per_hour` and `cumulative_cost_usd` differ in length.
inline std::string render_svg(PlotInput const& in) {
    namespace p = detail::plot;
    std::size_t const n = in.cumulative_cost_usd.size();
    for (auto const& t : in.tiers)
        if (t.per_hour.size() != n)
            throw std::invalid_argument("cascade::sim::render_svg: tier \"" + t.name + "\" has " +
                                        std::to_string(t.per_hour.size()) + " hours but cumulative_cost_usd has " +
                                        std::to_string(n));
    std::string o;
    if (n == 0) {
        o = o + p::svg_open + R"(80" viewBox="0 0 900 80)" + p::font + R"(<rect width="900" height="80" fill="#fff"/>)";
        o += R"(<text x="16" y="28" font-size="16" font-weight="600">)" + p::escape(in.title) + "</text>";
        return o + R"(<text x="16" y="56" fill="#555">no data</text></svg>)" + "\n";
    }
    o.reserve(4096 + n * (in.tiers.size() * 90 + 20));
    double const L = 72, R = 876, W = R - L, bottom1 = 328, top2 = 380, bottom2 = 500;
    int const first = ((in.start_hour_of_day % 24) + 24) % 24;
    auto const x_at = [&](std::size_t hour) { return L + W * static_cast<double>(hour) / static_cast<double>(n); };
    std::vector<double> cost(n), stack(n, 0.0);
    for (std::size_t h = 0; h < n; ++h) {
        double const c = in.cumulative_cost_usd[h];
        cost[h] = std::isfinite(c) && c > 0 ? c : 0.0;
    }
    std::vector<std::uint64_t> totals;
    std::uint64_t grand = 0;
    for (auto const& t : in.tiers) {
        std::uint64_t sum = 0;
        for (std::size_t h = 0; h < n; ++h) sum += t.per_hour[h], stack[h] += static_cast<double>(t.per_hour[h]);
        totals.push_back(sum);
        grand += sum;
    }

    o = o + p::svg_open + R"(560" viewBox="0 0 900 560)" + p::font + R"(<rect width="900" height="560" fill="#fff"/>)";
    o += R"(<text x="16" y="24" font-size="16" font-weight="600">)" + p::escape(in.title) + "</text>";
    o += R"(<text x="16" y="44" fill="#555">)" + std::to_string(n) + (n == 1 ? " hour" : " hours");
    if (!in.start_label.empty()) o += " from " + p::escape(in.start_label);
    o += " \xC2\xB7 " + p::count(grand) + " answers \xC2\xB7 total cost " + p::usd(cost.back()) + "</text>";

    // Legend: swatch, name, total and share; entries flow into as many rows as they need.
    double lx = 16, ly = 68;
    for (std::size_t s = 0; s < in.tiers.size(); ++s) {
        std::string const share = grand ? " (" + p::fixed(100.0 * static_cast<double>(totals[s]) / static_cast<double>(grand), 1) + "%)" : "";
        std::string const tail = p::count(totals[s]) + share;
        double const width = 16 + 6.5 * static_cast<double>(p::glyphs(in.tiers[s].name) + 1 + tail.size());
        if (lx > 16 && lx + width > 888) lx = 16, ly += 18;
        o += R"(<g class="legend s)" + std::to_string(s) + R"(" data-total=")" + std::to_string(totals[s]) + R"(">)";
        o += R"(<rect x=")" + p::num(lx) + R"(" y=")" + p::num(ly - 10) + R"(" width="12" height="12" fill=")" +
             std::string(p::color(in.tiers[s].name, s)) + R"(" stroke="#666" stroke-width="0.5"/>)";
        o += R"(<text x=")" + p::num(lx + 16) + R"(" y=")" + p::num(ly) + R"(">)" + p::escape(in.tiers[s].name) +
             R"( <tspan fill="#555">)" + tail + "</tspan></text></g>";
        lx += width + 14;
    }
    double const top1 = ly + 32;

    // The x axis: hour labels every 3, 6 or 12 hours while they fit, else only days.
    double const px = W / static_cast<double>(n);
    bool const multi_day = static_cast<std::size_t>(first) + n > 24;
    int hour_step = 0;
    for (int s : {1, 3, 6, 12})
        if (!hour_step && (s >= 3 || !multi_day) && (s >= 6 || n <= 24) && s * px >= 48) hour_step = s;
    int day_step = 1;
    for (int k : {1, 2, 5, 7, 10, 14, 30})
        if (k * 24 * px >= 44) { day_step = k; break; }
    auto const hour_label = [&](std::size_t i) {
        int const hod = static_cast<int>((static_cast<std::size_t>(first) + i) % 24);
        char b[6] = {static_cast<char>('0' + hod / 10), static_cast<char>('0' + hod % 10), ':', '0', '0', 0};
        return !multi_day && i == n && hod == 0 ? std::string("24:00") : std::string(b);
    };
    auto const x_axis = [&](double top, double bottom, bool day_row) {
        std::string g = R"(<g fill="#555" font-size="11" text-anchor="middle">)";
        std::string lines = R"(<g stroke-width="1">)";
        for (std::size_t i = 0; i <= n; ++i) {
            bool const day_edge = multi_day && (first + i) % 24 == 0;
            bool const hour_tick = hour_step && (first + i) % static_cast<std::size_t>(hour_step) == 0;
            if (hour_tick || (day_edge && 24 * px >= 6))
                lines += R"(<line x1=")" + p::num(x_at(i)) + R"(" x2=")" + p::num(x_at(i)) + R"(" y1=")" + p::num(top) +
                         R"(" y2=")" + p::num(bottom) + R"(" stroke=")" + (day_edge ? "#bbb" : "#e6e6e6") + R"("/>)";
            if (hour_tick) g += R"(<text x=")" + p::num(x_at(i)) + R"(" y=")" + p::num(bottom + 14) + R"(">)" + hour_label(i) + "</text>";
        }
        if (multi_day && (day_row || !hour_step)) {  // "day N" centred in the part of each day on the chart
            for (std::size_t d = 0; d * 24 < first + n; ++d) {
                double const a = std::max(0.0, static_cast<double>(d * 24) - first);
                double const b = std::min(static_cast<double>(n), static_cast<double>(d * 24 + 24) - first);
                if (d % static_cast<std::size_t>(day_step) != 0 || (b - a < 24 && (b - a) * px < 34)) continue;
                g += R"(<text x=")" + p::num(L + (a + b) / 2 * px) + R"(" y=")" + p::num(bottom + (hour_step ? 30 : 14)) +
                     R"(">day )" + std::to_string(d + 1) + "</text>";
            }
        }
        return lines + "</g>" + g + "</g>";
    };
    auto const y_axis = [&](p::Axis const& ax, double top, double bottom, bool money) {
        std::string g = R"(<g fill="#555" font-size="11" text-anchor="end">)";
        for (int j = 0; j <= static_cast<int>(std::lround(ax.max / ax.step)); ++j) {
            double const v = j * ax.step, y = bottom - (bottom - top) * v / ax.max;
            std::string const label = money ? "$" + p::group(p::fixed(v, ax.step < 1 ? std::max(2, ax.decimals) : ax.max >= 1000 ? 0 : 2))
                                            : p::group(p::fixed(v, 0));
            o += R"(<line x1=")" + p::num(L) + R"(" x2=")" + p::num(R) + R"(" y1=")" + p::num(y) + R"(" y2=")" + p::num(y) +
                 R"(" stroke=")" + (j ? "#e6e6e6" : "#888") + R"("/>)";
            g += R"(<text x=")" + p::num(L - 6) + R"(" y=")" + p::num(y + 4) + R"(">)" + label + "</text>";
        }
        o += g + "</g>";
    };

    // Top panel: stacked bars, the first tier at the bottom.
    p::Axis const ax1 = p::nice_axis(*std::max_element(stack.begin(), stack.end()), 5, 5, 1);
    o += R"(<text x=")" + p::num(L) + R"(" y=")" + p::num(top1 - 10) + R"(" font-weight="600" fill="#333">answers per hour, by tier</text>)";
    o += x_axis(top1, bottom1, false);
    y_axis(ax1, top1, bottom1, false);
    double const k1 = (bottom1 - top1) / ax1.max, gap = px >= 4 ? px * 0.2 : 0;
    std::fill(stack.begin(), stack.end(), 0.0);
    for (std::size_t s = 0; s < in.tiers.size(); ++s) {
        std::string const cls = "s" + std::to_string(s);
        o += R"(<g class="series )" + cls + R"(" fill=")" + std::string(p::color(in.tiers[s].name, s)) + R"(">)";
        for (std::size_t h = 0; h < n; ++h) {
            std::uint64_t const c = in.tiers[s].per_hour[h];
            if (c == 0) continue;
            double const v = static_cast<double>(c);
            o += R"(<rect class="bar )" + cls + R"(" data-hour=")" + std::to_string(h) + R"(" data-count=")" + std::to_string(c) +
                 R"(" x=")" + p::num(x_at(h) + gap / 2) + R"(" y=")" + p::num(bottom1 - (stack[h] + v) * k1) + R"(" width=")" +
                 p::num(px - gap) + R"(" height=")" + p::num(v * k1) + R"("/>)";
            stack[h] += v;
        }
        o += "</g>";
    }

    // Bottom panel: the cumulative cost, from $0 at the start, with its final value at the end.
    p::Axis const ax2 = p::nice_axis(*std::max_element(cost.begin(), cost.end()), 4, 1e-4, 0);
    o += R"(<text x=")" + p::num(L) + R"(" y=")" + p::num(top2 - 10) + R"(" font-weight="600" fill="#333">cumulative cost (USD)</text>)";
    o += x_axis(top2, bottom2, true);
    y_axis(ax2, top2, bottom2, true);
    auto const y_cost = [&](double v) { return bottom2 - (bottom2 - top2) * v / ax2.max; };
    std::string pts = p::num(L) + "," + p::num(bottom2);
    for (std::size_t h = 0; h < n; ++h) pts += " " + p::num(x_at(h + 1)) + "," + p::num(y_cost(cost[h]));
    o += R"(<polygon points=")" + pts + " " + p::num(R) + "," + p::num(bottom2) + R"(" fill="#000" fill-opacity="0.06"/>)";
    o += R"(<polyline class="cost" points=")" + pts + R"(" fill="none" stroke="#222" stroke-width="1.8" stroke-linejoin="round"/>)";
    o += R"(<text x=")" + p::num(R - 4) + R"(" y=")" + p::num(y_cost(cost.back()) - 6) + R"(" text-anchor="end" font-weight="600">)" +
         p::usd(cost.back()) + "</text>";
    return o + "</svg>\n";
}

}  // namespace cascade::sim
