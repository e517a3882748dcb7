// The default classifier and accept policy against tests/corpus/failures.json: what providers, and the
// edge layers in front of them, really answer when a call fails, each case copied from a public capture
// and citing it (tests/corpus/README.md). One table row per case goes to stdout; a failed check names
// the case.

#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/policy/accept.hpp>
#include <cascade/policy/classify.hpp>
#include <cascade/provider/gemini_wire.hpp>
#include <cascade/provider/openai_wire.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef CASCADE_CORPUS
#error "CASCADE_CORPUS must name tests/corpus/failures.json"
#endif

namespace json = boost::json;

namespace {

// The classes the corpus must cover, each from at least three providers.
std::vector<std::string> const required_classes{
    "geo_block", "invalid_key_400", "credits", "context", "content_filter_error", "error_in_200",
    "quota_limit_zero", "model_unavailable", "overload", "finish_reason_cut", "rate_limit_key", "edge_block",
    "edge_errors", "unauthorized_401", "bad_request", "server_error"};

struct Case {
    std::string id, provider, layer, cls, kind, wire, source, note, body;
    bool verbatim = false;
    int status = 0;
    cascade::Headers headers;
    // What the response means. `cool` is unchecked when absent; an empty optional inside means the
    // verdict must leave the cooldown to the chain.
    std::optional<std::string> fault, scope;
    std::optional<std::optional<std::int64_t>> cool;
    std::optional<bool> accepted;

    bool is_answer() const { return kind == "answer"; }
};

std::string text(json::object const& o, char const* name) {
    if (auto const* v = o.if_contains(name); v && v->is_string()) return std::string(v->get_string());
    return {};
}

std::vector<Case> load() {
    std::ifstream in(CASCADE_CORPUS, std::ios::binary);
    REQUIRE(in.good());
    std::stringstream all;
    all << in.rdbuf();
    auto doc = json::parse(all.str());
    REQUIRE(doc.is_array());
    std::vector<Case> cases;
    for (auto const& item : doc.get_array()) {
        auto const& o = item.as_object();
        Case c;
        c.id = text(o, "id");
        c.provider = text(o, "provider");
        c.layer = text(o, "layer");
        c.cls = text(o, "class");
        c.kind = text(o, "kind");
        c.wire = text(o, "wire");
        c.source = text(o, "source");
        c.note = text(o, "note");
        c.body = text(o, "body");
        if (auto const* v = o.if_contains("verbatim"); v && v->is_bool()) c.verbatim = v->get_bool();
        if (auto const* v = o.if_contains("status"); v && v->is_int64()) c.status = static_cast<int>(v->get_int64());
        if (auto const* h = o.if_contains("headers"); h && h->is_object())
            for (auto const& [name, value] : h->get_object())
                c.headers.add(std::string(name), value.is_string() ? std::string(value.get_string()) : json::serialize(value));
        if (auto const* e = o.if_contains("expect"); e && e->is_object()) {
            auto const& x = e->get_object();
            if (x.contains("fault")) c.fault = text(x, "fault");
            if (x.contains("scope")) c.scope = text(x, "scope");
            if (auto const* v = x.if_contains("cool_for_ms")) {
                if (v->is_null()) c.cool.emplace(std::nullopt);
                else c.cool.emplace(v->to_number<std::int64_t>());
            }
            if (auto const* v = x.if_contains("accepted"); v && v->is_bool()) c.accepted = v->get_bool();
        }
        cases.push_back(std::move(c));
    }
    return cases;
}

std::string scope_name(cascade::Scope s) {
    switch (s) {
    case cascade::Scope::attempt: return "attempt";
    case cascade::Scope::key: return "key";
    case cascade::Scope::provider: return "provider";
    }
    return "?";
}

// What the project makes of a case: a verdict for a failure, and for a 200 answer what the tier and the
// accept policy make of it (an answer the wire parser cannot use goes to the classifier, as in the tiers).
struct Got {
    std::string fault, scope;
    std::optional<std::int64_t> cool_ms;
    std::optional<bool> accepted;
};

Got classified(Case const& c) {
    cascade::Observation o;
    o.status = c.status;
    o.headers = c.headers;
    o.body = c.body;
    auto v = cascade::DefaultClassify{}.classify(o);
    Got g;
    g.fault = std::string(cascade::to_string(v.fault));
    g.scope = scope_name(v.scope);
    if (v.cool_for) g.cool_ms = v.cool_for->count();
    return g;
}

Got judged(cascade::Completion const& completion) {
    auto a = cascade::AcceptNonEmpty{}.accept(completion, cascade::Request::chat("", "x"));
    Got g;
    g.accepted = a.accepted;
    if (!a.accepted) g.fault = std::string(cascade::to_string(a.fault));
    return g;
}

Got answered(Case const& c) {
    cascade::Completion completion;
    if (c.wire == "openai") {
        auto r = cascade::openai::parse_reply(c.body);
        if (c.status < 200 || c.status >= 300 || !r) {
            auto g = classified(c);
            g.accepted = false;
            return g;
        }
        completion.text = r->text;
        completion.model = r->model;
        completion.finish_reason = r->finish_reason;
    } else {
        auto r = cascade::gemini::parse_reply(c.body);
        if (c.status < 200 || c.status >= 300 || !r || r->prompt_blocked) {
            auto g = classified(c);
            g.accepted = false;
            return g;
        }
        completion.text = r->text;
        completion.model = r->model;
        completion.finish_reason = r->finish_reason;
    }
    return judged(completion);
}

std::string cool_text(std::optional<std::int64_t> ms) { return ms ? std::to_string(*ms) + "ms" : std::string("none"); }

std::string expected_text(Case const& c) {
    std::string s;
    if (c.is_answer()) {
        s = c.accepted.value_or(true) ? "accepted" : "refused";
        if (c.fault) s += " " + *c.fault;
        return s;
    }
    s = c.fault.value_or("?") + "/" + c.scope.value_or("?");
    if (c.cool) s += " cool=" + cool_text(*c.cool);
    return s;
}

std::string got_text(Case const& c, Got const& g) {
    std::string s;
    if (c.is_answer()) {
        s = g.accepted.value_or(true) ? "accepted" : "refused";
        if (!g.fault.empty()) s += " " + g.fault;
        return s;
    }
    s = g.fault + "/" + g.scope;
    if (c.cool) s += " cool=" + cool_text(g.cool_ms);
    return s;
}

bool matches(Case const& c, Got const& g) {
    if (c.fault && g.fault != *c.fault) return false;
    if (c.scope && g.scope != *c.scope) return false;
    if (c.cool && g.cool_ms != *c.cool) return false;
    if (c.accepted && g.accepted != *c.accepted) return false;
    return true;
}

void row(std::string_view id, std::string_view provider, std::string_view cls, std::string_view status,
         std::string_view expected, std::string_view got, std::string_view mark) {
    std::cout << std::left << std::setw(46) << id << ' ' << std::setw(16) << provider << ' ' << std::setw(21) << cls
              << ' ' << std::setw(6) << status << ' ' << std::setw(34) << expected << ' ' << std::setw(34) << got << ' '
              << mark << '\n';
}

} // namespace

TEST_CASE("every captured failure gets the verdict its provider means", "[corpus]") {
    auto cases = load();
    REQUIRE_FALSE(cases.empty());

    // The whole table first, then the checks, so the table reads in one piece.
    std::vector<std::optional<Got>> got;
    int ok = 0, skipped = 0;
    std::vector<std::string> failing;
    row("id", "provider", "class", "status", "expected", "got", "");
    for (auto const& c : cases) {
        if (c.is_answer() && c.wire != "openai" && c.wire != "gemini") {
            row(c.id, c.provider, c.cls, std::to_string(c.status), expected_text(c), "-",
                "SKIP (no " + c.wire + " wire parser)");
            got.emplace_back();
            ++skipped;
            continue;
        }
        auto g = c.is_answer() ? answered(c) : classified(c);
        bool const good = matches(c, g);
        row(c.id, c.provider, c.cls, std::to_string(c.status), expected_text(c), got_text(c, g), good ? "OK" : "FAIL");
        if (good) ++ok;
        else failing.push_back(c.id);
        got.emplace_back(std::move(g));
    }
    std::cout << cases.size() << " cases: " << ok << " OK, " << failing.size() << " FAIL, " << skipped
              << " skipped\n";
    for (auto const& id : failing) std::cout << "FAIL " << id << '\n';
    std::cout << std::flush;

    for (std::size_t i = 0; i < cases.size(); ++i) {
        if (!got[i]) continue;
        auto const& c = cases[i];
        auto const& g = *got[i];
        INFO("case " << c.id << " (" << c.provider << ", " << c.cls << ", HTTP " << c.status << ") from " << c.source);
        if (c.fault) CHECK(g.fault == *c.fault);
        if (c.scope) CHECK(g.scope == *c.scope);
        if (c.cool) {
            auto const want = cool_text(*c.cool);
            auto const have = cool_text(g.cool_ms);
            CHECK(have == want);
        }
        if (c.accepted) CHECK(g.accepted == c.accepted);
    }
}

TEST_CASE("the corpus covers every failure class from several providers, each case with its source", "[corpus]") {
    auto cases = load();
    CHECK(cases.size() >= 80);

    std::set<std::string> providers, ids;
    std::map<std::string, std::set<std::string>> by_class;
    for (auto const& c : cases) {
        INFO("case " << c.id);
        CHECK_FALSE(c.id.empty());
        CHECK(ids.insert(c.id).second);  // ids are unique
        CHECK_FALSE(c.provider.empty());
        CHECK_FALSE(c.source.empty());
        CHECK_FALSE(c.body.empty());
        CHECK(c.status > 0);
        if (!c.verbatim) CHECK_FALSE(c.note.empty());  // a reconstruction says what was reconstructed
        CHECK(std::find(required_classes.begin(), required_classes.end(), c.cls) != required_classes.end());
        if (c.is_answer()) {
            CHECK(c.accepted.has_value());
            CHECK_FALSE(c.wire.empty());
        } else {
            CHECK(c.fault.has_value());
            CHECK(c.scope.has_value());
        }
        providers.insert(c.provider);
        by_class[c.cls].insert(c.provider);
    }
    CHECK(providers.size() >= 10);

    std::cout << cases.size() << " cases from " << providers.size() << " providers and layers\n";
    for (auto const& cls : required_classes) {
        auto const& p = by_class[cls];
        std::cout << std::left << std::setw(21) << cls << ' ' << p.size() << " providers:";
        for (auto const& name : p) std::cout << ' ' << name;
        std::cout << '\n';
        INFO("class " << cls << " has cases from " << p.size() << " providers; it needs three");
        CHECK(p.size() >= 3);
    }
}
