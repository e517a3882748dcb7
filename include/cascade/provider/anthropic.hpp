#pragma once
/// @file
/// @brief `BasicAnthropic<MaxKeys>` / `Anthropic<N>`: Anthropic's Messages API as a tier, with a key pool.

#include <cascade/cache/key.hpp>
#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/engine/config.hpp>
#include <cascade/net/http_client.hpp>
#include <cascade/net/sse_parser.hpp>
#include <cascade/provider/anthropic_wire.hpp>
#include <cascade/provider/keys.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

/// @brief Run-time configuration of an Anthropic tier. Every member has a working default but `keys`.
struct AnthropicConfig {
    /// Name in stats and the base of labels: `anthropic`, or `anthropic1`..`anthropicN` for a pool.
    std::string name = "anthropic";
    /// The request goes to base URL + `path`.
    std::string base_url = "https://api.anthropic.com";
    std::string path = "/v1/messages";
    /// Claude Haiku 4.5 (alias of `claude-haiku-4-5-20251001`): Anthropic's cheapest current model, as a
    /// fallback tier should be (models overview and pricing pages, copies read 2026-12).
    std::string model = "claude-haiku-4-5";
    /// Sent as `anthropic-version`; `2023-06-01` is the value in every official example.
    std::string version = "2023-06-01";
    /// The key pool, tried in the chain's key order; each is sent as `x-api-key`. Never printed.
    std::vector<Secret> keys;
    /// Label attempts `name1`..`nameN` (a pool) rather than `name`.
    bool number_labels = false;
    /// USD per million input and output tokens: Claude Haiku 4.5's $1 / $5 (read 2026-12). Cache writes
    /// are billed at 1.25 times the input price, cache reads at 0.1 times (`anthropic::TokenCounts::cost`).
    Prices prices{1.0, 5.0};
    /// `max_tokens` when the request's is unset, or 0 or less: Anthropic requires one.
    int default_max_tokens = 4096;
    /// Budgets of each quota group; Anthropic's depend on the organization's usage tier (none by default).
    KeyLimits key_limits;
    /// The quota group of each key, in the order of `keys`: keys of one organization share its rate
    /// limits, so a 429 on one cools them all. Empty (or an empty name): each key is its own group.
    std::vector<std::string> quota_groups;
    /// Sent with every request (e.g. `anthropic-beta`).
    Headers extra_headers;
    /// Transport: timeouts, body limit, TLS.
    net::ClientConfig http;
    /// Ask for a server-sent-event stream and assemble it (errors after a 200 are then seen as such).
    bool stream = false;
};

/// @brief Anthropic's Messages API (`POST /v1/messages`) as a tier with a pool of at most `MaxKeys` keys.
///
/// Default-constructed, it reads the environment: keys from `ANTHROPIC_API_KEY_1..N`, `ANTHROPIC_API_KEYS`
/// (comma list) or `ANTHROPIC_API_KEY`; `ANTHROPIC_BASE_URL` and `ANTHROPIC_MODEL` override the defaults;
/// `ANTHROPIC_QUOTA_GROUPS` (comma list, one name per key) says which keys share an organization's limits.
/// With no key the tier is skipped as `unconfigured`. Copies share one connection pool and configuration.
/// @code
/// auto cfg = cascade::Anthropic<2>::defaults();
/// cfg.keys = cascade::keys_from_files({"/run/secrets/anthropic1", "/run/secrets/anthropic2"}).value();
/// cascade::Chain<cascade::Anthropic<2>, cascade::Template> chain(io.get_executor(), cascade::Anthropic<2>(cfg), cascade::Template{});
/// @endcode
template <std::size_t MaxKeys = 1>
class BasicAnthropic {
public:
    /// Every attempt ends by `Context::deadline`: the transport's timers are set to it.
    static constexpr bool honours_deadline = true;

    /// @brief Configured from the environment.
    BasicAnthropic() : BasicAnthropic(from_env()) {}
    /// @brief Configured explicitly (start from `defaults()`).
    explicit BasicAnthropic(AnthropicConfig cfg) : state_(std::make_shared<State>(std::move(cfg))) {}

    /// @brief The defaults, with no keys; labels numbered when the pool may hold more than one key.
    static AnthropicConfig defaults() {
        AnthropicConfig c;
        c.number_labels = MaxKeys > 1;
        return c;
    }

    /// @brief The defaults with what the environment says (see the class).
    static AnthropicConfig from_env() {
        AnthropicConfig c = defaults();
        if (char const* v = std::getenv("ANTHROPIC_BASE_URL"); v && *v) c.base_url = v;
        if (char const* v = std::getenv("ANTHROPIC_MODEL"); v && *v) c.model = v;
        c.keys = keys_from_env("ANTHROPIC_API_KEY");
        if (c.keys.size() > MaxKeys) c.keys.resize(MaxKeys);
        if (char const* groups = std::getenv("ANTHROPIC_QUOTA_GROUPS")) {
            std::string_view rest(groups);
            while (!rest.empty()) {
                auto comma = rest.find(',');
                c.quota_groups.emplace_back(detail::trim(rest.substr(0, comma)));
                if (comma == std::string_view::npos) break;
                rest.remove_prefix(comma + 1);
            }
        }
        return c;
    }

    std::string_view name() const noexcept { return state_->cfg.name; }
    std::size_t key_count() const noexcept { return state_->cfg.keys.size(); }
    KeyLimits key_limits() const noexcept { return state_->cfg.key_limits; }
    std::string label(int key) const {
        if (!state_->cfg.number_labels || key < 0) return state_->cfg.name;
        return state_->cfg.name + std::to_string(key + 1);
    }
    std::string quota_group(int key) const {
        auto const& g = state_->cfg.quota_groups;
        return key >= 0 && static_cast<std::size_t>(key) < g.size() ? g[static_cast<std::size_t>(key)] : std::string();
    }
    /// @brief A stable, non-secret name of key `key` for shared state: the first 16 hex digits of its SHA-256.
    std::string key_id(int key) const {
        if (key < 0 || static_cast<std::size_t>(key) >= state_->cfg.keys.size()) return std::to_string(key);
        return sha256_hex(state_->cfg.keys[static_cast<std::size_t>(key)].reveal()).substr(0, 16);
    }
    AnthropicConfig const& config() const noexcept { return state_->cfg; }

    /// @brief Connections opened so far by this tier's pool (for tests and metrics).
    std::size_t connections_opened() const {
        std::lock_guard lock(state_->mutex);
        return state_->client ? state_->client->connections_opened() : 0;
    }

    boost::asio::awaitable<Outcome> attempt(Request const& req, Context& ctx) {
        auto state = state_;  // keeps the configuration alive across suspension
        auto const& cfg = state->cfg;
        if (!state->origin)
            co_return failed_without_response(Fault::unconfigured, "bad base URL for " + cfg.name + ": " + state->origin_error);
        if (ctx.key < 0 || static_cast<std::size_t>(ctx.key) >= cfg.keys.size())
            co_return failed_without_response(Fault::unconfigured, "no key for " + cfg.name);
        auto client = state->client_for(co_await boost::asio::this_coro::executor);
        if (auto tls = client->tls_setup_error())
            co_return failed_without_response(Fault::unconfigured, "extra CA for " + cfg.name + " is not usable PEM: " + tls.message());

        // A field the Messages API cannot carry is said, not dropped.
        if (auto problem = anthropic::request_problem(req); !problem.empty())
            co_return failed_without_response(Fault::bad_request, std::move(problem));

        net::HttpRequest http;
        http.method = "POST";
        http.target = state->origin->base_path + cfg.path;
        http.headers.add("x-api-key", std::string(cfg.keys[static_cast<std::size_t>(ctx.key)].reveal()));
        http.headers.add("anthropic-version", cfg.version);
        http.headers.add("content-type", "application/json");
        for (auto const& h : cfg.extra_headers) http.headers.add(h.name, h.value);
        bool const stream = cfg.stream || ctx.sink;  // a chain's stream asks for one whatever `stream` says
        http.body = anthropic::request_body(req, cfg.model, cfg.default_max_tokens, stream);
        if (stream) co_return co_await streamed(state, client, std::move(http), req, ctx);

        auto res = co_await client->request(*state->origin, std::move(http), ctx.deadline);
        if (!res) co_return failed_without_response(res.error());
        auto& resp = *res;
        // A 2xx we cannot use (an error envelope, a truncated body) is a failure for the classifier too.
        std::optional<anthropic::Reply> parsed;
        if (resp.status >= 200 && resp.status < 300)
            if (auto r = anthropic::parse_reply(resp.body)) parsed = std::move(*r);
        if (!parsed) co_return failed_response(resp.status, std::move(resp.headers), std::move(resp.body));
        co_return Outcome(answer(*parsed, req, ctx.key, ctx.utc));
    }

private:
    struct State;

    // A streamed answer: SSE events assembled into one reply. An `error` event after the 200 (an
    // `overloaded_error` mid-stream), an unreadable event, or a stream cut before its end is a failure.
    boost::asio::awaitable<Outcome> streamed(std::shared_ptr<State> state, std::shared_ptr<net::HttpClient> client,
                                             net::HttpRequest http, Request const& req, Context& ctx) {
        net::SseParser sse;
        anthropic::StreamAssembler assembler;
        StreamSink* const out = ctx.sink;
        bool stopped = false;
        // Each event's new text goes to the chain's sink as it arrives; the sink may stop the attempt.
        auto on_body = [&](std::string_view piece) {
            sse.feed(piece, [&](net::SseEvent const& e) {
                if (stopped) return;
                auto const before = assembler.reply().text.size();
                assembler.on_data(e.data, e.error);
                auto const& text = assembler.reply().text;
                if (out && text.size() > before && !out->delta(std::string_view(text).substr(before))) stopped = true;
            });
            return !stopped;
        };
        auto next_by = [out] { return out ? out->next_by() : std::chrono::steady_clock::time_point::max(); };
        auto res = co_await client->request_stream(*state->origin, std::move(http), ctx.deadline, on_body, next_by);
        if (!res) co_return stream_failure(out, stopped, res.error());
        if (res->status < 200 || res->status >= 300)
            co_return failed_response(res->status, std::move(res->headers), std::move(res->body));
        // The error event's data is the error envelope a non-streamed response would have had as its body.
        if (assembler.errored() || assembler.malformed())
            co_return failed_response(res->status, std::move(res->headers), assembler.failed_data(), "stream event");
        if (!assembler.complete())
            co_return failed_without_response(boost::beast::http::error::partial_message, "stream ended before message_stop");
        auto c = answer(assembler.reply(), req, ctx.key, ctx.utc);
        if (c.usage.prompt_tokens == 0 && c.usage.completion_tokens == 0) c.usage = estimate_usage(req, c.text);
        co_return Outcome(std::move(c));
    }

    Completion answer(anthropic::Reply& r, Request const& req, int key, std::chrono::system_clock::time_point utc) const {
        Completion c;
        c.text = std::move(r.text);
        c.id = std::move(r.id);
        c.model = r.model.empty() ? req.model.value_or(state_->cfg.model) : std::move(r.model);
        c.finish_reason = std::move(r.stop_reason);
        c.usage = r.tokens.usage();
        c.cost_usd = r.tokens.cost(state_->cfg.prices, utc);
        c.cost_known = state_->cfg.prices.known();
        c.label = label(key);
        return c;
    }

    struct State {
        explicit State(AnthropicConfig c) : cfg(std::move(c)) {
            auto o = net::Url::parse(cfg.base_url);
            if (o) origin = std::move(*o);
            else origin_error = o.error().message;
        }

        std::shared_ptr<net::HttpClient> client_for(boost::asio::any_io_executor ex) {
            std::lock_guard lock(mutex);
            if (!client) client = std::make_shared<net::HttpClient>(std::move(ex), cfg.http);
            return client;
        }

        AnthropicConfig cfg;
        std::optional<net::Url> origin;
        std::string origin_error;
        mutable std::mutex mutex;
        std::shared_ptr<net::HttpClient> client;
    };

    std::shared_ptr<State> state_;
};

/// @brief Anthropic with a pool of up to `N` keys (labelled `anthropic1`..`anthropicN` when `N` > 1).
template <std::size_t N = 1>
using Anthropic = BasicAnthropic<N>;

} // namespace cascade
