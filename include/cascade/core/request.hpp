#pragma once
/// @file
/// @brief `Request`: what the caller asks of a chain.

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cascade {

/// @brief Who speaks a message.
enum class Role { system, user, assistant };

/// @brief One chat message.
struct Message {
    Role role = Role::user;
    std::string content;
};

/// @brief A completion request: messages, sampling, cache tags and an optional time budget.
///
/// Every optional field is sent only when set: an unset one leaves the provider's own default, so what
/// reaches the wire is what the caller asked for and nothing more. A field a tier cannot carry (a
/// `response_format` on Anthropic, `extra` on a non-OpenAI tier) fails that tier's attempt with
/// `Fault::bad_request` naming the field, and the chain moves on; it is never silently dropped.
/// Every field that changes the answer is part of the cache key (`cache_key_material`).
///
/// Build it in a named local before `co_await chain.complete(req)`: g++ 12 destroys aggregate
/// temporaries inside a `co_await` full-expression twice (GCC PR 100611).
struct Request {
    /// What `estimated_tokens()` counts for an unset (or non-positive) `max_tokens`: for budgets only,
    /// never sent.
    static constexpr int budget_max_tokens = 1024;

    std::vector<Message> messages;
    /// Model to ask for instead of the tier's configured one (prices stay the tier's). Unset: the tier's.
    std::optional<std::string> model;
    /// Upper bound on completion tokens. Unset, or 0 or less: not sent (the provider's default), except
    /// on Anthropic, which requires one and sends its tier's `default_max_tokens`.
    std::optional<int> max_tokens;
    /// Sampling temperature; unset: not sent. Anthropic clamps it to 0..1 (a NaN is not sent).
    std::optional<double> temperature;
    /// Nucleus sampling; unset: not sent.
    std::optional<double> top_p;
    /// Sampling seed for reproducible answers where the provider supports one; unset: not sent.
    std::optional<std::int64_t> seed;
    /// Stop sequences; empty: not sent.
    std::vector<std::string> stop;
    /// The raw JSON of OpenAI's `response_format` object, e.g. `{"type":"json_object"}` or
    /// `{"type":"json_schema","json_schema":{...}}`; unset: not sent. OpenAI-compatible tiers send it as
    /// it is (a value that is not a JSON object fails the attempt with `bad_request`); Gemini tiers carry
    /// `text` and `json_object`; Anthropic carries none.
    std::optional<std::string> response_format;
    /// Provider-specific fields sent verbatim at the top level of an OpenAI-compatible body (e.g.
    /// `{"reasoning_effort":"low"}`); they never override `model`, `messages` or `stream`, and fields of
    /// this request that are set win over them. Non-empty on another tier: `bad_request`.
    boost::json::object extra;
    /// Tags that are part of the cache key, e.g. the answer's language (`"lang=de"`).
    std::vector<std::string> tags;
    /// Time budget for the whole chain; zero means the chain's configured default.
    std::chrono::milliseconds deadline{0};

    /// @brief A system + user request, the seed's shape.
    static Request chat(std::string system, std::string user) {
        Request r;
        if (!system.empty()) r.messages.push_back(Message{Role::system, std::move(system)});
        r.messages.push_back(Message{Role::user, std::move(user)});
        return r;
    }

    /// @brief The text of the last user message (what a template tier usually needs).
    std::string const& prompt() const noexcept {
        static std::string const none;
        for (auto it = messages.rbegin(); it != messages.rend(); ++it)
            if (it->role == Role::user) return it->content;
        return none;
    }

    /// @brief Rough prompt size in tokens (4 characters a token, plus per-message overhead),
    /// used to budget keys by tokens per minute before a round trip.
    std::size_t estimated_prompt_tokens() const noexcept {
        std::size_t chars = 0;
        for (auto const& m : messages) chars += m.content.size() + 16;
        return (chars + 3) / 4;
    }

    /// @brief Tokens a provider will count against a tokens-per-minute budget for this request: the
    /// prompt's estimate plus `max_tokens`, or `budget_max_tokens` when that is unset.
    std::size_t estimated_tokens() const noexcept {
        int const out = max_tokens && *max_tokens > 0 ? *max_tokens : budget_max_tokens;
        return estimated_prompt_tokens() + static_cast<std::size_t>(out);
    }
};

} // namespace cascade
