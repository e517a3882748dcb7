#pragma once
// A token bucket per client address: `burst` audits at once, refilled at `per_minute`. A refused client
// learns how long to wait (retry-after). The table is bounded: the fullest buckets (idle clients) go first.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace audit {

class RateLimiter {
public:
    using clock = std::chrono::steady_clock;

    RateLimiter(double per_minute, double burst, std::size_t max_clients = 100'000)
        : per_second_(per_minute / 60.0), burst_(burst), max_clients_(max_clients) {}

    /// @brief Takes one token for `client` at `now`: zero when allowed, else the seconds to wait (at least 1).
    long take(std::string const& client, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        auto it = buckets_.find(client);
        if (it == buckets_.end()) {
            if (buckets_.size() >= max_clients_) evict(now);
            it = buckets_.emplace(client, Bucket{burst_, now}).first;
        }
        auto& b = it->second;
        b.tokens = std::min(burst_, b.tokens + per_second_ * std::chrono::duration<double>(now - b.last).count());
        b.last = now;
        if (b.tokens >= 1.0) {
            b.tokens -= 1.0;
            return 0;
        }
        return std::max(1L, static_cast<long>(std::ceil((1.0 - b.tokens) / per_second_)));
    }

private:
    struct Bucket {
        double tokens;
        clock::time_point last;
    };
    // Drops the clients whose buckets have refilled (they lose nothing), or else the longest idle half.
    void evict(clock::time_point now) {
        for (auto it = buckets_.begin(); it != buckets_.end();) {
            double const full = it->second.tokens + per_second_ * std::chrono::duration<double>(now - it->second.last).count();
            it = full >= burst_ ? buckets_.erase(it) : std::next(it);
        }
        while (buckets_.size() >= max_clients_) {
            auto oldest = std::min_element(buckets_.begin(), buckets_.end(), [](auto const& a, auto const& b) { return a.second.last < b.second.last; });
            buckets_.erase(oldest);
        }
    }

    double per_second_;
    double burst_;
    std::size_t max_clients_;
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

} // namespace audit
