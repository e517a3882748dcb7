#pragma once
/// @file
/// @brief `MemoryCache`: an in-process LRU cache with a time to live, bounded by entries and bytes.

#include <cascade/core/completion.hpp>

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cascade {

/// @brief Settings of `MemoryCache`.
struct MemoryCacheConfig {
    /// Entries kept at most; the least recently used goes first.
    std::size_t max_entries = 10'000;
    /// Bytes of answer text, labels and keys kept at most.
    std::size_t max_bytes = 64u << 20;
    /// How long an answer is served after it was stored.
    std::chrono::seconds ttl{24 * 3600};
};

/// @brief An in-process LRU cache with TTL. Thread-safe; every operation is O(1) under one mutex.
class MemoryCache {
public:
    using clock = std::chrono::steady_clock;

    MemoryCache() = default;
    explicit MemoryCache(MemoryCacheConfig cfg) : cfg_(cfg) {}
    MemoryCache(MemoryCache const&) = delete;
    MemoryCache& operator=(MemoryCache const&) = delete;

    /// @brief The answer stored under `key`, if any and not expired. Counts as a use.
    std::optional<Completion> get(std::string_view key, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        auto it = index_.find(std::string(key));
        if (it == index_.end()) return std::nullopt;
        auto node = it->second;
        if (now - node->stored >= cfg_.ttl) {
            erase(node);
            return std::nullopt;
        }
        lru_.splice(lru_.begin(), lru_, node);
        return node->value;
    }

    /// @brief Stores `value` under `key` (replacing what was there), evicting the least recently used
    /// entries beyond the bounds. A value larger than `max_bytes` on its own is not stored.
    void put(std::string key, Completion value, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        if (auto it = index_.find(key); it != index_.end()) erase(it->second);
        std::size_t size = key.size() + value.text.size() + value.label.size() + value.model.size() + 64;
        if (size > cfg_.max_bytes || cfg_.max_entries == 0) return;
        value.trail.clear();
        lru_.push_front(Entry{key, std::move(value), now, size});
        index_.emplace(std::move(key), lru_.begin());
        bytes_ += size;
        while (lru_.size() > cfg_.max_entries || bytes_ > cfg_.max_bytes) erase(std::prev(lru_.end()));
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return lru_.size();
    }
    std::size_t bytes() const {
        std::lock_guard lock(mutex_);
        return bytes_;
    }

private:
    struct Entry {
        std::string key;
        Completion value;
        clock::time_point stored;
        std::size_t size;
    };
    using Node = std::list<Entry>::iterator;

    void erase(Node node) {
        bytes_ -= node->size;
        index_.erase(node->key);
        lru_.erase(node);
    }

    MemoryCacheConfig cfg_;
    mutable std::mutex mutex_;
    std::list<Entry> lru_;
    std::unordered_map<std::string, Node> index_;
    std::size_t bytes_ = 0;
};

} // namespace cascade
