#pragma once
/// @file
/// @brief Everything cascade offers, in one include.

#include <cascade/cache/key.hpp>
#include <cascade/cache/memory.hpp>
#include <cascade/chain.hpp>
#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/cache.hpp>
#include <cascade/policy/circuit.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/policy/observe.hpp>
#include <cascade/policy/policies.hpp>
#include <cascade/policy/retry.hpp>
#include <cascade/provider/template.hpp>
