#pragma once
/// @file
/// @brief `Prices`: what a tier's answers cost, from their usage: list prices per million tokens, a
/// cheaper rate for cached prompt tokens, time-of-day prices, and whether the tier is a free one.

#include <cascade/core/completion.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace cascade {

/// @brief Hours of the day (UTC) at which a provider charges its full price; other hours cost
/// `off_peak_factor` times it. DeepSeek since 2026-08-16: peak 01:00-04:00 and 06:00-10:00 UTC, Monday to
/// Friday; off-peak half.
struct PeakHours {
    /// Bit `h` set: the hour from h:00 to h:59 UTC is peak. Zero: one price around the clock.
    std::uint32_t hours = 0;
    /// Saturdays and Sundays are off-peak all day.
    bool weekdays_only = true;
    /// The off-peak price as a share of the peak price.
    double off_peak_factor = 1.0;

    /// @brief The hours `[from, to)` of a day, for `hours`: `between(1, 4) | between(6, 10)`.
    static constexpr std::uint32_t between(int from, int to) noexcept {
        std::uint32_t bits = 0;
        for (int h = std::max(from, 0); h < std::min(to, 24); ++h) bits |= std::uint32_t{1} << h;
        return bits;
    }

    /// @brief True when `when` falls in a peak hour (always, without time-of-day prices).
    bool is_peak(std::chrono::system_clock::time_point when) const noexcept {
        if (hours == 0) return true;
        auto const secs = std::chrono::floor<std::chrono::seconds>(when).time_since_epoch().count();
        auto const days = secs >= 0 ? secs / 86'400 : (secs - 86'399) / 86'400;
        int const hour = static_cast<int>((secs - days * 86'400) / 3'600);
        int const weekday = static_cast<int>(((days % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday; 0 is Sunday
        if (weekdays_only && (weekday == 0 || weekday == 6)) return false;
        return (hours >> hour) & 1u;
    }
};

/// @brief USD per one million tokens, and how a tier's answers are costed.
///
/// `cost(usage, when)`: $0 for a free tier; otherwise uncached prompt tokens at `input_per_million`, cached
/// ones (`Usage::cached_prompt_tokens`) at `cached_input_per_million`, completion tokens at
/// `output_per_million`, all times `peak.off_peak_factor` outside peak hours. The list prices of a free tier
/// stay: `list_cost` is what the same answer costs once the tier is paid for.
struct Prices {
    constexpr Prices() noexcept = default;
    /// @brief List prices per million input and output tokens (and cached input tokens).
    constexpr Prices(double input, double output, double cached_input = -1.0) noexcept
        : input_per_million(input), output_per_million(output), cached_input_per_million(cached_input) {}

    double input_per_million = 0.0;
    double output_per_million = 0.0;
    /// Prompt tokens the provider served from its cache (DeepSeek's cache hits, OpenAI's cached tokens);
    /// negative: charged as other input.
    double cached_input_per_million = -1.0;
    /// The tier's keys are on a free tier (Groq's, an OpenRouter `:free` model): its answers cost $0.
    bool free = false;
    /// Time-of-day prices (none by default).
    PeakHours peak;

    /// @brief What an answer with usage `u` costs at `when` (a default `when` means now).
    double cost(Usage u, std::chrono::system_clock::time_point when = {}) const noexcept {
        return free ? 0.0 : list_cost(u, when);
    }

    /// @brief What it costs at the list prices, free tier or not.
    double list_cost(Usage u, std::chrono::system_clock::time_point when = {}) const noexcept {
        double const cached = static_cast<double>(std::min(u.cached_prompt_tokens, u.prompt_tokens));
        double const uncached = static_cast<double>(u.prompt_tokens) - cached;
        double const cached_rate = cached_input_per_million < 0.0 ? input_per_million : cached_input_per_million;
        double usd = (uncached * input_per_million + cached * cached_rate +
                      static_cast<double>(u.completion_tokens) * output_per_million) / 1'000'000.0;
        if (peak.hours != 0) {
            if (when == std::chrono::system_clock::time_point{}) when = std::chrono::system_clock::now();
            if (!peak.is_peak(when)) usd *= peak.off_peak_factor;
        }
        return usd;
    }

    /// @brief Whether the tier has prices at all: a free tier, or a nonzero input or output price. A tier
    /// without any (a provider whose prices the library does not ship, a prices field left empty) answers
    /// with `Completion::cost_known` false: its cost is not counted, and says so, rather than reading $0.
    constexpr bool known() const noexcept { return free || input_per_million > 0.0 || output_per_million > 0.0; }
};

} // namespace cascade
