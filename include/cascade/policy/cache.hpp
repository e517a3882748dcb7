#pragma once
/// @file
/// @brief The cache policy: answers stored by request key, consulted before any tier.

#include <cascade/core/completion.hpp>

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <optional>
#include <string>

namespace cascade {

/// @brief A cache policy stores accepted LLM answers by cache key (see `cache_key`).
///
/// Requirements: `c.get(key)` with `key` a `std::string const&` returns `std::optional<Completion>` or
/// `boost::asio::awaitable<std::optional<Completion>>`; `c.put(key, completion)` returns `void` or
/// `boost::asio::awaitable<void>`. Both are called from several threads at once. A cache that fails
/// (a server down, a locked file) answers "miss" and swallows the failure: a cache failure is never a
/// chain failure. Only answers of fallible tiers are put; a template answer is never cached.
template <class C>
concept CachePolicy = requires(C& c, std::string const& key, Completion const& v) {
    requires(std::same_as<decltype(c.get(key)), std::optional<Completion>> ||
             std::same_as<decltype(c.get(key)), boost::asio::awaitable<std::optional<Completion>>>);
    { c.put(key, v) };
};

/// @brief No caching, and no coalescing of identical requests: the default.
struct NoCache {
    std::optional<Completion> get(std::string const&) const noexcept { return std::nullopt; }
    void put(std::string const&, Completion const&) const noexcept {}
};

template <class C>
inline constexpr bool caches = !std::same_as<C, NoCache>;

} // namespace cascade
