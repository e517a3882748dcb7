#pragma once
// BasicChain's driver (chain.hpp): one attempt at a time, carrying out what engine::Pipeline decides; and
// the ends of a request (the answer, the failure, the infallible last tier). The hedged driver, for several
// attempts in flight, is in drive_hedged.hpp.

#include <cascade/chain.hpp>  // the face: this file holds its definitions
#include <cascade/detail/jitter.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace cascade {

// --- The ends of a request -------------------------------------------------------------------------

// The answer, finished in place (moving a Completion costs five strings): labelled, recorded with
// `c.latency`, the attempt's own, which then becomes the request's; given the trail.
template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::finish(Completion& c, std::size_t tier, int key, Clock::time_point start, Clock::time_point now,
                                            std::vector<Attempt>& own_trail, Context* outer, bool hedged) {
    if (c.label.empty()) c.label = label(tier, key);
    Ending end;
    end.tier = tier;
    end.key = key;
    end.latency = c.latency;
    end.usage = c.usage;
    end.cost = c.cost_usd;
    end.hedged = hedged;
    record(nullptr, end);  // the answer is not in its own trail
    c.latency = std::chrono::duration_cast<std::chrono::microseconds>(now - start);
    if (!outer) c.trail = std::move(own_trail);
}

template <class Policies, class... Tiers>
typename BasicChain<Policies, Tiers...>::result_type BasicChain<Policies, Tiers...>::failure(Fault f, std::vector<Attempt>& own_trail,
                                                                                            Context* outer) const {
    if constexpr (infallible) {
        // Only a stream that failed after its text reached the caller ends an infallible chain without its
        // last tier (Pipeline::failed_after_commit); the stream reports that itself. Nothing to answer here.
        (void)f, (void)own_trail, (void)outer;
        Completion c;
        c.origin = Origin::tier;
        return c;
    } else {
        Failure failure;
        failure.code = make_error_code(f);
        // A nested chain's attempts are in the outer trail: its last one is this chain's last attempt.
        auto const& trail = outer && outer->trail ? *outer->trail : own_trail;
        if (!trail.empty()) failure.http_status = trail.back().http_status;
        if (!outer) failure.trail = std::move(own_trail);
        return Result(boost::system::in_place_error, std::move(failure));
    }
}

// The infallible last tier's answer, as an Outcome for the driver to finish. After a cancellation Asio
// throws at every co_await, this one's included: the driver switches that off around it.
template <class Policies, class... Tiers>
boost::asio::awaitable<Outcome> BasicChain<Policies, Tiers...>::terminal(Request const& req, Context& ctx) {
    if constexpr (infallible) {
        Context tctx = ctx;
        tctx.key = no_key;
        auto& last = std::get<tier_count - 1>(tiers_);
        if constexpr (std::is_same_v<decltype(last.attempt(req, tctx)), Completion>) {
            co_return Outcome(last.attempt(req, tctx));
        } else {
            Completion c;
            try {
                c = co_await last.attempt(req, tctx);
            } catch (...) {
                c = Completion{};
                c.text = std::string(BasicTemplate<std::string (*)(Request const&)>::safe_text);
                c.origin = Origin::fallback;
            }
            co_return Outcome(std::move(c));
        }
    } else {
        (void)req, (void)ctx;
        throw std::logic_error("cascade: a fallible chain has no last tier to answer");  // unreachable
    }
}

// --- What the drivers do between suspensions ------------------------------------------------------
// Plain functions, not coroutines: their locals live on the stack, not in the driver's frame (Asio
// recycles frames of up to about 1 KiB; a larger one costs a malloc per request).

template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::first_action(Pipeline& pipe, Clock::time_point now) {
    auto a = pipe.start(now, engine::Access::shared);
    if (a.step != engine::Step::lock) return a;
    std::lock_guard lock(shared_->mutex);
    return pipe.start(now);
}

template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::next_locked(Pipeline& pipe, Clock::time_point now) {
    std::lock_guard lock(shared_->mutex);
    return pipe.next(now);
}

// An attempt ended: the accept policy judges an answer; a failure is classified (and refined by its tier);
// either is recorded once, and the pipeline told.
template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::attempt_ended(Pipeline& pipe, Context& ctx, Ended const& at, Outcome& out,
                                                             Request const& req, Clock::time_point& now, bool cancelled,
                                                             Clock::time_point deadline) {
    using engine::Step;
    auto const latency = std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - now);
    now += latency;
    auto ending = [&] {
        Ending end;
        end.tier = at.tier;
        end.key = at.key;
        end.latency = latency;
        end.hedged = at.hedged;
        return end;
    };
    if (out) {
        auto const acc = accept_.accept(*out, req);
        if (acc) {
            out->latency = latency;  // the attempt's, until `finish` makes it the request's
            auto a = pipe.accepted(at.slot, now, out->usage.total(), latency, engine::Access::shared);
            if (a.step == Step::lock) {
                std::lock_guard lock(shared_->mutex);
                a = pipe.accepted(at.slot, now, out->usage.total(), latency);
            }
            if (pipe.winner() != at.slot) {
                // Answered after another attempt won: paid for, not used.
                auto end = ending();
                end.fault = make_error_code(Fault::cancelled);
                end.usage = out->usage;
                end.cost = out->cost_usd;
                end.detail = "answered after another attempt won";
                record(ctx.trail, end);
            }
            return a;
        }
        auto end = ending();
        end.fault = make_error_code(acc.fault);
        end.usage = out->usage;
        end.cost = out->cost_usd;
        end.detail = std::string(acc.reason);
        record(ctx.trail, end);
        std::lock_guard lock(shared_->mutex);
        // A stream whose text already reached the caller cannot move on unseen: it ends there.
        if (ctx.sink && ctx.sink->committed()) return pipe.failed_after_commit(at.slot, engine::detail::verdict_of(acc.fault), now);
        return pipe.refused(at.slot, now, acc.fault);
    }
    Verdict v = judge(at.tier, out.error());
    if (cancelled) v.fault = Fault::cancelled;
    // Cut by the budget (the chain's timer cancels; a tier that honours the deadline times out at it).
    if ((v.fault == Fault::cancelled || v.fault == Fault::timeout) && deadline != Clock::time_point::max() && clock_.precise_now() >= deadline)
        v.fault = Fault::deadline_exceeded;
    auto end = ending();
    end.fault = make_error_code(v.fault);
    end.http_status = v.http_status;
    end.detail = std::move(v.detail);
    record(ctx.trail, end);
    std::lock_guard lock(shared_->mutex);
    if (ctx.sink && ctx.sink->committed()) return pipe.failed_after_commit(at.slot, v, now);
    return pipe.failed(at.slot, v, now, detail::jitter_unit());
}

// A skip is recorded, a notice said; then the pipeline goes on.
template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::noted(Pipeline& pipe, Context& ctx, engine::Action const& a, Clock::time_point now) {
    if (a.step == engine::Step::skip) {
        Ending end;
        end.tier = a.tier;
        end.fault = make_error_code(a.fault);
        end.skipped = true;
        end.detail = a.fault == Fault::circuit_open
                         ? (a.open_for.count() > 0 ? "circuit open for " + std::to_string(a.open_for.count()) + " ms"
                                                   : std::string("circuit half-open, probe in flight"))
                     : a.fault == Fault::unconfigured ? std::string("no key configured")
                                                      : std::string("every key is cooling down, disabled or over budget");
        record(ctx.trail, end);
    } else {
        auto minutes = std::chrono::duration_cast<std::chrono::minutes>(a.until - now).count();
        say("tier '" + names_[a.tier] + "' says its model is retired or unknown (" + std::string(to_string(a.fault)) +
            "): its circuit stays open for " + std::to_string(minutes) + " min; requests skip it until then");
    }
    return next_locked(pipe, now);
}

// A wait ended: in time, or cancelled (the pipeline then ends the request).
template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::after_wait(Pipeline& pipe, boost::system::error_code ec, Clock::time_point& now) {
    now = ec ? clock_.precise_now() : clock_.now();
    std::lock_guard lock(shared_->mutex);
    return ec ? pipe.cancelled(now) : pipe.waited(now);
}

// Waits on the chain's clock; a cancellation is an error code, not an exception.
template <class Policies, class... Tiers>
boost::asio::awaitable<boost::system::error_code> BasicChain<Policies, Tiers...>::sleep_until(Clock::time_point t) {
    try {
        co_return co_await clock_.wait_until(t);
    } catch (boost::system::system_error const& e) {
        co_return e.code();
    }
}

// A tier threw instead of returning: a failure like any other (a system_error keeps its code).
template <class Policies, class... Tiers>
engine::Action BasicChain<Policies, Tiers...>::tier_threw(Pipeline& pipe, Context& ctx, engine::Action const& a, Request const& req,
                                                          Clock::time_point& now, Clock::time_point deadline) {
    Outcome out(boost::system::in_place_error, observation_from_exception());
    return attempt_ended(pipe, ctx, Ended{a.slot, a.tier, a.key, false}, out, req, now, false, deadline);
}

// The awaitable of what `a` asks: tier `a.tier`'s attempt, or the last tier's answer. Not a coroutine.
template <class Policies, class... Tiers>
boost::asio::awaitable<Outcome> BasicChain<Policies, Tiers...>::next_outcome(engine::Action const& a, Request const& req, Context& ctx) {
    if (a.step == engine::Step::terminal) return terminal(req, ctx);
    return dispatch(a.tier, req, ctx);
}

// --- The driver: one attempt at a time -------------------------------------------------------------

template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::drive(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer) {
    using engine::Step;
    // Only what lives across a suspension is here; the rest is in the plain functions above. The frame is
    // about 990 bytes with g++ 12 -O2, 30 under Asio's recycling limit: bench_chain's allocs/req shows a
    // change that crosses it.
    Context ctx;
    std::vector<Attempt> own_trail;
    ctx.trail = outer ? outer->trail : &own_trail;
    ctx.deadline = outer ? outer->deadline : clock_.to_steady(deadline);
    ctx.sink = outer ? outer->sink : nullptr;
    Pipeline pipe(shared_->book, retry_, hedge_, deadline, tokens_of(req), detail::jitter_unit());
    Clock::time_point now = start;
    engine::Action a = first_action(pipe, now);
    boost::asio::cancellation_state cs;
    for (;;) {
        switch (a.step) {
        case Step::attempt:
        case Step::terminal: {
            // One co_await site for every tier's answer, its Outcome built in place: the frame stays small.
            bool const last = a.step == Step::terminal;
            bool rethrow = true;
            if (last) {
                // The last tier answers even after a cancellation (the setting is the caller's: restored after).
                rethrow = co_await boost::asio::this_coro::throw_if_cancelled();
                co_await boost::asio::this_coro::throw_if_cancelled(false);
                now = clock_.now();
            }
            ctx.key = a.key;
            if constexpr (requires { clock_.utc_now(); }) ctx.utc = clock_.utc_now();
            if (ctx.sink) ctx.sink->begin();
            bool came_back = false;
            try {
                Outcome out = co_await next_outcome(a, req, ctx);
                came_back = true;
                if (last) {
                    co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
                    out->latency = since(now);
                    finish(*out, tier_count - 1, no_key, start, now + out->latency, own_trail, outer);
                    co_return std::move(*out);
                }
                if (!out) cs = co_await boost::asio::this_coro::cancellation_state;  // a failure: was it the caller's doing?
                a = attempt_ended(pipe, ctx, Ended{a.slot, a.tier, a.key, false}, out, req, now,
                                  !out && cs.cancelled() != boost::asio::cancellation_type::none, deadline);
                // News before the answer (a probe's success closed the circuit): the answer lives in this scope.
                while (a.step == Step::publish) {
                    publish(a);
                    a = next_locked(pipe, now = clock_.now());
                }
                if (a.step == Step::answer) {
                    finish(*out, a.tier, a.key, start, now, own_trail, outer);
                    co_return std::move(*out);
                }
            } catch (...) {
                if (came_back) throw;  // not the tier's: the chain's own (bad_alloc at most)
                a = tier_threw(pipe, ctx, a, req, now, deadline);
            }
            break;
        }
        case Step::skip:
        case Step::notice:
            a = noted(pipe, ctx, a, now);
            break;
        case Step::pull:
            if (merge_shared(a.tier, tokens_of(req))) co_await reserve_shared(a.tier, tokens_of(req));
            a = next_locked(pipe, now = clock_.now());
            break;
        case Step::publish:
            publish(a);
            a = next_locked(pipe, now = clock_.now());
            break;
        case Step::wait:
            a = after_wait(pipe, co_await sleep_until(a.until), now);
            break;
        case Step::fail:
            co_return failure(a.fault, own_trail, outer);
        case Step::answer:
        case Step::cancel:
        case Step::idle:
        case Step::lock:
            throw std::logic_error("cascade: the pipeline asked the one-attempt driver for a step it does not take");  // unreachable
        }
    }
}

} // namespace cascade
