#pragma once
// BasicChain's streams (chain.hpp, stream.hpp): the request runs through the same driver as `complete`,
// with the stream's state as the tiers' `StreamSink`; what the driver returns becomes the stream's end.

#include <cascade/chain.hpp>  // the face: this file holds its definitions

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace cascade {


template <class Policies, class... Tiers>
TextStream BasicChain<Policies, Tiers...>::stream(Request req, StreamOptions opts) {
    auto st = std::make_shared<detail::StreamState>(ex_, std::move(opts), std::move(req));
    start_stream(st, [](std::shared_ptr<detail::StreamState> const&) {});
    return TextStream(std::move(st));
}

template <class Policies, class... Tiers>
template <class OnDelta, class Token>
auto BasicChain<Policies, Tiers...>::async_stream(Request req, StreamOptions opts, OnDelta on_delta, Token&& token) {
    return boost::asio::async_initiate<Token, void(StreamResult)>(
        [this](auto handler, Request r, StreamOptions o, OnDelta d) {
            auto slot = boost::asio::get_associated_cancellation_slot(handler);
            auto hex = boost::asio::get_associated_executor(handler, ex_);
            auto st = std::make_shared<detail::StreamState>(ex_, std::move(o), std::move(r), detail::StreamState::OnDelta(std::move(d)));
            if (slot.is_connected()) slot.assign([st](boost::asio::cancellation_type) { st->cancel(); });
            auto done = [h = std::move(handler), hex, slot](std::shared_ptr<detail::StreamState> const& s) mutable {
                if (slot.is_connected()) slot.clear();
                boost::asio::post(hex, [h = std::move(h), s]() mutable { std::move(h)(s->result()); });
            };
            start_stream(std::move(st), std::move(done));
        },
        token, std::move(req), std::move(opts), std::move(on_delta));
}

// The request on a strand of its own, bound to the stream's cancellation signal (`TextStream::cancel`).
template <class Policies, class... Tiers>
template <class Done>
void BasicChain<Policies, Tiers...>::start_stream(std::shared_ptr<detail::StreamState> st, Done done) {
    auto op = stream_run(st);
    auto strand = st->strand();
    auto slot = st->slot();
    auto finished = [st, done = std::move(done)](std::exception_ptr e) mutable {
        if (e && !st->ended()) {
            // The chain's own failure (bad_alloc at most): the stream still ends, typed.
            StreamResult r;
            r.end = st->cancelled() ? StreamEnd::cancelled : StreamEnd::failed;
            r.error = make_error_code(st->cancelled() ? Fault::cancelled : Fault::server_error);
            r.completion.text = st->delivered();
            st->end(std::move(r));
        }
        done(st);
    };
    boost::asio::co_spawn(strand, std::move(op), boost::asio::bind_cancellation_slot(slot, std::move(finished)));
}

template <class Policies, class... Tiers>
boost::asio::awaitable<void> BasicChain<Policies, Tiers...>::stream_run(std::shared_ptr<detail::StreamState> st) {
    Request const& req = st->request();
    auto const start = clock_.now();
    StreamResult res;

    std::string key;
    if constexpr (caching) {
        key = cache_key(req);
        std::optional<Completion> hit;
        auto& cache = shared_->cache;
        if constexpr (std::is_same_v<decltype(cache.get(key)), std::optional<Completion>>)
            hit = cache.get(key);
        else
            hit = co_await cache.get(key);
        if (hit && !st->cancelled()) {
            hit->cached_label = std::move(hit->label);
            hit->label = "cache";
            hit->origin = Origin::cache;
            hit->trail.clear();
            hit->latency = since(start);
            record_special(tier_count, "cache", hit->latency);
            st->deliver_whole(hit->text);
            res.end = StreamEnd::complete;
            res.completion = std::move(*hit);
            st->end(std::move(res));
            co_return;
        }
    }

    auto const deadline = deadline_for(req);
    std::vector<Attempt> trail;
    Context outer;
    outer.trail = &trail;
    outer.deadline = clock_.to_steady(deadline);
    outer.sink = st.get();
    std::optional<result_type> r;
    if (needs_guard && deadline != Clock::time_point::max())
        r.emplace(co_await guarded(req, start, deadline, &outer));
    else
        r.emplace(co_await drive(req, start, deadline, &outer));

    // An answer: a fallible chain's value; for an infallible one, a Completion `finish` labelled (the
    // unlabelled one is what a stream cut after commit leaves, see `failure`).
    Completion* answer = nullptr;
    bool deadline_cut = false;
    if constexpr (infallible) {
        if (!r->label.empty()) answer = &*r;
        // The deadline's guard answered with the template while a committed attempt was still streaming.
        if (answer && answer->origin == Origin::fallback && st->committed()) {
            answer = nullptr;
            deadline_cut = true;
        }
    } else {
        if (*r) answer = &**r;
        else deadline_cut = r->error().code == make_error_code(Fault::deadline_exceeded);
    }

    if (st->cancelled()) {
        res.end = StreamEnd::cancelled;
        res.error = make_error_code(Fault::cancelled);
        res.completion.text = st->delivered();
        res.completion.trail = std::move(trail);
    } else if (answer) {
        st->deliver_whole(answer->text);  // a tier that answered whole, or a hold-back the answer ended inside
        answer->trail = std::move(trail);
        answer->latency = since(start);
        if constexpr (caching) {
            if (answer->origin == Origin::tier) {
                if constexpr (std::is_same_v<decltype(shared_->cache.put(key, *answer)), void>)
                    shared_->cache.put(key, *answer);
                else
                    co_await shared_->cache.put(key, *answer);
            }
        }
        res.end = StreamEnd::complete;
        res.completion = std::move(*answer);
    } else if (st->committed()) {
        // Cut after its text reached the caller: what came is kept, typed as incomplete.
        res.end = StreamEnd::incomplete;
        res.completion.text = st->delivered();
        if (!trail.empty()) {
            res.error = trail.back().fault;
            res.completion.label = trail.back().label;
        }
        if (deadline_cut) res.error = make_error_code(Fault::deadline_exceeded);
        if (!res.error) res.error = make_error_code(Fault::server_error);
        res.completion.usage = estimate_usage(req, res.completion.text);
        res.completion.cost_known = false;
        res.completion.latency = since(start);
        res.completion.trail = std::move(trail);
    } else {
        res.end = StreamEnd::failed;
        if constexpr (!infallible) res.error = r->error().code;
        if (!res.error) res.error = make_error_code(Fault::server_error);
        res.completion.trail = std::move(trail);
    }
    report_stream(*st, res);
    st->end(std::move(res));
}

// The observer's `on_stream`, when it has one: which tier's text reached the caller, and how it ended.
template <class Policies, class... Tiers>
void BasicChain<Policies, Tiers...>::report_stream(detail::StreamState const& st, StreamResult const& res) {
    if constexpr (requires(observe_type& o, StreamEvent const& e) { o.on_stream(e); }) {
        StreamEvent e;
        e.end = static_cast<std::uint8_t>(res.end);
        auto const delivered = st.delivered();
        e.committed = !delivered.empty();
        e.deltas = st.deltas();
        e.time_to_first_token = st.time_to_first_token();
        e.label = res.completion.origin == Origin::cache ? std::string_view("cache") : std::string_view(res.completion.label);
        e.tier = tier_count;
        if (res.completion.origin == Origin::fallback) {
            e.tier = tier_count - 1;
        } else if (res.completion.origin == Origin::cache) {
            e.tier = tier_count;
        } else {
            for (std::size_t i = 0; i < tier_count && e.tier == tier_count; ++i)
                for (auto const& l : labels_[i])
                    if (l == res.completion.label) e.tier = i;
            if (e.tier == tier_count)
                for (std::size_t i = 0; i < tier_count; ++i)
                    if (names_[i] == res.completion.label) e.tier = i;
        }
        // Past the tiers: the cache's row, or (nothing delivered) no tier at all.
        e.tier_name = e.tier < tier_count                           ? std::string_view(names_[e.tier])
                      : res.completion.origin == Origin::cache ? std::string_view("cache")
                                                                    : std::string_view("none");
        shared_->observe.on_stream(e);
    }
}

} // namespace cascade
