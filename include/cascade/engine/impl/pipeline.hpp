#pragma once
// Definitions of engine::Pipeline (engine/pipeline.hpp): choosing the next attempt, skipping, waiting,
// ending. Its reactions to events are in pipeline_events.hpp.

#include <cascade/engine/pipeline.hpp>  // the face: this file holds its definitions

#include <algorithm>
#include <limits>

namespace cascade::engine {

template <class Retry, class Hedge>
Pipeline<Retry, Hedge>::Pipeline(Book& book, Retry const& retry, Hedge const& hedge, Clock::time_point deadline,
                                 std::uint32_t tokens, double spread) noexcept
    : book_(book), retry_(retry), deadline_(deadline), tokens_(tokens),
      spread_(static_cast<std::uint8_t>(std::clamp(spread, 0.0, 0.999) * 256.0)) {
    if constexpr (Hedge::enabled) {
        hedge_ = &hedge;
        book_.requests.fetch_add(1, std::memory_order_relaxed);
    } else {
        (void)hedge;
    }
}

template <class Retry, class Hedge>
bool Pipeline<Retry, Hedge>::expired(Clock::time_point now) const noexcept {
    return deadline_ != Clock::time_point::max() && (now >= deadline_ || deadline_ - now <= settings().slack);
}

template <class Retry, class Hedge>
std::chrono::milliseconds Pipeline<Retry, Hedge>::remaining(Clock::time_point now) const noexcept {
    if (deadline_ == Clock::time_point::max()) return std::chrono::milliseconds::max();
    if (now >= deadline_) return std::chrono::milliseconds{0};
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
}

template <class Retry, class Hedge>
std::size_t Pipeline<Retry, Hedge>::in_flight() const noexcept {
    return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](Slot const& s) { return s.busy; }));
}

template <class Retry, class Hedge>
std::size_t Pipeline<Retry, Hedge>::free_slot() const noexcept {
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (!slots_[i].busy) return i;
    return slots_.size();
}

template <class Retry, class Hedge>
void Pipeline<Retry, Hedge>::next_tier() noexcept {
    ++tier_;
    tried_ = 0;
    first_pick_ = true;
    pulled_ = false;
    probe_ = false;
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::start(Clock::time_point now, Access access) {
    auto const& s = settings();
    if (s.fallible == 0) return finish(now);
    if (expired(now)) {
        stop_ = true;
        last_ = Fault::deadline_exceeded;
        return finish(now);
    }
    if (s.sharing && !pulled_) {
        pulled_ = true;
        Action a;
        a.step = Step::pull;
        a.tier = 0;
        return a;
    }
    if (auto a = quiet_pick(now)) return *a;
    if (access == Access::shared) {
        Action a;
        a.step = Step::lock;
        return a;
    }
    return advance(now);
}

// Nothing restricts the tier being arrived at (no budget, no key cooling, circuit closed): its order's key,
// without reading or writing the rest of its state, so without the lock.
template <class Retry, class Hedge>
std::optional<Action> Pipeline<Retry, Hedge>::quiet_pick(Clock::time_point now) {
    auto& st = tier(tier_);
    auto const order = settings().key_order;
    if (!st.quiet() || order == KeyOrder::least_recently_limited) return std::nullopt;
    std::size_t key = order == KeyOrder::round_robin ? book_.rotation.fetch_add(1, std::memory_order_relaxed) % st.key_count() : 0;
    return begin(tier_, key, 0, false, now);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::begin(std::uint16_t t, std::size_t key, std::uint32_t reserved, bool probe, Clock::time_point now) {
    std::size_t const i = free_slot();
    auto& slot = slots_[i];
    slot = Slot{};
    slot.busy = true;
    slot.probe = probe;
    slot.hedge = hedging_;
    slot.tier = t;
    slot.key = static_cast<int>(key);
    slot.reserved = reserved;
    if (t == tier_) {
        first_pick_ = false;
        probe_ = false;
        if (key < 64) tried_ |= std::uint64_t{1} << key;
    }
    if constexpr (Hedge::enabled) {
        if (hedging_) {
            hedging_ = false;
            book_.hedge_credit -= 1.0;
        }
        hedge_at_ = Clock::time_point::max();
        auto budget = hedge_->budget();
        int const busy = static_cast<int>(in_flight());
        if (!stop_ && busy < 1 + std::min<int>(budget.max_extra, int(max_slots) - 1)) {
            HedgeContext ctx;
            ctx.tier = t;
            auto [p95, samples] = tier(t).latency_p95();
            ctx.p95 = p95;
            ctx.samples = samples;
            ctx.in_flight = busy;
            if (auto d = hedge_->delay(ctx)) hedge_at_ = now + *d;
        }
    }
    Action a;
    a.step = Step::attempt;
    a.slot = static_cast<std::uint8_t>(i);
    a.hedge = slot.hedge;
    a.tier = t;
    a.key = slot.key;
    if constexpr (Hedge::enabled) a.until = hedge_at_;
    return a;
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::skip(Fault why, std::chrono::milliseconds open_for) {
    Action a;
    a.step = Step::skip;
    a.tier = tier_;
    a.fault = why;
    a.open_for = decltype(a.open_for)(static_cast<std::uint32_t>(std::min<std::int64_t>(open_for.count(), UINT32_MAX)));
    last_ = why;
    next_tier();
    return a;
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::idle() const {
    Action a;
    a.step = Step::idle;
    if constexpr (Hedge::enabled)
        if (!stop_ && !winner_) a.until = hedge_at_;
    return a;
}

// The next attempt to start, or a skip on the way to it; else what to do when none is left.
template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::advance(Clock::time_point now) {
    auto const& s = settings();
    if constexpr (Hedge::enabled) {
        if (in_flight() >= std::size_t(1 + std::min<int>(hedge_->budget().max_extra, int(max_slots) - 1))) {
            hedging_ = false;
            return idle();
        }
    }
    while (tier_ < s.fallible && !stop_) {
        auto& st = tier(tier_);
        if (expired(now)) {
            stop_ = true;
            last_ = Fault::deadline_exceeded;
            break;
        }
        if (first_pick_) {
            if (s.sharing && !pulled_) {
                pulled_ = true;
                Action a;
                a.step = Step::pull;
                a.tier = tier_;
                return a;
            }
            if (auto a = quiet_pick(now)) return *a;
            auto adm = st.admit(now);
            if (!adm.allowed) {
                waitable_ |= bit_of(tier_);
                return skip(Fault::circuit_open, adm.open_for);
            }
            probe_ = adm.probe;
        }
        std::size_t rotation = first_pick_ && s.key_order == KeyOrder::round_robin
                                   ? book_.rotation.fetch_add(1, std::memory_order_relaxed)
                                   : 0;
        auto pick = st.pick_key(now, tokens_, tried_, s.key_order, rotation);
        if (pick.key) return begin(tier_, *pick.key, pick.reserved_tokens, probe_, now);
        if (probe_) {
            st.on_failure(std::nullopt, detail::verdict_of(Fault::cancelled), now, true);  // hand the probe on
            probe_ = false;
        }
        if (first_pick_) {
            if (pick.why == Fault::exhausted) waitable_ |= bit_of(tier_);
            return skip(pick.why, std::chrono::milliseconds{0});
        }
        next_tier();  // every key of the tier tried, cooling or out
    }
    hedging_ = false;  // nothing to hedge with
    if (in_flight() > 0) return idle();
    return finish(now);
}

// Before the request ends (an answer won, or it stops): a cancel for each attempt still in flight, one
// at a time, then idle until they have all reported; nullopt once none is left.
template <class Retry, class Hedge>
std::optional<Action> Pipeline<Retry, Hedge>::settle_others() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        auto& slot = slots_[i];
        if (slot.busy && !slot.cancel_sent) {
            slot.cancel_sent = true;
            Action a;
            a.step = Step::cancel;
            a.slot = static_cast<std::uint8_t>(i);
            return a;
        }
    }
    if (in_flight() > 0) return idle();
    return std::nullopt;
}

// Nothing more to start: wait for the earliest cooldown if that is worth it, else the end.
template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::finish(Clock::time_point now) {
    then_ = Then::finish;
    if (auto a = settle_others()) return *a;
    auto const& s = settings();
    if (!stop_ && s.max_wait.count() > 0 && waits_ < detail::max_waits && waitable_ != 0) {
        std::optional<Clock::time_point> earliest;
        std::uint16_t which = 0;
        for (std::uint16_t t = 0; t < s.fallible; ++t) {
            if (!(waitable_ & bit_of(t))) continue;
            auto at = tier(t).usable_at(now, tokens_);
            if (at && (!earliest || *at < *earliest)) earliest = at, which = t;
        }
        auto const cap = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 365));
        Clock::duration const allowed = std::chrono::duration_cast<Clock::duration>(std::min(s.max_wait, cap)) -
                                        std::chrono::milliseconds(waited_ms_);
        if (earliest && *earliest - now <= allowed) {
            // Where in the window after the earliest instant this request wakes (see `spread`).
            auto const window = std::min<Clock::duration>((*earliest - now) / 4, std::chrono::seconds(1));
            *earliest += window * spread_ / 256;
        }
        if (earliest && *earliest - now <= allowed && (deadline_ == Clock::time_point::max() || *earliest + s.slack < deadline_)) {
            then_ = Then::cooldown;
            then_tier_ = which;
            then_until_ = *earliest;
            auto const wait_ms = std::chrono::ceil<std::chrono::milliseconds>(*earliest - now).count();
            waited_ms_ = static_cast<std::uint32_t>(std::min<std::int64_t>(std::int64_t{waited_ms_} + wait_ms, UINT32_MAX));
            ++waits_;
            Action a;
            a.step = Step::wait;
            a.tier = which;
            a.until = *earliest;
            return a;
        }
    }
    Action a;
    a.step = s.terminal && !committed_ ? Step::terminal : Step::fail;
    a.fault = last_;
    return a;
}

// After an event: queued notifications first, then the continuation it chose.
template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::proceed(Clock::time_point now) {
    if (pending_) {
        Action a;
        auto const& about = slots_[pending_slot_];
        a.tier = about.tier;
        a.key = about.key;
        auto& st = tier(about.tier);
        if (pending_ & publish_key) {
            pending_ &= ~publish_key;
            auto ks = st.key(static_cast<std::size_t>(about.key));
            a.step = Step::publish;
            a.news = News::key;
            a.until = ks.cool_until;
            a.disabled = ks.disabled;
        } else if (pending_ & publish_circuit) {
            pending_ &= ~publish_circuit;
            a.step = Step::publish;
            a.news = News::circuit;
            a.until = st.is_open() ? st.open_until() : Clock::time_point{};
        } else {
            pending_ &= ~notice_open;
            a.step = Step::notice;
            a.fault = Fault::model_unavailable;  // the one notice there is
            a.until = st.open_until();
        }
        return a;
    }
    switch (then_) {
    case Then::answer:
        if (auto a = settle_others()) return *a;
        {
            Action a;
            a.step = Step::answer;
            a.slot = *winner_;
            a.tier = slots_[*winner_].tier;
            a.key = slots_[*winner_].key;
            return a;
        }
    case Then::backoff:
    case Then::cooldown: {
        Action a;
        a.step = Step::wait;
        a.tier = then_tier_;
        a.until = then_until_;
        return a;
    }
    case Then::finish:
        return finish(now);
    case Then::advance:
        break;
    }
    return advance(now);
}

} // namespace cascade::engine
