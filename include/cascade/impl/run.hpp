#pragma once
// BasicChain's entry points (chain.hpp): `complete`, `async_complete`, the chain as a tier, the deadline's
// guard where a tier needs one, and the cache with single flight in front of the pipeline.

#include <cascade/chain.hpp>  // the face: this file holds its definitions

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <string>

namespace cascade {

template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type> BasicChain<Policies, Tiers...>::complete(Request const& req) {
    if constexpr (caching)
        return complete_cached(req);
    else
        return run(req, clock_.now());
}

template <class Policies, class... Tiers>
template <class Token>
auto BasicChain<Policies, Tiers...>::async_complete(Request req, Token&& token) {
    return boost::asio::async_initiate<Token, void(result_type)>(
        [this](auto handler, Request r) {
            auto slot = boost::asio::get_associated_cancellation_slot(handler);
            auto hex = boost::asio::get_associated_executor(handler, ex_);
            auto op = owned(std::move(r));
            auto done = [h = std::move(handler)](std::exception_ptr e, result_type res) mutable {
                if (e) std::rethrow_exception(e);
                std::move(h)(std::move(res));
            };
            boost::asio::co_spawn(ex_, std::move(op),
                                  boost::asio::bind_cancellation_slot(slot, boost::asio::bind_executor(hex, std::move(done))));
        },
        token, std::move(req));
}

template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type> BasicChain<Policies, Tiers...>::owned(Request req) {
    co_return co_await complete(req);
}

template <class Policies, class... Tiers>
std::conditional_t<BasicChain<Policies, Tiers...>::infallible, boost::asio::awaitable<Completion>, boost::asio::awaitable<Outcome>>
BasicChain<Policies, Tiers...>::attempt(Request const& req, Context& outer) {
    if constexpr (infallible) {
        auto deadline = clock_.from_steady(outer.deadline);
        if (needs_guard && deadline != Clock::time_point::max()) return guarded(req, clock_.now(), deadline, &outer);
        if constexpr (hedge_type::enabled)
            return drive_hedged(req, clock_.now(), deadline, &outer);
        else
            return drive(req, clock_.now(), deadline, &outer);
    } else {
        return as_outcome(req, outer);
    }
}

template <class Policies, class... Tiers>
boost::asio::awaitable<Outcome> BasicChain<Policies, Tiers...>::as_outcome(Request const& req, Context& outer) {
    auto deadline = clock_.from_steady(outer.deadline);
    Result r;
    if (needs_guard && deadline != Clock::time_point::max())
        r = co_await guarded(req, clock_.now(), deadline, &outer);
    else if constexpr (hedge_type::enabled)
        r = co_await drive_hedged(req, clock_.now(), deadline, &outer);
    else
        r = co_await drive(req, clock_.now(), deadline, &outer);
    if (r) co_return Outcome(std::move(*r));
    // The inner chain keeps its own circuits and cooldowns: for the outer one this is one failed attempt.
    co_return failed_without_response(r.error().code, "every tier of " + cfg_.name + " failed");
}

// The pipeline, with a timer of the chain's own only where a tier would not end by the deadline itself.
// Not a coroutine.
template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type> BasicChain<Policies, Tiers...>::run(Request const& req,
                                                                                                                 Clock::time_point start) {
    auto deadline = deadline_for(req);
    if (needs_guard && deadline != Clock::time_point::max()) return guarded(req, start, deadline, nullptr);
    if constexpr (hedge_type::enabled)
        return drive_hedged(req, start, deadline, nullptr);
    else
        return drive(req, start, deadline, nullptr);
}

// The pipeline raced against a timer that cancels the attempt in flight when the budget is spent.
template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::guarded(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer) {
    using namespace boost::asio::experimental::awaitable_operators;
    std::optional<result_type> slot;
    auto inner = fill(req, start, deadline, outer, slot);
    auto wait = clock_.wait_until(deadline);
    co_await (std::move(inner) || std::move(wait));
    if (!slot) {
        if constexpr (infallible) {
            Completion c;
            c.text = std::string(BasicTemplate<std::string (*)(Request const&)>::safe_text);
            c.label = label(tier_count - 1, no_key);
            c.origin = Origin::fallback;
            slot.emplace(std::move(c));
        } else {
            Failure f;
            f.code = make_error_code(Fault::deadline_exceeded);
            // The driver's own trail went with it; a nested chain's attempts are in the outer one.
            if (outer && outer->trail && !outer->trail->empty()) f.http_status = outer->trail->back().http_status;
            slot.emplace(boost::system::in_place_error, std::move(f));
        }
    }
    co_return std::move(*slot);
}

template <class Policies, class... Tiers>
boost::asio::awaitable<void> BasicChain<Policies, Tiers...>::fill(Request const& req, Clock::time_point start, Clock::time_point deadline,
                                                                  Context* outer, std::optional<result_type>& slot) {
    if constexpr (hedge_type::enabled)
        slot.emplace(co_await drive_hedged(req, start, deadline, outer));
    else
        slot.emplace(co_await drive(req, start, deadline, outer));
}

// The cache, then single flight, then the pipeline. Only answers of fallible tiers are stored.
template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::complete_cached(Request const& req) {
    auto const start = clock_.now();
    std::string key = cache_key(req);
    std::optional<Completion> hit;
    auto& cache = shared_->cache;
    if constexpr (std::is_same_v<decltype(cache.get(key)), std::optional<Completion>>)
        hit = cache.get(key);
    else
        hit = co_await cache.get(key);
    if (hit) {
        hit->cached_label = std::move(hit->label);
        hit->label = "cache";
        hit->origin = Origin::cache;
        hit->trail.clear();
        hit->latency = since(start);
        record_special(tier_count, "cache", hit->latency);
        co_return result_type(std::move(*hit));
    }

    std::shared_ptr<detail::Flight<result_type>> flight;
    bool leader = true;
    if (cfg_.coalesce) {
        std::lock_guard lock(shared_->flights_mutex);
        auto [it, inserted] = shared_->flights.try_emplace(key);
        if (inserted) it->second = std::make_shared<detail::Flight<result_type>>();
        flight = it->second;
        leader = inserted;
    }
    if (!leader) {
        co_await flight->async_wait(ex_, boost::asio::use_awaitable);
        if (!flight->leader_cancelled()) {
            result_type r = flight->result();
            Completion* c = nullptr;
            if constexpr (infallible)
                c = &r;
            else if (r)
                c = &*r;
            if (c) {
                c->origin = c->origin == Origin::fallback ? Origin::fallback : Origin::shared;
                c->trail.clear();
                c->latency = since(start);
                record_special(tier_count + 1, "shared", c->latency);
            }
            co_return r;
        }
        // The leader was cancelled by its own caller: this request still wants an answer.
    }

    result_type r = co_await run(req, start);
    Completion const* answer = nullptr;
    if constexpr (infallible)
        answer = &r;
    else if (r)
        answer = &*r;
    if (answer && answer->origin == Origin::tier) {
        if constexpr (std::is_same_v<decltype(cache.put(key, *answer)), void>)
            cache.put(key, *answer);
        else
            co_await cache.put(key, *answer);
    }
    if (leader && flight) {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        {
            std::lock_guard lock(shared_->flights_mutex);
            shared_->flights.erase(key);
        }
        flight->finish(r, cs.cancelled() != boost::asio::cancellation_type::none);
    }
    co_return r;
}

} // namespace cascade
