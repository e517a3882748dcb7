#pragma once
// The hedged driver of BasicChain (chain.hpp), used only with a hedge policy: several attempts of one
// request in flight, each spawned on a strand of the request's own with a cancellation signal of its own;
// their ends, and the hedge timer's, arrive on one channel. The driver never returns before every attempt
// and timer it started has ended, so nothing outlives the request.

#include <cascade/chain.hpp>  // the face: this file holds its definitions
#include <cascade/detail/jitter.hpp>

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cascade {

template <class Policies, class... Tiers>
struct BasicChain<Policies, Tiers...>::Race {
    static constexpr std::size_t slots = Pipeline::max_slots;
    // Ids on the channel: attempts are their slot; timers `slots + generation`.
    using Channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::size_t)>;

    explicit Race(executor_type ex) : strand(boost::asio::make_strand(ex)), events(ex, 64) {}

    boost::asio::strand<executor_type> strand;
    Channel events;
    std::array<Outcome, slots> outcomes;
    std::array<Context, slots> contexts;
    std::array<std::vector<Attempt>, slots> trails;
    std::array<boost::asio::cancellation_signal, slots> cancels;
    std::array<Clock::time_point, slots> started{};
    std::array<std::chrono::microseconds, slots> latencies{};
    std::array<std::uint16_t, slots> tiers{};
    std::array<int, slots> keys{};
    std::array<bool, slots> hedged{};
    std::array<bool, slots> busy{};
    // The hedge timer armed last; an older one is cancelled when a new one is armed.
    std::shared_ptr<boost::asio::cancellation_signal> timer;
    std::size_t generation = 0;
    Clock::time_point armed = Clock::time_point::max();
    int running = 0;
    std::atomic<bool> caller_cancelled{false};

    // Cancels what is in flight, on the strand its operations run on.
    void cancel_slot(std::size_t s) {
        boost::asio::post(strand, [this, s] { cancels[s].emit(boost::asio::cancellation_type::terminal); });
    }
    void cancel_everything() {
        boost::asio::post(strand, [this] {
            for (std::size_t s = 0; s < slots; ++s)
                if (busy[s]) cancels[s].emit(boost::asio::cancellation_type::terminal);
            if (timer) timer->emit(boost::asio::cancellation_type::terminal);
        });
    }
    void cancel_timer() {
        if (!timer) return;
        boost::asio::post(strand, [t = timer] { t->emit(boost::asio::cancellation_type::terminal); });
    }
};

template <class Policies, class... Tiers>
boost::asio::awaitable<typename BasicChain<Policies, Tiers...>::result_type>
BasicChain<Policies, Tiers...>::drive_hedged(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer) {
    using engine::Step;
    Race race(co_await boost::asio::this_coro::executor);
    Context ctx;
    std::vector<Attempt> own_trail;
    ctx.trail = outer ? outer->trail : &own_trail;
    ctx.deadline = outer ? outer->deadline : clock_.to_steady(deadline);
    Pipeline pipe(shared_->book, retry_, hedge_, deadline,
                  static_cast<std::uint32_t>(std::min<std::size_t>(req.estimated_tokens(), std::numeric_limits<std::uint32_t>::max())));
    // The caller's cancellation reaches every attempt in flight, and comes back as their ends: the awaits
    // of this coroutine must not throw it.
    bool const rethrow = co_await boost::asio::this_coro::throw_if_cancelled();
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto cs = co_await boost::asio::this_coro::cancellation_state;
    auto caller = cs.slot();
    auto forward = [&race](boost::asio::cancellation_type) {
        race.caller_cancelled = true;
        race.cancel_everything();
    };
    Clock::time_point now = start;
    engine::Action a = locked([&] { return pipe.start(now); });
    std::optional<std::size_t> winner;
    std::exception_ptr error;
    std::optional<result_type> result;
    try {
        while (!result) {
            bool await_event = false;
            switch (a.step) {
            case Step::attempt: {
                std::size_t const s = a.slot;
                race.contexts[s] = ctx;
                race.contexts[s].key = a.key;
                race.contexts[s].trail = &race.trails[s];
                race.trails[s].clear();
                race.started[s] = now;
                race.tiers[s] = a.tier;
                race.keys[s] = a.key;
                race.hedged[s] = a.hedge;
                race.busy[s] = true;
                auto op = [](BasicChain* self, Race* r, std::size_t s, std::size_t tier, Request const* rq) -> boost::asio::awaitable<void> {
                    Outcome o;
                    try {
                        o = co_await self->dispatch(tier, *rq, r->contexts[s]);
                    } catch (...) {
                        o = Outcome(boost::system::in_place_error, observation_from_exception());
                    }
                    r->outcomes[s] = std::move(o);
                }(this, &race, s, a.tier, &req);
                auto done = [&race, s](std::exception_ptr) { race.events.try_send(boost::system::error_code{}, s); };
                auto token = boost::asio::bind_cancellation_slot(race.cancels[s].slot(), std::move(done));
                boost::asio::co_spawn(race.strand, std::move(op), std::move(token));
                ++race.running;
                await_event = true;
                break;
            }
            case Step::idle:
                await_event = true;
                break;
            case Step::cancel:
                race.cancel_slot(a.slot);
                a = locked([&] { return pipe.next(now); });
                break;
            case Step::answer:
                winner = a.slot;
                result = answer(std::move(*race.outcomes[a.slot]), a.tier, a.key, race.latencies[a.slot], start, own_trail, outer,
                                race.hedged[a.slot]);
                break;
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
                a = locked([&] { return pipe.next(now); });
                break;
            }
            case Step::pull:
                co_await pull_shared(a.tier);
                now = clock_.now();
                a = locked([&] { return pipe.next(now); });
                break;
            case Step::publish:
                co_await publish(a);
                now = clock_.now();
                a = locked([&] { return pipe.next(now); });
                break;
            case Step::notice: {
                auto minutes = std::chrono::duration_cast<std::chrono::minutes>(a.until - now).count();
                say("tier '" + names_[a.tier] + "' says its model is retired or unknown (" + std::string(to_string(a.fault)) +
                    "): its circuit stays open for " + std::to_string(minutes) + " min; requests skip it until then");
                a = locked([&] { return pipe.next(now); });
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
                a = locked([&] { return ec ? pipe.cancelled(now) : pipe.waited(now); });
                break;
            }
            case Step::terminal:
                result.emplace(co_await terminal(req, ctx, start, own_trail, outer));
                break;
            case Step::fail:
                result.emplace(failure(a.fault, own_trail, outer));
                break;
            case Step::lock:
                throw std::logic_error("cascade: the pipeline asked for a lock that is held");  // unreachable
            }
            if (!await_event) continue;

            // A hedge is due at `a.until` (for an attempt or an idle step): a timer of its own, which sends
            // its id when it fires or is cancelled.
            if (a.until != race.armed && a.until != Clock::time_point::max()) {
                race.cancel_timer();
                race.armed = a.until;
                auto signal = std::make_shared<boost::asio::cancellation_signal>();
                race.timer = signal;
                std::size_t const id = Race::slots + ++race.generation;
                auto wait = clock_.wait_until(a.until);
                auto fired = [&race, id](std::exception_ptr, boost::system::error_code ec) { race.events.try_send(ec, id); };
                boost::asio::co_spawn(race.strand, std::move(wait), boost::asio::bind_cancellation_slot(signal->slot(), std::move(fired)));
                ++race.running;
            }
            if (caller.is_connected()) caller.assign(forward);
            auto [ec, id] = co_await race.events.async_receive(
                boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(), boost::asio::as_tuple(boost::asio::use_awaitable)));
            --race.running;
            now = clock_.now();
            if (id >= Race::slots) {
                if (ec || id != Race::slots + race.generation) continue;  // cancelled, or an older timer
                race.armed = Clock::time_point::max();
                a = locked([&] { return pipe.woke(now); });
                continue;
            }
            // Attempt `id` ended. What a nested chain wrote to its trail joins the request's.
            std::size_t const s = id;
            race.busy[s] = false;
            for (auto& t : race.trails[s]) ctx.trail->push_back(std::move(t));
            race.trails[s].clear();
            auto& out = race.outcomes[s];
            auto const latency = race.latencies[s] = std::chrono::duration_cast<std::chrono::microseconds>(now - race.started[s]);
            if (out) {
                auto const acc = accept_.accept(*out, req);
                if (acc) {
                    a = locked([&] { return pipe.accepted(s, now, out->usage.total(), latency); });
                    if (pipe.winner() != s) {
                        // Answered after another attempt won: paid for, not used.
                        Ending end;
                        end.tier = race.tiers[s];
                        end.key = race.keys[s];
                        end.fault = make_error_code(Fault::cancelled);
                        end.latency = latency;
                        end.usage = out->usage;
                        end.cost = out->cost_usd;
                        end.hedged = race.hedged[s];
                        end.detail = "answered after another attempt won";
                        record(ctx, end);
                    }
                    continue;
                }
                Ending end;
                end.tier = race.tiers[s];
                end.key = race.keys[s];
                end.fault = make_error_code(acc.fault);
                end.latency = latency;
                end.usage = out->usage;
                end.cost = out->cost_usd;
                end.hedged = race.hedged[s];
                end.detail = std::string(acc.reason);
                record(ctx, end);
                a = locked([&] { return pipe.refused(s, now, acc.fault); });
                continue;
            }
            Verdict v = judge(race.tiers[s], out.error());
            if (race.caller_cancelled) v.fault = Fault::cancelled;
            // Cut by the budget (the chain's timer cancels; a tier that honours the deadline times out at it).
            if ((v.fault == Fault::cancelled || v.fault == Fault::timeout) && deadline != Clock::time_point::max() &&
                clock_.precise_now() >= deadline)
                v.fault = Fault::deadline_exceeded;
            Ending end;
            end.tier = race.tiers[s];
            end.key = race.keys[s];
            end.fault = make_error_code(v.fault);
            end.http_status = v.http_status;
            end.latency = latency;
            end.hedged = race.hedged[s];
            end.detail = std::move(v.detail);
            record(ctx, end);
            a = locked([&] { return pipe.failed(s, v, now, detail::jitter_unit()); });
        }
    } catch (...) {
        error = std::current_exception();
    }
    // Nothing the request started outlives it.
    if (caller.is_connected()) caller.clear();
    if (race.running > 0) {
        race.cancel_everything();
        while (race.running > 0) {
            auto [ec, id] = co_await race.events.async_receive(
                boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(), boost::asio::as_tuple(boost::asio::use_awaitable)));
            (void)ec, (void)id;
            --race.running;
        }
    }
    co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
}

} // namespace cascade
