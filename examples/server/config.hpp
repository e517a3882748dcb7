#pragma once
// The server's configuration: where it listens and the upstream its chains call, from argv and the
// environment. Keys are optional: with none the upstream tier is keyless (a local Ollama or vLLM), and a
// key is never printed (cascade::Secret prints as ***).

#include <cascade/provider/keys.hpp>
#include <cascade/provider/openai_compatible.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace app {

struct Config {
    /// Where to listen: `CASCADE_EXAMPLE_HOST`, default 127.0.0.1 (a gateway in front of it does TLS and auth).
    std::string host = "127.0.0.1";
    /// argv[1]; 0 picks a free port (the server prints "listening on <port>").
    unsigned short port = 8080;
    /// argv[2], else `CASCADE_EXAMPLE_UPSTREAM`: an OpenAI-compatible base URL.
    std::string upstream = "http://127.0.0.1:11434/v1";
    /// `CASCADE_EXAMPLE_BACKUP_UPSTREAM`: a keyless second OpenAI-compatible base URL, each chain's second tier
    /// (tried when the first fails). Empty: that tier has no key and is skipped without a request.
    std::string backup_upstream;
    /// `CASCADE_EXAMPLE_MODEL`: the model of "cascade-default"'s upstream tier.
    std::string model = "llama3.2";
    /// `CASCADE_EXAMPLE_CHEAP_MODEL`, default `model`: the model of "cascade-cheap"'s upstream tier.
    std::string cheap_model;
    /// `CASCADE_EXAMPLE_API_KEY`, `..._API_KEY_1..N` or `..._API_KEYS` (comma list); none: keyless.
    std::vector<cascade::Secret> keys;
    /// Requests with a larger body are refused with 413.
    std::size_t body_limit = 1 << 20;
    /// `CASCADE_EXAMPLE_THREADS`: threads running the io_context (1 to 64). One thread is the cheapest per
    /// request (no hand-over between threads: docs/benchmarks.md); more serve more cores.
    unsigned threads = 1;
    /// `CASCADE_EXAMPLE_LOG`: `answers` (default) writes one line per answer to stderr; `none` writes
    /// only start-up and failures (as Portkey's `--headless`).
    bool log_answers = true;
};

inline char const* env(char const* name) {
    char const* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

/// The configuration, or nullopt when argv is not usable (the caller prints the usage).
inline std::optional<Config> config_from(int argc, char** argv) {
    Config c;
    if (argc > 1) {
        char* end = nullptr;
        long p = std::strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || p < 0 || p > 65535) return std::nullopt;
        c.port = static_cast<unsigned short>(p);
    }
    if (char const* h = env("CASCADE_EXAMPLE_HOST")) c.host = h;
    if (argc > 2) c.upstream = argv[2];
    else if (char const* u = env("CASCADE_EXAMPLE_UPSTREAM")) c.upstream = u;
    if (char const* b = env("CASCADE_EXAMPLE_BACKUP_UPSTREAM")) c.backup_upstream = b;
    if (char const* m = env("CASCADE_EXAMPLE_MODEL")) c.model = m;
    c.cheap_model = c.model;
    if (char const* m = env("CASCADE_EXAMPLE_CHEAP_MODEL")) c.cheap_model = m;
    c.keys = cascade::keys_from_env("CASCADE_EXAMPLE_API_KEY");
    if (char const* t = env("CASCADE_EXAMPLE_THREADS")) {
        char* end = nullptr;
        long n = std::strtol(t, &end, 10);
        if (end == t || *end != '\0' || n < 1 || n > 64) return std::nullopt;
        c.threads = static_cast<unsigned>(n);
    }
    if (char const* l = env("CASCADE_EXAMPLE_LOG")) {
        std::string const v = l;
        if (v != "answers" && v != "none") return std::nullopt;
        c.log_answers = v == "answers";
    }
    return c;
}

/// The upstream tier named `name` asking for `model`; keyless when the configuration holds no key.
inline cascade::ProviderConfig upstream_tier(Config const& c, std::string name, std::string model) {
    cascade::ProviderConfig p;
    p.name = std::move(name);
    p.base_url = c.upstream;
    p.model = std::move(model);
    p.keys = c.keys;
    p.key_required = !c.keys.empty();
    p.number_labels = c.keys.size() > 1;  // a pool: labels upstream1..N, so the label says which key answered
    p.http.single_thread = c.threads == 1;  // one thread runs the io_context: no strand per connection
    return p;
}

/// The backup tier named `name` asking for `model`: keyless at `backup_upstream`, or, with none configured,
/// a tier that requires a key and has none, which the chain skips (`unconfigured`) without a request.
inline cascade::ProviderConfig backup_tier(Config const& c, std::string name, std::string model) {
    cascade::ProviderConfig p;
    p.name = std::move(name);
    p.base_url = c.backup_upstream.empty() ? c.upstream : c.backup_upstream;
    p.model = std::move(model);
    p.key_required = c.backup_upstream.empty();
    p.http.single_thread = c.threads == 1;
    return p;
}

} // namespace app
