#pragma once
/// @file
/// @brief The accept policy: is an answer good enough to return, or a failure that moves to the next tier?

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>

namespace cascade {

/// @brief The accept policy's answer.
struct Acceptance {
    bool accepted = true;
    /// The fault recorded when not accepted (`empty` or `rejected`).
    Fault fault = Fault::rejected;
    /// Why, for the trail.
    std::string_view reason;

    static Acceptance yes() noexcept { return {}; }
    static Acceptance no(Fault f, std::string_view why) noexcept { return {false, f, why}; }
    explicit operator bool() const noexcept { return accepted; }
};

/// @brief An accept policy judges a tier's answer before the chain returns it.
///
/// Requirement: `p.accept(c, r)` with `c` a `Completion const&` and `r` a `Request const&` returns an
/// `Acceptance`; it may be called from several threads at once. The infallible last tier is not judged.
template <class P>
concept AcceptPolicy = requires(P const& p, Completion const& c, Request const& r) {
    { p.accept(c, r) } -> std::same_as<Acceptance>;
};

namespace detail {
// Finish reasons that mean the model refused or was stopped by a filter (OpenAI, Gemini, Anthropic).
inline constexpr std::array<std::string_view, 8> refused_finish_reasons{
    "content_filter", "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "LANGUAGE", "refusal"};
// Finish reasons that mean the provider cut the answer for reasons of its own: DeepSeek's
// `insufficient_system_resource` (api-docs.deepseek.com, chat completion's finish_reason), and `error`
// (OpenRouter and vLLM end a choice that failed mid-way so). Transient: the next tier, or a later try, may answer.
inline constexpr std::array<std::string_view, 2> cut_finish_reasons{"insufficient_system_resource", "error"};
} // namespace detail

/// @brief Accepts answers of at least `min_chars` characters (after trimming white space) whose finish
/// reason is not a safety or filter stop (`rejected`) nor the provider cutting the answer (`server_error`).
/// `min_chars = 1` is "non-empty".
struct MinChars {
    std::size_t min_chars = 1;

    Acceptance accept(Completion const& c, Request const&) const {
        for (auto reason : detail::refused_finish_reasons)
            if (c.finish_reason == reason) return Acceptance::no(Fault::rejected, "finish reason is a safety or filter stop");
        for (auto reason : detail::cut_finish_reasons)
            if (c.finish_reason == reason) return Acceptance::no(Fault::server_error, "the provider cut the answer (finish reason)");
        std::size_t b = 0, e = c.text.size();
        while (b < e && is_space(c.text[b])) ++b;
        while (e > b && is_space(c.text[e - 1])) --e;
        if (e == b) return Acceptance::no(Fault::empty, "answer is empty");
        if (e - b < min_chars) return Acceptance::no(Fault::rejected, "answer is shorter than the minimum length");
        return Acceptance::yes();
    }

private:
    static constexpr bool is_space(char ch) noexcept { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; }
};

/// @brief The default accept policy: any non-empty answer not stopped by a filter.
using AcceptNonEmpty = MinChars;

/// @brief Compile-time minimum length, e.g. `MinLength<400>` as the seed's reports required.
template <std::size_t N>
struct MinLength {
    Acceptance accept(Completion const& c, Request const& r) const { return MinChars{N}.accept(c, r); }
};

} // namespace cascade
