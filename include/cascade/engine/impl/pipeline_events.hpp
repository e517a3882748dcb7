#pragma once
// Definitions of engine::Pipeline (engine/pipeline.hpp): its reactions to events (an answer accepted or
// refused, a failure and its verdict, a wait that ended, a hedge due, a cancellation).

#include <cascade/engine/pipeline.hpp>  // the face: this file holds its definitions

#include <algorithm>

namespace cascade::engine {

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::next(Clock::time_point now) {
    return proceed(now);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::accepted(std::size_t i, Clock::time_point now, std::uint32_t used_tokens,
                                        std::chrono::microseconds latency, Access access) {
    auto& slot = slots_[i];
    auto& st = tier(slot.tier);
    bool const update = slot.probe || st.success_changes_state();
    if (access == Access::shared && (update || Hedge::enabled || settings().sharing)) {
        Action a;
        a.step = Step::lock;
        return a;
    }
    if (update) st.on_success(static_cast<std::size_t>(slot.key), slot.reserved, used_tokens, slot.probe);
    if constexpr (Hedge::enabled) st.note_latency(latency);
    (void)latency;
    slot.busy = false;
    if (winner_) return proceed(now);  // a hedge that lost the race still answered: its budget is settled
    winner_ = static_cast<std::uint8_t>(i);
    then_ = Then::answer;
    if (settings().sharing && slot.probe && !pending_) {
        // The probe's answer closed the circuit: other instances stop skipping the tier.
        pending_ |= publish_circuit;
        pending_slot_ = static_cast<std::uint8_t>(i);
    }
    if (!pending_ && in_flight() == 0) {
        // The common case needs no trip through the continuation.
        Action a;
        a.step = Step::answer;
        a.slot = static_cast<std::uint8_t>(i);
        a.tier = slot.tier;
        a.key = slot.key;
        return a;
    }
    return proceed(now);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::refused(std::size_t i, Clock::time_point now, Fault fault) {
    auto v = detail::verdict_of(fault);
    return ended(i, v, now, 0.5);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::failed(std::size_t i, Verdict const& v, Clock::time_point now, double jitter) {
    return ended(i, v, now, jitter);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::failed_after_commit(std::size_t i, Verdict const& v, Clock::time_point now) {
    committed_ = true;
    stop_ = true;
    then_ = Then::finish;
    auto a = ended(i, v, now, 0.5);
    last_ = v.fault;
    return a;
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::ended(std::size_t i, Verdict const& v, Clock::time_point now, double jitter) {
    auto& slot = slots_[i];
    slot.busy = false;
    auto& st = tier(slot.tier);
    auto const key = static_cast<std::size_t>(slot.key);
    bool const cancelled = v.fault == Fault::cancelled || v.fault == Fault::deadline_exceeded;
    if (cancelled) {
        st.on_failure(key, detail::verdict_of(Fault::cancelled), now, slot.probe);  // hands a probe on
        if (winner_ || slot.cancel_sent) return proceed(now);  // a loser, or an attempt we cancelled
        stop_ = true;
        last_ = v.fault;
        then_ = Then::finish;
        return proceed(now);
    }
    Change change = st.on_failure(key, v, now, slot.probe);
    // One attempt's news at a time: a hedge's that ends while another's is still queued is not published
    // (its tier state has it all the same).
    if (!pending_ || pending_slot_ == i) {
        if (settings().sharing) {
            if (change.key) pending_ |= publish_key;
            if (v.scope == Scope::provider || change.opened) pending_ |= publish_circuit;
        }
        if (change.opened && v.fault == Fault::model_unavailable) pending_ |= notice_open;
        pending_slot_ = static_cast<std::uint8_t>(i);
    }
    // A request that never reached the provider gives its reservation back, unless a retry on the same key
    // (which keeps it) follows.
    bool const refund = v.unsent && slot.key >= 0;
    if (winner_ || slot.cancel_sent || stop_) {
        if (refund) st.refund(key, slot.reserved);
        if (winner_ || slot.cancel_sent) return proceed(now);
    }
    last_ = v.fault;
    if (stop_) return proceed(now);
    if (v.scope == Scope::attempt && in_flight() == 0) {
        RetryContext rc;
        rc.verdict = &v;
        rc.retries_done = slot.retries;
        rc.remaining = remaining(now);
        rc.jitter = jitter;
        if (auto delay = retry_.next_delay(rc)) {
            then_ = Then::backoff;
            then_slot_ = static_cast<std::uint8_t>(i);
            then_tier_ = slot.tier;
            then_until_ = now + *delay;
            return proceed(now);
        }
    }
    if (refund) st.refund(key, slot.reserved);
    if (slot.tier == tier_) {
        auto const bit = bit_of(tier_);
        if (v.scope == Scope::key) {
            waitable_ |= bit;  // its next key, or its cooldown
        } else {
            // A circuit opens for a time; a failure of the attempt (a 5xx, a bad request) is not cured by
            // waiting, whatever the tier's other keys were doing.
            if (v.scope == Scope::provider)
                waitable_ |= bit;
            else
                waitable_ &= ~bit;
            next_tier();
        }
    }
    then_ = Then::advance;
    return proceed(now);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::waited(Clock::time_point now) {
    if (then_ == Then::backoff) {
        auto& slot = slots_[then_slot_];
        then_ = Then::advance;
        if (expired(now)) {
            stop_ = true;
            last_ = Fault::deadline_exceeded;
            return finish(now);
        }
        switch (tier(slot.tier).recheck(static_cast<std::size_t>(slot.key), now)) {
        case Recheck::same_key: {
            // The same key again: its reservation still holds, it is no longer a probe.
            int const retries = slot.retries + 1;
            auto a = begin(slot.tier, static_cast<std::size_t>(slot.key), slot.reserved, false, now);
            slots_[a.slot].retries = retries;
            return a;
        }
        case Recheck::next_key:
            waitable_ |= bit_of(slot.tier);
            break;  // another request cooled the key meanwhile
        case Recheck::next_tier:
            waitable_ |= bit_of(slot.tier);
            if (slot.tier == tier_) next_tier();  // another request opened the circuit meanwhile
            break;
        }
        return advance(now);
    }
    if (then_ == Then::cooldown) {
        // Back to the tier that was to be usable by now, as if arriving at it for the first time.
        then_ = Then::advance;
        tier_ = then_tier_;
        tried_ = 0;
        first_pick_ = true;
        pulled_ = false;
        probe_ = false;
        return advance(now);
    }
    return proceed(now);
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::cancelled(Clock::time_point now) {
    stop_ = true;
    last_ = expired(now) ? Fault::deadline_exceeded : Fault::cancelled;
    then_ = Then::finish;
    pending_ = 0;
    return finish(now);
}

template <class Retry, class Hedge>
bool Pipeline<Retry, Hedge>::hedge_allowed() {
    auto budget = hedge_->budget();
    auto requests = book_.requests.load(std::memory_order_relaxed);
    if (book_.hedge_credit < 0.0) book_.hedge_credit = budget.burst;
    book_.hedge_credit = std::min(budget.burst, book_.hedge_credit + budget.max_ratio * double(requests - book_.hedge_seen));
    book_.hedge_seen = requests;
    return book_.hedge_credit >= 1.0;
}

template <class Retry, class Hedge>
Action Pipeline<Retry, Hedge>::woke(Clock::time_point now) {
    if constexpr (Hedge::enabled) {
        if (stop_ || winner_ || then_ != Then::advance || pending_ || now < hedge_at_) return idle();
        hedge_at_ = Clock::time_point::max();
        if (!hedge_allowed()) return idle();
        hedging_ = true;
        auto a = advance(now);
        if (a.step != Step::skip && a.step != Step::pull && a.step != Step::attempt) hedging_ = false;
        return a;
    } else {
        (void)now;
        return idle();
    }
}

} // namespace cascade::engine
