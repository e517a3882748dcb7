#pragma once
// The audit server's settings, from the environment and the command line. Provider keys are not here: each
// provider reads its own (GROQ_API_KEY_1..5, DEEPSEEK_API_KEY, Vertex's service account; docs/providers.md).
//
//   AUDIT_HOST            address to listen on                     127.0.0.1
//   AUDIT_PORT            port (0: any free one)                   8080
//   AUDIT_SECRET          HMAC secret that signs report links      required (or --dev: the example secret)
//   AUDIT_DB              SQLite file: reports and the answer cache audit.db
//   AUDIT_QUESTIONS       the questionnaire (questions, advice)    questionnaire.json beside the binary's source
//   AUDIT_LINK_TTL        seconds a report link stays valid        604800 (7 days)
//   AUDIT_RATE_PER_MINUTE audits a client may start a minute       10
//   AUDIT_RATE_BURST      audits a client may start at once        5
//   AUDIT_PUBLIC_URL      prefix of report links                   (none: links are relative)

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace audit {

/// The example secret: fine on a laptop, refused without --dev.
inline constexpr std::string_view example_secret = "example-secret-change-me";

struct Config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string secret;
    std::string db = "audit.db";
    std::string questions;
    std::int64_t link_ttl_seconds = 7 * 24 * 3600;
    double rate_per_minute = 10;
    double rate_burst = 5;
    std::string public_url;
    bool dev = false;
    /// Largest POST body accepted.
    std::size_t body_limit = 64 * 1024;
};

/// A setting that cannot be used: its message names it.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

inline std::optional<std::string> env(char const* name) {
    char const* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

inline double number(char const* name, std::string const& v, double lo, double hi) {
    char* end = nullptr;
    double const d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !(d >= lo && d <= hi))
        throw ConfigError(std::string(name) + "=" + v + ": expected a number from " + std::to_string(static_cast<long long>(lo)) + " to " +
                          std::to_string(static_cast<long long>(hi)));
    return d;
}

} // namespace detail

/// @brief Reads the settings; `args` are the command line's (`--dev`, `--port N`). Throws ConfigError.
inline Config config_from(int argc, char** argv, std::string default_questions) {
    Config c;
    c.questions = std::move(default_questions);
    for (int i = 1; i < argc; ++i) {
        std::string_view const a = argv[i];
        if (a == "--dev") c.dev = true;
        else if (a == "--port" && i + 1 < argc) c.port = static_cast<std::uint16_t>(detail::number("--port", argv[++i], 0, 65535));
        else throw ConfigError(std::string("unknown argument: ") + std::string(a) + " (known: --dev, --port N)");
    }
    if (auto v = detail::env("AUDIT_HOST")) c.host = *v;
    if (auto v = detail::env("AUDIT_PORT")) c.port = static_cast<std::uint16_t>(detail::number("AUDIT_PORT", *v, 0, 65535));
    if (auto v = detail::env("AUDIT_DB")) c.db = *v;
    if (auto v = detail::env("AUDIT_QUESTIONS")) c.questions = *v;
    if (auto v = detail::env("AUDIT_LINK_TTL")) c.link_ttl_seconds = static_cast<std::int64_t>(detail::number("AUDIT_LINK_TTL", *v, 1, 366.0 * 86400));
    if (auto v = detail::env("AUDIT_RATE_PER_MINUTE")) c.rate_per_minute = detail::number("AUDIT_RATE_PER_MINUTE", *v, 0.01, 1e6);
    if (auto v = detail::env("AUDIT_RATE_BURST")) c.rate_burst = detail::number("AUDIT_RATE_BURST", *v, 1, 1e6);
    if (auto v = detail::env("AUDIT_PUBLIC_URL")) c.public_url = *v;
    if (auto v = detail::env("AUDIT_SECRET")) c.secret = *v;
    if (c.secret.empty()) {
        if (!c.dev) throw ConfigError("AUDIT_SECRET is not set: report links must be signed with a secret of your own (or run with --dev to use the example secret)");
        c.secret = std::string(example_secret);
    }
    if (c.secret == example_secret && !c.dev) throw ConfigError("AUDIT_SECRET is the example secret: set a secret of your own (or run with --dev)");
    if (c.secret.size() < 16 && !c.dev) throw ConfigError("AUDIT_SECRET is shorter than 16 characters");
    return c;
}

} // namespace audit
