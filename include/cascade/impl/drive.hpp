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

template <class Policies, class... Tiers>
typename BasicChain<Policies, Tiers...>::result_type BasicChain<Policies, Tiers...>::answer(Completion c, std::size_t tier, int key,
                                                                                           std::chrono::microseconds latency,
                                                                                           Clock::time_point start,
                                                                                           std::vector<Attempt>& own_trail, Context* outer,
                                                                                           bool hedged) {
    if (c.label.empty()) c.label = label(tier, key);
    AttemptEvent e;
    e.tier = tier;
    e.tier_name = names_[tier];
    e.label = label(tier, key);
    e.key = key;
    e.hedged = hedged;
    e.latency = latency;
    e.usage = c.usage;
    e.cost_usd = c.cost_usd;
    shared_->observe.on_attempt(e);
    c.latency = since(start);
    if (!outer) c.trail = std::move(own_trail);
    return result_type(std::move(c));
}

template <class Policies, class... Tiers>
typename BasicChain<Policies, Tiers...>::result_type BasicChain<Policies, Tiers...>::failure(Fault f, std::vector<Attempt>& own_trail,
                                                                                            Context* outer) const {
    if constexpr (infallible) {
        (void)f, (void)own_trail, (void)outer;
        throw std::logic_error("cascade: an infallible chain ended without its last tier");  // unreachable
    } else {
        Failure failure;
        failure.code = make_error_code(f);
        if (!outer) failure.trail = std::move(own_trail);
        return Result(boost::system::in_place_error, std::move(failure));
    }
}

// The infallible last tier's answer. After a cancellation Asio throws at every co_await, this one's
// included: the caller switches that off around it, since the last tier must still answer.
template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::terminal(Request const& req, Context& ctx, Clock::time_point start, std::vector<Attempt>& own_trail,
                                         Context* outer) {
    if constexpr (infallible) {
        auto const t0 = clock_.now();
        Context tctx = ctx;
        tctx.key = no_key;
        Completion c;
        auto& last = std::get<tier_count - 1>(tiers_);
        if constexpr (std::is_same_v<decltype(last.attempt(req, tctx)), Completion>) {
            c = last.attempt(req, tctx);
        } else {
            try {
                c = co_await last.attempt(req, tctx);
            } catch (...) {
                c = Completion{};
                c.text = std::string(BasicTemplate<std::string (*)(Request const&)>::safe_text);
                c.origin = Origin::fallback;
            }
        }
        co_return answer(std::move(c), tier_count - 1, no_key, since(t0), start, own_trail, outer);
    } else {
        (void)req, (void)ctx, (void)start, (void)own_trail, (void)outer;
        throw std::logic_error("cascade: a fallible chain has no last tier to answer");  // unreachable
    }
}

// --- The driver: one attempt at a time -------------------------------------------------------------

template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::drive(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer) {
    // Asio recycles coroutine frames of up to about 1 KiB; a larger one costs a malloc per request. So
    // this frame holds only what lives across a suspension; the decisions are the pipeline's.
    using engine::Access;
    using engine::Step;
    Context ctx;
    std::vector<Attempt> own_trail;
    ctx.trail = outer ? outer->trail : &own_trail;
    ctx.deadline = outer ? outer->deadline : clock_.to_steady(deadline);
    Pipeline pipe(shared_->book, retry_, hedge_, deadline,
                  static_cast<std::uint32_t>(std::min<std::size_t>(req.estimated_tokens(), std::numeric_limits<std::uint32_t>::max())));
    Clock::time_point now = start;
    engine::Action a = pipe.start(now, Access::shared);
    if (a.step == Step::lock) {
        std::lock_guard lock(shared_->mutex);
        a = pipe.start(now);
    }
    Outcome out;
    std::chrono::microseconds latency{0};
    for (;;) {
        switch (a.step) {
        case Step::attempt: {
            ctx.key = a.key;
            auto const t0 = now;
            try {
                out = co_await dispatch(a.tier, req, ctx);
            } catch (...) {
                out = Outcome(boost::system::in_place_error, observation_from_exception());
            }
            now = clock_.now();
            latency = std::chrono::duration_cast<std::chrono::microseconds>(now - t0);
            if (out) {
                auto const acc = accept_.accept(*out, req);
                if (acc) {
                    auto const slot = a.slot;
                    a = pipe.accepted(slot, now, out->usage.total(), latency, Access::shared);
                    if (a.step == Step::lock) {
                        std::lock_guard lock(shared_->mutex);
                        a = pipe.accepted(slot, now, out->usage.total(), latency);
                    }
                    break;
                }
                Ending end;
                end.tier = a.tier;
                end.key = a.key;
                end.fault = make_error_code(acc.fault);
                end.latency = latency;
                end.usage = out->usage;
                end.cost = out->cost_usd;
                end.detail = std::string(acc.reason);
                record(ctx, end);
                std::lock_guard lock(shared_->mutex);
                a = pipe.refused(a.slot, now, acc.fault);
                break;
            }
            Verdict v = judge(a.tier, out.error());
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            if (cs.cancelled() != boost::asio::cancellation_type::none) v.fault = Fault::cancelled;
            // Cut by the budget (the chain's timer cancels; a tier that honours the deadline times out at it).
            if ((v.fault == Fault::cancelled || v.fault == Fault::timeout) && deadline != Clock::time_point::max() &&
                clock_.precise_now() >= deadline)
                v.fault = Fault::deadline_exceeded;
            Ending end;
            end.tier = a.tier;
            end.key = a.key;
            end.fault = make_error_code(v.fault);
            end.http_status = v.http_status;
            end.latency = latency;
            end.detail = std::move(v.detail);
            record(ctx, end);
            std::lock_guard lock(shared_->mutex);
            a = pipe.failed(a.slot, v, now, detail::jitter_unit());
            break;
        }
        case Step::answer:
            co_return answer(std::move(*out), a.tier, a.key, latency, start, own_trail, outer);
        case Step::skip: {
            Ending end;
            end.tier = a.tier;
            end.fault = make_error_code(a.fault);
            end.skipped = true;
            end.detail = a.fault == Fault::circuit_open
                             ? (a.open_for.count() > 0 ? "circuit open for " + std::to_string(a.open_for.count()) + " ms"
                                                       : std::string("circuit half-open, probe in flight"))
                         : a.fault == Fault::unconfigured ? std::string("no key configured")
                                                          : std::string("every key is cooling down, disabled or over budget");
            record(ctx, end);
            std::lock_guard lock(shared_->mutex);
            a = pipe.next(now);
            break;
        }
        case Step::pull: {
            co_await pull_shared(a.tier);
            now = clock_.now();
            std::lock_guard lock(shared_->mutex);
            a = pipe.next(now);
            break;
        }
        case Step::publish: {
            co_await publish(a);
            now = clock_.now();
            std::lock_guard lock(shared_->mutex);
            a = pipe.next(now);
            break;
        }
        case Step::notice: {
            auto minutes = std::chrono::duration_cast<std::chrono::minutes>(a.until - now).count();
            say("tier '" + names_[a.tier] + "' says its model is retired or unknown (" + std::string(to_string(a.fault)) +
                "): its circuit stays open for " + std::to_string(minutes) + " min; requests skip it until then");
            std::lock_guard lock(shared_->mutex);
            a = pipe.next(now);
            break;
        }
        case Step::wait: {
            boost::system::error_code ec;
            try {
                ec = co_await clock_.wait_until(a.until);
            } catch (boost::system::system_error const& e) {
                ec = e.code();
            }
            now = ec ? clock_.precise_now() : clock_.now();
            std::lock_guard lock(shared_->mutex);
            a = ec ? pipe.cancelled(now) : pipe.waited(now);
            break;
        }
        case Step::terminal: {
            // The last tier answers even after a cancellation (the setting is the caller's: restored after).
            bool const rethrow = co_await boost::asio::this_coro::throw_if_cancelled();
            co_await boost::asio::this_coro::throw_if_cancelled(false);
            auto r = co_await terminal(req, ctx, start, own_trail, outer);
            co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
            co_return r;
        }
        case Step::fail:
            co_return failure(a.fault, own_trail, outer);
        case Step::cancel:
        case Step::idle:
        case Step::lock:
            throw std::logic_error("cascade: the pipeline asked a one-attempt driver for a hedged step");  // unreachable
        }
    }
}

} // namespace cascade
