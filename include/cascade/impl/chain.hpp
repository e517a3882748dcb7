#pragma once
// BasicChain's construction and the pieces its drivers share (chain.hpp): labels, deadlines, the one place
// that builds trail entries and observer events (`record`), classification, dispatch, shared state.

#include <cascade/chain.hpp>  // the face: this file holds its definitions

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>

namespace cascade {

namespace detail {
inline std::string excerpt(std::string_view s, std::size_t n = 160) { return std::string(s.substr(0, n)); }
} // namespace detail

template <class Policies, class... Tiers>
struct BasicChain<Policies, Tiers...>::Ending {
    std::size_t tier = 0;
    int key = no_key;
    /// Empty for the answer.
    boost::system::error_code fault;
    int http_status = 0;
    std::chrono::microseconds latency{0};
    Usage usage;
    double cost = 0.0;
    bool skipped = false;
    bool hedged = false;
    std::string detail;
};

// --- Construction ----------------------------------------------------------------------------------

template <class Policies, class... Tiers>
BasicChain<Policies, Tiers...>::BasicChain(executor_type ex, ChainConfig cfg, Tiers... tiers)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), tiers_(std::move(tiers)...), shared_(std::make_unique<Shared>()) {
    auto& book = shared_->book;
    book.tiers = std::span<TierState>(shared_->states.data(), fallible_count);
    book.settings.fallible = fallible_count;
    book.settings.terminal = infallible;
    book.settings.sharing = sharing;
    book.settings.key_order = cfg_.key_order;
    book.settings.max_wait = cfg_.max_wait.count() > 0 ? cfg_.max_wait : std::chrono::milliseconds{0};
    book.settings.slack = clock_.slack();
    for (auto& g : shared_->seen) g.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_relaxed);
    init(std::make_index_sequence<tier_count>{});
}

template <class Policies, class... Tiers>
template <std::size_t... I>
void BasicChain<Policies, Tiers...>::init(std::index_sequence<I...>) {
    ((names_[I] = std::string(std::get<I>(tiers_).name())), ...);
    (init_tier<I>(), ...);
}

template <class Policies, class... Tiers>
template <std::size_t I>
void BasicChain<Policies, Tiers...>::init_tier() {
    auto const& t = std::get<I>(tiers_);
    constexpr bool fallible = I < fallible_count;
    std::size_t keys = fallible ? detail::key_count_of(t) : 0;
    if constexpr (fallible) {
        // Quota groups by name, numbered in order of first appearance.
        std::map<std::string, std::size_t> index;
        std::vector<std::size_t> groups;
        for (std::size_t k = 0; k < keys; ++k)
            groups.push_back(index.try_emplace(detail::quota_group_of(t, static_cast<int>(k)), index.size()).first->second);
        shared_->states[I].configure(keys, groups, detail::key_limits_of(t), cfg_.circuit);
        shared_->states[I].lease_budgets(sharing);
        for (std::size_t k = 0; k < keys; ++k) key_ids_[I].push_back(detail::key_id_of(t, static_cast<int>(k)));
        // A group is named by its quota group, or by its one key's id: the same in every instance.
        group_names_[I].resize(index.size());
        for (std::size_t k = 0; k < keys; ++k) {
            auto& name = group_names_[I][groups[k]];
            if (!name.empty()) continue;
            auto g = detail::quota_group_of(t, static_cast<int>(k));
            name = g.starts_with("group:") ? g : "key:" + key_ids_[I][k];
        }
    }
    auto& labels = labels_[I];
    if (keys == 0) {
        labels.push_back(detail::label_of(t, no_key));
    } else {
        for (std::size_t k = 0; k < keys; ++k) labels.push_back(detail::label_of(t, static_cast<int>(k)));
    }
}

// --- Small pieces ----------------------------------------------------------------------------------

// The label of `key` on `tier`; with no key (a skip, or the terminal tier) the tier's own label: a skip of
// a keyed tier involved none of its keys, so it reads `groq`, not `groq1`.
template <class Policies, class... Tiers>
std::string const& BasicChain<Policies, Tiers...>::label(std::size_t tier, int key) const {
    auto const& l = labels_[tier];
    if (key >= 0 && static_cast<std::size_t>(key) < l.size()) return l[static_cast<std::size_t>(key)];
    return key_ids_[tier].empty() ? l.front() : names_[tier];
}

// The end of the request's time budget, from a precise read: a budget must not end early.
template <class Policies, class... Tiers>
Clock::time_point BasicChain<Policies, Tiers...>::deadline_for(Request const& req) const {
    auto budget = req.deadline.count() > 0 ? req.deadline : cfg_.deadline;
    if (budget.count() <= 0) return Clock::time_point::max();
    auto now = clock_.precise_now();
    auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    return budget >= room ? Clock::time_point::max() : now + budget;
}

template <class Policies, class... Tiers>
std::chrono::microseconds BasicChain<Policies, Tiers...>::since(Clock::time_point t0) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - t0);
}

template <class Policies, class... Tiers>
template <class F>
auto BasicChain<Policies, Tiers...>::locked(F&& f) -> decltype(f()) {
    std::lock_guard lock(shared_->mutex);
    return f();
}

template <class Policies, class... Tiers>
bool BasicChain<Policies, Tiers...>::circuit_open(std::size_t i) const {
    if (i >= fallible_count) return false;
    std::lock_guard lock(shared_->mutex);
    return shared_->states[i].circuit_open(clock_.now());
}

template <class Policies, class... Tiers>
KeyState BasicChain<Policies, Tiers...>::key_state(std::size_t i, std::size_t key) const {
    std::lock_guard lock(shared_->mutex);
    return shared_->states.at(i).key(key);
}

template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::say(std::string_view line) const {
    if (cfg_.log)
        cfg_.log(line);
    else
        std::fprintf(stderr, "cascade: %.*s\n", static_cast<int>(line.size()), line.data());
}

// The one place an attempt's end (the answer's too) or a skip is recorded: to the observer, and, when it
// failed or was skipped, into `trail`.
template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::record(std::vector<Attempt>* trail, Ending const& end) {
    AttemptEvent e;
    e.tier = end.tier;
    e.tier_name = names_[end.tier];
    e.label = label(end.tier, end.key);
    e.key = end.key;
    e.fault = end.fault;
    e.http_status = end.http_status;
    e.skipped = end.skipped;
    e.hedged = end.hedged;
    e.latency = end.latency;
    e.usage = end.usage;
    e.cost_usd = end.cost;
    shared_->observe.on_attempt(e);
    if (!end.fault) return;
    Attempt a;
    a.label = std::string(e.label);
    a.tier = end.tier;
    a.key = end.key;
    a.fault = end.fault;
    a.http_status = end.http_status;
    a.latency = end.latency;
    a.detail = end.detail;
    a.hedged = end.hedged;
    trail->push_back(std::move(a));
}

// Rows after the tiers in the stats: answers from the cache, answers shared with a request in flight.
template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::record_special(std::size_t row, std::string_view name, std::chrono::microseconds latency) {
    AttemptEvent e;
    e.tier = row;
    e.tier_name = name;
    e.label = name;
    e.latency = latency;
    shared_->observe.on_attempt(e);
}

// What a failed attempt means: the classify policy's verdict, refined by the tier when it has a say.
template <class Policies, class... Tiers>
Verdict BasicChain<Policies, Tiers...>::judge(std::size_t tier, Observation const& o) const {
    Verdict v = classify_.classify(o);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((I == tier ? (void)([&] {
            if constexpr (I < fallible_count && detail::refines_v<std::tuple_element_t<I, std::tuple<Tiers...>>>)
                v = std::get<I>(tiers_).refine(std::move(v), o);
        }())
                    : (void)0),
         ...);
    }(std::make_index_sequence<tier_count>{});
    return v;
}

// A tier's exception as a failure: a system_error keeps its code (operation_aborted is a cancellation);
// anything else is a server error.
template <class Policies, class... Tiers>
Observation BasicChain<Policies, Tiers...>::observation_from_exception() {
    Observation o;
    try {
        throw;
    } catch (boost::system::system_error const& e) {
        o.transport = e.code();
        o.detail = "tier threw";  // the classifier adds the code's message
    } catch (std::exception const& e) {
        o.transport = make_error_code(Fault::server_error);
        o.detail = detail::excerpt(std::string("tier threw: ") + e.what());
    } catch (...) {
        o.transport = make_error_code(Fault::server_error);
        o.detail = "tier threw a non-standard exception";
    }
    return o;
}

// The awaitable of tier `i`'s attempt. Not a coroutine: it hands over the tier's own awaitable.
template <class Policies, class... Tiers>
boost::asio::awaitable<Outcome> BasicChain<Policies, Tiers...>::dispatch(std::size_t i, Request const& req, Context& ctx) {
    if constexpr (fallible_count > 0) {
        return dispatch_from<0>(i, req, ctx);
    } else {
        (void)i, (void)req, (void)ctx;
        return {};  // unreachable: the pipeline attempts fallible tiers only
    }
}

template <class Policies, class... Tiers>
template <std::size_t I>
boost::asio::awaitable<Outcome> BasicChain<Policies, Tiers...>::dispatch_from(std::size_t i, Request const& req, Context& ctx) {
    if constexpr (I + 1 < fallible_count) {
        if (i != I) return dispatch_from<I + 1>(i, req, ctx);
    }
    return std::get<I>(tiers_).attempt(req, ctx);
}

// --- Shared state ----------------------------------------------------------------------------------

// What other instances learned about tier `i`, merged before choosing a key: nothing to read while the shared
// state's generation is the one merged last. True when the request then needs budget reserved for it.
template <class Policies, class... Tiers>
bool BasicChain<Policies, Tiers...>::merge_shared(std::size_t i, std::uint32_t tokens) {
    if constexpr (sharing) {
        auto& st = shared_->states[i];
        auto const gen = shared_->state.generation();
        bool const news = shared_->seen[i].load(std::memory_order_acquire) != gen;
        if (!news && !st.leases()) return false;
        std::optional<SharedTierState> known;
        if (news) known = shared_->state.snapshot(names_[i], key_ids_[i]);
        std::lock_guard lock(shared_->mutex);
        if (news) shared_->seen[i].store(gen, std::memory_order_release);
        if (known) {
            auto const now_sys = std::chrono::system_clock::now();
            if (known->circuit_until > now_sys) st.merge_shared_circuit(clock_.from_steady(to_steady(known->circuit_until)), clock_.now());
            else if (known->circuit_closed_at != std::chrono::system_clock::time_point{})
                st.merge_shared_close(clock_.from_steady(to_steady_past(known->circuit_closed_at)));
            for (std::size_t k = 0; k < known->keys.size(); ++k) {
                auto until = known->keys[k].cool_until == std::chrono::system_clock::time_point{}
                                 ? Clock::time_point{}
                                 : clock_.from_steady(to_steady(known->keys[k].cool_until));
                st.merge_shared_key(k, until, known->keys[k].disabled);
            }
        }
        return st.leases() && !st.groups_short_of_lease(clock_.now(), tokens).empty();
    } else {
        (void)i, (void)tokens;
        return false;
    }
}

// Reserves budget for a request on tier `i` from the budgets every instance shares: one round trip, which
// leases the group more than the request needs while it is far from its limits. Answers that arrive
// meanwhile may use more than they reserved and leave the lease short again: then another round, at most
// three in all (the request then goes on to the next tier).
template <class Policies, class... Tiers>
boost::asio::awaitable<void> BasicChain<Policies, Tiers...>::reserve_shared(std::size_t i, std::uint32_t tokens) {
    if constexpr (sharing) {
        for (int round = 0; round < 3; ++round) {
            std::vector<LeaseAsk> asks;
            std::vector<std::size_t> groups;
            {
                std::lock_guard lock(shared_->mutex);
                auto& st = shared_->states[i];
                groups = st.groups_short_of_lease(clock_.now(), tokens);
                auto const cap = st.capacities();
                auto const periods = st.periods();
                for (auto g : groups) {
                    LeaseAsk ask;
                    ask.group = group_names_[i][g];
                    ask.need = st.lease_need(g, tokens);
                    ask.capacity = cap;
                    for (std::size_t b = 0; b < 4; ++b) ask.period[b] = std::chrono::duration_cast<std::chrono::milliseconds>(periods[b]);
                    asks.push_back(std::move(ask));
                }
            }
            if (asks.empty()) co_return;
            LeaseGrant grant = co_await shared_->state.reserve(names_[i], asks);
            std::lock_guard lock(shared_->mutex);
            auto& st = shared_->states[i];
            if (grant.kind == LeaseGrant::Kind::granted && grant.index < groups.size()) {
                st.add_lease(groups[grant.index], grant.amounts);
            } else {
                // The store is away: this instance goes on with its own budgets, as if it were alone.
                if (grant.kind == LeaseGrant::Kind::unknown) st.add_lease(groups.front(), asks.front().need);
                co_return;
            }
        }
    } else {
        (void)i, (void)tokens;
        co_return;
    }
}

// Tells the other instances what a request learned, so none of them pays a round trip to learn it. Returns
// at once: the shared state sends it in the background.
template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::publish(engine::Action const& a) {
    if constexpr (sharing) {
        auto const& tier = names_[a.tier];
        switch (a.news) {
        case engine::News::key:
            shared_->state.push_key(tier, key_ids_[a.tier][static_cast<std::size_t>(a.key)], to_system(clock_.to_steady(a.until)), a.disabled);
            break;
        case engine::News::circuit:
            shared_->state.push_circuit(tier, a.until == Clock::time_point{} ? std::chrono::system_clock::time_point{}
                                                                            : to_system(clock_.to_steady(a.until)));
            break;
        case engine::News::none:
            break;
        }
    } else {
        (void)a;
    }
}

} // namespace cascade
