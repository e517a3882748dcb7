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
    std::array<std::uint16_t, slots> tiers{};
    std::array<int, slots> keys{};
    std::array<bool, slots> hedged{};
    // The hedge timer armed last (touched on the strand only); an older one is cancelled when a new one is.
    std::shared_ptr<boost::asio::cancellation_signal> timer;
    std::size_t generation = 0;
    Clock::time_point armed = Clock::time_point::max();
    int running = 0;
    std::atomic<bool> caller_cancelled{false};

    // Every cancellation signal is bound and emitted on the strand the attempts run on: the caller's
    // cancellation may arrive on any thread, while the driver spawns the next attempt on another.
    void spawn(std::size_t s, boost::asio::awaitable<void> op) {
        boost::asio::post(strand, [this, s, op = std::move(op)]() mutable {
            auto done = [this, s](std::exception_ptr) { events.try_send(boost::system::error_code{}, s); };
            boost::asio::co_spawn(strand, std::move(op), boost::asio::bind_cancellation_slot(cancels[s].slot(), std::move(done)));
        });
    }
    void spawn_timer(std::size_t id, boost::asio::awaitable<boost::system::error_code> wait) {
        boost::asio::post(strand, [this, id, wait = std::move(wait)]() mutable {
            if (timer) timer->emit(boost::asio::cancellation_type::terminal);
            timer = std::make_shared<boost::asio::cancellation_signal>();
            // The handler keeps its signal alive: a newer timer replaces `timer` before this one ends.
            auto fired = [this, id, keep = timer](std::exception_ptr, boost::system::error_code ec) { events.try_send(ec, id); };
            boost::asio::co_spawn(strand, std::move(wait), boost::asio::bind_cancellation_slot(timer->slot(), std::move(fired)));
        });
    }
    void cancel_slot(std::size_t s) {
        boost::asio::post(strand, [this, s] { cancels[s].emit(boost::asio::cancellation_type::terminal); });
    }
    // Its event is the last: the strand runs it after everything queued before it.
    void barrier() {
        boost::asio::post(strand, [this] { events.try_send(boost::system::error_code{}, std::size_t(-1)); });
    }
    // A signal with nothing bound to it, or whose operation has ended, ignores the emit.
    void cancel_everything() {
        boost::asio::post(strand, [this] {
            for (auto& c : cancels) c.emit(boost::asio::cancellation_type::terminal);
            if (timer) timer->emit(boost::asio::cancellation_type::terminal);
        });
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
    Pipeline pipe(shared_->book, retry_, hedge_, deadline, tokens_of(req), detail::jitter_unit());
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
                if constexpr (requires { clock_.utc_now(); }) race.contexts[s].utc = clock_.utc_now();
                race.contexts[s].trail = &race.trails[s];
                race.trails[s].clear();
                race.started[s] = now;
                race.tiers[s] = a.tier;
                race.keys[s] = a.key;
                race.hedged[s] = a.hedge;
                auto op = [](BasicChain* self, Race* r, std::size_t s, std::size_t tier, Request const* rq) -> boost::asio::awaitable<void> {
                    Outcome o;
                    try {
                        o = co_await self->dispatch(tier, *rq, r->contexts[s]);
                    } catch (...) {
                        o = Outcome(boost::system::in_place_error, observation_from_exception());
                    }
                    r->outcomes[s] = std::move(o);
                }(this, &race, s, a.tier, &req);
                race.spawn(s, std::move(op));
                ++race.running;
                await_event = true;
                break;
            }
            case Step::idle:
                await_event = true;
                break;
            case Step::cancel:
                race.cancel_slot(a.slot);
                a = next_locked(pipe, now);
                break;
            case Step::answer:
                finish(*race.outcomes[a.slot], a.tier, a.key, start, now, own_trail, outer, race.hedged[a.slot]);
                result.emplace(std::move(*race.outcomes[a.slot]));
                break;
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
            case Step::terminal:
                now = clock_.now();
                race.outcomes[0] = co_await terminal(req, ctx);
                race.outcomes[0]->latency = since(now);
                finish(*race.outcomes[0], tier_count - 1, no_key, start, now + race.outcomes[0]->latency, own_trail, outer);
                result.emplace(std::move(*race.outcomes[0]));
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
                race.armed = a.until;
                race.spawn_timer(Race::slots + ++race.generation, clock_.wait_until(a.until));
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
            for (auto& t : race.trails[s]) ctx.trail->push_back(std::move(t));
            race.trails[s].clear();
            now = race.started[s];  // the attempt's latency is measured from its start
            a = attempt_ended(pipe, ctx, Ended{s, race.tiers[s], race.keys[s], race.hedged[s]}, race.outcomes[s], req, now,
                              race.caller_cancelled, deadline);
        }
    } catch (...) {
        error = std::current_exception();
    }
    // Nothing the request started outlives it: every attempt and timer reports its end, then a last event
    // posted to the strand runs after every handler and emit queued there, all of which use `race`.
    if (caller.is_connected()) caller.clear();
    if (race.running > 0) race.cancel_everything();
    race.barrier();
    ++race.running;
    while (race.running > 0) {
        auto [ec, id] = co_await race.events.async_receive(
            boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(), boost::asio::as_tuple(boost::asio::use_awaitable)));
        (void)ec, (void)id;
        --race.running;
    }
    co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
}

} // namespace cascade
