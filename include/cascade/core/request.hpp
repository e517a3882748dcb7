#pragma once
/// @file
/// @brief `Request`: what the caller asks of a chain.

#include <chrono>
#include <cstddef>
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
/// Build it in a named local before `co_await chain.complete(req)`: g++ 12 destroys aggregate
/// temporaries inside a `co_await` full-expression twice (GCC PR 100611).
struct Request {
    std::vector<Message> messages;
    /// Upper bound on completion tokens sent to the provider.
    int max_tokens = 1024;
    /// Sampling temperature.
    double temperature = 0.7;
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

    /// @brief Tokens a provider will count against a tokens-per-minute budget for this request.
    std::size_t estimated_tokens() const noexcept {
        return estimated_prompt_tokens() + static_cast<std::size_t>(max_tokens > 0 ? max_tokens : 0);
    }
};

} // namespace cascade
