#pragma once
/// @file
/// @brief Simulated traffic (`LoadConfig`, `arrivals`, `request_for`): requests per day on a daily curve,
/// prompt sizes, a share of repeated prompts and the visitors' languages; deterministic for a seed.

#include <cascade/core/request.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/sim/modelled_tier.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cascade::sim {

/// @brief The traffic of a simulation.
struct LoadConfig {
    /// Length of the simulation in days (fractions allowed), after the warm-up.
    double days = 1.0;
    /// Days of the same traffic run first and left out of the report, so that day-long windows start
    /// the measured days as they would in a deployment that has been running (a rolling day's budget
    /// starts a simulation full: without a warm-up, the first day carries up to twice a steady day's).
    double warmup_days = 0.0;
    std::uint32_t requests_per_day = 1000;
    /// Relative traffic of each UTC hour of the day.
    std::array<double, 24> hourly_curve{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    /// Prompt size of each distinct prompt, in tokens (uniform).
    TokenRange prompt_tokens{4500, 5500};
    /// Answer size, in tokens (uniform, fixed per prompt): given to every modelled tier that sets none.
    TokenRange answer_tokens{900, 2200};
    /// `Request::max_tokens` of every request; nullopt: unset.
    std::optional<int> max_tokens = 2200;
    /// The share of requests that repeat an earlier prompt (same text and language).
    double repeat_share = 0.0;
    /// Visitors' languages and their weights; part of the cache key (`lang=xx`).
    std::vector<std::pair<std::string, double>> languages{{"en", 1.0}};
    std::uint64_t seed = 42;
    /// The wall-clock time the simulation starts at (time-of-day prices, calendar windows).
    std::chrono::system_clock::time_point start_utc = std::chrono::sys_days(std::chrono::year{2026} / 12 / 1);
};

/// @brief One request of the simulated traffic.
struct Arrival {
    /// Since the simulation's start (the warm-up's, when there is one).
    Clock::duration at{0};
    /// Which distinct prompt it asks (equal ids: the same text and language).
    std::uint64_t prompt_id = 0;
    std::uint32_t prompt_tokens = 0;
    std::string language;
    bool repeat = false;
};

namespace detail {

template <class Weights>
std::size_t pick(Weights const& w, double u) {
    double total = 0.0;
    for (auto x : w) total += x;
    double at = u * total;
    for (std::size_t i = 0; i < w.size(); ++i) {
        if (at < w[i]) return i;
        at -= w[i];
    }
    return w.size() - 1;
}

} // namespace detail

/// @brief Checks `l`; throws `std::invalid_argument` naming the field that is wrong.
inline void validate(LoadConfig const& l) {
    if (!(l.days > 0.0) || l.days > 366.0) throw std::invalid_argument("load.days must be more than 0 and at most 366");
    if (!(l.warmup_days >= 0.0) || l.warmup_days > 31.0) throw std::invalid_argument("load.warmup_days must be between 0 and 31");
    double curve = 0.0;
    for (double h : l.hourly_curve) {
        if (!(h >= 0.0) || !std::isfinite(h)) throw std::invalid_argument("load.hourly_curve: every weight must be a finite number >= 0");
        curve += h;
    }
    if (!(curve > 0.0)) throw std::invalid_argument("load.hourly_curve: at least one hour needs a weight above 0");
    if (l.prompt_tokens.min > l.prompt_tokens.max) throw std::invalid_argument("load.prompt_tokens: min is above max");
    if (l.answer_tokens.min > l.answer_tokens.max) throw std::invalid_argument("load.answer_tokens: min is above max");
    if (l.prompt_tokens.max > 1'000'000) throw std::invalid_argument("load.prompt_tokens: max is above 1,000,000");
    if (!(l.repeat_share >= 0.0 && l.repeat_share < 1.0)) throw std::invalid_argument("load.repeat_share must be in [0, 1)");
    if (l.max_tokens && *l.max_tokens <= 0) throw std::invalid_argument("load.max_tokens must be positive");
    if (l.languages.empty()) throw std::invalid_argument("load.languages: give at least one language");
    double lw = 0.0;
    for (auto const& [lang, w] : l.languages) {
        if (lang.empty() || !(w >= 0.0) || !std::isfinite(w)) throw std::invalid_argument("load.languages: each needs a name and a weight >= 0");
        lw += w;
    }
    if (!(lw > 0.0)) throw std::invalid_argument("load.languages: at least one weight must be above 0");
    if (static_cast<double>(l.requests_per_day) * (l.days + l.warmup_days) > 10'000'000.0) throw std::invalid_argument("load: more than 10,000,000 requests in all");
}

/// @brief The requests of `l` (its warm-up's first), in time order. The same config gives the same traffic.
inline std::vector<Arrival> arrivals(LoadConfig const& l) {
    validate(l);
    detail::Rng rng(l.seed);
    double const days = l.days + l.warmup_days;
    // Each day gets exactly its requests (a fractional day its share), spread over its hours by the curve.
    std::vector<Arrival> out;
    for (std::uint64_t day = 0; static_cast<double>(day) < days; ++day) {
        double const part = std::min(1.0, days - static_cast<double>(day));
        auto const n = static_cast<std::size_t>(std::llround(static_cast<double>(l.requests_per_day) * part));
        for (std::size_t i = 0; i < n;) {
            auto const hour = detail::pick(l.hourly_curve, rng.uniform());
            double const secs = static_cast<double>(hour) * 3'600.0 + rng.uniform() * 3'600.0;
            if (secs >= part * 86'400.0) continue;  // past the end of a fractional last day
            Arrival a;
            a.at = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(day) * 86'400.0 + secs));
            out.push_back(std::move(a));
            ++i;
        }
    }
    std::sort(out.begin(), out.end(), [](Arrival const& x, Arrival const& y) { return x.at < y.at; });

    std::vector<double> lang_weights;
    for (auto const& lw : l.languages) lang_weights.push_back(lw.second);
    std::vector<std::size_t> firsts;  // index of each distinct prompt's first request
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& a = out[i];
        if (!firsts.empty() && rng.uniform() < l.repeat_share) {
            auto const& first = out[firsts[static_cast<std::size_t>(rng.uniform() * static_cast<double>(firsts.size())) % firsts.size()]];
            a.prompt_id = first.prompt_id;
            a.prompt_tokens = first.prompt_tokens;
            a.language = first.language;
            a.repeat = true;
            continue;
        }
        a.prompt_id = firsts.size() + 1;
        auto const span_tokens = l.prompt_tokens.max - l.prompt_tokens.min;
        a.prompt_tokens = l.prompt_tokens.min + (span_tokens ? static_cast<std::uint32_t>(rng.next() % (span_tokens + 1)) : 0u);
        a.language = l.languages[detail::pick(lang_weights, rng.uniform())].first;
        firsts.push_back(i);
    }
    return out;
}

/// @brief The request of arrival `a`: a system message and a user prompt of about `a.prompt_tokens`
/// tokens (by `Request::estimated_prompt_tokens`), tagged with its language.
inline Request request_for(Arrival const& a, LoadConfig const& l) {
    static std::string const system = "You write a security audit report from a visitor's answers. Anchor every finding to a real incident.";
    std::string user = "Audit #" + std::to_string(a.prompt_id) + " (" + a.language + ")\n";
    std::size_t const overhead = (system.size() + 16 + 16 + 3) / 4;
    std::size_t const want = a.prompt_tokens > overhead ? (a.prompt_tokens - overhead) * 4 : 0;
    static std::string const filler = "Q: Where do you keep your seed phrase? A: on paper, in a safe. ";
    while (user.size() < want) user.append(filler, 0, std::min(filler.size(), want - user.size()));
    Request r = Request::chat(system, std::move(user));
    r.max_tokens = l.max_tokens;
    r.tags.push_back("lang=" + a.language);
    return r;
}

} // namespace cascade::sim
