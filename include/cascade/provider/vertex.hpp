#pragma once
/// @file
/// @brief Gemini on Vertex AI with a service account (`VertexPro`: a chain of regions inside one tier),
/// and the Gemini API with keys (`GeminiApi`).

#include <cascade/core/completion.hpp>
#include <cascade/core/config_error.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/detail/flight.hpp>
#include <cascade/net/http_client.hpp>
#include <cascade/provider/gemini_wire.hpp>
#include <cascade/provider/google_jwt.hpp>
#include <cascade/provider/keys.hpp>
#include <cascade/provider/openai_wire.hpp>
#include <cascade/net/sse_parser.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cascade {

namespace google {

/// @brief Access tokens for a service account: a signed JWT exchanged at the token URI, cached until a
/// minute before it expires. Concurrent requests that find no valid token share one exchange.
class TokenSource {
public:
    TokenSource() = default;
    TokenSource(ServiceAccount sa, net::ClientConfig http = {}) : state_(std::make_shared<State>()) {
        state_->sa = std::move(sa);
        state_->http = std::move(http);
        auto origin = net::Url::parse(state_->sa.token_uri);
        if (origin) {
            state_->origin = std::move(*origin);
            auto const& u = state_->sa.token_uri;
            auto path_at = u.find('/', u.find("://") + 3);
            state_->path = path_at == std::string::npos ? std::string("/") : u.substr(path_at);
        } else {
            state_->error = "token_uri: " + origin.error().message;
        }
    }

    bool configured() const noexcept { return state_ != nullptr; }

    /// @brief Token exchanges made so far.
    std::size_t exchanges() const {
        if (!state_) return 0;
        std::lock_guard lock(state_->mutex);
        return state_->exchanges;
    }

    /// @brief A valid access token, or the failure that kept it (detail `token endpoint`).
    boost::asio::awaitable<boost::system::result<std::string, Observation>> token(Context const& ctx) {
        auto st = state_;
        if (!st) co_return unconfigured("no service account configured");
        if (!st->error.empty()) co_return unconfigured(st->error);
        std::shared_ptr<cascade::detail::Flight<boost::system::result<std::string, Observation>>> flight;
        bool leader = false;
        {
            std::lock_guard lock(st->mutex);
            if (!st->token.empty() && std::chrono::steady_clock::now() + std::chrono::seconds(60) < st->expires) co_return st->token;
            if (!st->refreshing) {
                st->refreshing = std::make_shared<cascade::detail::Flight<boost::system::result<std::string, Observation>>>();
                leader = true;
            }
            flight = st->refreshing;
        }
        if (!leader) {
            co_await flight->async_wait(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
            co_return flight->result();
        }
        auto r = co_await exchange(st, ctx);
        {
            std::lock_guard lock(st->mutex);
            st->refreshing.reset();
        }
        flight->finish(r, false);
        co_return r;
    }

    /// @brief Forgets the cached token (after a 401 from the API).
    void invalidate() {
        if (!state_) return;
        std::lock_guard lock(state_->mutex);
        state_->token.clear();
    }

private:
    struct State {
        ServiceAccount sa;
        net::ClientConfig http;
        net::Url origin;
        std::string path;
        std::string error;
        std::mutex mutex;
        std::string token;
        std::chrono::steady_clock::time_point expires{};
        std::size_t exchanges = 0;
        std::shared_ptr<net::HttpClient> client;
        std::shared_ptr<cascade::detail::Flight<boost::system::result<std::string, Observation>>> refreshing;
    };

    static boost::system::result<std::string, Observation> failure(boost::system::error_code ec, std::string why) {
        Observation o;
        o.transport = ec;
        o.detail = std::move(why);
        return boost::system::result<std::string, Observation>(boost::system::in_place_error, std::move(o));
    }
    static boost::system::result<std::string, Observation> unconfigured(std::string why) {
        return failure(Fault::unconfigured, std::move(why));
    }

    static boost::asio::awaitable<boost::system::result<std::string, Observation>> exchange(std::shared_ptr<State> st, Context const& ctx) {
        using R = boost::system::result<std::string, Observation>;
        std::shared_ptr<net::HttpClient> client;
        {
            std::lock_guard lock(st->mutex);
            if (!st->client) st->client = std::make_shared<net::HttpClient>(co_await boost::asio::this_coro::executor, st->http);
            client = st->client;
            ++st->exchanges;
        }
        auto now_unix = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        auto jwt = make_assertion(st->sa, now_unix);
        if (!jwt) co_return unconfigured(jwt.error().message);
        net::HttpRequest req;
        req.target = st->path;
        req.headers.add("content-type", "application/x-www-form-urlencoded");
        req.body = token_request_body(*jwt);
        auto res = co_await client->request(st->origin, std::move(req), ctx.deadline);
        if (!res) co_return failure(res.error(), "token endpoint");
        if (res->status != 200) {
            // An OAuth error (invalid_grant: a bad signature, a clock off by an hour) for the classifier.
            Observation o;
            o.status = res->status;
            o.headers = std::move(res->headers);
            o.body = std::move(res->body);
            o.detail = "token endpoint";
            co_return R(boost::system::in_place_error, std::move(o));
        }
        auto tok = parse_token_response(res->body);
        // A 200 without a usable token: its body may hold a token, so it is not shown, only what is wrong.
        if (!tok) co_return failure(Fault::malformed_response, tok.error().message);
        std::lock_guard lock(st->mutex);
        st->token = tok->value;
        st->expires = std::chrono::steady_clock::now() + tok->expires_in;
        co_return st->token;
    }

    std::shared_ptr<State> state_;
};

} // namespace google

namespace detail {
// A generateContent answer as an Outcome. A blocked prompt is a failure for the classifier; a refusal
// (SAFETY, RECITATION, ...) is an answer whose finish reason the accept policy judges, as OpenAI's
// content_filter is; MAX_TOKENS is kept, marked by its finish reason.
inline Outcome gemini_outcome(net::HttpResponse& resp, std::string label, std::string const& model, Prices prices,
                              std::chrono::system_clock::time_point utc = {}) {
    std::optional<gemini::Reply> parsed;
    if (resp.status >= 200 && resp.status < 300)
        if (auto r = gemini::parse_reply(resp.body); r && !r->prompt_blocked) parsed = std::move(*r);
    if (!parsed) return failed_response(resp.status, std::move(resp.headers), std::move(resp.body));
    Completion c;
    c.text = std::move(parsed->text);
    c.model = parsed->model.empty() ? model : std::move(parsed->model);
    c.id = std::move(parsed->id);
    c.finish_reason = std::move(parsed->finish_reason);
    c.usage = parsed->usage;
    c.cost_usd = prices.cost(c.usage, utc);
    c.cost_known = prices.known();
    c.label = std::move(label);
    return Outcome(std::move(c));
}

// A streamed answer (`:streamGenerateContent?alt=sse`), each chunk's text handed to the chain's sink as it
// arrives. An error chunk after the 200, an unreadable one, or a stream cut before a finish reason is a
// failure; a blocked prompt is shown to the classifier as the body it came in.
inline boost::asio::awaitable<Outcome> gemini_streamed(std::shared_ptr<net::HttpClient> client, net::Url const& origin,
                                                       net::HttpRequest http, Request const& req, Context& ctx, std::string label,
                                                       std::string model, Prices prices) {
    net::SseParser sse;
    gemini::StreamAssembler assembler;
    StreamSink* const out = ctx.sink;
    bool stopped = false;
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
    auto res = co_await client->request_stream(origin, std::move(http), ctx.deadline, on_body, next_by);
    if (!res) co_return stream_failure(out, stopped, res.error());
    if (res->status < 200 || res->status >= 300) co_return failed_response(res->status, std::move(res->headers), std::move(res->body));
    if (assembler.errored() || assembler.malformed() || assembler.prompt_blocked())
        co_return failed_response(res->status, std::move(res->headers), assembler.failed_data(), "stream event");
    if (!assembler.complete())
        co_return failed_without_response(boost::beast::http::error::partial_message, "stream ended before a finish reason");
    auto& r = assembler.reply();
    Completion c;
    c.text = std::move(r.text);
    c.model = r.model.empty() ? std::move(model) : std::move(r.model);
    c.id = std::move(r.id);
    c.finish_reason = std::move(r.finish_reason);
    c.usage = r.usage;
    if (c.usage.prompt_tokens == 0 && c.usage.completion_tokens == 0) c.usage = estimate_usage(req, c.text);
    c.cost_usd = prices.cost(c.usage, ctx.utc);
    c.cost_known = prices.known();
    c.label = std::move(label);
    co_return Outcome(std::move(c));
}
} // namespace detail

/// @brief Settings of a Vertex AI tier. Every deployment-specific value lives here.
struct VertexConfig {
    /// Name in stats and the base of labels (`vertex-pro` gives `vertex-pro/us-central1`).
    std::string name = "vertex-pro";
    std::string model = "gemini-2.5-pro";
    /// Tried in order; a region that rate-limits or fails rests while the next one answers.
    std::vector<std::string> regions{"us-central1", "europe-west1", "europe-west4"};
    /// The API host of a region; `{region}` is replaced. Tests point it at a loopback server.
    std::string endpoint = "https://{region}-aiplatform.googleapis.com";
    /// The service account; empty means `GOOGLE_APPLICATION_CREDENTIALS`.
    std::string credentials_file;
    /// Defaults to the key file's `project_id`.
    std::string project;
    /// Gemini 2.5 Pro list prices per million tokens (prompts up to 200k tokens).
    Prices prices{1.25, 10.0};
    /// How long a region that failed for transient reasons (5xx, timeout) rests before it is tried again.
    std::chrono::milliseconds region_rest{30'000};
    net::ClientConfig http;
};

/// @brief Gemini on Vertex AI over a list of regions: one tier of the outer chain, itself a chain of
/// regions. Each region is a slot of the tier's pool, so a rate-limited region cools down and is skipped
/// like a key, while the next region answers; its attempts are labelled `vertex-pro/<region>` and appear
/// in the outer trail.
///
/// A default-constructed tier reads `GOOGLE_APPLICATION_CREDENTIALS`; without it the tier is
/// `unconfigured`. A malformed key file is a configuration error naming the field (`config_error()`).
class Vertex {
public:
    /// Every attempt (the token exchange included) ends by `Context::deadline`.
    static constexpr bool honours_deadline = true;

    Vertex() : Vertex(VertexConfig{}) {}
    explicit Vertex(VertexConfig cfg) : state_(std::make_shared<State>()) {
        state_->cfg = std::move(cfg);
        auto const& c = state_->cfg;
        bool from_env = c.credentials_file.empty();
        if (from_env && !std::getenv("GOOGLE_APPLICATION_CREDENTIALS")) return;  // simply not configured
        auto sa = google::load_service_account(c.credentials_file);
        if (!sa) {
            state_->error = sa.error().message;
            return;
        }
        if (state_->cfg.project.empty()) state_->cfg.project = sa->project_id;
        state_->tokens = google::TokenSource(std::move(*sa), state_->cfg.http);
    }

    std::string_view name() const noexcept { return state_->cfg.name; }
    /// One slot per region when configured, none otherwise (the tier is then skipped as unconfigured).
    std::size_t key_count() const noexcept { return state_->tokens.configured() ? state_->cfg.regions.size() : 0; }
    std::string label(int key) const {
        if (key < 0 || static_cast<std::size_t>(key) >= state_->cfg.regions.size()) return state_->cfg.name;
        return state_->cfg.name + "/" + state_->cfg.regions[static_cast<std::size_t>(key)];
    }
    std::string key_id(int key) const { return label(key); }

    /// @brief What is wrong with the configuration (a malformed key file, naming the field), if anything.
    std::string const& config_error() const noexcept { return state_->error; }
    /// @brief Token exchanges made so far.
    std::size_t token_exchanges() const { return state_->tokens.exchanges(); }

    boost::asio::awaitable<Outcome> attempt(Request const& req, Context& ctx) {
        auto st = state_;
        auto const& cfg = st->cfg;
        if (ctx.key < 0 || static_cast<std::size_t>(ctx.key) >= cfg.regions.size())
            co_return failed_without_response(Fault::unconfigured, "no region");
        // A field Gemini cannot carry is said, not dropped.
        if (auto problem = gemini::request_problem(req); !problem.empty())
            co_return failed_without_response(Fault::bad_request, std::move(problem));
        auto const& region = cfg.regions[static_cast<std::size_t>(ctx.key)];
        std::string const model = req.model.value_or(cfg.model);
        auto token = co_await st->tokens.token(ctx);
        if (!token) co_return Outcome(boost::system::in_place_error, std::move(token.error()));

        std::string base = cfg.endpoint;
        if (auto at = base.find("{region}"); at != std::string::npos) base.replace(at, 8, region);
        auto origin = net::Url::parse(base);
        if (!origin) co_return failed_without_response(Fault::unconfigured, "endpoint: " + origin.error().message);
        net::HttpRequest http;
        http.target = origin->base_path + "/v1/projects/" + cfg.project + "/locations/" + region + "/publishers/google/models/" +
                      model + (ctx.sink ? ":streamGenerateContent?alt=sse" : ":generateContent");
        http.headers.add("authorization", "Bearer " + *token);
        http.headers.add("content-type", "application/json");
        http.body = gemini::request_body(req);
        auto client = st->client_for(co_await boost::asio::this_coro::executor);
        if (ctx.sink) {
            // A chain's stream: the answer as it arrives. A 401 still drops the cached token.
            auto out = co_await detail::gemini_streamed(client, *origin, std::move(http), req, ctx, label(ctx.key), model, cfg.prices);
            if (!out && out.error().status == 401) st->tokens.invalidate();
            co_return out;
        }
        auto res = co_await client->request(*origin, std::move(http), ctx.deadline);
        if (!res) co_return failed_without_response(res.error());
        if (res->status == 401) st->tokens.invalidate();
        co_return detail::gemini_outcome(*res, label(ctx.key), model, cfg.prices, ctx.utc);
    }

    /// @brief A region that is down or slow is a region to rest, not a reason to leave Vertex: the next
    /// region is another data centre. So is a region that does not serve the model (models reach regions
    /// at different times): it rests as long as a retired model would, alone. Request-specific failures
    /// (bad request, too long, refusal) and the token endpoint's (it serves every region) still leave.
    Verdict refine(Verdict v, Observation const& o) const {
        if (o.detail.rfind("token endpoint", 0) == 0) return v;
        if (v.scope == Scope::attempt && (v.fault == Fault::server_error || v.fault == Fault::timeout || v.fault == Fault::network)) {
            v.scope = Scope::key;
            if (!v.cool_for) v.cool_for = state_->cfg.region_rest;
        } else if (v.fault == Fault::model_unavailable) {
            v.scope = Scope::key;
        }
        return v;
    }

private:
    struct State {
        VertexConfig cfg;
        std::string error;
        google::TokenSource tokens;
        std::mutex mutex;
        std::shared_ptr<net::HttpClient> client;

        std::shared_ptr<net::HttpClient> client_for(boost::asio::any_io_executor ex) {
            std::lock_guard lock(mutex);
            if (!client) client = std::make_shared<net::HttpClient>(std::move(ex), cfg.http);
            return client;
        }
    };

    std::shared_ptr<State> state_;
};

/// @brief The seed's third tier: Gemini 2.5 Pro on Vertex, us-central1 -> europe-west1 -> europe-west4.
using VertexPro = Vertex;

/// @brief Settings of a Gemini API (generativelanguage) tier: the same mapping, with API keys.
struct GeminiApiConfig {
    std::string name = "gemini";
    std::string model = "gemini-2.5-flash";
    std::string base_url = "https://generativelanguage.googleapis.com/v1beta";
    std::vector<Secret> keys;
    bool number_labels = false;
    Prices prices{0.30, 2.50};
    net::ClientConfig http;
};

/// @brief Gemini through the Gemini API with a pool of API keys (`GEMINI_API_KEY(_1..N)`).
class GeminiApi {
public:
    /// Every attempt ends by `Context::deadline`.
    static constexpr bool honours_deadline = true;

    GeminiApi() : GeminiApi(from_env()) {}
    explicit GeminiApi(GeminiApiConfig cfg) : state_(std::make_shared<State>()) {
        state_->cfg = std::move(cfg);
        auto o = net::Url::parse(state_->cfg.base_url);
        if (o) state_->origin = std::move(*o);
        else state_->error = o.error().message;
    }

    static GeminiApiConfig from_env() {
        GeminiApiConfig c;
        c.keys = keys_from_env("GEMINI_API_KEY");
        c.number_labels = c.keys.size() > 1;
        return c;
    }

    std::string_view name() const noexcept { return state_->cfg.name; }
    std::size_t key_count() const noexcept { return state_->cfg.keys.size(); }
    std::string label(int key) const {
        if (!state_->cfg.number_labels || key < 0) return state_->cfg.name;
        return state_->cfg.name + std::to_string(key + 1);
    }

    boost::asio::awaitable<Outcome> attempt(Request const& req, Context& ctx) {
        auto st = state_;
        if (!st->origin) co_return failed_without_response(Fault::unconfigured, "bad base URL for " + st->cfg.name + ": " + st->error);
        if (auto problem = gemini::request_problem(req); !problem.empty())
            co_return failed_without_response(Fault::bad_request, std::move(problem));
        std::string const model = req.model.value_or(st->cfg.model);
        net::HttpRequest http;
        http.target = st->origin->base_path + "/models/" + model + (ctx.sink ? ":streamGenerateContent?alt=sse" : ":generateContent");
        http.headers.add("content-type", "application/json");
        if (ctx.key >= 0 && static_cast<std::size_t>(ctx.key) < st->cfg.keys.size())
            http.headers.add("x-goog-api-key", std::string(st->cfg.keys[static_cast<std::size_t>(ctx.key)].reveal()));
        http.body = gemini::request_body(req);
        std::shared_ptr<net::HttpClient> client;
        {
            auto ex = co_await boost::asio::this_coro::executor;
            std::lock_guard lock(st->mutex);
            if (!st->client) st->client = std::make_shared<net::HttpClient>(ex, st->cfg.http);
            client = st->client;
        }
        if (ctx.sink) {
            auto out = co_await detail::gemini_streamed(client, *st->origin, std::move(http), req, ctx, label(ctx.key), model,
                                                        st->cfg.prices);
            co_return out;
        }
        auto res = co_await client->request(*st->origin, std::move(http), ctx.deadline);
        if (!res) co_return failed_without_response(res.error());
        co_return detail::gemini_outcome(*res, label(ctx.key), model, st->cfg.prices, ctx.utc);
    }

private:
    struct State {
        GeminiApiConfig cfg;
        std::optional<net::Url> origin;
        std::string error;
        std::mutex mutex;
        std::shared_ptr<net::HttpClient> client;
    };
    std::shared_ptr<State> state_;
};

} // namespace cascade
