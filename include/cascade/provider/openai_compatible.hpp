#pragma once
/// @file
/// @brief `OpenAICompatible`: a tier for any OpenAI-style chat-completions API, with a key pool; ready
/// traits for Groq, DeepSeek, OpenRouter, Hugging Face's router, Ollama and vLLM (OpenAI, Mistral, Together,
/// Fireworks, Cerebras and Azure OpenAI: `openai_family.hpp`).

#include <cascade/cache/key.hpp>
#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/net/http_client.hpp>
#include <cascade/net/sse_parser.hpp>
#include <cascade/engine/config.hpp>
#include <cascade/provider/keys.hpp>
#include <cascade/provider/openai_wire.hpp>
#include <cascade/security/redact.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

/// @brief Run-time configuration of an OpenAI-compatible provider. Every deployment-specific value
/// lives here (or in the environment), so one binary serves dev and prod.
struct ProviderConfig {
    /// Name in stats and the base of labels: `groq` gives `groq1`..`groqN` for a pool, `deepseek` alone.
    std::string name;
    /// Base URL, e.g. `https://api.groq.com/openai/v1`; the request goes to base URL + `path`.
    std::string base_url;
    std::string path = "/chat/completions";
    /// Appended to every request's path after `?` (Azure OpenAI's `api-version=2024-10-21`); empty: none.
    /// Like `path`, visible ASCII only (percent-encode the rest).
    std::string query;
    /// Required: a tier without a model (or base URL) fails every attempt as `unconfigured`.
    std::string model;
    /// The key pool, tried in the chain's key order. Never printed.
    std::vector<Secret> keys;
    /// Local servers (Ollama, vLLM) need no key; with `false` the tier has one keyless slot.
    bool key_required = true;
    /// How a key is sent: header `key_header` with value `key_prefix` + key. Azure OpenAI: `api-key`, no prefix.
    std::string key_header = "authorization";
    std::string key_prefix = "Bearer ";
    /// Label attempts `name1`..`nameN` (a pool) rather than `name`.
    bool number_labels = false;
    /// USD per million input, cached input and output tokens, time-of-day prices, and whether the keys are on a
    /// free tier (answers then cost $0); cost is computed from the response's usage.
    Prices prices;
    /// Budgets of each quota group (Groq's free tier: see `GroqTraits`).
    KeyLimits key_limits;
    /// The quota group of each key, in the order of `keys`: keys of one organization share its limits, so
    /// a 429 on one cools them all. Empty (or an empty name): each key is its own group.
    std::vector<std::string> quota_groups;
    /// Sent with every request (e.g. OpenRouter's `HTTP-Referer`, `X-Title`).
    Headers extra_headers;
    /// Transport: timeouts, body limit, TLS.
    net::ClientConfig http;
    /// Ask for a server-sent-event stream and assemble it (errors after a 200 are then seen as such).
    /// A chain's `stream` asks for one whatever this says.
    bool stream = false;
    /// With a stream, ask for its usage (`stream_options.include_usage`); Mistral refuses the field. A
    /// stream that reports none has its usage estimated (`Usage::estimated`).
    bool stream_usage = true;
};

/// @brief A tier for an OpenAI-compatible chat-completions API.
///
/// Copies share one connection pool and configuration. The HTTP client is created on the first attempt,
/// on the executor of the coroutine that makes it.
class OpenAICompatible {
public:
    /// Every attempt ends by `Context::deadline`: the transport's timers are set to it.
    static constexpr bool honours_deadline = true;

    explicit OpenAICompatible(ProviderConfig cfg) : state_(std::make_shared<State>(std::move(cfg))) {}

    std::string_view name() const noexcept { return state_->cfg.name; }
    std::size_t key_count() const noexcept {
        return state_->cfg.key_required ? state_->cfg.keys.size() : 1;
    }
    KeyLimits key_limits() const noexcept { return state_->cfg.key_limits; }
    std::string label(int key) const {
        if (!state_->cfg.number_labels || key < 0) return state_->cfg.name;
        return state_->cfg.name + std::to_string(key + 1);
    }
    std::string quota_group(int key) const {
        auto const& g = state_->cfg.quota_groups;
        return key >= 0 && static_cast<std::size_t>(key) < g.size() ? g[static_cast<std::size_t>(key)] : std::string();
    }
    ProviderConfig const& config() const noexcept { return state_->cfg; }

    /// @brief A stable, non-secret name of key `key` for shared state: the first 16 hex digits of its
    /// SHA-256, so instances agree on it whatever order they list their keys in.
    std::string key_id(int key) const {
        if (key < 0 || static_cast<std::size_t>(key) >= state_->cfg.keys.size()) return std::to_string(key);
        return sha256_hex(state_->cfg.keys[static_cast<std::size_t>(key)].reveal()).substr(0, 16);
    }

    /// @brief Connections opened so far by this provider's pool (for tests and metrics).
    std::size_t connections_opened() const {
        std::lock_guard lock(state_->mutex);
        return state_->client ? state_->client->connections_opened() : 0;
    }

    boost::asio::awaitable<Outcome> attempt(Request const& req, Context& ctx) {
        auto state = state_;  // keeps the configuration alive across suspension
        if (!state->problem.empty()) co_return failed_without_response(Fault::unconfigured, state->problem);
        auto client = state->client_for(co_await boost::asio::this_coro::executor);
        if (auto tls = client->tls_setup_error())
            co_return failed_without_response(Fault::unconfigured, "extra CA for " + state->cfg.name + " is not usable PEM: " + tls.message());

        // A field this tier cannot carry is said, not dropped.
        if (auto problem = openai::request_problem(req); !problem.empty())
            co_return failed_without_response(Fault::bad_request, std::move(problem));

        net::HttpRequest http;
        http.method = "POST";
        http.target = state->origin->base_path + state->cfg.path;
        if (!state->cfg.query.empty()) http.target += "?" + state->cfg.query;
        http.headers.reserve(3 + state->cfg.extra_headers.size());
        http.headers.add("content-type", "application/json");
        bool const stream = state->cfg.stream || ctx.sink;
        http.headers.add("accept", stream ? "text/event-stream" : "application/json");
        if (state->cfg.key_required && ctx.key >= 0 && static_cast<std::size_t>(ctx.key) < state->cfg.keys.size())
            http.headers.add(state->cfg.key_header,
                             state->cfg.key_prefix + std::string(state->cfg.keys[static_cast<std::size_t>(ctx.key)].reveal()));
        for (auto const& h : state->cfg.extra_headers) http.headers.add(h.name, h.value);
        http.body = openai::request_body(req, state->cfg.model, stream, state->cfg.stream_usage);
        if (stream) co_return co_await streamed(state, client, std::move(http), req, ctx);

        auto res = co_await client->request(*state->origin, std::move(http), ctx.deadline);
        if (!res) co_return failed_without_response(res.error());
        auto& resp = *res;
        // A 2xx we cannot use is a failure too: an error object inside it (OpenRouter), blank keep-alive
        // lines and a close (DeepSeek), a truncated body. The chain's classifier knows the shapes.
        std::optional<openai::ChatReply> parsed;
        if (resp.status >= 200 && resp.status < 300)
            if (auto r = openai::parse_reply(resp.body)) parsed = std::move(*r);
        if (!parsed) co_return failed_response(resp.status, std::move(resp.headers), std::move(resp.body));
        Completion c;
        c.text = std::move(parsed->text);
        c.model = parsed->model.empty() ? req.model.value_or(state->cfg.model) : std::move(parsed->model);
        c.finish_reason = std::move(parsed->finish_reason);
        c.id = std::move(parsed->id);
        c.created = parsed->created;
        c.system_fingerprint = std::move(parsed->system_fingerprint);
        c.usage = parsed->usage;
        c.cost_usd = state->cfg.prices.cost(c.usage, ctx.utc);
        c.cost_known = state->cfg.prices.known();
        c.label = label(ctx.key);
        co_return Outcome(std::move(c));
    }

private:
    struct State;

    // A streamed completion: SSE events assembled into one answer; an error event mid-stream, or a
    // stream cut before its end, is a failure like any other.
    boost::asio::awaitable<Outcome> streamed(std::shared_ptr<State> state, std::shared_ptr<net::HttpClient> client,
                                             net::HttpRequest http, Request const& req, Context& ctx) {
        net::SseParser sse;
        openai::StreamAssembler assembler;
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
        // An error event, or an unreadable one, is shown to the classifier as the 2xx body it came in.
        if (assembler.errored() || assembler.malformed())
            co_return failed_response(res->status, std::move(res->headers), assembler.failed_data(), "stream event");
        if (!assembler.complete())
            co_return failed_without_response(boost::beast::http::error::partial_message, "stream ended before [DONE]");
        auto& r = assembler.reply();
        Completion c;
        c.text = std::move(r.text);
        c.model = r.model.empty() ? req.model.value_or(state->cfg.model) : std::move(r.model);
        c.finish_reason = std::move(r.finish_reason);
        c.id = std::move(r.id);
        c.created = r.created;
        c.system_fingerprint = std::move(r.system_fingerprint);
        c.usage = r.usage;
        if (c.usage.prompt_tokens == 0 && c.usage.completion_tokens == 0) c.usage = estimate_usage(req, c.text);
        c.cost_usd = state->cfg.prices.cost(c.usage, ctx.utc);
        c.cost_known = state->cfg.prices.known();
        c.label = label(ctx.key);
        co_return Outcome(std::move(c));
    }

    struct State {
        // What makes the configuration unusable, said once here rather than on every attempt. A path or
        // query reaches the request line and a key header the headers: visible ASCII, a header name.
        explicit State(ProviderConfig c) : cfg(std::move(c)) {
            auto all = [](std::string_view s, auto ok) { return std::all_of(s.begin(), s.end(), [&](char ch) { return ok(ch); }); };
            auto visible = [](char ch) { return ch > 0x20 && ch < 0x7f && ch != '#'; };
            auto name_char = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-'; };
            auto printable = [](char ch) { return ch >= 0x20 && ch < 0x7f; };
            auto o = net::Url::parse(cfg.base_url);
            if (cfg.base_url.empty()) problem = "no base URL for " + cfg.name;
            else if (!o) problem = "bad base URL for " + cfg.name + ": " + o.error().message;
            else if (cfg.model.empty()) problem = "no model for " + cfg.name;
            else if (!all(cfg.path, visible) || cfg.path.find('?') != std::string::npos || !all(cfg.query, visible))
                problem = "path or query for " + cfg.name + " has a space, a control character, '#' or a non-ASCII byte";
            else if (cfg.key_required && (cfg.key_header.empty() || !all(cfg.key_header, name_char) || !all(cfg.key_prefix, printable)))
                problem = "key header for " + cfg.name + " is not a header name, or its prefix has a control character";
            if (o) origin = std::move(*o);
        }

        std::shared_ptr<net::HttpClient> client_for(boost::asio::any_io_executor ex) {
            std::lock_guard lock(mutex);
            if (!client) client = std::make_shared<net::HttpClient>(std::move(ex), cfg.http);
            return client;
        }

        ProviderConfig cfg;
        std::optional<net::Url> origin;
        std::string problem;
        mutable std::mutex mutex;
        std::shared_ptr<net::HttpClient> client;
    };

    std::shared_ptr<State> state_;
};

namespace detail {
inline std::string env_or(char const* name, std::string fallback) {
    char const* v = std::getenv(name);
    return (v && *v) ? std::string(v) : std::move(fallback);
}
} // namespace detail

/// @brief An OpenAI-compatible tier whose defaults come from `Traits` and whose keys (at most `MaxKeys`)
/// and base URL come from the environment: `<PREFIX>_API_KEY_1..N`, `<PREFIX>_API_KEYS` (comma list) or
/// `<PREFIX>_API_KEY`; `<PREFIX>_BASE_URL` and `<PREFIX>_MODEL` override the defaults;
/// `<PREFIX>_QUOTA_GROUPS` (comma list, one name per key) says which keys share an organization's limits.
/// Traits with a `static void from_env(ProviderConfig&)` read their own variables last (Azure's endpoint).
template <class Traits, std::size_t MaxKeys = 1>
class BasicProvider : public OpenAICompatible {
public:
    /// @brief Configured from the environment; with no key the tier is skipped as `unconfigured`.
    BasicProvider() : OpenAICompatible(from_env()) {}
    /// @brief Configured explicitly (start from `BasicProvider::defaults()`).
    explicit BasicProvider(ProviderConfig cfg) : OpenAICompatible(std::move(cfg)) {}

    /// @brief The traits' defaults, with no keys.
    static ProviderConfig defaults() {
        ProviderConfig c = Traits::defaults();
        c.number_labels = MaxKeys > 1;
        return c;
    }

    static ProviderConfig from_env() {
        ProviderConfig c = defaults();
        std::string prefix(Traits::env_prefix);
        c.base_url = detail::env_or((prefix + "_BASE_URL").c_str(), c.base_url);
        c.model = detail::env_or((prefix + "_MODEL").c_str(), c.model);
        if (c.key_required) {
            c.keys = keys_from_env(prefix + "_API_KEY");
            if (c.keys.size() > MaxKeys) c.keys.resize(MaxKeys);
        }
        if (char const* groups = std::getenv((prefix + "_QUOTA_GROUPS").c_str())) {
            std::string_view rest(groups);
            while (!rest.empty()) {
                auto comma = rest.find(',');
                c.quota_groups.emplace_back(detail::trim(rest.substr(0, comma)));
                if (comma == std::string_view::npos) break;
                rest.remove_prefix(comma + 1);
            }
        }
        if constexpr (requires { Traits::from_env(c); }) Traits::from_env(c);
        return c;
    }
};

/// Groq: `llama-3.3-70b-versatile` behind Cloudflare. Free tier (console.groq.com/docs/rate-limits, read
/// 2026-08): 30 requests and 12,000 tokens a minute, 1,000 requests and 100,000 tokens a day, per
/// organization: keys of one organization should name it in `ProviderConfig::quota_groups`.
struct GroqTraits {
    static constexpr std::string_view env_prefix = "GROQ";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "groq";
        c.base_url = "https://api.groq.com/openai/v1";
        c.model = "llama-3.3-70b-versatile";
        // The free tier costs $0; the list prices (on-demand, read 2026-08) are what `Prices::list_cost`
        // reports and what a paid key costs: set `prices.free = false` for one.
        c.prices = {0.59, 0.79};
        c.prices.free = true;
        c.key_limits.tokens_per_minute = 12'000;
        c.key_limits.requests_per_minute = 30;
        c.key_limits.tokens_per_day = 100'000;
        c.key_limits.requests_per_day = 1'000;
        return c;
    }
};

/// DeepSeek: different infrastructure, cheap; no rate-limit headers. `deepseek-chat` was retired on
/// 2026-07-24 (api-docs.deepseek.com, checked 2026-10): its name now gets a 400 naming `deepseek-v4-flash`
/// and `deepseek-v4-pro`. Prices are flash's, by the hour: peak on weekday mornings UTC, half otherwise.
struct DeepSeekTraits {
    static constexpr std::string_view env_prefix = "DEEPSEEK";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "deepseek";
        c.base_url = "https://api.deepseek.com";
        c.model = "deepseek-v4-flash";
        // deepseek-v4-flash at peak: cache-miss input, output; cache hits $0.006. Off-peak (all but 01-04 and
        // 06-10 UTC on weekdays, since 2026-08-16) half. api-docs.deepseek.com/quick_start/pricing, read 2026-10.
        c.prices = {0.30, 1.20};
        c.prices.cached_input_per_million = 0.006;
        c.prices.peak.hours = PeakHours::between(1, 4) | PeakHours::between(6, 10);
        c.prices.peak.off_peak_factor = 0.5;
        // DeepSeek may hold a non-streamed request in its queue for minutes, sending blank lines.
        c.http.attempt_timeout = std::chrono::seconds(120);
        return c;
    }
};

/// OpenRouter: many models behind one key; errors may arrive inside a 200.
struct OpenRouterTraits {
    static constexpr std::string_view env_prefix = "OPENROUTER";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "openrouter";
        c.base_url = "https://openrouter.ai/api/v1";
        c.model = "meta-llama/llama-3.3-70b-instruct:free";
        c.prices.free = true;  // a `:free` model
        return c;
    }
};

/// Hugging Face's inference router.
struct HuggingFaceTraits {
    static constexpr std::string_view env_prefix = "HF";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "huggingface";
        c.base_url = "https://router.huggingface.co/v1";
        c.model = "meta-llama/Llama-3.3-70B-Instruct";
        return c;
    }
};

/// Ollama on this machine: no key.
struct OllamaTraits {
    static constexpr std::string_view env_prefix = "OLLAMA";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "ollama";
        c.base_url = "http://127.0.0.1:11434/v1";
        c.model = "llama3.2";
        c.key_required = false;
        return c;
    }
};

/// vLLM's OpenAI-compatible server: no key.
struct VllmTraits {
    static constexpr std::string_view env_prefix = "VLLM";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "vllm";
        c.base_url = "http://127.0.0.1:8000/v1";
        c.model = "meta-llama/Llama-3.3-70B-Instruct";
        c.key_required = false;
        return c;
    }
};

/// @brief Groq with a pool of up to `N` keys, labelled `groq1`..`groqN`.
template <std::size_t N = 5>
using Groq = BasicProvider<GroqTraits, N>;
using DeepSeek = BasicProvider<DeepSeekTraits, 1>;
template <std::size_t N = 1>
using OpenRouter = BasicProvider<OpenRouterTraits, N>;
template <std::size_t N = 1>
using HuggingFace = BasicProvider<HuggingFaceTraits, N>;
using Ollama = BasicProvider<OllamaTraits, 1>;
using Vllm = BasicProvider<VllmTraits, 1>;

} // namespace cascade
