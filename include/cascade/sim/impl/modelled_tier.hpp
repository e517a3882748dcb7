#pragma once
// Definitions of sim::ModelledTier (sim/modelled_tier.hpp).

#include <cascade/sim/modelled_tier.hpp>

namespace cascade::sim {

namespace detail {

/// Text of `chars` characters for an answer: a report's sentences, repeated.
inline std::string answer_text(std::size_t chars) {
    static std::string const para =
        "## Finding\nThe wallet setup keeps the seed phrase offline, but approvals granted to old contracts remain open. "
        "Revoke them, move long-term funds to a hardware wallet, and verify every address character by character "
        "before sending: address poisoning copies the first and last characters. ";
    std::string s;
    s.reserve(chars);
    while (s.size() < chars) s.append(para, 0, std::min(para.size(), chars - s.size()));
    return s;
}

} // namespace detail

inline boost::asio::awaitable<Outcome> ModelledTier::attempt(Request const& req, Context& ctx) {
    auto state = state_;  // the account outlives this attempt even if the tier is moved
    auto& s = *state;
    auto& n = s.counts;
    Instant const at{s.clock.now(), s.clock.utc_now()};
    int const key = ctx.key;
    std::string const group = s.group_of(key);
    ++n.received;

    auto const prompt = static_cast<std::uint64_t>(req.estimated_prompt_tokens());
    std::uint64_t out = answer_tokens(req);
    bool const capped = req.max_tokens && *req.max_tokens > 0;
    if (capped) out = std::min<std::uint64_t>(out, static_cast<std::uint64_t>(*req.max_tokens));
    std::uint64_t const reserve = capped ? static_cast<std::uint64_t>(*req.max_tokens) : out;

    // What refuses this attempt, if anything: an episode, spent credits, then the account's limits.
    std::optional<Trip> trip;
    bool credit_paid = false;  // decided at admission: an answer admitted on the included credits is paid from them
    if (auto e = episode_at(at.now, key, [](Limit l) { return l == Limit::blocked || l == Limit::outage || l == Limit::quota; })) {
        trip = Trip{e->kind, 0, 0, 0, Clock::duration::zero()};
    } else {
        if (s.cfg.included_credits_usd >= 0.0) s.renew(at.utc);
        bool const covered = s.cfg.included_credits_usd >= 0.0 && s.credits_left > 0.0;
        bool const prepaid = s.cfg.balance_usd >= 0.0;
        bool const paid_left = prepaid && n.cost_usd < s.cfg.balance_usd;
        if (s.cfg.included_credits_usd >= 0.0 && !covered && (!prepaid || !paid_left)) trip = Trip{Limit::credits, 0, 0, 0, Clock::duration::zero()};
        else if (s.cfg.included_credits_usd < 0.0 && prepaid && !paid_left) trip = Trip{Limit::credits, 0, 0, 0, Clock::duration::zero()};
        else trip = s.account.admit(group, prompt, reserve, at);
        credit_paid = covered;
    }

    if (trip) {
        ++n.refused;
        ++n.trips[static_cast<std::size_t>(trip->limit)];
        Response r = refusal(s.cfg.dialect, *trip, s.cfg.model, at.utc);
        if (s.cfg.dialect == Dialect::groq && r.status == 429) add_groq_rate_headers(r.headers, s.cfg.limits, s.account.usage(group, at));
        auto const wait_ec = co_await s.clock.wait_until(at.now + s.cfg.latency.refusal);
        if (wait_ec) co_return failed_without_response(wait_ec);
        co_return failed_response(r.status, std::move(r.headers), std::move(r.body));
    }

    // An answer: first token, then the tokens at the model's speed, spread log-normally.
    auto const& lat = s.cfg.latency;
    double secs = std::chrono::duration<double>(lat.first_token).count() +
                  (lat.tokens_per_second > 0.0 ? static_cast<double>(out) / lat.tokens_per_second : 0.0);
    if (lat.jitter > 0.0) secs *= std::exp(lat.jitter * s.normal());
    auto const* short_episode = episode_at(at.now, key, [](Limit l) { return l == Limit::short_answer; });
    bool const short_answer = short_episode != nullptr && s.uniform() < short_episode->share;
    auto const wait_ec = co_await s.clock.wait_until(at.now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)));
    Instant const done{s.clock.now(), s.clock.utc_now()};
    if (wait_ec) {  // cancelled: the provider still counted the prompt
        s.account.settle(group, prompt + reserve, prompt, done);
        co_return failed_without_response(wait_ec);
    }
    if (short_answer) out = std::min<std::uint64_t>(out, 75);  // about 300 characters
    s.account.settle(group, prompt + reserve, prompt + out, done);

    Completion c;
    c.text = detail::answer_text(static_cast<std::size_t>(out) * 4);
    c.model = s.cfg.model;
    c.finish_reason = "stop";
    c.usage.prompt_tokens = static_cast<std::uint32_t>(prompt);
    c.usage.completion_tokens = static_cast<std::uint32_t>(out);
    c.usage.cached_prompt_tokens = static_cast<std::uint32_t>(static_cast<double>(prompt) * std::clamp(s.cfg.cached_prompt_share, 0.0, 1.0));
    double const list = s.cfg.prices.cost(c.usage, ctx.utc);
    if (credit_paid) {
        s.credits_left -= list;  // paid from the included credits (the last answer may overdraw them)
        n.credits_spent_usd += list;
        c.cost_usd = 0.0;
    } else {
        c.cost_usd = list;
    }
    c.cost_known = s.cfg.prices.known() || s.cfg.included_credits_usd >= 0.0;
    c.label = label(key);
    c.id = "sim-" + std::to_string(n.received);
    c.created = std::chrono::duration_cast<std::chrono::seconds>(done.utc.time_since_epoch()).count();

    ++n.answered;
    if (short_answer) ++n.trips[static_cast<std::size_t>(Limit::short_answer)];
    if (key >= 0 && static_cast<std::size_t>(key) < n.answered_by_key.size()) ++n.answered_by_key[static_cast<std::size_t>(key)];
    n.prompt_tokens += prompt;
    n.completion_tokens += out;
    n.cost_usd += c.cost_usd;
    co_return c;
}

} // namespace cascade::sim
