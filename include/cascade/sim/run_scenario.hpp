#pragma once
/// @file
/// @brief `sim::run_scenario`: a scenario's modelled tiers in the real chain (up to `max_scenario_tiers`
/// of them, then the template), with or without the memory cache, run on a `ManualClock`; and the
/// report's renderings (`to_text`, `to_json`, `plot_input`).

#include <cascade/cache/memory.hpp>
#include <cascade/chain.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/policies.hpp>
#include <cascade/provider/template.hpp>
#include <cascade/sim/modelled_tier.hpp>
#include <cascade/sim/plot.hpp>
#include <cascade/sim/scenario.hpp>
#include <cascade/sim/simulation.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

namespace cascade::sim {

/// The simulator's policies: the defaults on a manual clock, a run-time minimum answer length.
using SimulatedPolicies = DefaultPolicies::with_clock<ManualClock>::with_accept<MinChars>;
/// The same with answers cached in memory by (prompt, language) and identical requests coalesced.
using CachedSimulatedPolicies = SimulatedPolicies::with_cache<MemoryCache>;

/// The simulator's chain: six modelled tiers (those a scenario leaves out have no key and are skipped as
/// `unconfigured`), then the template.
template <class Policies>
using ScenarioChain = BasicChain<Policies, ModelledTier, ModelledTier, ModelledTier, ModelledTier, ModelledTier, ModelledTier, Template>;

/// @brief The template tier's report in the visitor's language (`lang=ru|es|en` tag).
inline std::string template_report(Request const& r) {
    std::string lang = "en";
    for (auto const& t : r.tags)
        if (t.starts_with("lang=")) lang = t.substr(5);
    if (lang == "ru") return "# Твоя цифровая крепость\nОтчёт составлен по шаблону: языковые модели сейчас недоступны.\n";
    if (lang == "es") return "# Tu fortaleza digital\nInforme generado con la plantilla: los modelos no están disponibles ahora.\n";
    return "# Your digital fortress\nThis report was written from the template: the language models are unavailable right now.\n";
}

namespace detail {

template <class Policies>
Report run_with(Scenario const& s) {
    boost::asio::io_context io;
    ManualClock clock;
    std::vector<ModelledTier> tiers;
    for (std::size_t i = 0; i < max_scenario_tiers; ++i) {
        ModelledTierConfig cfg;
        if (i < s.tiers.size()) {
            cfg = s.tiers[i];
            for (auto& e : cfg.episodes)  // episodes count from the measured days' start, after any warm-up
                e.from += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.load.warmup_days * 86'400.0));
        } else {
            cfg.name = "unused" + std::to_string(i + 1);
            cfg.keys.clear();
        }
        tiers.emplace_back(std::move(cfg), clock);
    }
    ChainConfig cc;
    cc.name = s.name;
    cc.max_wait = s.max_wait;
    cc.key_order = s.key_order;
    ScenarioChain<Policies> chain(io.get_executor(), std::move(cc), tiers[0], tiers[1], tiers[2], tiers[3], tiers[4], tiers[5], Template{template_report});
    chain.clock() = clock;
    chain.accept_policy().min_chars = s.min_answer_chars;

    std::vector<std::string> names;
    std::unordered_map<std::string, std::size_t> by_label;
    for (std::size_t i = 0; i < s.tiers.size(); ++i) {
        names.push_back(s.tiers[i].name);
        for (std::size_t k = 0; k < tiers[i].key_count(); ++k) by_label[tiers[i].label(static_cast<int>(k))] = i;
    }
    std::size_t const cache = names.size(), tpl = names.size() + 1;
    names.push_back("cache");
    names.push_back("fallback-template");
    auto series_of = [&](Completion const& c) -> std::size_t {
        if (c.origin == Origin::cache || c.origin == Origin::shared) return cache;
        if (c.origin == Origin::fallback) return tpl;
        auto it = by_label.find(c.label);
        if (it == by_label.end()) throw std::logic_error("simulate: an answer labelled \"" + c.label + "\" matches no tier");
        return it->second;
    };
    // What the accounts and the chain counted before the measured days (the warm-up's), to subtract.
    std::vector<TierStats> stats0;
    std::vector<ModelledCounts> counts0(s.tiers.size());
    auto on_measure = [&] {
        stats0 = chain.observer().snapshot();
        for (std::size_t i = 0; i < s.tiers.size(); ++i) counts0[i] = tiers[i].counts();
    };
    Report r = simulate(io, chain, clock, s.load, std::move(names), series_of, on_measure);
    r.name = s.name;

    auto const stats = chain.observer().snapshot();
    for (std::size_t i = 0; i < s.tiers.size(); ++i) {
        auto const& n = tiers[i].counts();
        for (std::size_t l = 0; l < limit_count; ++l)
            if (auto const c = n.trips[l] - counts0[i].trips[l]) r.trips.push_back(TripRow{s.tiers[i].name, std::string(limit_name(static_cast<Limit>(l))), c});
        ChainRow row;
        row.tier = s.tiers[i].name;
        if (i < stats.size()) {
            TierStats const before = i < stats0.size() ? stats0[i] : TierStats{};
            row.attempts = stats[i].attempts - before.attempts;
            row.skips = stats[i].skips - before.skips;
            for (std::size_t f = 1; f < fault_count; ++f)
                if (auto const c = stats[i].faults[f] - before.faults[f]) row.faults.emplace_back(std::string(to_string(static_cast<Fault>(f))), c);
        }
        r.chain.push_back(std::move(row));
    }
    return r;
}

inline std::string money(double usd) {
    char buf[64];
    if (usd != 0.0 && usd < 0.01) std::snprintf(buf, sizeof buf, "$%.5f", usd);
    else std::snprintf(buf, sizeof buf, "$%.2f", usd);
    return buf;
}

inline std::string percent(double share) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
    return buf;
}

} // namespace detail

/// @brief Runs `s` through the simulator's chain (with the memory cache when `s.cache`).
inline Report run_scenario(Scenario const& s) {
    return s.cache ? detail::run_with<CachedSimulatedPolicies>(s) : detail::run_with<SimulatedPolicies>(s);
}

/// @brief The report as a table: who answered, at what cost, the shares, latency and limits.
inline std::string to_text(Report const& r) {
    std::string out = "scenario " + r.name + ": " + std::to_string(r.requests) + " requests over " + std::to_string(r.days).substr(0, 5) + " days\n\n";
    char line[256];
    std::snprintf(line, sizeof line, "%-20s %10s %8s %14s %18s\n", "answered by", "times hit", "share", "cost", "tokens in / out");
    out += line;
    for (auto const& t : r.series) {
        if (t.name == "failed" && t.answers == 0) continue;
        std::snprintf(line, sizeof line, "%-20s %10llu %8s %14s %9.1fk / %.1fk\n", t.name.c_str(), static_cast<unsigned long long>(t.answers),
                      detail::percent(r.share(t.answers)).c_str(), detail::money(t.cost_usd).c_str(), static_cast<double>(t.prompt_tokens) / 1000.0,
                      static_cast<double>(t.completion_tokens) / 1000.0);
        out += line;
    }
    std::snprintf(line, sizeof line, "%-20s %10llu %8s %14s\n\n", "total", static_cast<unsigned long long>(r.requests), "100.0%", detail::money(r.total_cost_usd).c_str());
    out += line;
    out += "answered free (free tier or cache): " + detail::percent(r.share(r.free_answers)) + "\n";
    out += "answered by the template:           " + detail::percent(r.share(r.template_answers)) + "\n";
    out += "cost per 1,000 requests:            " + detail::money(r.cost_per_1000()) + "\n";
    out += "cost per month (30 days):           " + detail::money(r.cost_per_month()) + "\n";
    std::snprintf(line, sizeof line, "latency p50 / p99 (simulated):      %.2f s / %.2f s\n", r.p50_ms / 1000.0, r.p99_ms / 1000.0);
    out += line;
    out += "\nlimits tripped at the providers:\n";
    if (r.trips.empty()) out += "  none\n";
    for (auto const& t : r.trips) {
        std::snprintf(line, sizeof line, "  %-12s %-22s %8llu\n", t.tier.c_str(), t.limit.c_str(), static_cast<unsigned long long>(t.count));
        out += line;
    }
    out += "\nthe chain's view (attempts, skips, faults):\n";
    for (auto const& c : r.chain) {
        std::snprintf(line, sizeof line, "  %-12s attempts %llu, skips %llu", c.tier.c_str(), static_cast<unsigned long long>(c.attempts),
                      static_cast<unsigned long long>(c.skips));
        out += line;
        for (auto const& [f, n] : c.faults) out += ", " + f + " " + std::to_string(n);
        out += "\n";
    }
    std::snprintf(line, sizeof line, "\nsimulated in %.2f s of real time\n", r.wall_seconds);
    out += line;
    return out;
}

/// @brief The report as JSON (for scripts and tests).
inline boost::json::object to_json(Report const& r) {
    boost::json::object o;
    o["name"] = r.name;
    o["requests"] = r.requests;
    o["days"] = r.days;
    boost::json::array series;
    for (auto const& t : r.series)
        series.push_back(boost::json::object{{"name", t.name}, {"answers", t.answers}, {"cost_usd", t.cost_usd}, {"free_answers", t.free_answers},
                                             {"prompt_tokens", t.prompt_tokens}, {"completion_tokens", t.completion_tokens}});
    o["series"] = std::move(series);
    o["total_cost_usd"] = r.total_cost_usd;
    o["free_share"] = r.share(r.free_answers);
    o["template_share"] = r.share(r.template_answers);
    o["cached_answers"] = r.cached_answers;
    o["failed"] = r.failed;
    o["cost_per_1000_usd"] = r.cost_per_1000();
    o["cost_per_month_usd"] = r.cost_per_month();
    o["latency_p50_ms"] = r.p50_ms;
    o["latency_p99_ms"] = r.p99_ms;
    boost::json::array trips;
    for (auto const& t : r.trips) trips.push_back(boost::json::object{{"tier", t.tier}, {"limit", t.limit}, {"count", t.count}});
    o["trips"] = std::move(trips);
    boost::json::array chain;
    for (auto const& c : r.chain) {
        boost::json::object faults;
        for (auto const& [f, n] : c.faults) faults[f] = n;
        chain.push_back(boost::json::object{{"tier", c.tier}, {"attempts", c.attempts}, {"skips", c.skips}, {"faults", std::move(faults)}});
    }
    o["chain"] = std::move(chain);
    o["wall_seconds"] = r.wall_seconds;
    return o;
}

/// @brief The report's series and cost, for `render_svg`.
inline PlotInput plot_input(Report const& r, std::string title) {
    PlotInput p;
    p.title = std::move(title);
    for (std::size_t s = 0; s < r.series.size(); ++s)
        if (r.series[s].name != "failed" || r.series[s].answers) p.tiers.push_back(HourlySeries{r.series[s].name, r.per_hour[s]});
    p.cumulative_cost_usd = r.cumulative_cost_usd;
    return p;
}

} // namespace cascade::sim
