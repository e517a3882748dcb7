#pragma once
// The upstream's ledger: every request it served (provider, key, instant) and every rest it asked for
// (a 429's retry-after on one key, a 402's quota cooldown, a 1010 block of the whole provider). Plain
// code over plain data, so what counts as "a request inside a cooldown" is tested without a socket.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace cascade::soak {

// One request the upstream served.
struct Hit {
    std::uint8_t provider = 0;
    std::int8_t key = -1;  // index in the provider's key list; -1 when the key was unknown
    std::chrono::steady_clock::time_point at{};
};

// A rest the upstream asked for: a key (or, with key -1, the whole provider) should get no request in
// [from, from + length).
struct Rest {
    std::uint8_t provider = 0;
    std::int8_t key = -1;
    std::chrono::steady_clock::time_point from{};
    std::chrono::milliseconds length{0};
    char const* what = "";  // a string literal: "429 retry-after", "1010 block"...
};

// A request that arrived while a rest it falls under was running.
struct Violation {
    Hit hit;
    Rest rest;
};

// Thread-safe; preallocated up front so that recording adds nothing to the process's memory.
class Ledger {
public:
    Ledger(std::size_t hit_capacity, std::size_t rest_capacity) {
        hits_.resize(hit_capacity);
        rests_.resize(rest_capacity);
    }

    void hit(Hit h) {
        std::lock_guard lock(mutex_);
        if (hit_count_ < hits_.size()) hits_[hit_count_++] = h;
        else ++dropped_;
    }
    void rest(Rest r) {
        std::lock_guard lock(mutex_);
        if (rest_count_ < rests_.size()) rests_[rest_count_++] = r;
        else ++dropped_;
    }

    // Entries that did not fit: the check is then incomplete and must say so.
    std::size_t dropped() const {
        std::lock_guard lock(mutex_);
        return dropped_;
    }
    std::vector<Hit> hits() const {
        std::lock_guard lock(mutex_);
        return {hits_.begin(), hits_.begin() + static_cast<std::ptrdiff_t>(hit_count_)};
    }
    std::vector<Rest> rests() const {
        std::lock_guard lock(mutex_);
        return {rests_.begin(), rests_.begin() + static_cast<std::ptrdiff_t>(rest_count_)};
    }
    std::size_t hits_for(std::uint8_t provider, int key) const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (std::size_t i = 0; i < hit_count_; ++i) n += hits_[i].provider == provider && hits_[i].key == key;
        return n;
    }
    std::size_t hits_for(std::uint8_t provider) const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (std::size_t i = 0; i < hit_count_; ++i) n += hits_[i].provider == provider;
        return n;
    }

private:
    mutable std::mutex mutex_;
    std::vector<Hit> hits_;
    std::vector<Rest> rests_;
    std::size_t hit_count_ = 0;
    std::size_t rest_count_ = 0;
    std::size_t dropped_ = 0;
};

// Requests that arrived inside a rest. A request that arrives within `in_flight_slack` of the rest's
// start may have been sent before the client could know of it (it was already in flight), so it is not
// a violation. `clock_tolerance` is taken off the rest's end: the client starts its cooldown a little
// after the upstream sent the answer, but reads a coarse clock (up to a few ms behind).
inline std::vector<Violation> violations(std::vector<Hit> const& hits, std::vector<Rest> rests,
                                         std::chrono::milliseconds in_flight_slack,
                                         std::chrono::milliseconds clock_tolerance) {
    std::sort(rests.begin(), rests.end(), [](Rest const& a, Rest const& b) { return a.from < b.from; });
    std::chrono::milliseconds longest{0};
    for (auto const& r : rests) longest = std::max(longest, r.length);
    std::vector<Violation> out;
    for (auto const& h : hits) {
        // Only rests that started between (h.at - longest) and (h.at - slack) can hold this request.
        auto first = std::lower_bound(rests.begin(), rests.end(), h.at - longest,
                                      [](Rest const& r, std::chrono::steady_clock::time_point t) { return r.from < t; });
        for (auto it = first; it != rests.end() && it->from + in_flight_slack < h.at; ++it) {
            if (it->provider != h.provider) continue;
            if (it->key != -1 && it->key != h.key) continue;
            if (h.at < it->from + it->length - clock_tolerance) {
                out.push_back(Violation{h, *it});
                break;
            }
        }
    }
    return out;
}

} // namespace cascade::soak
