#pragma once
/// @file
/// @brief Everything cascade offers, in one include: the chain and its engine, its policies, the
/// providers, the in-memory cache, security helpers.
///
/// Two backends stay out, because they need libraries a program may not link: `cascade/cache/sqlite.hpp`
/// (SQLite) and `cascade/cache/redis.hpp`, `cascade/state/redis_state.hpp` (hiredis). Include them
/// where you use them.

#include <cascade/cache/key.hpp>
#include <cascade/cache/memory.hpp>
#include <cascade/chain.hpp>
#include <cascade/core/completion.hpp>
#include <cascade/core/config_error.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/engine/config.hpp>
#include <cascade/engine/pipeline.hpp>
#include <cascade/engine/tier_state.hpp>
#include <cascade/net/http_client.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/cache.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/policy/hedge.hpp>
#include <cascade/policy/observe.hpp>
#include <cascade/policy/policies.hpp>
#include <cascade/policy/retry.hpp>
#include <cascade/policy/shared_state.hpp>
#include <cascade/provider/anthropic.hpp>
#include <cascade/provider/keys.hpp>
#include <cascade/provider/openai_compatible.hpp>
#include <cascade/provider/openai_family.hpp>
#include <cascade/provider/template.hpp>
#include <cascade/provider/vertex.hpp>
#include <cascade/server/openai_sse.hpp>
#include <cascade/server/prometheus.hpp>
#include <cascade/security/hmac.hpp>
#include <cascade/security/html.hpp>
#include <cascade/security/redact.hpp>
#include <cascade/stream.hpp>
