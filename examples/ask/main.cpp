// cascade-ask: one prompt through Groq (5 keys) -> DeepSeek -> Vertex Gemini Pro, the answer on stdout.
//
//   cascade-ask -f prompt.md [--system FILE] [--max 3000] [--chain groq,deepseek,vertex] [--timeout 120] [--json]
//
// The chain has no template tier, so it can fail. Keys, base URLs and models come from the environment as
// the providers read them (GROQ_API_KEY_1..5, DEEPSEEK_API_KEY, GOOGLE_APPLICATION_CREDENTIALS...;
// docs/providers.md). On stderr, last: [tokens: IN/OUT, cost $X, via LABEL, N ms].
//
// Exit status: 0 with an answer, 2 for bad usage, 3 when every tier failed or the time ran out.
// docs/ask.md has the details.

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asio = boost::asio;

namespace {

using AskChain = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro>;

constexpr char const* usage_line =
    "usage: cascade-ask -f FILE|- [--system FILE] [--max TOKENS] [--chain groq,deepseek,vertex] [--timeout SECONDS] [--json]";

constexpr int exit_answer = 0;
constexpr int exit_usage = 2;
constexpr int exit_no_answer = 3;

// Which tiers run; the order is the chain's, whatever order --chain names them in.
struct TierChoice {
    bool groq = true;
    bool deepseek = true;
    bool vertex = true;
};

struct Options {
    std::string prompt_file;
    std::string system_file;
    int max_tokens = 3000;
    int timeout_seconds = 120;
    TierChoice tiers;
    bool json = false;
    bool help = false;
};

int usage(std::string const& why) {
    std::cerr << "cascade-ask: " << why << "\n" << usage_line << "\n";
    return exit_usage;
}

std::optional<int> positive_int(std::string_view s) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

// Parses --chain's comma list; an error names the first unknown tier.
std::optional<std::string> parse_tiers(std::string_view list, TierChoice& out) {
    out = TierChoice{false, false, false};
    while (true) {
        auto comma = list.find(',');
        auto name = list.substr(0, comma);
        if (name == "groq") out.groq = true;
        else if (name == "deepseek") out.deepseek = true;
        else if (name == "vertex") out.vertex = true;
        else return "unknown tier '" + std::string(name) + "' in --chain (known: groq, deepseek, vertex)";
        if (comma == std::string_view::npos) return std::nullopt;
        list.remove_prefix(comma + 1);
    }
}

// The options, or why they are bad usage.
std::optional<std::string> parse_options(int argc, char** argv, Options& o) {
    bool have_file = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::optional<std::string> inline_value;  // --max=3000
        if (arg.starts_with("--"))
            if (auto eq = arg.find('='); eq != std::string::npos) {
                inline_value = arg.substr(eq + 1);
                arg.resize(eq);
            }
        auto value = [&](std::string& into) -> std::optional<std::string> {
            if (inline_value) into = *inline_value;
            else if (i + 1 < argc) into = argv[++i];
            else return arg + " needs a value";
            return std::nullopt;
        };
        std::string v;
        std::optional<std::string> problem;
        if (arg == "-f" || arg == "--file") {
            if (have_file) return std::string("one prompt file at a time");
            if ((problem = value(o.prompt_file))) return problem;
            have_file = true;
        } else if (arg == "--system") {
            if ((problem = value(o.system_file))) return problem;
        } else if (arg == "--max") {
            if ((problem = value(v))) return problem;
            auto n = positive_int(v);
            if (!n) return "--max must be a positive whole number of tokens, not '" + v + "'";
            o.max_tokens = *n;
        } else if (arg == "--timeout") {
            if ((problem = value(v))) return problem;
            auto n = positive_int(v);
            if (!n) return "--timeout must be a positive whole number of seconds, not '" + v + "'";
            o.timeout_seconds = *n;
        } else if (arg == "--chain") {
            if ((problem = value(v))) return problem;
            if ((problem = parse_tiers(v, o.tiers))) return problem;
        } else if (arg == "--json" && !inline_value) {
            o.json = true;
        } else if ((arg == "-h" || arg == "--help") && !inline_value) {
            o.help = true;
        } else if (arg.starts_with("-") && arg != "-") {
            return "unknown option " + std::string(argv[i]);
        } else {
            return "unexpected argument '" + arg + "' (the prompt is read from -f FILE)";
        }
    }
    if (o.help) return std::nullopt;
    if (!have_file) return std::string("no prompt: -f FILE (or -f - for stdin) is required");
    if (o.prompt_file == "-" && o.system_file == "-") return std::string("only one of -f and --system can read stdin");
    return std::nullopt;
}

// All of a file ("-": stdin), or nothing when it cannot be read.
std::optional<std::string> read_all(std::string const& path) {
    if (path == "-") {
        std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
        if (std::cin.bad()) return std::nullopt;
        return text;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) return std::nullopt;
    return text;
}

bool blank(std::string_view s) {
    return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

// Replaces every configured key in what the tool prints: an upstream that echoes a key (in an error, or a
// gateway in its answer) does not get it onto the terminal. Trails hold labels and key indices only.
class Scrubber {
public:
    void add(cascade::Secret const& s) {
        if (s.reveal().size() >= 4) secrets_.emplace_back(s.reveal());
    }
    std::string operator()(std::string text) const {
        for (auto const& s : secrets_)
            for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3)) text.replace(pos, s.size(), "***");
        return text;
    }

private:
    std::vector<std::string> secrets_;
};

// Three significant digits, never exponent notation: $0.00172, $0.0421, $1.25; $0 for a free answer.
std::string format_cost(cascade::Completion const& c) {
    if (!c.cost_known) return "unknown";
    if (c.cost_usd <= 0.0) return "$0";
    int decimals = 2 - static_cast<int>(std::floor(std::log10(c.cost_usd)));
    decimals = decimals < 2 ? 2 : decimals > 12 ? 12 : decimals;
    char buf[64];
    std::snprintf(buf, sizeof buf, "$%.*f", decimals, c.cost_usd);
    return buf;
}

long long milliseconds(std::chrono::microseconds us) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(us).count());
}

boost::json::object to_json(cascade::Completion const& c, Scrubber const& scrub) {
    boost::json::array trail;
    for (auto const& a : c.trail)
        trail.push_back(boost::json::object{{"label", a.label},
                                            {"fault", a.fault ? a.fault.message() : std::string("ok")},
                                            {"http_status", a.http_status},
                                            {"latency_ms", milliseconds(a.latency)}});
    return boost::json::object{
        {"text", scrub(c.text)},
        {"label", c.label},
        {"model", scrub(c.model)},
        {"finish_reason", scrub(c.finish_reason)},
        {"usage", boost::json::object{{"prompt_tokens", c.usage.prompt_tokens},
                                      {"completion_tokens", c.usage.completion_tokens},
                                      {"cached_prompt_tokens", c.usage.cached_prompt_tokens},
                                      {"estimated", c.usage.estimated}}},
        {"cost_usd", c.cost_usd},
        {"cost_known", c.cost_known},
        {"latency_ms", milliseconds(c.latency)},
        {"trail", std::move(trail)},
    };
}

asio::awaitable<void> ask(AskChain& chain, cascade::Request const& req, std::optional<cascade::Result>& out) {
    auto r = co_await chain.complete(req);
    out = std::move(r);
}

} // namespace

int main(int argc, char** argv) {
    Options opt;
    if (auto problem = parse_options(argc, argv, opt)) return usage(*problem);
    if (opt.help) {
        std::cout << usage_line << "\n"
                  << "Sends the prompt through Groq -> DeepSeek -> Vertex Gemini Pro (keys from the environment);\n"
                  << "exit 0 with an answer, 2 for bad usage, 3 when every tier failed. See docs/ask.md.\n";
        return exit_answer;
    }

    auto prompt = read_all(opt.prompt_file);
    if (!prompt) return usage("cannot read the prompt file '" + opt.prompt_file + "'");
    if (blank(*prompt)) return usage("the prompt in '" + opt.prompt_file + "' is empty");
    std::string system;
    if (!opt.system_file.empty()) {
        auto s = read_all(opt.system_file);
        if (!s) return usage("cannot read the system prompt file '" + opt.system_file + "'");
        if (!blank(*s)) system = std::move(*s);
    }

    // Each tier as its provider reads the environment; a tier left out of --chain has no keys (regions),
    // so the chain skips it as unconfigured and the trail says so.
    auto groq_cfg = cascade::Groq<5>::from_env();
    if (!opt.tiers.groq) groq_cfg.keys.clear();
    auto deepseek_cfg = cascade::DeepSeek::from_env();
    if (!opt.tiers.deepseek) deepseek_cfg.keys.clear();
    cascade::VertexConfig vertex_cfg;
    if (!opt.tiers.vertex) vertex_cfg.regions.clear();
    cascade::VertexPro vertex(vertex_cfg);

    Scrubber scrub;
    for (auto const& k : groq_cfg.keys) scrub.add(k);
    for (auto const& k : deepseek_cfg.keys) scrub.add(k);
    if (opt.tiers.vertex && !vertex.config_error().empty())
        std::cerr << "cascade-ask: vertex is skipped: " << scrub(vertex.config_error()) << "\n";

    asio::io_context io;
    cascade::ChainConfig chain_cfg;
    chain_cfg.name = "cascade-ask";
    chain_cfg.deadline = std::chrono::seconds(opt.timeout_seconds);
    AskChain chain(io.get_executor(), chain_cfg, cascade::Groq<5>(std::move(groq_cfg)), cascade::DeepSeek(std::move(deepseek_cfg)),
                   std::move(vertex));

    auto req = cascade::Request::chat(std::move(system), std::move(*prompt));
    req.max_tokens = opt.max_tokens;

    // The chain ends every attempt by its deadline; this only guards against what it cannot interrupt (a
    // name lookup stuck in the resolver's thread): some seconds later the tool gives up regardless.
    asio::steady_timer watchdog(io, std::chrono::seconds(opt.timeout_seconds) + std::chrono::seconds(5));
    watchdog.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        std::cerr << "cascade-ask: no answer within " << opt.timeout_seconds << " s, and the chain did not stop by its deadline\n";
        std::cerr.flush();
        std::_Exit(exit_no_answer);
    });

    std::optional<cascade::Result> result;
    std::exception_ptr crashed;
    asio::co_spawn(io, ask(chain, req, result), [&](std::exception_ptr e) {
        crashed = e;
        watchdog.cancel();
    });
    io.run();
    if (crashed) {
        try {
            std::rethrow_exception(crashed);
        } catch (std::exception const& e) {
            std::cerr << "cascade-ask: no answer: " << scrub(e.what()) << "\n";
        }
        return exit_no_answer;
    }

    if (!result || !*result) {
        std::string why = result ? result->error().message() : std::string("the chain returned nothing");
        bool const late = result && result->error().code == cascade::Fault::deadline_exceeded;
        if (late) std::cerr << "cascade-ask: no answer within " << opt.timeout_seconds << " s: " << scrub(why) << "\n";
        else std::cerr << "cascade-ask: every tier failed: " << scrub(why) << "\n";
        return exit_no_answer;
    }

    cascade::Completion const& c = **result;
    if (opt.json) {
        std::cout << boost::json::serialize(to_json(c, scrub)) << "\n";
    } else {
        auto text = scrub(c.text);
        std::cout << text;
        if (!text.ends_with('\n')) std::cout << '\n';
    }
    std::cout.flush();
    std::cerr << "[tokens: " << c.usage.prompt_tokens << "/" << c.usage.completion_tokens << ", cost " << format_cost(c) << ", via "
              << c.label << ", " << milliseconds(c.latency) << " ms]\n";
    return exit_answer;
}
