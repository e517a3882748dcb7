#pragma once
/// @file
/// @brief `sim::ModelledTier`: a tier that behaves like a provider account without the network. It enforces
/// the account's limits in simulated time, refuses with the provider's real responses (so the chain's real
/// classifier reads them), answers after a latency drawn from a distribution, prices its answers, and can
/// be scripted with episodes (an IP block of four hours, an outage, a region's quota, short answers).
///
/// It is a `FallibleTier` like any provider, so the chain around it is the real one: pipeline, classifier,
/// cooldowns, quota groups, budgets, cache and single flight. It waits on a `ManualClock`, which the chain
/// shares: a day of traffic runs in seconds.

#include <cascade/core/prices.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/engine/clock.hpp>
#include <cascade/sim/dialect.hpp>
#include <cascade/sim/limits.hpp>

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade::sim {

namespace detail {

/// @brief splitmix64: deterministic, and the same on every platform.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t s_;
};

} // namespace detail

/// @brief How long an answer takes: `first_token` plus the answer's tokens at `tokens_per_second`, times
/// a log-normal factor of spread `jitter` (median 1); a refusal takes `refusal`.
struct LatencyModel {
    std::chrono::milliseconds first_token{400};
    double tokens_per_second = 200.0;
    double jitter = 0.25;
    std::chrono::milliseconds refusal{60};
};

/// @brief Answer sizes in tokens, uniform in [min, max] and fixed per prompt (a repeated prompt gets an
/// answer of the same size), capped by the request's `max_tokens`.
struct TokenRange {
    std::uint32_t min = 900;
    std::uint32_t max = 2200;
};

/// @brief A scripted stretch of the provider's life, from `from` after the simulation starts, for
/// `length` (zero: to the end).
struct Episode {
    /// `blocked`, `outage`, `quota` (refuse every request of the chosen keys) or `short_answer` (a share of
    /// answers come back too short to accept).
    Limit kind = Limit::blocked;
    Clock::duration from{0};
    Clock::duration length{0};
    /// Keys (or regions) it touches, by index; empty: all.
    std::vector<int> keys;
    /// For `short_answer`: the share of answers affected.
    double share = 1.0;
};

/// @brief One key (or region) of the account.
struct ModelledKey {
    /// The attempt's label (`groq3`, `vertex-pro/europe-west1`); empty: the chain's default.
    std::string label;
    /// The organization or project whose limits it shares; empty: its own.
    std::string group;
};

/// @brief A modelled provider account.
struct ModelledTierConfig {
    std::string name = "modelled";
    std::string model = "model";
    Dialect dialect = Dialect::openai;
    std::vector<ModelledKey> keys{ModelledKey{}};
    /// The provider's limits, per quota group (a key without a group is its own).
    AccountLimits limits;
    /// The chain is configured with `limits` as its keys' budgets (`KeyLimits`).
    bool chain_budgets = true;
    /// The chain is told which keys share a group (`quota_group`); otherwise it budgets each key alone.
    bool chain_knows_groups = true;
    Prices prices;
    /// Credits the provider includes for free (Hugging Face's $0.10 a month): answers are paid from them at
    /// list price and cost $0 until they are spent; they renew each UTC month (or day, with
    /// `credits_renew_daily`). Negative: none.
    double included_credits_usd = -1.0;
    /// The included credits renew each UTC day rather than each month (a month's credits spread as a
    /// daily share, so that a one-day simulation extrapolates to a month).
    bool credits_renew_daily = false;
    /// A prepaid balance (DeepSeek's): answers are paid from it; 402 once it is spent. Negative: unlimited.
    double balance_usd = -1.0;
    /// The share of prompt tokens the provider bills as cache hits (DeepSeek's context cache).
    double cached_prompt_share = 0.0;
    LatencyModel latency;
    TokenRange answer_tokens;
    std::vector<Episode> episodes;
    std::uint64_t seed = 1;
};

/// @brief What the modelled provider saw: its own counts, to hold the chain's statistics against.
struct ModelledCounts {
    std::uint64_t received = 0;   ///< attempts that reached it
    std::uint64_t answered = 0;   ///< 200s (short answers included)
    std::uint64_t refused = 0;    ///< error responses
    std::array<std::uint64_t, limit_count> trips{};  ///< refusals (and short answers) by cause
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    double cost_usd = 0.0;        ///< what its answers cost the caller
    double credits_spent_usd = 0.0;
    std::vector<std::uint64_t> answered_by_key;

    std::uint64_t trips_of(Limit l) const noexcept { return trips[static_cast<std::size_t>(l)]; }
};

/// @brief A provider account in simulated time, as a chain tier. Copies share the account.
class ModelledTier {
public:
    ModelledTier(ModelledTierConfig cfg, ManualClock clock) : state_(std::make_shared<State>(std::move(cfg), std::move(clock))) {}

    std::string_view name() const noexcept { return state_->cfg.name; }
    std::size_t key_count() const noexcept { return state_->cfg.keys.size(); }
    KeyLimits key_limits() const noexcept {
        auto const& l = state_->cfg.limits;
        if (!state_->cfg.chain_budgets) return {};
        return KeyLimits{l.tokens_per_minute, l.requests_per_minute, l.tokens_per_day, l.requests_per_day};
    }
    std::string quota_group(int key) const { return state_->cfg.chain_knows_groups ? state_->key(key).group : std::string(); }
    std::string label(int key) const {
        auto const& k = state_->key(key);
        if (!k.label.empty()) return k.label;
        std::string s = state_->cfg.name;
        if (key_count() > 1) s += std::to_string(key + 1);
        return s;
    }

    ModelledTierConfig const& config() const noexcept { return state_->cfg; }
    ModelledCounts const& counts() const noexcept { return state_->counts; }

    /// @brief The answer size for `req`, in tokens, before `max_tokens` caps it.
    std::uint32_t answer_tokens(Request const& req) const noexcept {
        auto const& r = state_->cfg.answer_tokens;
        if (r.max <= r.min) return r.min;
        return r.min + static_cast<std::uint32_t>(prompt_hash(req) % (r.max - r.min + 1));
    }

    boost::asio::awaitable<Outcome> attempt(Request const& req, Context& ctx);

private:
    struct State {
        State(ModelledTierConfig c, ManualClock k) : cfg(std::move(c)), clock(std::move(k)), account(cfg.limits), start(clock.now()), rng(cfg.seed) {
            counts.answered_by_key.resize(cfg.keys.size());
        }
        ModelledKey const& key(int k) const {
            static ModelledKey const none;
            return k >= 0 && static_cast<std::size_t>(k) < cfg.keys.size() ? cfg.keys[static_cast<std::size_t>(k)] : none;
        }
        std::string group_of(int k) const {
            auto const& g = key(k).group;
            return g.empty() ? "key:" + std::to_string(k) : g;
        }
        double uniform() { return rng.uniform(); }
        double normal() {
            double const u1 = std::max(uniform(), 1e-12), u2 = uniform();
            return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        }

        ModelledTierConfig cfg;
        ManualClock clock;
        Account account;
        Clock::time_point start;
        detail::Rng rng;
        ModelledCounts counts;
        double credits_left = 0.0;
        long credits_period = -1;

        /// Renews the included credits when `utc` is in a new month (or day).
        void renew(std::chrono::system_clock::time_point utc) {
            auto const day = std::chrono::floor<std::chrono::days>(utc);
            long period = static_cast<long>(day.time_since_epoch().count());
            if (!cfg.credits_renew_daily) {
                std::chrono::year_month_day const ymd{day};
                period = static_cast<int>(ymd.year()) * 12L + static_cast<long>(static_cast<unsigned>(ymd.month()));
            }
            if (period != credits_period) {
                credits_period = period;
                credits_left = cfg.included_credits_usd;
            }
        }
    };

    static std::uint64_t prompt_hash(Request const& req) noexcept {
        std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the prompt's head and its size
        std::string_view const p = req.prompt();
        for (char ch : p.substr(0, 256)) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
        return (h ^ p.size()) * 1099511628211ull;
    }

    Episode const* episode_at(Clock::time_point now, int key, bool (*which)(Limit)) const {
        for (auto const& e : state_->cfg.episodes) {
            if (!which(e.kind)) continue;
            auto const from = state_->start + e.from;
            if (now < from || (e.length != Clock::duration::zero() && now >= from + e.length)) continue;
            if (!e.keys.empty() && std::find(e.keys.begin(), e.keys.end(), key) == e.keys.end()) continue;
            return &e;
        }
        return nullptr;
    }

    std::shared_ptr<State> state_;
};

} // namespace cascade::sim

#include <cascade/sim/impl/modelled_tier.hpp>
