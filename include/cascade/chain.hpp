#pragma once
/// @file
/// @brief `BasicChain<Policies, Tiers...>` / `Chain<Tiers...>`: the compile-time fallback pipeline.
///
/// What the chain does next for a request is decided by `engine::Pipeline` (sans-io, see
/// engine/pipeline.hpp); the coroutine driver in impl/chain.hpp carries its actions out.

#include <cascade/cache/key.hpp>
#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/detail/flight.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/engine/config.hpp>
#include <cascade/engine/pipeline.hpp>
#include <cascade/engine/tier_state.hpp>
#include <cascade/policy/policies.hpp>
#include <cascade/provider/template.hpp>
#include <cascade/stream.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace cascade {

/// @brief Run-time settings of a chain. Every member has a working default.
struct ChainConfig {
    /// Name of the chain when it is a tier of another chain (`vertex-pro`), and in its stats.
    std::string name = "chain";
    /// One time budget for the whole chain, from the call of `complete` to its answer; zero means none.
    /// A request's own `deadline` overrides it.
    std::chrono::milliseconds deadline{0};
    /// Circuit breaking and the cooldowns of failures that do not say how long to rest.
    CircuitConfig circuit;
    /// In which order each tier's keys are tried.
    KeyOrder key_order = KeyOrder::sequential;
    /// With a cache policy: identical requests in flight at the same time share one upstream call.
    bool coalesce = true;
    /// When every fallible tier is cooling down, over budget or open, and the earliest becomes usable
    /// within this time (in all, per request) and before the request's deadline, the chain waits for it
    /// rather than answer from its last tier or fail. Zero: never wait.
    std::chrono::milliseconds max_wait{5'000};
    /// Where the chain tells an operator what to hear of once (a retired model opened a tier's circuit).
    /// Empty: a line on stderr. Never given a key.
    std::function<void(std::string_view)> log;
};

/// @brief A fallback pipeline over `Tiers...`, with the policies of `Policies` (a `PolicySet`).
///
/// - The result type is `Completion` when the last tier is infallible (a `Template`), `Result` otherwise.
/// - A tier that fails hands over to the next; a key-scoped failure rests the key's quota group and moves
///   to the tier's next key; a provider-scoped failure opens the tier's circuit; a tier with an open
///   circuit or no usable key is skipped without an attempt. When every fallible tier is unusable and one
///   becomes usable within `ChainConfig::max_wait`, the chain waits for it.
/// - A chain is itself a tier: chains nest.
/// - Thread safety: one chain may be used by any number of coroutines on any number of threads at once.
///   Configure it (its policies, `clock()`) before first use.
///
/// @code
/// using Reports = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro, cascade::Template>;
/// Reports chain(ex, cascade::Groq<5>{}, cascade::DeepSeek{}, cascade::VertexPro{}, cascade::Template{render});
/// cascade::Completion c = co_await chain.complete(req);   // c.label: groq3, deepseek, ..., fallback-template
/// @endcode
template <class Policies, class... Tiers>
class BasicChain {
    static_assert(sizeof...(Tiers) > 0, "cascade: a chain needs at least one tier");
    static_assert((Tier<Tiers> && ...),
                  "cascade: every tier must model cascade::Tier (cascade::FallibleTier: "
                  "`awaitable<Outcome> attempt(Request const&, Context&)` and `name()`, or cascade::InfallibleTier)");

    static constexpr std::size_t tier_count = sizeof...(Tiers);
    using last_tier = std::tuple_element_t<tier_count - 1, std::tuple<Tiers...>>;

    template <std::size_t... I>
    static constexpr bool only_last_infallible(std::index_sequence<I...>) {
        return ((!InfallibleTier<std::tuple_element_t<I, std::tuple<Tiers...>>>) && ...);
    }
    static_assert(only_last_infallible(std::make_index_sequence<tier_count - 1>{}),
                  "cascade: an infallible tier (a Template) can only be the last tier: nothing after it would run");

public:
    /// True when the last tier cannot fail: `complete` then returns `Completion`.
    static constexpr bool infallible = InfallibleTier<last_tier>;
    static constexpr std::size_t fallible_count = infallible ? tier_count - 1 : tier_count;

    using policies_type = Policies;
    using classify_type = typename Policies::classify_type;
    using retry_type = typename Policies::retry_type;
    using accept_type = typename Policies::accept_type;
    using observe_type = typename Policies::observe_type;
    using cache_type = typename Policies::cache_type;
    using state_type = typename Policies::state_type;
    using hedge_type = typename Policies::hedge_type;
    using clock_type = typename Policies::clock_type;
    /// True when cooldowns, circuits and budgets are shared with other instances.
    static constexpr bool sharing = shares_state<state_type>;
    /// True when the policies include a cache: answers are cached and identical requests coalesced.
    static constexpr bool caching = caches<cache_type>;
    /// A chain ends its attempts by the deadline it is given, so it may be a tier of another chain.
    static constexpr bool honours_deadline = true;
    using executor_type = boost::asio::any_io_executor;
    /// `Completion` for an infallible chain, `Result` (a `Completion` or a `Failure`) otherwise.
    using result_type = std::conditional_t<infallible, Completion, Result>;

    /// @brief A chain over default-constructed tiers.
    explicit BasicChain(executor_type ex, ChainConfig cfg = {})
        requires(std::default_initializable<Tiers> && ...)
        : BasicChain(std::move(ex), std::move(cfg), Tiers{}...) {}

    /// @brief A chain over the given tiers.
    explicit BasicChain(executor_type ex, Tiers... tiers) : BasicChain(std::move(ex), ChainConfig{}, std::move(tiers)...) {}

    /// @brief A chain over the given tiers with settings.
    BasicChain(executor_type ex, ChainConfig cfg, Tiers... tiers);

    BasicChain(BasicChain&&) noexcept = default;
    BasicChain& operator=(BasicChain&&) noexcept = default;

    /// @brief Asks the chain for an answer.
    ///
    /// `req` must outlive the returned awaitable (build it in a named local: g++ 12 destroys aggregate
    /// temporaries inside a `co_await` expression twice). Cancellation through the awaiting coroutine's
    /// cancellation slot reaches the attempt in flight; the chain then stops without trying further tiers
    /// and returns `Fault::cancelled`, or, when infallible, the last tier's answer with the cancelled
    /// attempt in its trail.
    boost::asio::awaitable<result_type> complete(Request const& req);

    /// @brief Asks the chain for an answer with any Asio completion token.
    ///
    /// Handler signature: `void(result_type)`. The request is copied into the operation. The chain must
    /// outlive the operation. Per-operation cancellation: the token's cancellation slot, as `complete`.
    template <class Token = boost::asio::default_completion_token_t<executor_type>>
    auto async_complete(Request req, Token&& token = {});

    /// @brief Streams the chain's answer: the returned `TextStream` gives text deltas as they arrive, then
    /// how the stream ended (see stream.hpp).
    ///
    /// Before an attempt's text reaches the caller (its first delta, or the end of `opts`' hold-back) every
    /// failure is invisible: the chain moves to the next key or tier as `complete` does, with the same
    /// cooldowns, circuits, budgets and trail. After it, a failure ends the stream `incomplete` with what
    /// was delivered. Tiers that cannot stream (the template, a custom tier) deliver their answer as one
    /// delta. The request is copied; the chain must outlive the stream. A stream does not hedge (two
    /// attempts cannot both feed the caller) and does not share an identical request in flight; with a
    /// cache it is served from the cache (one delta) and a complete answer is stored.
    TextStream stream(Request req, StreamOptions opts = {});

    /// @brief Streams the chain's answer with any Asio completion token: `on_delta(std::string_view)` is
    /// called for each delta as it arrives (in order, never concurrently, from the thread reading the
    /// upstream: it must not block), then the handler with `void(StreamResult)`. Cancellation through
    /// the token's cancellation slot stops the request and closes the upstream connection.
    template <class OnDelta, class Token = boost::asio::default_completion_token_t<executor_type>>
    auto async_stream(Request req, StreamOptions opts, OnDelta on_delta, Token&& token = {});

    /// @brief The chain as a tier of another chain (see `FallibleTier` / `InfallibleTier`): its attempts
    /// end by `outer.deadline` and appear in `outer.trail`.
    std::conditional_t<infallible, boost::asio::awaitable<Completion>, boost::asio::awaitable<Outcome>> attempt(Request const& req,
                                                                                                                Context& outer);

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
    hedge_type& hedge_policy() noexcept { return hedge_; }
    /// @brief The clock every decision reads (with `ManualClock`, assign a copy to share its time).
    clock_type& clock() noexcept { return clock_; }
    clock_type const& clock() const noexcept { return clock_; }

    /// @brief Is tier `i`'s circuit open now?
    bool circuit_open(std::size_t i) const;
    /// @brief A copy of tier `i`'s key state (its quota group's cooldown and budgets, whether disabled).
    KeyState key_state(std::size_t i, std::size_t key) const;

private:
    using Pipeline = engine::Pipeline<retry_type, hedge_type>;
    // Everything requests share, in one allocation so that the chain stays movable.
    struct Shared {
        std::mutex mutex;
        std::array<TierState, (fallible_count > 0 ? fallible_count : 1)> states;
        engine::Book book;
        observe_type observe;
        cache_type cache;
        state_type state;
        // The shared state's generation each tier merged last (max: none yet).
        std::array<std::atomic<std::uint64_t>, (fallible_count > 0 ? fallible_count : 1)> seen;
        std::mutex flights_mutex;
        std::unordered_map<std::string, std::shared_ptr<detail::Flight<result_type>>> flights;
    };
    // How one attempt or skip ended, for the observer and the trail.
    struct Ending;
    struct Race;
    // A deadline needs a timer of the chain's own only for tiers that do not end their attempts by it, and
    // around shared state (its store's commands do not know the deadline).
    static constexpr bool needs_guard = sharing || !((InfallibleTier<Tiers> || detail::honours_deadline_v<Tiers>) && ...);

    template <std::size_t... I>
    void init(std::index_sequence<I...>);
    template <std::size_t I>
    void init_tier();
    std::string const& label(std::size_t tier, int key) const;
    Clock::time_point deadline_for(Request const& req) const;
    std::chrono::microseconds since(Clock::time_point t0) const;
    void record(std::vector<Attempt>* trail, Ending const& e);
    void record_special(std::size_t row, std::string_view name, std::chrono::microseconds latency);
    void say(std::string_view line) const;
    template <class F>
    auto locked(F&& f) -> decltype(f());
    Verdict judge(std::size_t tier, Observation const& o) const;
    static Observation observation_from_exception();
    boost::asio::awaitable<Outcome> dispatch(std::size_t i, Request const& req, Context& ctx);
    template <std::size_t I>
    boost::asio::awaitable<Outcome> dispatch_from(std::size_t i, Request const& req, Context& ctx);
    bool merge_shared(std::size_t i, std::uint32_t tokens);
    boost::asio::awaitable<void> reserve_shared(std::size_t i, std::uint32_t tokens);
    void publish(engine::Action const& a);
    boost::asio::awaitable<result_type> complete_cached(Request const& req);
    boost::asio::awaitable<result_type> run(Request const& req, Clock::time_point start);
    boost::asio::awaitable<result_type> guarded(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer);
    boost::asio::awaitable<void> fill(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer,
                                      std::optional<result_type>& slot);
    boost::asio::awaitable<result_type> drive(Request const& req, Clock::time_point start, Clock::time_point deadline, Context* outer);
    boost::asio::awaitable<result_type> drive_hedged(Request const& req, Clock::time_point start, Clock::time_point deadline,
                                                     Context* outer);
    boost::asio::awaitable<Outcome> terminal(Request const& req, Context& ctx);
    // What the drivers do between suspensions (impl/drive.hpp).
    struct Ended {
        std::size_t slot;
        std::size_t tier;
        int key;
        bool hedged;
    };
    engine::Action first_action(Pipeline& pipe, Clock::time_point now);
    engine::Action next_locked(Pipeline& pipe, Clock::time_point now);
    engine::Action attempt_ended(Pipeline& pipe, Context& ctx, Ended const& at, Outcome& out, Request const& req, Clock::time_point& now,
                                 bool cancelled, Clock::time_point deadline);
    engine::Action noted(Pipeline& pipe, Context& ctx, engine::Action const& a, Clock::time_point now);
    engine::Action after_wait(Pipeline& pipe, boost::system::error_code ec, Clock::time_point& now);
    engine::Action tier_threw(Pipeline& pipe, Context& ctx, engine::Action const& a, Request const& req, Clock::time_point& now,
                              Clock::time_point deadline);
    boost::asio::awaitable<Outcome> next_outcome(engine::Action const& a, Request const& req, Context& ctx);
    boost::asio::awaitable<boost::system::error_code> sleep_until(Clock::time_point t);
    static std::uint32_t tokens_of(Request const& req) noexcept {
        return static_cast<std::uint32_t>(std::min<std::size_t>(req.estimated_tokens(), std::numeric_limits<std::uint32_t>::max()));
    }
    result_type failure(Fault f, std::vector<Attempt>& own_trail, Context* outer) const;
    void finish(Completion& c, std::size_t tier, int key, Clock::time_point start, Clock::time_point now, std::vector<Attempt>& own_trail,
                Context* outer, bool hedged = false);
    boost::asio::awaitable<result_type> owned(Request req);
    boost::asio::awaitable<void> stream_run(std::shared_ptr<detail::StreamState> st);
    void report_stream(detail::StreamState const& st, StreamResult const& res);
    template <class Done>
    void start_stream(std::shared_ptr<detail::StreamState> st, Done done);
    boost::asio::awaitable<Outcome> as_outcome(Request const& req, Context& outer);

    executor_type ex_;
    ChainConfig cfg_;
    std::tuple<Tiers...> tiers_;
    classify_type classify_{};
    retry_type retry_{};
    accept_type accept_{};
    hedge_type hedge_{};
    clock_type clock_{};
    std::array<std::string, tier_count> names_;
    std::array<std::vector<std::string>, tier_count> labels_;
    std::array<std::vector<std::string>, tier_count> key_ids_;
    // Each tier's quota groups by stable name, for budgets shared with other instances.
    std::array<std::vector<std::string>, tier_count> group_names_;
    std::unique_ptr<Shared> shared_;
};

/// @brief A chain with the default policies: `Chain<Groq<5>, DeepSeek, VertexPro, Template>`.
template <class... Tiers>
using Chain = BasicChain<DefaultPolicies, Tiers...>;

} // namespace cascade

#include <cascade/impl/chain.hpp>
#include <cascade/impl/run.hpp>
#include <cascade/impl/drive.hpp>
#include <cascade/impl/drive_hedged.hpp>
#include <cascade/impl/stream.hpp>
