#pragma once
/// @file
/// @brief `BasicChain<Policies, Tiers...>` / `Chain<Tiers...>`: the compile-time fallback pipeline.

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/detail/flight.hpp>
#include <cascade/policy/circuit.hpp>
#include <cascade/cache/key.hpp>
#include <cascade/policy/policies.hpp>
#include <cascade/provider/template.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <ctime>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <type_traits>
#include <utility>
#include <vector>

namespace cascade {

/// @brief Run-time settings of a chain. Every member has a working default.
struct ChainConfig {
    /// Name of the chain when it is a tier of another chain (`vertex-pro`), and in its stats.
    std::string name = "chain";
    /// One time budget for the whole chain, from the call of `complete` to its answer; zero means none.
    /// A request's own `deadline` overrides it.
    std::chrono::milliseconds deadline{0};
    /// Circuit breaking and default cooldowns of every tier.
    CircuitConfig circuit;
    /// In which order each tier's keys are tried.
    KeyOrder key_order = KeyOrder::sequential;
    /// With a cache policy: identical requests in flight at the same time share one upstream call.
    bool coalesce = true;
};

namespace detail {
template <class T>
inline constexpr bool is_infallible_v = InfallibleTier<T>;

inline double jitter_unit() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// The chain's clock for latencies, deadlines and cooldowns. On Linux the coarse monotonic clock (the
// kernel tick, at most 4 ms) costs a few nanoseconds where a precise read costs about twenty, twice per
// request; LLM latencies are hundreds of milliseconds. It shares steady_clock's epoch (CLOCK_MONOTONIC).
inline Clock::time_point now() noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
    timespec ts;
    if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                             std::chrono::nanoseconds(ts.tv_nsec)));
#endif
    return Clock::now();
}

inline std::string excerpt(std::string_view s, std::size_t n = 160) {
    return std::string(s.substr(0, n));
}

} // namespace detail

/// @brief A fallback pipeline over `Tiers...`, tried in order inside one coroutine, with the policies of
/// `Policies` (a `PolicySet`).
///
/// - The result type is `Completion` when the last tier is infallible (a `Template`), `Result` otherwise.
/// - A tier that fails hands over to the next; a key-scoped failure moves to the tier's next key; a
///   provider-scoped failure opens the tier's circuit; a tier with an open circuit or no usable key is
///   skipped without an attempt.
/// - A chain is itself a tier: chains nest.
/// - Thread safety: one chain may be used by any number of coroutines on any number of threads at once.
///   Configure it before first use.
template <class Policies, class... Tiers>
class BasicChain {
    static_assert(sizeof...(Tiers) > 0, "cascade: a chain needs at least one tier");
    static_assert((Tier<Tiers> && ...),
                  "cascade: every tier must model cascade::Tier (cascade::FallibleTier: "
                  "`awaitable<Outcome> attempt(Request const&, Context&)` and `name()`, or cascade::InfallibleTier)");

    static constexpr std::size_t tier_count = sizeof...(Tiers);
    using last_tier = std::tuple_element_t<tier_count - 1, std::tuple<Tiers...>>;

public:
    /// True when the last tier cannot fail: `complete` then returns `Completion`.
    static constexpr bool infallible = detail::is_infallible_v<last_tier>;
    static constexpr std::size_t fallible_count = infallible ? tier_count - 1 : tier_count;

private:
    // The last tier answers without suspending (a Template), rather than being a nested chain.
    static constexpr bool terminal_is_sync =
        std::is_same_v<decltype(std::declval<last_tier&>().attempt(std::declval<Request const&>(), std::declval<Context&>())), Completion>;

public:

private:
    template <std::size_t... I>
    static constexpr bool only_last_infallible(std::index_sequence<I...>) {
        return ((!detail::is_infallible_v<std::tuple_element_t<I, std::tuple<Tiers...>>>) && ...);
    }
    static_assert(only_last_infallible(std::make_index_sequence<tier_count - 1>{}),
                  "cascade: an infallible tier (a Template) can only be the last tier: nothing after it would run");

public:
    using policies_type = Policies;
    using classify_type = typename Policies::classify_type;
    using retry_type = typename Policies::retry_type;
    using accept_type = typename Policies::accept_type;
    using observe_type = typename Policies::observe_type;
    using cache_type = typename Policies::cache_type;
    using state_type = typename Policies::state_type;
    /// True when cooldowns, circuits and token use are shared with other instances.
    static constexpr bool sharing = shares_state<state_type>;
    /// True when the policies include a cache: answers are cached and identical requests coalesced.
    static constexpr bool caching = caches<cache_type>;
    using executor_type = boost::asio::any_io_executor;
    /// `Completion` for an infallible chain, `Result` (a `Completion` or a `Failure`) otherwise.
    using result_type = std::conditional_t<infallible, Completion, Result>;

    /// @brief A chain over default-constructed tiers.
    explicit BasicChain(executor_type ex, ChainConfig cfg = {})
        requires(std::default_initializable<Tiers> && ...)
        : BasicChain(std::move(ex), std::move(cfg), Tiers{}...) {}

    /// @brief A chain over the given tiers.
    explicit BasicChain(executor_type ex, Tiers... tiers)
        : BasicChain(std::move(ex), ChainConfig{}, std::move(tiers)...) {}

    /// @brief A chain over the given tiers with settings.
    BasicChain(executor_type ex, ChainConfig cfg, Tiers... tiers)
        : ex_(std::move(ex)), cfg_(std::move(cfg)), tiers_(std::move(tiers)...), shared_(std::make_unique<Shared>()) {
        init(std::make_index_sequence<tier_count>{});
    }

    BasicChain(BasicChain&&) noexcept = default;
    BasicChain& operator=(BasicChain&&) noexcept = default;

    /// @brief Asks the chain for an answer.
    ///
    /// `req` must outlive the returned awaitable (build it in a named local: g++ 12 destroys aggregate
    /// temporaries inside a `co_await` expression twice). Cancellation through the awaiting coroutine's
    /// cancellation slot reaches the attempt in flight; the chain then stops without trying further tiers
    /// and returns `Fault::cancelled`, or, when infallible, the last tier's answer with the cancelled
    /// attempt in its trail.
    boost::asio::awaitable<result_type> complete(Request const& req) {
        if constexpr (caching)
            return complete_cached(req);
        else
            return run(req, detail::now());
    }

    /// @brief Asks the chain for an answer with any Asio completion token.
    ///
    /// Handler signature: `void(result_type)`. The request is copied into the operation. The chain must
    /// outlive the operation. Per-operation cancellation: the token's cancellation slot, as `complete`.
    template <class Token = boost::asio::default_completion_token_t<executor_type>>
    auto async_complete(Request req, Token&& token = {}) {
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

    /// @brief The chain as a tier of another chain (see `FallibleTier` / `InfallibleTier`).
    auto attempt(Request const& req, Context& outer) {
        if constexpr (infallible) {
            return drive(req, detail::now(), outer.deadline, &outer);
        } else {
            return as_outcome(req, outer);
        }
    }

    std::string_view name() const noexcept { return cfg_.name; }
    executor_type get_executor() const noexcept { return ex_; }
    ChainConfig const& config() const noexcept { return cfg_; }

    /// @brief The tier at position `I`, e.g. to reconfigure it before first use.
    template <std::size_t I>
    auto& tier() noexcept { return std::get<I>(tiers_); }

    /// @brief The observer (with the default policies, the `Stats` per-tier table).
    observe_type& observer() noexcept { return shared_->observe; }
    /// @brief The cache (with `NoCache`, a no-op).
    cache_type& cache() noexcept { return shared_->cache; }
    /// @brief The shared-state policy (with `LocalState`, nothing).
    state_type& shared_state() noexcept { return shared_->state; }
    classify_type& classifier() noexcept { return classify_; }
    retry_type& retry_policy() noexcept { return retry_; }
    accept_type& accept_policy() noexcept { return accept_; }

    /// @brief Is tier `i`'s circuit open now?
    bool circuit_open(std::size_t i) const {
        if (i >= fallible_count) return false;
        std::lock_guard lock(shared_->mutex);
        return shared_->states[i].circuit_open(Clock::now());
    }

    /// @brief A copy of tier `i`'s key state (cooldowns, budgets).
    KeyState key_state(std::size_t i, std::size_t key) const {
        std::lock_guard lock(shared_->mutex);
        return shared_->states.at(i).key(key);
    }

private:
    struct Shared {
        std::mutex mutex;
        std::array<TierState, (fallible_count > 0 ? fallible_count : 1)> states;
        observe_type observe;
        std::atomic<std::size_t> rotation{0};
        cache_type cache;
        state_type state;
        std::mutex flights_mutex;
        std::unordered_map<std::string, std::shared_ptr<detail::Flight<result_type>>> flights;
    };

    template <std::size_t... I>
    void init(std::index_sequence<I...>) {
        ((names_[I] = std::string(std::get<I>(tiers_).name())), ...);
        (init_tier<I>(), ...);
    }

    template <std::size_t I>
    void init_tier() {
        auto const& t = std::get<I>(tiers_);
        std::size_t keys = detail::key_count_of(t);
        if constexpr (I < fallible_count) shared_->states[I].configure(keys, detail::key_limits_of(t), cfg_.circuit);
        for (std::size_t k = 0; k < keys && I < fallible_count; ++k) key_ids_[I].push_back(detail::key_id_of(t, static_cast<int>(k)));
        auto& labels = labels_[I];
        if (keys == 0 || I >= fallible_count) {
            labels.push_back(detail::label_of(t, no_key));
        } else {
            for (std::size_t k = 0; k < keys; ++k) labels.push_back(detail::label_of(t, static_cast<int>(k)));
        }
    }

    // The label of `key` on `tier`; with no key (a skip, or the terminal tier) the tier's own label: a
    // skip of a keyed tier involved none of its keys, so it reads `groq`, not `groq1`.
    std::string const& label(std::size_t tier, int key) const {
        auto const& l = labels_[tier];
        if (key >= 0 && static_cast<std::size_t>(key) < l.size()) return l[static_cast<std::size_t>(key)];
        return key_ids_[tier].empty() ? l.front() : names_[tier];
    }

    template <std::size_t I = 0>
        requires(fallible_count > 0)
    boost::asio::awaitable<Outcome> dispatch(std::size_t i, Request const& req, Context& ctx) {
        if constexpr (I + 1 < fallible_count) {
            if (i != I) return dispatch<I + 1>(i, req, ctx);
        }
        return std::get<I>(tiers_).attempt(req, ctx);
    }

    static Verdict verdict_of(Fault f, std::string detail = {}) {
        Verdict v;
        v.fault = f;
        v.detail = std::move(detail);
        return v;
    }

    // The end of the request's time budget, read from the precise clock: a budget must not end early.
    Clock::time_point deadline_for(Request const& req) const {
        auto budget = req.deadline.count() > 0 ? req.deadline : cfg_.deadline;
        if (budget.count() <= 0) return Clock::time_point::max();
        return Clock::now() + budget;
    }

    // What every event of tier `tier` says: the tier, its name, the label of `key`, the latency.
    AttemptEvent event_of(std::size_t tier, int key, std::chrono::microseconds latency) const {
        AttemptEvent e;
        e.tier = tier;
        e.tier_name = names_[tier];
        e.label = label(tier, key);
        e.key = key;
        e.latency = latency;
        return e;
    }

    // A failed attempt or a skip: to the observer and into the trail.
    void record(Context& ctx, std::size_t tier, int key, Verdict const& v, std::chrono::microseconds latency, bool skipped,
                Usage usage = {}, double cost = 0.0) {
        auto e = event_of(tier, key, latency);
        e.fault = make_error_code(v.fault);
        e.http_status = v.http_status;
        e.skipped = skipped;
        e.usage = usage;
        e.cost_usd = cost;
        shared_->observe.on_attempt(e);
        Attempt a;
        a.label = std::string(e.label);
        a.tier = tier;
        a.key = key;
        a.fault = e.fault;
        a.http_status = v.http_status;
        a.latency = latency;
        a.detail = v.detail;
        ctx.trail->push_back(std::move(a));
    }

    // An answer: to the observer only (the trail lists what came before it).
    void record_hit(std::size_t tier, int key, Completion const& c, std::chrono::microseconds latency) {
        auto e = event_of(tier, key, latency);
        e.usage = c.usage;
        e.cost_usd = c.cost_usd;
        shared_->observe.on_attempt(e);
    }

    static std::chrono::microseconds since(Clock::time_point t0) {
        return std::chrono::duration_cast<std::chrono::microseconds>(detail::now() - t0);
    }

    static Completion const* answer_of(result_type const& r) {
        if constexpr (infallible)
            return &r;
        else
            return r ? &*r : nullptr;
    }

    // Rows after the tiers in the stats: answers from the cache, answers shared with a request in flight.
    static constexpr std::size_t cache_row = tier_count, shared_row = tier_count + 1;

    void record_special(std::size_t row, std::string_view name, std::chrono::microseconds latency) {
        AttemptEvent e;
        e.tier = row;
        e.tier_name = name;
        e.label = name;
        e.latency = latency;
        shared_->observe.on_attempt(e);
    }

    // The cache, then single flight, then the pipeline. Only answers of fallible tiers are stored.
    boost::asio::awaitable<result_type> complete_cached(Request const& req) {
        auto const start = detail::now();
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
            record_special(cache_row, "cache", hit->latency);
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
                if (auto* c = const_cast<Completion*>(answer_of(r))) {
                    c->origin = c->origin == Origin::fallback ? Origin::fallback : Origin::shared;
                    c->trail.clear();
                    c->latency = since(start);
                    record_special(shared_row, "shared", c->latency);
                }
                co_return r;
            }
            // The leader was cancelled by its own caller: this request still wants an answer.
        }

        result_type r = co_await run(req, start);
        if (auto const* c = answer_of(r); c && c->origin == Origin::tier) {
            if constexpr (std::is_same_v<decltype(cache.put(key, *c)), void>)
                cache.put(key, *c);
            else
                co_await cache.put(key, *c);
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

    // The pipeline. One coroutine frame per request (plus the tier's own), so that Asio's frame recycling
    // serves it without a heap allocation. `arm` guards a finite deadline with a timer; `outer` is set when
    // this chain runs as a tier of another chain (its deadline and trail are then the outer ones).
    // The pipeline, with a timer guarding a finite deadline. Not a coroutine.
    boost::asio::awaitable<result_type> run(Request const& req, Clock::time_point start) {
        auto deadline = deadline_for(req);
        if (deadline != Clock::time_point::max()) return guarded(req, start, deadline);
        return drive(req, start, deadline, nullptr);
    }

    boost::asio::awaitable<result_type> drive(Request const& req, Clock::time_point start, Clock::time_point deadline,
                                              Context* outer) {
        // Asio recycles coroutine frames of up to about 1 KiB; a larger one costs a malloc per request (and
        // evicts the tier's recycled frame too). So this frame holds only what must live across a
        // suspension, the decisions live in the plain member functions below, and the answer, whichever
        // tier gives it, is built in one place (`out`): g++ gives every temporary in a coroutine a slot.
        Context ctx;
        std::vector<Attempt> own_trail;
        ctx.trail = outer ? outer->trail : &own_trail;
        ctx.deadline = deadline;
        ctx.classify_fn = &classify_thunk;
        ctx.classify_self = &classify_;

        // Set by the first failure; its detail stays empty here so the happy path allocates nothing.
        Verdict last;
        last.fault = Fault::unconfigured;
        bool stop = false;

        for (std::size_t i = 0; i < tier_count; ++i) {
            // After a cancellation or a spent budget only the infallible last tier still answers.
            if (stop && !(infallible && i + 1 == tier_count)) {
                if constexpr (!infallible) break;
                continue;
            }
            bool const terminal = infallible && i + 1 == tier_count;
            Visit visit;
            visit.now = start;
            for (;;) {
                KeyPick pick;
                if (!terminal) {
                    if (i > 0 || !visit.first_pick) visit.now = detail::now();
                    if constexpr (sharing) {
                        if (visit.first_pick && visit.now < ctx.deadline) co_await pull_shared(i);
                    }
                    pick = choose_key(i, req, visit, ctx, last, stop);
                    if (!pick.key) break;
                }
                int const key = terminal ? no_key : static_cast<int>(*pick.key);
                Recheck recheck = Recheck::same_key;

                for (int retries = 0;; ++retries) {
                    ctx.key = key;
                    auto t0 = retries == 0 ? visit.now : detail::now();
                    bool refused = false;
                    // After a cancellation Asio throws at every co_await; the infallible last tier must still
                    // be reached, so for it that is switched off (and back on: it belongs to the caller too).
                    bool rethrow = true;
                    if (terminal) {
                        rethrow = co_await boost::asio::this_coro::throw_if_cancelled();
                        co_await boost::asio::this_coro::throw_if_cancelled(false);
                    }
                    try {
                        Outcome out = co_await next_outcome(terminal, i, req, ctx, start, own_trail, outer);
                        if (terminal) co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
                        if (terminal) co_return std::move(*out);
                        if (out) {
                            if (take_answer(i, key, pick, visit.probe, *out, t0, start, req, ctx, last)) {
                                if constexpr (sharing) co_await push_tokens(i, pick, out->usage.total());
                                if (!outer) out->trail = std::move(own_trail);
                                if constexpr (infallible)
                                    co_return std::move(*out);
                                else
                                    co_return Result(std::move(*out));
                            }
                            refused = true;
                        } else {
                            last = out.error();
                        }
                    } catch (...) {
                        last = verdict_from_exception();
                    }
                    if (terminal) {
                        co_await boost::asio::this_coro::throw_if_cancelled(rethrow);
                        throw std::logic_error("cascade: the infallible last tier failed");  // bad_alloc at most
                    }
                    auto cs = co_await boost::asio::this_coro::cancellation_state;
                    bool const cancelled = !refused && cs.cancelled() != boost::asio::cancellation_type::none;
                    if constexpr (sharing)
                        co_await push_news(i, pick, after_failure(i, key, pick, visit.probe, refused, cancelled, since(t0), ctx, last));
                    else
                        after_failure(i, key, pick, visit.probe, refused, cancelled, since(t0), ctx, last);
                    visit.probe = false;
                    if (last.fault == Fault::cancelled || last.fault == Fault::deadline_exceeded) {
                        stop = true;
                        break;
                    }
                    auto delay = retry_delay(retries, ctx, last);
                    if (!delay) break;
                    if (!co_await backoff(*delay)) {
                        last = verdict_of(Clock::now() >= ctx.deadline ? Fault::deadline_exceeded : Fault::cancelled,
                                          "interrupted while backing off");
                        stop = true;
                        break;
                    }
                    // Other requests may have cooled the key or opened the circuit during the backoff.
                    recheck = recheck_after_backoff(i, pick);
                    if (recheck != Recheck::same_key) break;
                }
                // Only a key-scoped failure, or a key cooled meanwhile, makes the next key worth trying.
                if (stop || (last.scope != Scope::key && recheck != Recheck::next_key)) break;
            }
        }
        if constexpr (infallible)
            throw std::logic_error("cascade: an infallible chain ended without its last tier");  // unreachable
        else
            co_return failure_of(last, own_trail, outer);
    }

    // The awaitable of tier `i`'s attempt, or of the infallible last tier's answer. Not a coroutine: it
    // hands over the tier's own awaitable, adding no frame.
    boost::asio::awaitable<Outcome> next_outcome(bool terminal, std::size_t i, Request const& req, Context& ctx,
                                                 Clock::time_point start, std::vector<Attempt>& own_trail, Context* outer) {
        if constexpr (infallible) {
            if (terminal || fallible_count == 0) return answer_last(req, ctx, start, own_trail, outer);
        }
        if constexpr (fallible_count > 0) {
            return dispatch(i, req, ctx);
        } else {
            (void)terminal, (void)i, (void)req, (void)ctx, (void)start, (void)own_trail, (void)outer;
            return {};  // unreachable: a chain has a fallible tier or ends in an infallible one
        }
    }

    // The infallible last tier's answer, finished (label, stats, latency, trail).
    boost::asio::awaitable<Outcome> answer_last(Request const& req, Context const& ctx, Clock::time_point start,
                                                std::vector<Attempt>& own_trail, Context* outer)
        requires infallible
    {
        if constexpr (terminal_is_sync) {
            co_return Outcome(sync_answer_last(req, ctx, start, own_trail, outer));
        } else {
            auto t0 = detail::now();
            Context tctx = ctx;
            tctx.key = no_key;
            Completion c = co_await run_terminal(req, tctx);
            co_return Outcome(finish_terminal(std::move(c), t0, start, own_trail, outer));
        }
    }

    Completion sync_answer_last(Request const& req, Context const& ctx, Clock::time_point start,
                                std::vector<Attempt>& own_trail, Context* outer)
        requires infallible
    {
        auto t0 = detail::now();
        Context tctx = ctx;
        tctx.key = no_key;
        return finish_terminal(std::get<tier_count - 1>(tiers_).attempt(req, tctx), t0, start, own_trail, outer);
    }

    // Per-tier bookkeeping of one request.
    struct Visit {
        Clock::time_point now{};
        std::uint64_t tried = 0;
        bool probe = false;
        bool first_pick = true;
    };

    static Verdict classify_thunk(void const* self, Observation const& o) {
        return static_cast<classify_type const*>(self)->classify(o);
    }

    // The key to try next on tier `i`, or none (the tier is skipped or done; `last` says why).
    KeyPick choose_key(std::size_t i, Request const& req, Visit& visit, Context& ctx, Verdict& last, bool& stop) {
        KeyPick pick;
        auto& st = shared_->states[i];
        if (visit.now >= ctx.deadline) {
            last = verdict_of(Fault::deadline_exceeded, "time budget spent before this tier");
            stop = true;
            return pick;
        }
        Admission adm;
        if (visit.first_pick && st.quiet() && cfg_.key_order != KeyOrder::least_recently_limited) {
            // Nothing restricts the tier: take the key its order names without the lock.
            std::size_t n = st.key_count();
            pick.key = cfg_.key_order == KeyOrder::round_robin ? shared_->rotation.fetch_add(1, std::memory_order_relaxed) % n : 0;
        } else {
            std::lock_guard lock(shared_->mutex);
            if (visit.first_pick) adm = st.admit(visit.now);
            if (adm.allowed)
                pick = st.pick_key(visit.now, static_cast<std::uint32_t>(req.estimated_tokens()), visit.tried, cfg_.key_order,
                                   visit.first_pick && cfg_.key_order == KeyOrder::round_robin
                                       ? shared_->rotation.fetch_add(1, std::memory_order_relaxed)
                                       : 0);
            if (adm.allowed && !pick.key && adm.probe) st.on_failure(std::nullopt, verdict_of(Fault::cancelled), visit.now, true);
        }
        if (visit.first_pick) visit.probe = adm.probe;
        if (!adm.allowed) {
            last = verdict_of(Fault::circuit_open, adm.open_for.count() > 0
                                                       ? "circuit open for " + std::to_string(adm.open_for.count()) + " ms"
                                                       : std::string("circuit half-open, probe in flight"));
            record(ctx, i, no_key, last, {}, true);
            return pick;
        }
        if (!pick.key) {
            if (visit.first_pick) {
                last = verdict_of(pick.why, pick.why == Fault::unconfigured ? "no key configured"
                                                                              : "every key is cooling down, disabled or over budget");
                record(ctx, i, no_key, last, {}, true);
            }
            return pick;
        }
        visit.first_pick = false;
        if (*pick.key < 64) visit.tried |= std::uint64_t{1} << *pick.key;
        return pick;
    }

    // Judges an answer. Accepted: finishes it (label, stats, latency) and returns true. Refused: records
    // it with its cost (it was paid for) and sets `last`.
    bool take_answer(std::size_t i, int key, KeyPick const& pick, bool probe, Completion& got, Clock::time_point t0,
                     Clock::time_point start, Request const& req, Context& ctx, Verdict& last) {
        auto& st = shared_->states[i];
        auto t1 = detail::now();
        auto latency = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0);
        auto acc = accept_.accept(got, req);
        if (!acc) {
            last = verdict_of(acc.fault, std::string(acc.reason));
            record(ctx, i, key, last, latency, false, got.usage, got.cost_usd);
            return false;
        }
        if (probe || st.success_changes_state()) {
            std::lock_guard lock(shared_->mutex);
            st.on_success(pick.key, pick.reserved_tokens, got.usage.total(), probe);
        }
        if (got.label.empty()) got.label = label(i, key);
        record_hit(i, key, got, latency);
        got.latency = std::chrono::duration_cast<std::chrono::microseconds>(t1 - start);
        return true;
    }

    // A tier's exception as a verdict: operation_aborted is a cancellation, anything else a server error.
    static Verdict verdict_from_exception() {
        try {
            throw;
        } catch (boost::system::system_error const& e) {
            return verdict_of(e.code() == boost::asio::error::operation_aborted ? Fault::cancelled : Fault::server_error,
                              detail::excerpt(std::string("tier threw: ") + e.what()));
        } catch (std::exception const& e) {
            return verdict_of(Fault::server_error, detail::excerpt(std::string("tier threw: ") + e.what()));
        } catch (...) {
            return verdict_of(Fault::server_error, "tier threw a non-standard exception");
        }
    }

    // What a failure taught, for other instances.
    struct News {
        std::optional<std::pair<Clock::time_point, bool>> key;
        std::optional<Clock::time_point> circuit;
    };

    // Records a failed attempt and feeds its verdict to the tier's state.
    News after_failure(std::size_t i, int key, KeyPick const& pick, bool probe, bool refused, bool cancelled,
                       std::chrono::microseconds latency, Context& ctx, Verdict& last) {
        if (!refused) {
            if (cancelled) last.fault = Fault::cancelled;
            if (last.fault == Fault::cancelled && Clock::now() >= ctx.deadline) last.fault = Fault::deadline_exceeded;
            record(ctx, i, key, last, latency, false);
        }
        News news;
        auto& st = shared_->states[i];
        std::lock_guard lock(shared_->mutex);
        st.on_failure(pick.key, last, detail::now(), probe);
        if (sharing && last.scope == Scope::key) news.key.emplace(st.key(*pick.key).cool_until, st.key(*pick.key).disabled);
        if (sharing && last.scope == Scope::provider) news.circuit = st.open_until();
        return news;
    }

    // How long to wait before retrying the same key, if at all.
    std::optional<std::chrono::milliseconds> retry_delay(int retries, Context const& ctx, Verdict const& last) const {
        if (last.scope != Scope::attempt) return std::nullopt;
        RetryContext rc;
        rc.verdict = &last;
        rc.retries_done = retries;
        rc.remaining = ctx.remaining();
        rc.jitter = detail::jitter_unit();
        return retry_.next_delay(rc);
    }

    // Before retrying the key `pick` holds: is it still usable, and is the tier's circuit still closed?
    Recheck recheck_after_backoff(std::size_t i, KeyPick const& pick) {
        auto& st = shared_->states[i];
        if (st.quiet()) return Recheck::same_key;
        std::lock_guard lock(shared_->mutex);
        return st.recheck(*pick.key, detail::now());
    }

    // Waits `delay`; false when the wait was cancelled (the caller, or the deadline).
    boost::asio::awaitable<bool> backoff(std::chrono::milliseconds delay) {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return !ec;
    }

    // What other instances learned about tier `i`, merged before choosing a key.
    boost::asio::awaitable<void> pull_shared(std::size_t i) {
        auto known = co_await shared_->state.pull(names_[i], key_ids_[i]);
        if (!known) co_return;
        auto& st = shared_->states[i];
        std::lock_guard lock(shared_->mutex);
        if (known->circuit_until > std::chrono::system_clock::now()) st.merge_shared_circuit(to_steady(known->circuit_until));
        for (std::size_t k = 0; k < known->keys.size(); ++k)
            st.merge_shared_key(k, to_steady(known->keys[k].cool_until), known->keys[k].disabled, known->keys[k].tokens_used);
    }

    // Tells the other instances what a failure taught, so none of them pays a round trip to learn it.
    boost::asio::awaitable<void> push_news(std::size_t i, KeyPick const& pick, News news) {
        if (news.key) co_await shared_->state.push_key(names_[i], key_ids_[i][*pick.key], to_system(news.key->first), news.key->second);
        if (news.circuit) co_await shared_->state.push_circuit(names_[i], to_system(*news.circuit));
    }

    boost::asio::awaitable<void> push_tokens(std::size_t i, KeyPick const& pick, std::uint32_t tokens) {
        if (shared_->states[i].key_limits_tokens()) co_await shared_->state.push_tokens(names_[i], key_ids_[i][*pick.key], tokens);
    }

    Completion finish_terminal(Completion c, Clock::time_point t0, Clock::time_point start, std::vector<Attempt>& own_trail,
                               Context* outer) {
        if (c.label.empty()) c.label = label(tier_count - 1, no_key);
        record_hit(tier_count - 1, no_key, c, since(t0));
        c.latency = since(start);
        if (!outer) c.trail = std::move(own_trail);
        return c;
    }

    Result failure_of(Verdict const& last, std::vector<Attempt>& own_trail, Context* outer) {
        Failure f;
        f.code = make_error_code(last.fault);
        if (!outer) f.trail = std::move(own_trail);
        return Result(boost::system::in_place_error, std::move(f));
    }

    // An asynchronous infallible last tier (a nested infallible chain). After a cancellation Asio throws
    // at the co_await instead of running it: the answer is then the fixed safe text.
    boost::asio::awaitable<Completion> run_terminal(Request const& req, Context& ctx) {
        Completion c;
        try {
            c = co_await std::get<tier_count - 1>(tiers_).attempt(req, ctx);
        } catch (...) {
            c.text = std::string(BasicTemplate<std::string (*)(Request const&)>::safe_text);
            c.label = label(tier_count - 1, no_key);
        }
        co_return c;
    }

    // Runs the pipeline under a timer that cancels the attempt in flight when the budget is spent.
    boost::asio::awaitable<result_type> guarded(Request const& req, Clock::time_point start, Clock::time_point deadline) {
        using namespace boost::asio::experimental::awaitable_operators;
        std::optional<result_type> slot;
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
        auto inner = fill(req, start, deadline, slot);
        auto wait = timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
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
                slot.emplace(boost::system::in_place_error, std::move(f));
            }
        }
        co_return std::move(*slot);
    }

    boost::asio::awaitable<void> fill(Request const& req, Clock::time_point start, Clock::time_point deadline,
                                      std::optional<result_type>& slot) {
        slot.emplace(co_await drive(req, start, deadline, nullptr));
    }

    boost::asio::awaitable<result_type> owned(Request req) { co_return co_await complete(req); }

    boost::asio::awaitable<Outcome> as_outcome(Request const& req, Context& outer) {
        Result r = co_await drive(req, detail::now(), outer.deadline, &outer);
        if (r) co_return Outcome(std::move(*r));
        Verdict v;
        v.fault = static_cast<Fault>(r.error().code.value());
        v.scope = Scope::attempt;  // the inner chain keeps its own circuits and cooldowns
        v.detail = "every tier of " + cfg_.name + " failed";
        co_return Outcome(boost::system::in_place_error, std::move(v));
    }

    executor_type ex_;
    ChainConfig cfg_;
    std::tuple<Tiers...> tiers_;
    classify_type classify_{};
    retry_type retry_{};
    accept_type accept_{};
    std::array<std::string, tier_count> names_;
    std::array<std::vector<std::string>, tier_count> labels_;
    std::array<std::vector<std::string>, tier_count> key_ids_;
    std::unique_ptr<Shared> shared_;
};

/// @brief A chain with the default policies: `Chain<Groq<5>, DeepSeek, VertexPro, Template>`.
template <class... Tiers>
using Chain = BasicChain<DefaultPolicies, Tiers...>;

} // namespace cascade
