// The SVG picture of a simulated run: well-formed XML (xmllint must accept it), escaped text, bars as tall
// as their counts, legend totals, axis labels that do not crowd each other, and the degenerate inputs
// (no hours, all zeros, one hour, no tiers, a month) that must still draw without NaN or inf.

#include <cascade/sim/plot.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

using cascade::sim::HourlySeries;
using cascade::sim::PlotInput;
using cascade::sim::render_svg;

namespace {

// xmllint is a required tool of this suite: without it the check fails rather than passing unseen.
bool well_formed(std::string const& svg) {
    static int serial = 0;
    if (!std::filesystem::exists("/usr/bin/xmllint")) {
        FAIL_CHECK("/usr/bin/xmllint is missing (Debian package libxml2-utils)");
        return false;
    }
    auto const file = std::filesystem::temp_directory_path() /
                      ("cascade_plot_" + std::to_string(::getpid()) + "_" + std::to_string(++serial) + ".svg");
    std::ofstream{file, std::ios::binary} << svg;
    int const status = std::system(("/usr/bin/xmllint --noout '" + file.string() + "'").c_str());
    std::filesystem::remove(file);
    return status == 0;
}

// A plausible day: traffic peaking in the afternoon, spread over the chain, cost rising.
PlotInput sample(std::size_t hours) {
    PlotInput in;
    in.title = "seed chain, 1,000 reports/day, 5 keys in one organization";
    in.start_label = "2026-12-01 00:00 UTC";
    std::vector<std::string> const names{"groq", "deepseek", "vertex-pro", "fallback-template", "cache"};
    for (auto const& name : names) in.tiers.push_back({name, {}});
    double cost = 0;
    for (std::size_t h = 0; h < hours; ++h) {
        auto const load = static_cast<std::uint64_t>(20 + 40 * std::sin(3.14159 * static_cast<double>(h % 24) / 24.0));
        in.tiers[0].per_hour.push_back(load);
        in.tiers[1].per_hour.push_back(h % 24 >= 12 && h % 24 < 18 ? load / 2 : 1);
        in.tiers[2].per_hour.push_back(h % 24 == 15 ? 7 : 0);
        in.tiers[3].per_hour.push_back(h % 24 == 16 ? 2 : 0);
        in.tiers[4].per_hour.push_back(load / 4);
        cost += 0.0004 * static_cast<double>(in.tiers[1].per_hour.back()) + 0.0021 * static_cast<double>(in.tiers[2].per_hour.back());
        in.cumulative_cost_usd.push_back(cost);
    }
    return in;
}

struct Bar {
    std::size_t hour;
    std::uint64_t count;
    double height;
};

std::vector<Bar> bars(std::string const& svg, std::string const& series) {
    std::regex const re(R"re(<rect class="bar )re" + series +
                        R"re(" data-hour="(\d+)" data-count="(\d+)" x="[-\d.]+" y="[-\d.]+" width="[\d.]+" height="([\d.]+)"/>)re");
    std::vector<Bar> out;
    for (std::sregex_iterator it(svg.begin(), svg.end(), re), end; it != end; ++it)
        out.push_back({std::stoul((*it)[1]), std::stoull((*it)[2]), std::stod((*it)[3])});
    return out;
}

// x positions of the axis labels ("06:00", "day 3"), by the baseline of their row.
std::map<std::string, std::vector<double>> axis_labels(std::string const& svg) {
    std::regex const re(R"re(<text x="([\d.]+)" y="([\d.]+)">(\d\d:00|day \d+)</text>)re");
    std::map<std::string, std::vector<double>> rows;
    for (std::sregex_iterator it(svg.begin(), svg.end(), re), end; it != end; ++it)
        rows[(*it)[2]].push_back(std::stod((*it)[1]));
    return rows;
}

void require_labels_apart(std::string const& svg, double min_gap) {
    auto const rows = axis_labels(svg);
    REQUIRE_FALSE(rows.empty());
    for (auto [y, xs] : rows) {
        std::sort(xs.begin(), xs.end());
        for (std::size_t i = 1; i < xs.size(); ++i) {
            INFO("row y=" << y << " labels at " << xs[i - 1] << " and " << xs[i]);
            CHECK(xs[i] - xs[i - 1] >= min_gap);
        }
    }
}

bool has_nan_or_inf(std::string svg) {
    std::transform(svg.begin(), svg.end(), svg.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return svg.find("nan") != std::string::npos || svg.find("inf") != std::string::npos;
}

}  // namespace

TEST_CASE("a day renders as a standalone well-formed SVG document", "[sim][plot]") {
    auto const svg = render_svg(sample(24));
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find(R"(xmlns="http://www.w3.org/2000/svg")") != std::string::npos);
    CHECK(svg.find(R"(class="cost")") != std::string::npos);
    CHECK(svg.find(">24:00<") != std::string::npos);
    CHECK(svg.find(">03:00<") != std::string::npos);
    CHECK(svg.find("day 2") == std::string::npos);
    CHECK(well_formed(svg));
    require_labels_apart(svg, 40);
}

TEST_CASE("a tier name with markup in it appears only escaped", "[sim][plot]") {
    auto in = sample(6);
    in.tiers[1].name = "<script>&\"'";
    in.title = "a & b <c>";
    auto const svg = render_svg(in);
    CHECK(svg.find("<script") == std::string::npos);
    CHECK(svg.find("&lt;script&gt;&amp;&quot;&#39;") != std::string::npos);
    CHECK(svg.find("a &amp; b &lt;c&gt;") != std::string::npos);
    std::size_t raw = 0, escaped = 0;
    for (auto at = svg.find("script"); at != std::string::npos; at = svg.find("script", at + 1))
        ++raw, escaped += at >= 4 && svg.compare(at - 4, 4, "&lt;") == 0;
    CHECK(raw > 0);
    CHECK(raw == escaped);
    CHECK(well_formed(svg));
}

TEST_CASE("invalid UTF-8 and control bytes in names are replaced so the XML stays well-formed", "[sim][plot]") {
    auto in = sample(3);
    in.tiers[0].name = std::string("bad\xff\xc3(\x01") + "\xef\xbf\xbe" + "caf\xc3\xa9";
    auto const svg = render_svg(in);
    CHECK(svg.find("caf\xc3\xa9") != std::string::npos);
    CHECK(well_formed(svg));
}

TEST_CASE("bar heights are proportional to the counts", "[sim][plot]") {
    auto const svg = render_svg(sample(24));
    for (std::string series : {"s0", "s1", "s4"}) {
        auto const found = bars(svg, series);
        REQUIRE(found.size() >= 3);
        double const per_answer = found.front().height / static_cast<double>(found.front().count);
        CHECK(per_answer > 0);
        for (auto const& b : found) {
            INFO(series << " hour " << b.hour << " count " << b.count << " height " << b.height);
            CHECK(b.height == Approx(per_answer * static_cast<double>(b.count)).margin(0.011));
        }
    }
    // the tallest stack fills most of the panel but not more than it
    auto const groq = bars(svg, "s0");
    CHECK(groq.size() == 24);
    auto const tallest = std::max_element(groq.begin(), groq.end(), [](Bar const& a, Bar const& b) { return a.count < b.count; });
    CHECK(tallest->height > 50);
    CHECK(tallest->height < 250);
}

TEST_CASE("hours without answers draw no bar for that tier", "[sim][plot]") {
    auto const svg = render_svg(sample(24));
    auto const vertex = bars(svg, "s2");
    REQUIRE(vertex.size() == 1);
    CHECK(vertex[0].hour == 15);
    CHECK(vertex[0].count == 7);
}

TEST_CASE("the legend shows each tier's name and total", "[sim][plot]") {
    PlotInput in;
    in.title = "legend";
    in.tiers = {{"groq", {1000, 234, 0}}, {"deepseek", {1, 2, 3}}, {"cache", {0, 0, 0}}};
    in.cumulative_cost_usd = {0.0, 0.001, 0.0012};
    auto const svg = render_svg(in);
    CHECK(svg.find(R"(<g class="legend s0" data-total="1234">)") != std::string::npos);
    CHECK(svg.find(R"(>groq <tspan fill="#555">1,234 (99.5%)</tspan>)") != std::string::npos);
    CHECK(svg.find(R"(<g class="legend s1" data-total="6">)") != std::string::npos);
    CHECK(svg.find(R"(>deepseek <tspan fill="#555">6 (0.5%)</tspan>)") != std::string::npos);
    CHECK(svg.find(R"(<g class="legend s2" data-total="0">)") != std::string::npos);
    CHECK(svg.find("1,240 answers") != std::string::npos);
    CHECK(svg.find("$0.0012") != std::string::npos);
    CHECK(well_formed(svg));
}

TEST_CASE("the template is grey and the cache light whatever their place in the chain", "[sim][plot]") {
    auto const svg = render_svg(sample(4));
    CHECK(svg.find(R"(<g class="series s3" fill="#999999">)") != std::string::npos);
    CHECK(svg.find(R"(<g class="series s4" fill="#F0E442">)") != std::string::npos);
    CHECK(svg.find(R"(<g class="series s0" fill="#0072B2">)") != std::string::npos);
}

TEST_CASE("dollar ticks are round values with sensible decimals", "[sim][plot]") {
    PlotInput in;
    in.tiers = {{"groq", {1, 1}}};
    in.cumulative_cost_usd = {600.0, 1234.4};
    auto svg = render_svg(in);
    CHECK(svg.find(">$1,500</text>") != std::string::npos);
    CHECK(svg.find(">$1,234</text>") != std::string::npos);
    in.cumulative_cost_usd = {0.1, 0.35};
    svg = render_svg(in);
    CHECK(svg.find(">$0.40</text>") != std::string::npos);
    CHECK(svg.find(">$0.35</text>") != std::string::npos);
    in.cumulative_cost_usd = {5.0, 12.5};
    svg = render_svg(in);
    CHECK(svg.find(">$12.50</text>") != std::string::npos);
    CHECK(svg.find(">$15.00</text>") != std::string::npos);
}

TEST_CASE("lengths that disagree throw invalid_argument naming the tier", "[sim][plot]") {
    PlotInput in;
    in.tiers = {{"groq", {1, 2, 3}}, {"deepseek", {1, 2}}};
    in.cumulative_cost_usd = {0.1, 0.2, 0.3};
    CHECK_THROWS_AS(render_svg(in), std::invalid_argument);
    CHECK_THROWS_WITH(render_svg(in), Catch::Contains("deepseek") && Catch::Contains("2 hours") && Catch::Contains("has 3"));
    in.tiers = {{"groq", {1}}};
    in.cumulative_cost_usd = {};
    CHECK_THROWS_AS(render_svg(in), std::invalid_argument);
}

TEST_CASE("no hours give a small valid SVG that says no data", "[sim][plot]") {
    PlotInput in;
    in.title = "empty <run>";
    in.tiers = {{"groq", {}}};
    auto const svg = render_svg(in);
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("xmlns=") != std::string::npos);
    CHECK(svg.find("no data") != std::string::npos);
    CHECK(svg.find("empty &lt;run&gt;") != std::string::npos);
    CHECK(well_formed(svg));
    CHECK(well_formed(render_svg(PlotInput{})));
}

TEST_CASE("all-zero data, one hour and no tiers draw without NaN or inf", "[sim][plot]") {
    PlotInput zeros;
    zeros.title = "zeros";
    zeros.tiers = {{"groq", std::vector<std::uint64_t>(24, 0)}, {"cache", std::vector<std::uint64_t>(24, 0)}};
    zeros.cumulative_cost_usd = std::vector<double>(24, 0.0);
    PlotInput one;
    one.tiers = {{"groq", {5}}, {"deepseek", {0}}};
    one.cumulative_cost_usd = {0.0003};
    PlotInput no_tiers;
    no_tiers.cumulative_cost_usd = {0.0, 1.0, 2.0};
    PlotInput bad_costs;
    bad_costs.tiers = {{"groq", {1, 2, 3}}};
    bad_costs.cumulative_cost_usd = {std::nan(""), HUGE_VAL, -1.0};
    for (auto const* in : {&zeros, &one, &no_tiers, &bad_costs}) {
        auto const svg = render_svg(*in);
        CHECK_FALSE(has_nan_or_inf(svg));
        CHECK(svg.find("-0") == std::string::npos);
        CHECK(well_formed(svg));
    }
    CHECK(bars(render_svg(zeros), "s0").empty());
    CHECK(bars(render_svg(one), "s0").size() == 1);
}

TEST_CASE("a week labels every 12 hours and each day", "[sim][plot]") {
    auto const svg = render_svg(sample(168));
    CHECK(svg.find(">12:00<") != std::string::npos);
    CHECK(svg.find(">06:00<") == std::string::npos);
    CHECK(svg.find(">day 7<") != std::string::npos);
    CHECK(well_formed(svg));
    require_labels_apart(svg, 40);
}

TEST_CASE("two days label every 6 hours and day 2", "[sim][plot]") {
    auto const svg = render_svg(sample(48));
    CHECK(svg.find(">06:00<") != std::string::npos);
    CHECK(svg.find(">03:00<") == std::string::npos);
    CHECK(svg.find(">day 2<") != std::string::npos);
    require_labels_apart(svg, 40);
}

TEST_CASE("a month of 744 hours renders well-formed with thinner bars and fewer labels", "[sim][plot]") {
    auto const svg = render_svg(sample(744));
    CHECK(well_formed(svg));
    CHECK_FALSE(has_nan_or_inf(svg));
    CHECK(bars(svg, "s0").size() == 744);
    CHECK(svg.find(">day 31<") != std::string::npos);
    CHECK(svg.find(">12:00<") == std::string::npos);
    require_labels_apart(svg, 40);
}

TEST_CASE("a start hour other than midnight shifts the labels", "[sim][plot]") {
    auto in = sample(24);
    in.start_hour_of_day = 18;
    auto const svg = render_svg(in);
    CHECK(svg.find(">18:00<") != std::string::npos);
    CHECK(svg.find(">day 2<") != std::string::npos);
    CHECK(well_formed(svg));
}

TEST_CASE("the same input gives byte-identical output", "[sim][plot]") {
    auto const in = sample(72);
    CHECK(render_svg(in) == render_svg(in));
    CHECK(render_svg(in) == render_svg(PlotInput(in)));
}
