#pragma once
// Definitions of sim/scenario.hpp: the strict JSON reader of a scenario.

#include <cascade/sim/scenario.hpp>

#include <charconv>
#include <cstdio>
#include <ctime>

namespace cascade::sim {

namespace detail {

inline Dialect dialect_of(Reader const& r) {
    auto const s = r.string();
    if (s == "groq") return Dialect::groq;
    if (s == "deepseek") return Dialect::deepseek;
    if (s == "vertex") return Dialect::vertex;
    if (s == "openrouter") return Dialect::openrouter;
    if (s == "huggingface") return Dialect::huggingface;
    if (s == "openai") return Dialect::openai;
    r.fail("unknown dialect \"" + s + "\" (known: groq, deepseek, vertex, openrouter, huggingface, openai)");
}

inline TokenRange token_range(Reader const& r) {
    auto const& o = r.object({"min", "max"});
    TokenRange t;
    if (!o.contains("min") || !o.contains("max")) r.fail("needs min and max");
    t.min = field(r, o, "min").count(1'000'000);
    t.max = field(r, o, "max").count(1'000'000);
    if (t.min > t.max) r.fail("min is above max");
    return t;
}

inline std::chrono::milliseconds millis(Reader const& r, double hi_ms) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(r.number(0, hi_ms)));
}

inline Clock::duration hours_of(Reader const& r) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::ratio<3600>>(r.number(0, 24.0 * 366)));
}

inline AccountLimits limits_of(Reader const& r) {
    auto const& o = r.object({"requests_per_minute", "requests_per_day", "tokens_per_minute", "tokens_per_day", "max_concurrent", "window"});
    AccountLimits l;
    if (o.contains("requests_per_minute")) l.requests_per_minute = field(r, o, "requests_per_minute").count();
    if (o.contains("requests_per_day")) l.requests_per_day = field(r, o, "requests_per_day").count();
    if (o.contains("tokens_per_minute")) l.tokens_per_minute = field(r, o, "tokens_per_minute").count();
    if (o.contains("tokens_per_day")) l.tokens_per_day = field(r, o, "tokens_per_day").count();
    if (o.contains("max_concurrent")) l.max_concurrent = field(r, o, "max_concurrent").count();
    if (o.contains("window")) {
        auto const w = field(r, o, "window");
        auto const s = w.string();
        if (s == "rolling") l.window = Window::rolling;
        else if (s == "calendar") l.window = Window::calendar;
        else w.fail("expected \"rolling\" or \"calendar\"");
    }
    return l;
}

inline Prices prices_of(Reader const& r) {
    auto const& o = r.object({"free", "input_per_million", "output_per_million", "cached_input_per_million", "peak"});
    Prices p;
    if (o.contains("free")) p.free = field(r, o, "free").boolean();
    if (o.contains("input_per_million")) p.input_per_million = field(r, o, "input_per_million").number(0, 10'000);
    if (o.contains("output_per_million")) p.output_per_million = field(r, o, "output_per_million").number(0, 10'000);
    if (o.contains("cached_input_per_million")) p.cached_input_per_million = field(r, o, "cached_input_per_million").number(0, 10'000);
    if (o.contains("peak")) {
        auto const pr = field(r, o, "peak");
        auto const& po = pr.object({"hours", "off_peak_factor", "weekdays_only"});
        if (!po.contains("hours")) pr.fail("needs hours: a list of [from, to) UTC hour pairs");
        auto const hr = field(pr, po, "hours");
        std::size_t i = 0;
        for (auto const& pair : hr.array()) {
            Reader const pe(pair, hr.path() + "[" + std::to_string(i++) + "]");
            auto const& a = pe.array();
            if (a.size() != 2) pe.fail("expected [from, to)");
            auto const from = Reader(a[0], pe.path() + "[0]").count(24), to = Reader(a[1], pe.path() + "[1]").count(24);
            if (from >= to) pe.fail("from must be below to");
            p.peak.hours |= PeakHours::between(static_cast<int>(from), static_cast<int>(to));
        }
        if (po.contains("off_peak_factor")) p.peak.off_peak_factor = field(pr, po, "off_peak_factor").number(0, 1);
        if (po.contains("weekdays_only")) p.peak.weekdays_only = field(pr, po, "weekdays_only").boolean();
    }
    if (!p.known()) r.fail("give prices (input_per_million, output_per_million) or \"free\": true; an unpriced tier would read as $0");
    return p;
}

inline Episode episode_of(Reader const& r, std::size_t key_count) {
    auto const& o = r.object({"kind", "from_hours", "hours", "keys", "share"});
    Episode e;
    if (!o.contains("kind")) r.fail("needs kind (blocked, outage, quota or short_answer)");
    auto const kr = field(r, o, "kind");
    auto const k = kr.string();
    if (k == "blocked") e.kind = Limit::blocked;
    else if (k == "outage") e.kind = Limit::outage;
    else if (k == "quota") e.kind = Limit::quota;
    else if (k == "short_answer") e.kind = Limit::short_answer;
    else kr.fail("unknown kind \"" + k + "\" (known: blocked, outage, quota, short_answer)");
    if (o.contains("from_hours")) e.from = hours_of(field(r, o, "from_hours"));
    if (o.contains("hours")) e.length = hours_of(field(r, o, "hours"));
    if (o.contains("keys")) {
        auto const kr2 = field(r, o, "keys");
        std::size_t i = 0;
        for (auto const& kv : kr2.array()) {
            Reader const one(kv, kr2.path() + "[" + std::to_string(i++) + "]");
            auto const n = one.count(1'000);
            if (n >= key_count) one.fail("no such key: the tier has " + std::to_string(key_count));
            e.keys.push_back(static_cast<int>(n));
        }
    }
    if (o.contains("share")) e.share = field(r, o, "share").number(0, 1);
    return e;
}

inline ModelledTierConfig tier_of(Reader const& r, TokenRange load_answers) {
    auto const& o = r.object({"name", "model", "dialect", "keys", "organizations", "limits", "chain_budgets", "chain_knows_groups", "prices",
                              "included_credits_usd", "credits_renew_daily", "balance_usd", "cached_prompt_share", "latency", "answer_tokens", "episodes", "seed"});
    ModelledTierConfig t;
    for (auto k : {"name", "model", "dialect", "keys", "prices"})
        if (!o.contains(k)) r.fail(std::string("needs ") + k);
    t.name = field(r, o, "name").string();
    if (t.name.empty() || t.name == "cache" || t.name == "fallback-template" || t.name == "failed") field(r, o, "name").fail("must be a name of its own");
    t.model = field(r, o, "model").string();
    t.dialect = dialect_of(field(r, o, "dialect"));
    auto const keys = field(r, o, "keys");
    t.keys.clear();
    if (keys.value().is_array()) {
        std::size_t i = 0;
        for (auto const& kv : keys.array()) {
            Reader const one(kv, keys.path() + "[" + std::to_string(i++) + "]");
            auto const& ko = one.object({"label", "group"});
            ModelledKey k;
            if (ko.contains("label")) k.label = field(one, ko, "label").string();
            if (ko.contains("group")) k.group = field(one, ko, "group").string();
            t.keys.push_back(std::move(k));
        }
        if (o.contains("organizations")) field(r, o, "organizations").fail("give groups in keys[].group, or keys as a number with organizations");
    } else {
        auto const n = keys.count(64);
        if (n == 0) keys.fail("a tier needs at least one key");
        std::uint32_t const orgs = o.contains("organizations") ? field(r, o, "organizations").count(64) : n;
        if (orgs == 0 || orgs > n) field(r, o, "organizations").fail("must be between 1 and the number of keys");
        for (std::uint32_t i = 0; i < n; ++i) t.keys.push_back(ModelledKey{{}, "org" + std::to_string(i * orgs / n + 1)});
    }
    if (t.keys.empty()) keys.fail("a tier needs at least one key");
    if (o.contains("limits")) t.limits = limits_of(field(r, o, "limits"));
    if (o.contains("chain_budgets")) t.chain_budgets = field(r, o, "chain_budgets").boolean();
    if (o.contains("chain_knows_groups")) t.chain_knows_groups = field(r, o, "chain_knows_groups").boolean();
    t.prices = prices_of(field(r, o, "prices"));
    if (o.contains("included_credits_usd")) t.included_credits_usd = field(r, o, "included_credits_usd").number(0, 1e6);
    if (o.contains("credits_renew_daily")) t.credits_renew_daily = field(r, o, "credits_renew_daily").boolean();
    if (o.contains("balance_usd")) t.balance_usd = field(r, o, "balance_usd").number(0, 1e6);
    if (o.contains("cached_prompt_share")) t.cached_prompt_share = field(r, o, "cached_prompt_share").number(0, 1);
    if (o.contains("latency")) {
        auto const lr = field(r, o, "latency");
        auto const& lo = lr.object({"first_token_ms", "tokens_per_second", "jitter", "refusal_ms"});
        if (lo.contains("first_token_ms")) t.latency.first_token = millis(field(lr, lo, "first_token_ms"), 600'000);
        if (lo.contains("tokens_per_second")) t.latency.tokens_per_second = field(lr, lo, "tokens_per_second").number(0.1, 100'000);
        if (lo.contains("jitter")) t.latency.jitter = field(lr, lo, "jitter").number(0, 3);
        if (lo.contains("refusal_ms")) t.latency.refusal = millis(field(lr, lo, "refusal_ms"), 600'000);
    }
    t.answer_tokens = o.contains("answer_tokens") ? token_range(field(r, o, "answer_tokens")) : load_answers;
    if (o.contains("episodes")) {
        auto const er = field(r, o, "episodes");
        std::size_t i = 0;
        for (auto const& ev : er.array()) t.episodes.push_back(episode_of(Reader(ev, er.path() + "[" + std::to_string(i++) + "]"), t.keys.size()));
    }
    if (o.contains("seed")) t.seed = field(r, o, "seed").count();
    return t;
}

inline std::chrono::system_clock::time_point utc_of(Reader const& r) {
    auto const s = r.string();  // 2026-12-01T00:00:00Z
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    char z = 0;
    if (s.size() != 20 || std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z')
        r.fail("expected a UTC time as YYYY-MM-DDTHH:MM:SSZ");
    std::chrono::year_month_day const ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)}, std::chrono::day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || se > 59) r.fail("not a valid date and time");
    return std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(se);
}

inline LoadConfig load_of(Reader const& r) {
    auto const& o = r.object({"days", "requests_per_day", "hourly_curve", "prompt_tokens", "answer_tokens", "max_tokens", "repeat_share", "languages",
                              "seed", "start_utc", "warmup_days"});
    LoadConfig l;
    if (o.contains("days")) l.days = field(r, o, "days").number(0.001, 366);
    if (o.contains("warmup_days")) l.warmup_days = field(r, o, "warmup_days").number(0, 31);
    if (o.contains("requests_per_day")) l.requests_per_day = field(r, o, "requests_per_day").count(1'000'000);
    if (o.contains("hourly_curve")) {
        auto const cr = field(r, o, "hourly_curve");
        auto const& a = cr.array();
        if (a.size() != 24) cr.fail("expected 24 weights, one per UTC hour");
        for (std::size_t i = 0; i < 24; ++i) l.hourly_curve[i] = Reader(a[i], cr.path() + "[" + std::to_string(i) + "]").number(0, 1e9);
    }
    if (o.contains("prompt_tokens")) l.prompt_tokens = token_range(field(r, o, "prompt_tokens"));
    if (o.contains("answer_tokens")) l.answer_tokens = token_range(field(r, o, "answer_tokens"));
    if (o.contains("max_tokens")) {
        auto const mr = field(r, o, "max_tokens");
        if (mr.value().is_null()) l.max_tokens.reset();
        else l.max_tokens = static_cast<int>(mr.count(1'000'000));
    }
    if (o.contains("repeat_share")) l.repeat_share = field(r, o, "repeat_share").number(0, 0.99);
    if (o.contains("languages")) {
        auto const lr = field(r, o, "languages");
        if (!lr.value().is_object()) lr.fail("expected an object of language: weight");
        l.languages.clear();
        for (auto const& kv : lr.value().get_object()) l.languages.emplace_back(std::string(kv.key()), Reader(kv.value(), lr.child(kv.key())).number(0, 1e9));
    }
    if (o.contains("seed")) l.seed = field(r, o, "seed").count();
    if (o.contains("start_utc")) l.start_utc = utc_of(field(r, o, "start_utc"));
    try {
        validate(l);
    } catch (std::invalid_argument const& e) {
        throw ScenarioError(e.what());
    }
    return l;
}

} // namespace detail

inline Scenario parse_scenario(std::string_view json_text) {
    boost::system::error_code ec;
    auto const v = boost::json::parse(json_text, ec);
    if (ec) throw ScenarioError("scenario: not valid JSON: " + ec.message());
    detail::Reader const r(v, "");
    auto const& o = r.object({"name", "description", "sources", "chain", "tiers", "load"});
    Scenario s;
    for (auto k : {"name", "tiers", "load"})
        if (!o.contains(k)) throw ScenarioError(std::string("scenario: needs ") + k);
    s.name = field(r, o, "name").string();
    if (o.contains("description")) s.description = field(r, o, "description").string();
    if (o.contains("sources")) {
        auto const sr = field(r, o, "sources");
        std::size_t i = 0;
        for (auto const& sv : sr.array()) s.sources.push_back(detail::Reader(sv, sr.path() + "[" + std::to_string(i++) + "]").string());
    }
    s.load = detail::load_of(field(r, o, "load"));
    if (o.contains("chain")) {
        auto const cr = field(r, o, "chain");
        auto const& co = cr.object({"cache", "min_answer_chars", "max_wait_ms", "key_order"});
        if (co.contains("cache")) s.cache = field(cr, co, "cache").boolean();
        if (co.contains("min_answer_chars")) s.min_answer_chars = field(cr, co, "min_answer_chars").count(1'000'000);
        if (co.contains("max_wait_ms")) s.max_wait = detail::millis(field(cr, co, "max_wait_ms"), 3'600'000);
        if (co.contains("key_order")) {
            auto const kr = field(cr, co, "key_order");
            auto const k = kr.string();
            if (k == "sequential") s.key_order = KeyOrder::sequential;
            else if (k == "round_robin") s.key_order = KeyOrder::round_robin;
            else if (k == "least_recently_limited") s.key_order = KeyOrder::least_recently_limited;
            else kr.fail("expected sequential, round_robin or least_recently_limited");
        }
    }
    auto const tr = field(r, o, "tiers");
    auto const& ta = tr.array();
    if (ta.empty() || ta.size() > max_scenario_tiers) tr.fail("give 1 to " + std::to_string(max_scenario_tiers) + " tiers (the template is added last)");
    for (std::size_t i = 0; i < ta.size(); ++i) {
        s.tiers.push_back(detail::tier_of(detail::Reader(ta[i], "tiers[" + std::to_string(i) + "]"), s.load.answer_tokens));
        for (std::size_t j = 0; j < i; ++j)
            if (s.tiers[j].name == s.tiers[i].name) throw ScenarioError("tiers[" + std::to_string(i) + "].name: \"" + s.tiers[i].name + "\" is used twice");
        s.tiers[i].seed += i * 7919;  // tiers of one seed draw differently
    }
    return s;
}

inline void apply_override(boost::json::value& scenario, std::string_view assignment) {
    auto const eq = assignment.find('=');
    if (eq == std::string_view::npos || eq == 0) throw ScenarioError("--set " + std::string(assignment) + ": expected path=value");
    std::string_view path = assignment.substr(0, eq);
    std::string_view const text = assignment.substr(eq + 1);
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(text, ec);
    if (ec) value = boost::json::string(text);
    boost::json::value* at = &scenario;
    std::string walked;
    auto const bad = [&](std::string const& why) { throw ScenarioError("--set " + std::string(assignment) + ": " + why); };
    while (!path.empty()) {
        if (path.front() == '[') {
            auto const close = path.find(']');
            if (close == std::string_view::npos) bad("unclosed [");
            std::size_t idx = 0;
            auto const digits = path.substr(1, close - 1);
            auto [p, e] = std::from_chars(digits.data(), digits.data() + digits.size(), idx);
            if (e != std::errc{} || p != digits.data() + digits.size()) bad("index is not a number");
            if (!at->is_array() || idx >= at->get_array().size()) bad(walked + '[' + std::string(digits) + "] does not exist");
            walked.append(1, '[').append(digits).append(1, ']');  // append: g++ 12 -O2 warns falsely on "[" + string
            at = &at->get_array()[idx];
            path.remove_prefix(close + 1);
            if (!path.empty() && path.front() == '.') path.remove_prefix(1);
            continue;
        }
        auto const end = path.find_first_of(".[");
        auto const key = path.substr(0, end);
        if (!at->is_object()) bad(walked + " is not an object");
        if (!walked.empty()) walked.append(1, '.');
        walked.append(key);
        path.remove_prefix(end == std::string_view::npos ? path.size() : end);
        if (!path.empty() && path.front() == '.') path.remove_prefix(1);
        auto& obj = at->get_object();
        if (path.empty()) {
            obj[key] = std::move(value);
            return;
        }
        if (!obj.contains(key)) bad(walked + " does not exist");
        at = &obj[key];
    }
    *at = std::move(value);
}

} // namespace cascade::sim
