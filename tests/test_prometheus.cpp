// The Prometheus observer and its text exposition: a real chain over scripted in-process tiers records
// answers, faults, skips, latency and a stream; the rendered lines are checked exactly, and, when
// promtool is on PATH, `promtool check metrics` must accept the whole text.

#include <cascade/cascade.hpp>
#include <cascade/server/prometheus.hpp>

#include "support/run.hpp"
#include "support/scripted_tier.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using cascade::Fault;
using cascade::server::Gauge;
using cascade::server::PrometheusObserver;
using cascade::test::ScriptedTier;
using cascade::test::Step;

namespace {

using Observed = cascade::DefaultPolicies::with_observe<PrometheusObserver>::with_retry<cascade::NoRetry>;
using Chain = cascade::BasicChain<Observed, ScriptedTier, ScriptedTier, cascade::Template>;

cascade::Template make_template() {
    return cascade::Template{[](cascade::Request const& r) { return "template answer for: " + r.prompt(); }};
}

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has_line(std::string const& text, std::string const& line) {
    for (auto const& l : lines_of(text))
        if (l == line) return true;
    return false;
}

asio::awaitable<cascade::StreamResult> drain(cascade::TextStream s) {
    // A named optional: g++ 12 destroys a discarded co_await result in a condition twice.
    while (auto d = co_await s.next()) d->clear();
    co_return s.result();
}

// Runs `promtool check metrics` on `text`. Returns false (after a WARN) when promtool is not on PATH, so
// the caller can tell a skipped check from a passed one.
bool promtool_accepts(std::string const& text, int& exit_code, std::string& output) {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        WARN("SKIPPED: promtool not found");
        return false;
    }
    auto dir = std::filesystem::temp_directory_path();
    auto const stem = "cascade_prom_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand());
    auto const in = dir / (stem + ".prom");
    auto const out = dir / (stem + ".out");
    std::ofstream(in, std::ios::binary) << text;
    std::string const cmd = "promtool check metrics < '" + in.string() + "' > '" + out.string() + "' 2>&1";
    int const status = std::system(cmd.c_str());
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream o(out);
    output.assign(std::istreambuf_iterator<char>(o), {});
    std::filesystem::remove(in);
    std::filesystem::remove(out);
    return true;
}

} // namespace

static_assert(cascade::ObservePolicy<PrometheusObserver>);
static_assert(cascade::ObservePolicy<cascade::Both<cascade::Stats, PrometheusObserver>>);

TEST_CASE("a chain's answers, faults, skips, tokens, cost, latency and streams render as exact Prometheus lines",
          "[prometheus][chain]") {
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    ScriptedTier deepseek("deepseek", 0);  // no key: skipped as unconfigured
    groq.then(Step::ok("a", {10, 20}, 0.25))
        .then(Step::fail(Fault::server_error))
        .then(Step::ok("b", {10, 20}, 0.25).after(30ms))
        .then(Step::ok("c", {10, 20}, 0.5));
    Chain chain(io.get_executor(), cascade::ChainConfig{}, groq, deepseek, make_template());

    auto req = cascade::Request::chat("You write reports.", "Summarise Q3");
    std::map<std::string, int> answered;
    for (int i = 0; i < 3; ++i) {
        auto c = cascade::test::run(io, chain.complete(req));
        ++answered[c.label];
    }
    CHECK(answered["groq"] == 2);
    CHECK(answered["fallback-template"] == 1);
    auto s = chain.stream(req);
    auto r = cascade::test::run(io, drain(std::move(s)));
    REQUIRE(r.end == cascade::StreamEnd::complete);

    auto gauges = cascade::server::circuit_gauges(chain);
    REQUIRE(gauges.size() == 2);
    std::string const text = chain.observer().render(gauges);
    INFO(text);
    for (char const* line : {
             "# HELP cascade_answers_total Requests answered, by the tier and label that produced the answer.",
             "# TYPE cascade_answers_total counter",
             R"(cascade_answers_total{tier="groq",label="groq"} 3)",
             R"(cascade_answers_total{tier="fallback-template",label="fallback-template"} 1)",
             "# TYPE cascade_attempts_total counter",
             R"(cascade_attempts_total{tier="groq"} 4)",
             R"(cascade_attempts_total{tier="deepseek"} 0)",
             R"(cascade_attempts_total{tier="fallback-template"} 1)",
             R"(cascade_skips_total{tier="deepseek"} 1)",
             R"(cascade_skips_total{tier="groq"} 0)",
             "# TYPE cascade_faults_total counter",
             R"(cascade_faults_total{tier="groq",fault="server_error"} 1)",
             R"(cascade_faults_total{tier="deepseek",fault="unconfigured"} 1)",
             R"(cascade_prompt_tokens_total{tier="groq"} 30)",
             R"(cascade_completion_tokens_total{tier="groq"} 60)",
             R"(cascade_cost_usd_total{tier="groq"} 1)",
             "# TYPE cascade_attempt_duration_seconds histogram",
             R"(cascade_attempt_duration_seconds_bucket{tier="groq",le="0.025"} 3)",
             R"(cascade_attempt_duration_seconds_bucket{tier="groq",le="+Inf"} 4)",
             R"(cascade_attempt_duration_seconds_count{tier="groq"} 4)",
             R"(cascade_attempt_duration_seconds_bucket{tier="fallback-template",le="+Inf"} 1)",
             "# TYPE cascade_streams_total counter",
             R"(cascade_streams_total{end="complete"} 1)",
             "# TYPE cascade_stream_first_token_seconds histogram",
             R"(cascade_stream_first_token_seconds_bucket{le="+Inf"} 1)",
             R"(cascade_stream_first_token_seconds_count 1)",
             "# TYPE cascade_circuit_open gauge",
             R"(cascade_circuit_open{tier="groq"} 0)",
             R"(cascade_circuit_open{tier="deepseek"} 0)",
         }) {
        INFO(line);
        CHECK(has_line(text, line));
    }
    // The latency buckets are cumulative, up to the last bound, 60 s.
    CHECK(has_line(text, R"(cascade_attempt_duration_seconds_bucket{tier="groq",le="0.05"} 4)"));
    CHECK(has_line(text, R"(cascade_attempt_duration_seconds_bucket{tier="groq",le="60"} 4)"));
    // Each family's HELP and TYPE come once, before its samples; nothing holds a key.
    std::map<std::string, int> types;
    for (auto const& l : lines_of(text))
        if (l.rfind("# TYPE ", 0) == 0) ++types[l.substr(7, l.find(' ', 7) - 7)];
    for (auto const& [name, n] : types) {
        INFO(name);
        CHECK(n == 1);
    }
    CHECK(text.find("key") == std::string::npos);

    int rc = -1;
    std::string out;
    if (promtool_accepts(text, rc, out)) {
        INFO(out);
        CHECK(rc == 0);
    }
}

TEST_CASE("label values are escaped: backslash, double quote and newline", "[prometheus][escape]") {
    PrometheusObserver o;
    cascade::AttemptEvent e;
    e.tier = 0;
    e.tier_name = "we\"ird\\tier\nname";
    e.label = "lab\"el";
    o.on_attempt(e);
    std::vector<Gauge> gauges{
        Gauge{"cascade_test_level", "A help with a \\ and a\nnewline.", {{"where", "a\"b"}}, 1.5},
        Gauge{"other_level", "Another.", {}, 2.0},
        Gauge{"cascade_test_level", "ignored: the first sample's help is the family's", {{"where", "c\\d"}}, -3.0},
    };
    std::string text;
    o.render(text, gauges);
    INFO(text);
    CHECK(has_line(text, R"(cascade_answers_total{tier="we\"ird\\tier\nname",label="lab\"el"} 1)"));
    CHECK(has_line(text, R"(# HELP cascade_test_level A help with a \\ and a\nnewline.)"));
    CHECK(has_line(text, R"(cascade_test_level{where="a\"b"} 1.5)"));
    CHECK(has_line(text, R"(cascade_test_level{where="c\\d"} -3)"));
    CHECK(has_line(text, "other_level 2"));
    // Both samples of cascade_test_level follow its one TYPE line, before other_level's.
    auto const type_at = text.find("# TYPE cascade_test_level gauge");
    auto const second_at = text.find(R"(cascade_test_level{where="c\\d"})");
    auto const other_at = text.find("# TYPE other_level gauge");
    CHECK(type_at < second_at);
    CHECK(second_at < other_at);
    CHECK(text.find("# TYPE cascade_test_level", type_at + 1) == std::string::npos);

    int rc = -1;
    std::string out;
    if (promtool_accepts(text, rc, out)) {
        INFO(out);
        CHECK(rc == 0);
    }
}

TEST_CASE("values are written as the shortest text that reads back, and infinities as the format spells them",
          "[prometheus][value]") {
    auto v = [](double d) {
        std::string s;
        cascade::server::prometheus::append_value(s, d);
        return s;
    };
    CHECK(v(0.1) == "0.1");
    CHECK(v(1.0) == "1");
    CHECK(v(0.0012) == "0.0012");
    CHECK(v(1.0 / 0.0) == "+Inf");
    CHECK(v(-1.0 / 0.0) == "-Inf");
    CHECK(v(std::nan("")) == "NaN");
}

TEST_CASE("Both fans events out to Stats and the Prometheus observer, and Stats renders as counters too",
          "[prometheus][both][stats]") {
    using BothPolicies = cascade::DefaultPolicies::with_observe<cascade::Both<cascade::Stats, PrometheusObserver>>::with_retry<cascade::NoRetry>;
    asio::io_context io;
    ScriptedTier groq("groq", 1);
    groq.then(Step::fail(Fault::rate_limited)).then(Step::ok());
    cascade::BasicChain<BothPolicies, ScriptedTier, cascade::Template> chain(io.get_executor(), cascade::ChainConfig{}, groq,
                                                                           make_template());
    auto req = cascade::Request::chat("You write reports.", "Summarise Q3");
    auto first = cascade::test::run(io, chain.complete(req));
    CHECK(first.label == "fallback-template");
    auto s = chain.stream(req);
    auto r = cascade::test::run(io, drain(std::move(s)));
    CHECK(r.end == cascade::StreamEnd::complete);

    auto const stats = chain.observer().first().snapshot();
    REQUIRE(stats.size() >= 2);
    CHECK(stats[0].fault_count_of(Fault::rate_limited) == 1);
    CHECK(stats[0].streams + stats[1].streams == 1);

    std::string const prom = chain.observer().second().render();
    INFO(prom);
    CHECK(has_line(prom, R"(cascade_faults_total{tier="groq",fault="rate_limited"} 1)"));
    CHECK(has_line(prom, R"(cascade_streams_total{end="complete"} 1)"));

    std::string text;
    cascade::server::render(text, chain.observer().first());
    INFO(text);
    CHECK(has_line(text, "# TYPE cascade_answers_total counter"));
    CHECK(has_line(text, R"(cascade_answers_total{tier="fallback-template"} 1)"));
    CHECK(has_line(text, R"(cascade_attempts_total{tier="groq"} 2)"));
    CHECK(has_line(text, R"(cascade_faults_total{tier="groq",fault="rate_limited"} 1)"));
    int rc = -1;
    std::string out;
    if (promtool_accepts(text, rc, out)) {
        INFO(out);
        CHECK(rc == 0);
    }
}
