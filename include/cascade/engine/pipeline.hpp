#pragma once
/// @file
/// @brief `engine::Pipeline`: what a chain does next for one request, as a sans-io state machine.
///
/// The pipeline is told what happened (an answer and the accept policy's decision, a failure and the
/// classify policy's verdict, a wait that ended, a cancellation), always with `now`, and answers with the
/// next action (try tier i with key k, skip a tier, wait until t, publish news, answer, fail). It reads no
/// clock, does no I/O, holds no lock: the coroutine driver (`impl/chain.hpp`) carries out its actions,
/// holding the chain's lock around every call except `start` and `accepted` made with `Access::shared`.
///
/// The decisions, in the order the pipeline takes them:
/// | situation | action |
/// |---|---|
/// | a tier's circuit is open (break not over, or its one probe out) | `skip` it (`circuit_open`) |
/// | a tier has no key / every key is disabled, cooling or over budget | `skip` it (`unconfigured` / `exhausted`) |
/// | a usable key | `attempt` it; with a hedge policy, `until` is when to call `woke` |
/// | an answer accepted | `answer` (after `publish` of a closed circuit when it was the probe and state is shared) |
/// | an answer refused, or a failure scoped to the attempt | retry the key after the retry policy's delay (`wait`), else the next tier |
/// | a failure scoped to the key (429, 402, 401) | the key's quota group rests (401: the key is disabled); the tier's next key |
/// | a failure scoped to the provider (1010, 404 model_not_found) | the circuit opens; the next tier |
/// | a retired model opens the circuit | `notice`, once, for the operator |
/// | every fallible tier cooling, over budget or open, the earliest usable within `max_wait` and the deadline | `wait` for it, then try it |
/// | a hedge is due, the budget allows it | `attempt` the next key or tier beside the slow one |
/// | an answer accepted while other attempts are in flight | `cancel` them, then `answer` once they have ended |
/// | cancelled, or the time budget spent | no further attempts; the infallible last tier answers (`terminal`) or `fail` |
/// | nothing left to try | `terminal`, or `fail` with the last fault |
/// | a stream's attempt fails after its text reached the caller (`failed_after_commit`) | recorded as any failure; `fail`, never `terminal` |

#include <cascade/core/completion.hpp>
#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/engine/config.hpp>
#include <cascade/engine/tier_state.hpp>
#include <cascade/policy/hedge.hpp>
#include <cascade/policy/retry.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

namespace cascade::engine {

namespace detail {
// More waits than this in one request means the state keeps promising what it does not give.
inline constexpr std::uint8_t max_waits = 8;

inline Verdict verdict_of(Fault f) {
    Verdict v;
    v.fault = f;
    return v;
}
} // namespace detail

/// @brief What the driver does next.
enum class Step : std::uint8_t {
    attempt,   ///< send the request to `tier` with `key`, in `slot`; report its end with `accepted`, `refused` or `failed`
    skip,      ///< record that `tier` was passed over (`fault`, `open_for`), then `next`
    wait,      ///< nothing in flight: wait until `until`, then `waited` (`cancelled` if the wait was cancelled)
    pull,      ///< merge what other instances know about `tier` into its state, then `next`
    publish,   ///< tell other instances what `tier` learned (`news`), then `next`
    notice,    ///< tell the operator once: `tier`'s circuit opened for `fault` until `until`; then `next`
    cancel,    ///< cancel the attempt in `slot` (its end still comes as an event); then `next`
    idle,      ///< attempts in flight: report the next one that ends; call `woke` at `until` if none has
    lock,      ///< call the same function again holding the chain's lock (`Access::exclusive`)
    answer,    ///< the answer of the attempt in `slot` is the chain's
    terminal,  ///< the infallible last tier answers
    fail,      ///< a fallible chain ends with `fault`
};

/// @brief What a `publish` tells other instances.
enum class News : std::uint8_t {
    none,
    key,      ///< `key` (its group) rests until `until`, or is disabled (`disabled`)
    circuit,  ///< the tier's circuit is open until `until`, or closed (`until` is the epoch)
};

/// @brief One action of the pipeline. Small: it lives in the driver's coroutine frame.
struct Action {
    Step step = Step::fail;
    std::uint8_t slot = 0;
    /// An attempt started beside a slower one.
    bool hedge = false;
    News news = News::none;
    bool disabled = false;
    std::uint16_t tier = 0;
    int key = no_key;
    Fault fault = Fault::unconfigured;
    /// `skip` for `circuit_open`: how long until a probe may go (zero: a probe is out; saturates at 49 days).
    std::chrono::duration<std::uint32_t, std::milli> open_for{0};
    /// `wait`, `idle`: until when; `attempt`: when to call `woke` if it has not ended (max: never);
    /// `publish`, `notice`: until when the key or circuit rests.
    Clock::time_point until = Clock::time_point::max();
};

/// @brief Whether the caller holds the chain's lock.
enum class Access : std::uint8_t {
    exclusive,  ///< the lock is held: the pipeline may read and write tier state
    shared,     ///< no lock: the pipeline touches only what is safe without it, or answers `Step::lock`
};

/// @brief The chain's settings, as the pipeline decides by them.
struct Settings {
    /// Tiers 0 .. fallible-1 can fail; an infallible last tier follows them when `terminal`.
    std::size_t fallible = 0;
    bool terminal = false;
    /// Tier state is shared with other instances (`pull` before a tier, `publish` after news).
    bool sharing = false;
    KeyOrder key_order = KeyOrder::sequential;
    /// The longest a request waits, in all, for a cooldown when every fallible tier is unusable.
    std::chrono::milliseconds max_wait{0};
    /// How far the driver's `now` may lag real time: a budget with less left is spent.
    Clock::duration slack{0};
};

/// @brief The state every request of a chain reads and writes: its fallible tiers, the key rotation,
/// the hedging budget. Owned by the chain; guarded by its lock except where marked lock-free.
struct Book {
    std::span<TierState> tiers;
    Settings settings;
    /// Lock-free: the next round-robin start.
    std::atomic<std::size_t> rotation{0};
    /// Lock-free: requests started (counted when hedging is on).
    std::atomic<std::uint64_t> requests{0};
    /// Hedges the budget holds (negative: not yet filled), and the request count it was last topped up at.
    double hedge_credit = -1.0;
    std::uint64_t hedge_seen = 0;
};

/// @brief The decisions of one request. Cheap to make; lives in the driver's coroutine frame.
///
/// Every instant is passed in. Every member function other than `start` and `accepted` with
/// `Access::shared` must be called with the chain's lock held.
template <class Retry, class Hedge = NoHedge>
class Pipeline {
public:
    /// Attempts one request may have in flight.
    static constexpr std::size_t max_slots = Hedge::enabled ? 4 : 1;

    /// @param tokens the request's estimated tokens, for budgets.
    /// @param spread in [0, 1): where in its window this request wakes from a wait for a cooldown. Requests
    ///        waiting for the same key would otherwise all go at the instant it is free, and all but the
    ///        first meet its next 429 (the window: a quarter of the wait, at most a second).
    Pipeline(Book& book, Retry const& retry, Hedge const& hedge, Clock::time_point deadline, std::uint32_t tokens,
             double spread = 0.0) noexcept;

    /// @brief The first action.
    Action start(Clock::time_point now, Access access = Access::exclusive);
    /// @brief After `skip`, `pull`, `publish`, `notice` and `cancel`.
    Action next(Clock::time_point now);
    /// @brief The attempt in `slot` answered and the accept policy took it; it used `used_tokens` and took `latency`.
    Action accepted(std::size_t slot, Clock::time_point now, std::uint32_t used_tokens, std::chrono::microseconds latency = {},
                    Access access = Access::exclusive);
    /// @brief The attempt in `slot` answered and the accept policy refused it with `fault` (`empty`, `rejected`).
    Action refused(std::size_t slot, Clock::time_point now, Fault fault);
    /// @brief The attempt in `slot` failed; `v` is the classify policy's verdict (the driver marks a
    /// cancellation `cancelled`, or `deadline_exceeded` when the budget was spent). `jitter` in [0, 1)
    /// goes to the retry policy.
    Action failed(std::size_t slot, Verdict const& v, Clock::time_point now, double jitter = 0.5);
    /// @brief The attempt in `slot` failed (or its answer was refused) after part of its answer reached
    /// the caller (a stream that committed): the failure counts as `failed` does (cooldowns, circuits,
    /// news), but nothing more is tried and the infallible last tier does not answer: the request ends
    /// with `fail` and `v.fault` once its news are out.
    Action failed_after_commit(std::size_t slot, Verdict const& v, Clock::time_point now);
    /// @brief A `wait` ended.
    Action waited(Clock::time_point now);
    /// @brief The time of an `attempt`'s or `idle`'s `until` came with attempts still in flight.
    Action woke(Clock::time_point now);
    /// @brief The caller cancelled during a `wait`.
    Action cancelled(Clock::time_point now);

    /// @brief The fault a failure ends with (the last decisive one).
    Fault fault() const noexcept { return last_; }
    /// @brief Attempts in flight.
    std::size_t in_flight() const noexcept;
    /// @brief The slot whose answer was accepted first, once there is one: a later answer lost the race.
    std::optional<std::size_t> winner() const noexcept {
        return winner_ ? std::optional<std::size_t>(*winner_) : std::nullopt;
    }

private:
    enum class Then : std::uint8_t { advance, answer, backoff, cooldown, finish };
    // Notifications queued by an event, given out one by one before its continuation.
    enum Pending : std::uint8_t { publish_key = 1, publish_circuit = 2, notice_open = 4 };

    struct Slot {
        int key = no_key;
        std::uint32_t reserved = 0;
        int retries = 0;
        std::uint16_t tier = 0;
        bool busy = false;
        bool probe = false;
        bool hedge = false;
        bool cancel_sent = false;
    };

    TierState& tier(std::size_t i) const noexcept { return book_.tiers[i]; }
    Settings const& settings() const noexcept { return book_.settings; }
    bool expired(Clock::time_point now) const noexcept;
    std::chrono::milliseconds remaining(Clock::time_point now) const noexcept;

    Action advance(Clock::time_point now);
    std::optional<Action> quiet_pick(Clock::time_point now);
    std::optional<Action> settle_others();
    Action proceed(Clock::time_point now);
    Action finish(Clock::time_point now);
    Action begin(std::uint16_t tier, std::size_t key, std::uint32_t reserved, bool probe, Clock::time_point now);
    Action skip(Fault why, std::chrono::milliseconds open_for);
    Action idle() const;
    Action ended(std::size_t slot, Verdict const& v, Clock::time_point now, double jitter);
    bool hedge_allowed();
    void next_tier() noexcept;
    static std::uint32_t bit_of(std::uint16_t tier) noexcept { return std::uint32_t{1} << std::min<std::uint16_t>(tier, 31); }
    std::size_t free_slot() const noexcept;

    struct None {};
    Book& book_;
    Retry const& retry_;
    // With hedging off, neither the policy nor the hedge's time take room in the frame.
    [[no_unique_address]] std::conditional_t<Hedge::enabled, Hedge const*, None> hedge_;
    [[no_unique_address]] std::conditional_t<Hedge::enabled, Clock::time_point, None> hedge_at_{};
    Clock::time_point deadline_;
    Clock::time_point then_until_{};
    // Keys of the tier being tried that this request tried; tiers passed over or left for reasons time
    // cures (cooling, budgets, an open circuit).
    std::uint64_t tried_ = 0;
    // (Tiers past the 32nd share the last bit.)
    std::uint32_t waitable_ = 0;
    // Waited so far, in milliseconds (a request's waits are bounded by `max_wait`).
    std::uint32_t waited_ms_ = 0;
    std::uint32_t tokens_;
    Fault last_ = Fault::unconfigured;
    std::uint16_t tier_ = 0;
    std::uint16_t then_tier_ = 0;
    // The slot whose attempt the queued notifications are about (it is not reused before they are out).
    std::uint8_t pending_slot_ = 0;
    // Flags in bits: the pipeline lives in the driver's frame, whose size Asio's recycling bounds.
    bool first_pick_ : 1 = true;
    bool pulled_ : 1 = false;
    bool probe_ : 1 = false;
    bool stop_ : 1 = false;
    bool hedging_ : 1 = false;
    bool committed_ : 1 = false;
    Then then_ = Then::advance;
    std::uint8_t pending_ = 0;
    std::uint8_t waits_ = 0;
    std::uint8_t then_slot_ = 0;
    std::uint8_t spread_ = 0;  // in 256ths
    std::optional<std::uint8_t> winner_;
    std::array<Slot, max_slots> slots_{};
};

} // namespace cascade::engine

#include <cascade/engine/impl/pipeline.hpp>
#include <cascade/engine/impl/pipeline_events.hpp>
