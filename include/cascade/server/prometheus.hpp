#pragma once
/// @file
/// @brief `PrometheusObserver`: an observe policy that keeps a chain's metrics (answers by label, attempts,
/// faults, skips, tokens, cost, latency histograms, streams) and renders them in the Prometheus text
/// exposition format 0.0.4, so any server can answer `GET /metrics`.
///
/// @code
/// using Observed = cascade::DefaultPolicies::with_observe<cascade::server::PrometheusObserver>;
/// cascade::BasicChain<Observed, cascade::Groq<5>, cascade::Template> chain{ex};
/// // ... in the handler of GET /metrics (content type: cascade::server::prometheus_content_type):
/// std::string body;
/// auto gauges = cascade::server::circuit_gauges(chain);  // cascade_circuit_open{tier="groq"} 0|1
/// chain.observer().render(body, gauges);
/// @endcode
///
/// Metrics (every label is a tier name or an attempt's label such as `groq3`; never a key):
/// | metric | type | labels |
/// |---|---|---|
/// | `cascade_answers_total` | counter | `tier`, `label`: the attempt that produced the answer returned |
/// | `cascade_attempts_total` | counter | `tier`: requests actually made (skips not included) |
/// | `cascade_hedges_total` | counter | `tier`: attempts started beside a slower one (also in attempts) |
/// | `cascade_skips_total` | counter | `tier`: times the tier was passed over without a request |
/// | `cascade_faults_total` | counter | `tier`, `fault` (`cascade::to_string(Fault)`; `other` for a code of another category): failed attempts and skips |
/// | `cascade_prompt_tokens_total`, `cascade_completion_tokens_total` | counter | `tier` |
/// | `cascade_cost_usd_total` | counter (float) | `tier` |
/// | `cascade_attempt_duration_seconds` | histogram | `tier`: latency of attempts (not skips) |
/// | `cascade_streams_total` | counter | `end`: `complete`, `incomplete`, `failed`, `cancelled` |
/// | `cascade_stream_first_token_seconds` | histogram | none: time to first token of streams that delivered text |
///
/// Answers served from the cache appear under `tier="cache"`. A family with no sample yet is left out.

#include <cascade/core/fault.hpp>
#include <cascade/policy/observe.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cascade::server {

/// @brief The `Content-Type` of a response holding the text this header renders.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// @brief Upper bounds (seconds) of the latency histograms' buckets; `+Inf` follows the last.
inline constexpr std::array<double, 14> latency_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1.0,   2.5,  5.0,   10.0, 20.0, 30.0, 60.0};

/// @brief One label of a caller-supplied gauge.
struct Label {
    std::string name;
    std::string value;
};

/// @brief A gauge sample the caller supplies at render time (circuit state, in-flight requests, ...).
///
/// Samples with the same `name` form one family: its `# HELP` (from the first sample naming it) and
/// `# TYPE gauge` lines are written once, before all of its samples, whatever their order in the span.
struct Gauge {
    std::string name;  ///< a metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`, not ending in `_total`
    std::string help;
    std::vector<Label> labels;
    double value = 0.0;
};

/// @brief Writers of the text format's pieces, for callers that render metrics of their own.
namespace prometheus {

/// @brief Appends `v` escaped for a label value: backslash, double quote and newline.
inline void append_label_value(std::string& out, std::string_view v) {
    for (char c : v) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
}

/// @brief Appends `v` escaped for a `# HELP` line: backslash and newline.
inline void append_help(std::string& out, std::string_view v) {
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

/// @brief Appends a sample value: the shortest text that reads back as `v`; `+Inf`, `-Inf`, `NaN`.
inline void append_value(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

inline void append_value(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// @brief Appends `# HELP name help` and `# TYPE name type`.
inline void append_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

/// @brief Appends `name{l1="v1",l2="v2"} ` (no braces without labels); the value comes next.
inline void append_sample_start(std::string& out, std::string_view name,
                                std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
    out += name;
    if (labels.size() != 0) {
        out += '{';
        bool first = true;
        for (auto const& [k, v] : labels) {
            if (!first) out += ',';
            first = false;
            out += k;
            out += "=\"";
            append_label_value(out, v);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
}

} // namespace prometheus

/// @brief Appends caller-supplied gauges, grouped into families by name (see `Gauge`).
inline void render(std::string& out, std::span<Gauge const> gauges) {
    for (std::size_t i = 0; i < gauges.size(); ++i) {
        bool seen = false;
        for (std::size_t j = 0; j < i && !seen; ++j) seen = gauges[j].name == gauges[i].name;
        if (seen) continue;
        prometheus::append_header(out, gauges[i].name, "gauge", gauges[i].help);
        for (std::size_t j = i; j < gauges.size(); ++j) {
            auto const& g = gauges[j];
            if (g.name != gauges[i].name) continue;
            out += g.name;
            if (!g.labels.empty()) {
                out += '{';
                for (std::size_t k = 0; k < g.labels.size(); ++k) {
                    if (k) out += ',';
                    out += g.labels[k].name;
                    out += "=\"";
                    prometheus::append_label_value(out, g.labels[k].value);
                    out += '"';
                }
                out += '}';
            }
            out += ' ';
            prometheus::append_value(out, g.value);
            out += '\n';
        }
    }
}

/// @brief `cascade_circuit_open{tier="<name>"}`, 1 while tier `i`'s circuit is open, for each fallible
/// tier of `chain` (a `BasicChain`).
template <class ChainT>
std::vector<Gauge> circuit_gauges(ChainT& chain) {
    std::vector<Gauge> out;
    out.reserve(ChainT::fallible_count);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (out.push_back(Gauge{"cascade_circuit_open", "1 while the tier's circuit is open (the tier is skipped), else 0.",
                             {Label{"tier", std::string(chain.template tier<I>().name())}},
                             chain.circuit_open(I) ? 1.0 : 0.0}),
         ...);
    }(std::make_index_sequence<ChainT::fallible_count>{});
    return out;
}

/// @brief A histogram with the `latency_buckets` bounds, in seconds.
struct LatencyHistogram {
    std::array<std::uint64_t, latency_buckets.size() + 1> counts{};  ///< per bucket, not cumulative; last: above 60 s
    double sum_seconds = 0.0;
    std::uint64_t count = 0;

    void add(std::chrono::microseconds d) noexcept {
        double const s = static_cast<double>(d.count()) / 1e6;
        std::size_t b = 0;
        while (b < latency_buckets.size() && s > latency_buckets[b]) ++b;
        ++counts[b];
        sum_seconds += s;
        ++count;
    }

    /// @brief Appends the `_bucket` (cumulative, then `le="+Inf"`), `_sum` and `_count` samples; with
    /// `tier` empty, without the `tier` label.
    void append(std::string& out, std::string_view name, std::string_view tier) const {
        std::string const bucket = std::string(name) + "_bucket";
        std::uint64_t cumulative = 0;
        char le[32];
        for (std::size_t b = 0; b <= latency_buckets.size(); ++b) {
            cumulative += counts[b];
            std::string_view le_text = "+Inf";
            if (b < latency_buckets.size()) {
                auto r = std::to_chars(le, le + sizeof le, latency_buckets[b]);
                le_text = std::string_view(le, static_cast<std::size_t>(r.ptr - le));
            }
            if (tier.empty())
                prometheus::append_sample_start(out, bucket, {{"le", le_text}});
            else
                prometheus::append_sample_start(out, bucket, {{"tier", tier}, {"le", le_text}});
            prometheus::append_value(out, cumulative);
            out += '\n';
        }
        std::string const sum = std::string(name) + "_sum", cnt = std::string(name) + "_count";
        if (tier.empty()) {
            prometheus::append_sample_start(out, sum, {});
        } else {
            prometheus::append_sample_start(out, sum, {{"tier", tier}});
        }
        prometheus::append_value(out, sum_seconds);
        out += '\n';
        if (tier.empty()) {
            prometheus::append_sample_start(out, cnt, {});
        } else {
            prometheus::append_sample_start(out, cnt, {{"tier", tier}});
        }
        prometheus::append_value(out, count);
        out += '\n';
    }
};

/// @brief An observe policy (models `cascade::ObservePolicy`, with `on_stream`) keeping Prometheus metrics.
///
/// One mutex around small per-tier tables: an event for a tier and label already seen allocates nothing.
/// `render` appends the text exposition (format 0.0.4) of everything so far, then the caller's gauges.
class PrometheusObserver {
public:
    /// Answers counted for one label of a tier.
    struct LabelCount {
        std::string label;
        std::uint64_t answers = 0;
    };
    /// Everything kept for one tier.
    struct Tier {
        std::string name;
        std::vector<LabelCount> answers;  ///< by label, in order of first answer
        std::uint64_t attempts = 0;
        std::uint64_t hedges = 0;
        std::uint64_t skips = 0;
        std::array<std::uint64_t, fault_count> faults{};  ///< by Fault value; index 0: a code of another category
        std::uint64_t prompt_tokens = 0;
        std::uint64_t completion_tokens = 0;
        double cost_usd = 0.0;
        LatencyHistogram latency;
    };
    /// Streams by how they ended (`StreamEnd`'s values) and their time to first token.
    struct Streams {
        std::array<std::uint64_t, 4> by_end{};
        LatencyHistogram first_token;
    };

    PrometheusObserver() = default;
    PrometheusObserver(PrometheusObserver const&) = delete;
    PrometheusObserver& operator=(PrometheusObserver const&) = delete;

    void on_attempt(AttemptEvent const& e) {
        std::lock_guard lock(mutex_);
        if (tiers_.size() <= e.tier) tiers_.resize(e.tier + 1);
        auto& t = tiers_[e.tier];
        if (t.name.empty()) t.name = std::string(e.tier_name);
        if (e.skipped) {
            ++t.skips;
        } else {
            ++t.attempts;
            if (e.hedged) ++t.hedges;
            t.prompt_tokens += e.usage.prompt_tokens;
            t.completion_tokens += e.usage.completion_tokens;
            t.cost_usd += e.cost_usd;
            t.latency.add(e.latency);
        }
        if (e.fault) {
            auto const v = static_cast<std::size_t>(e.fault.value());
            ++t.faults[e.fault.category() == fault_category() && v < fault_count ? v : 0];
        } else if (!e.skipped) {
            auto it = t.answers.begin();
            while (it != t.answers.end() && it->label != e.label) ++it;
            if (it == t.answers.end()) it = t.answers.insert(it, LabelCount{std::string(e.label), 0});
            ++it->answers;
        }
    }

    void on_stream(StreamEvent const& e) {
        std::lock_guard lock(mutex_);
        if (e.end < streams_.by_end.size()) ++streams_.by_end[e.end];
        if (e.committed) streams_.first_token.add(e.time_to_first_token);
    }

    /// @brief A copy of the per-tier tables, in tier order (the cache's, when it answered, last).
    std::vector<Tier> snapshot() const {
        std::lock_guard lock(mutex_);
        return tiers_;
    }
    Streams streams() const {
        std::lock_guard lock(mutex_);
        return streams_;
    }

    /// @brief Appends the exposition of every metric so far, then `extra` (see `Gauge`).
    void render(std::string& out, std::span<Gauge const> extra = {}) const;

    /// @brief The exposition as a new string.
    std::string render(std::span<Gauge const> extra = {}) const {
        std::string out;
        render(out, extra);
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<Tier> tiers_;
    Streams streams_;
};

namespace detail {

// One counter family over tiers: `value(t)` for each tier that has had an event.
template <class F>
void append_tier_counter(std::string& out, std::vector<PrometheusObserver::Tier> const& tiers, std::string_view name,
                         std::string_view help, F value) {
    bool any = false;
    for (auto const& t : tiers) {
        if (t.name.empty()) continue;
        if (!any) prometheus::append_header(out, name, "counter", help);
        any = true;
        prometheus::append_sample_start(out, name, {{"tier", t.name}});
        prometheus::append_value(out, value(t));
        out += '\n';
    }
}

} // namespace detail

inline void PrometheusObserver::render(std::string& out, std::span<Gauge const> extra) const {
    auto const tiers = snapshot();
    auto const st = streams();
    namespace p = prometheus;

    bool any = false;
    for (auto const& t : tiers)
        for (auto const& l : t.answers) {
            if (!any) p::append_header(out, "cascade_answers_total", "counter", "Requests answered, by the tier and label that produced the answer.");
            any = true;
            p::append_sample_start(out, "cascade_answers_total", {{"tier", t.name}, {"label", l.label}});
            p::append_value(out, l.answers);
            out += '\n';
        }
    detail::append_tier_counter(out, tiers, "cascade_attempts_total", "Requests made to a tier (skips not included).",
                                [](Tier const& t) { return t.attempts; });
    detail::append_tier_counter(out, tiers, "cascade_hedges_total", "Attempts started beside a slower one by the hedge policy.",
                                [](Tier const& t) { return t.hedges; });
    detail::append_tier_counter(out, tiers, "cascade_skips_total", "Times a tier was passed over without a request.",
                                [](Tier const& t) { return t.skips; });
    any = false;
    for (auto const& t : tiers)
        for (std::size_t f = 0; f < fault_count; ++f) {
            if (t.faults[f] == 0) continue;
            if (!any) p::append_header(out, "cascade_faults_total", "counter", "Failed attempts and skips, by tier and fault class.");
            any = true;
            std::string_view const fault = f == 0 ? std::string_view("other") : to_string(static_cast<Fault>(f));
            p::append_sample_start(out, "cascade_faults_total", {{"tier", t.name}, {"fault", fault}});
            p::append_value(out, t.faults[f]);
            out += '\n';
        }
    detail::append_tier_counter(out, tiers, "cascade_prompt_tokens_total", "Prompt tokens of attempts, by tier.",
                                [](Tier const& t) { return t.prompt_tokens; });
    detail::append_tier_counter(out, tiers, "cascade_completion_tokens_total", "Completion tokens of attempts, by tier.",
                                [](Tier const& t) { return t.completion_tokens; });
    detail::append_tier_counter(out, tiers, "cascade_cost_usd_total", "Cost of attempts in US dollars, by tier.",
                                [](Tier const& t) { return t.cost_usd; });
    any = false;
    for (auto const& t : tiers) {
        if (t.name.empty() || t.latency.count == 0) continue;
        if (!any) p::append_header(out, "cascade_attempt_duration_seconds", "histogram", "Latency of attempts (not skips), by tier.");
        any = true;
        t.latency.append(out, "cascade_attempt_duration_seconds", t.name);
    }
    any = false;
    for (std::size_t e = 0; e < st.by_end.size(); ++e) {
        if (st.by_end[e] == 0) continue;
        if (!any) p::append_header(out, "cascade_streams_total", "counter", "Streams, by how they ended.");
        any = true;
        static constexpr std::array<std::string_view, 4> ends{"complete", "incomplete", "failed", "cancelled"};
        p::append_sample_start(out, "cascade_streams_total", {{"end", ends[e]}});
        p::append_value(out, st.by_end[e]);
        out += '\n';
    }
    if (st.first_token.count != 0) {
        p::append_header(out, "cascade_stream_first_token_seconds", "histogram",
                         "Time from the call of stream to the first delta delivered, of streams that delivered text.");
        st.first_token.append(out, "cascade_stream_first_token_seconds", {});
    }
    server::render(out, extra);
}

/// @brief Appends the exposition of the default observer's table: the per-tier counters of
/// `PrometheusObserver` that `Stats` keeps (`cascade_answers_total` by `tier` only, attempts, hedges,
/// skips, faults, tokens, cost), then `extra`. Render either this or a `PrometheusObserver`, not both.
inline void render(std::string& out, Stats const& stats, std::span<Gauge const> extra = {}) {
    auto const rows = stats.snapshot();
    namespace p = prometheus;
    auto family = [&](std::string_view name, std::string_view help, auto value) {
        bool any = false;
        for (auto const& t : rows) {
            if (t.name.empty()) continue;
            if (!any) p::append_header(out, name, "counter", help);
            any = true;
            p::append_sample_start(out, name, {{"tier", t.name}});
            p::append_value(out, value(t));
            out += '\n';
        }
    };
    family("cascade_answers_total", "Requests answered, by the tier that produced the answer.", [](TierStats const& t) { return t.hits; });
    family("cascade_attempts_total", "Requests made to a tier (skips not included).", [](TierStats const& t) { return t.attempts; });
    family("cascade_hedges_total", "Attempts started beside a slower one by the hedge policy.", [](TierStats const& t) { return t.hedges; });
    family("cascade_skips_total", "Times a tier was passed over without a request.", [](TierStats const& t) { return t.skips; });
    bool any = false;
    for (auto const& t : rows)
        for (std::size_t f = 1; f < fault_count; ++f) {
            if (t.name.empty() || t.faults[f] == 0) continue;
            if (!any) p::append_header(out, "cascade_faults_total", "counter", "Failed attempts and skips, by tier and fault class.");
            any = true;
            p::append_sample_start(out, "cascade_faults_total", {{"tier", t.name}, {"fault", to_string(static_cast<Fault>(f))}});
            p::append_value(out, t.faults[f]);
            out += '\n';
        }
    family("cascade_prompt_tokens_total", "Prompt tokens of attempts, by tier.", [](TierStats const& t) { return t.prompt_tokens; });
    family("cascade_completion_tokens_total", "Completion tokens of attempts, by tier.", [](TierStats const& t) { return t.completion_tokens; });
    family("cascade_cost_usd_total", "Cost of attempts in US dollars, by tier.", [](TierStats const& t) { return t.cost_usd; });
    render(out, extra);
}

} // namespace cascade::server
