#pragma once
/// @file
/// @brief `PolicySet`: the compile-time bundle of policies a chain uses, checked against their concepts.

#include <cascade/engine/clock.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/cache.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/policy/hedge.hpp>
#include <cascade/policy/observe.hpp>
#include <cascade/policy/retry.hpp>
#include <cascade/policy/shared_state.hpp>

namespace cascade {

/// @brief The policies of a chain. Replace one with `with_classify`, `with_retry`, `with_accept`,
/// `with_observe`, `with_cache`, `with_state`, `with_hedge` or `with_clock`:
/// @code
/// using Strict = cascade::DefaultPolicies::with_accept<cascade::MinLength<400>>::with_retry<cascade::NoRetry>;
/// cascade::BasicChain<Strict, cascade::Groq<5>, cascade::Template> chain{ex};
/// @endcode
/// A type that does not model the policy's concept fails here, with a message naming the concept.
template <class Classify, class Retry, class Accept, class Observe, class Cache = NoCache, class State = LocalState,
          class Hedge = NoHedge, class ClockT = SteadyClock>
struct PolicySet {
    static_assert(ClassifyPolicy<Classify>,
                  "cascade: the classify policy does not model cascade::ClassifyPolicy "
                  "(needs `Verdict classify(Observation const&) const`)");
    static_assert(RetryPolicy<Retry>,
                  "cascade: the retry policy does not model cascade::RetryPolicy "
                  "(needs `std::optional<std::chrono::milliseconds> next_delay(RetryContext const&) const`)");
    static_assert(AcceptPolicy<Accept>,
                  "cascade: the accept policy does not model cascade::AcceptPolicy "
                  "(needs `Acceptance accept(Completion const&, Request const&) const`)");
    static_assert(ObservePolicy<Observe>,
                  "cascade: the observe policy does not model cascade::ObservePolicy "
                  "(needs `void on_attempt(AttemptEvent const&)`)");
    static_assert(CachePolicy<Cache>,
                  "cascade: the cache policy does not model cascade::CachePolicy "
                  "(needs `get(std::string const&)` returning std::optional<Completion> (or an awaitable of it) "
                  "and `put(std::string const&, Completion const&)`)");
    static_assert(std::same_as<State, LocalState> || SharedStatePolicy<State>,
                  "cascade: the state policy does not model cascade::SharedStatePolicy "
                  "(needs `generation`, `snapshot`, `push_key`, `push_circuit` and an awaitable `reserve`)");
    static_assert(HedgePolicy<Hedge>,
                  "cascade: the hedge policy does not model cascade::HedgePolicy "
                  "(needs `std::optional<std::chrono::milliseconds> delay(HedgeContext const&) const`, "
                  "`HedgeBudget budget() const` and `static constexpr bool enabled`)");
    static_assert(ClockPolicy<ClockT>,
                  "cascade: the clock policy does not model cascade::ClockPolicy "
                  "(needs `now`, `precise_now`, `slack`, `to_steady`, `from_steady` and awaitable `wait_until`)");

    using classify_type = Classify;
    using retry_type = Retry;
    using accept_type = Accept;
    using observe_type = Observe;
    using cache_type = Cache;
    using state_type = State;
    using hedge_type = Hedge;
    using clock_type = ClockT;

    template <class C>
    using with_classify = PolicySet<C, Retry, Accept, Observe, Cache, State, Hedge, ClockT>;
    template <class R>
    using with_retry = PolicySet<Classify, R, Accept, Observe, Cache, State, Hedge, ClockT>;
    template <class A>
    using with_accept = PolicySet<Classify, Retry, A, Observe, Cache, State, Hedge, ClockT>;
    template <class O>
    using with_observe = PolicySet<Classify, Retry, Accept, O, Cache, State, Hedge, ClockT>;
    template <class C>
    using with_cache = PolicySet<Classify, Retry, Accept, Observe, C, State, Hedge, ClockT>;
    template <class S>
    using with_state = PolicySet<Classify, Retry, Accept, Observe, Cache, S, Hedge, ClockT>;
    template <class H>
    using with_hedge = PolicySet<Classify, Retry, Accept, Observe, Cache, State, H, ClockT>;
    template <class K>
    using with_clock = PolicySet<Classify, Retry, Accept, Observe, Cache, State, Hedge, K>;
};

/// @brief Default classifier, exponential backoff for transient faults, non-empty answers, per-tier stats,
/// no cache, state kept in this process, no hedging, the monotonic clock.
using DefaultPolicies = PolicySet<DefaultClassify, Backoff, AcceptNonEmpty, Stats, NoCache, LocalState, NoHedge, SteadyClock>;

} // namespace cascade
