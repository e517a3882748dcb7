#pragma once
/// @file
/// @brief Moved: `RedisState` is in `cascade/state/redis_state.hpp` (shared state is not a cache). This
/// header stays so that existing includes keep working.

#include <cascade/state/redis_state.hpp>
