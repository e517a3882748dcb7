#pragma once
/// @file
/// @brief A uniform number in [0, 1) for spreading retries, from a per-thread generator. Not API.

#include <random>

namespace cascade::detail {

inline double jitter_unit() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

} // namespace cascade::detail
