// The crypto-security self-audit (examples/audit/): the shipped questionnaire loads and every fault in
// one is named by its JSON path; a request body is read or refused with a message naming the question and
// its allowed values; scores, the Accept-Language choice, the template report, the LLM prompt and the
// answers tag behave as the server relies on.

#include <audit/audit.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace json = boost::json;
using audit::Answers;
using audit::Lang;
using audit::Questionnaire;

namespace {

std::string const shipped_path = CASCADE_SOURCE_DIR "/examples/audit/questionnaire.json";

Questionnaire const& shipped() {
    static Questionnaire const q = Questionnaire::load_file(shipped_path);
    return q;
}

json::value shipped_json() {
    std::ifstream in(shipped_path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return json::parse(s.str());
}

// The message `load` throws for the shipped questionnaire after `edit`; empty when it loads.
std::string load_error(std::function<void(json::object&)> const& edit) {
    json::value doc = shipped_json();
    edit(doc.as_object());
    try {
        Questionnaire::load(json::serialize(doc));
    } catch (audit::QuestionnaireError const& e) {
        return e.what();
    }
    return {};
}

json::object& question(json::object& doc, std::size_t i) { return doc.at("questions").as_array().at(i).as_object(); }
json::object& option(json::object& doc, std::size_t i, std::size_t j) {
    return question(doc, i).at("options").as_array().at(j).as_object();
}

// For each question, the first option whose points `better` prefers.
Answers pick(Lang lang, std::function<bool(int, int)> const& better) {
    Answers a{lang, {}};
    for (auto const& q : shipped().questions) {
        auto it = std::min_element(q.options.begin(), q.options.end(),
                                   [&](audit::Option const& x, audit::Option const& y) { return better(x.points, y.points); });
        a.values.push_back(it->value);
    }
    return a;
}
Answers best(Lang lang = Lang::en) { return pick(lang, std::greater<>{}); }
Answers worst(Lang lang = Lang::en) { return pick(lang, std::less<>{}); }
// The best answers to q1..q6 (55 points) and the worst to the rest: a score in the middle band.
Answers half(Lang lang = Lang::en) {
    Answers a = best(lang);
    Answers const w = worst(lang);
    std::copy(w.values.begin() + 6, w.values.end(), a.values.begin() + 6);
    return a;
}

// A body with every question answered by `a`, then `edit` applied to the whole object.
std::string body(Answers const& a, std::function<void(json::object&)> const& edit = {}) {
    json::object answers;
    for (std::size_t i = 0; i < a.values.size(); ++i) answers[shipped().questions[i].id] = a.values[i];
    json::object b{{"lang", std::string(audit::code(a.lang))}, {"answers", std::move(answers)}};
    if (edit) edit(b);
    return json::serialize(b);
}

std::string refusal(std::string_view text) {
    auto r = audit::parse_answers(shipped(), text);
    auto const* e = std::get_if<audit::AnswersError>(&r);
    return e ? e->message : "(accepted)";
}

std::size_t count(std::string const& s, std::string const& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
    return n;
}

bool contains(std::string const& s, std::string_view what) { return s.find(what) != std::string::npos; }

} // namespace

// ---- the shipped questionnaire ------------------------------------------------------------------

TEST_CASE("the shipped questionnaire loads: 4 areas, 12 questions q1 to q12 whose weights sum to 100", "[audit]") {
    Questionnaire const& q = shipped();
    CHECK(q.areas.size() == 4);
    REQUIRE(q.questions.size() == 12);
    int sum = 0;
    for (std::size_t i = 0; i < q.questions.size(); ++i) {
        CHECK(q.questions[i].id == "q" + std::to_string(i + 1));
        sum += q.questions[i].weight;
    }
    CHECK(sum == 100);
    CHECK(q.vulnerabilities.size() >= 12);
}

TEST_CASE("every shipped option short of full points reveals a vulnerability, so the report explains each lost point", "[audit]") {
    for (auto const& q : shipped().questions)
        for (auto const& o : q.options) {
            INFO(q.id << " " << o.value);
            CHECK((o.points == q.weight || !o.vulnerability.empty()));
        }
}

TEST_CASE("every shipped vulnerability has an English incident and advice of two to four sentences in each language", "[audit]") {
    for (auto const& v : shipped().vulnerabilities) {
        INFO(v.id);
        CHECK(v.incident.size() > 80);
        for (Lang l : audit::all_langs) {
            std::string const& advice = v.advice.in(l);
            std::size_t const sentences = count(advice, ". ") + 1;
            CHECK(sentences >= 2);
            CHECK(sentences <= 4);
            CHECK(advice.back() == '.');
        }
    }
}

// ---- load errors, each named by its path --------------------------------------------------------

TEST_CASE("a missing or empty translation is reported with its JSON path", "[audit]") {
    CHECK(load_error([](json::object& d) { option(d, 3, 1).at("text").as_object().erase("es"); }) ==
          "questions[3].options[1].text.es: missing");
    CHECK(load_error([](json::object& d) { question(d, 2).at("text").as_object()["ru"] = "  "; }) ==
          "questions[2].text.ru: empty");
    CHECK(load_error([](json::object& d) { d.at("areas").as_array().at(1).as_object().at("name").as_object().erase("en"); }) ==
          "areas[1].name.en: missing");
    CHECK(load_error([](json::object& d) { d.at("vulnerabilities").as_array().at(0).as_object().at("advice").as_object()["es"] = 3; }) ==
          "vulnerabilities[0].advice.es: must be a string");
}

TEST_CASE("unknown fields, missing fields and wrong types are reported with their JSON path", "[audit]") {
    CHECK(load_error([](json::object& d) { d["version"] = 2; }) == "version: unknown field");
    CHECK(load_error([](json::object& d) { question(d, 0)["hint"] = "x"; }) == "questions[0].hint: unknown field");
    CHECK(load_error([](json::object& d) { option(d, 0, 0).at("text").as_object()["de"] = "x"; }) == "questions[0].options[0].text.de: unknown field");
    CHECK(load_error([](json::object& d) { d.erase("vulnerabilities"); }) == "vulnerabilities: missing");
    CHECK(load_error([](json::object& d) { option(d, 5, 2).erase("points"); }) == "questions[5].options[2].points: missing");
    CHECK(load_error([](json::object& d) { question(d, 0)["weight"] = "12"; }) == "questions[0].weight: must be an integer");
    CHECK(load_error([](json::object& d) { question(d, 0)["weight"] = 12.5; }) == "questions[0].weight: must be an integer");
    CHECK(load_error([](json::object& d) { question(d, 0)["text"] = "Where?"; }) == "questions[0].text: must be an object");
    CHECK(load_error([](json::object& d) { d["questions"] = json::object{}; }) == "questions: must be an array");
    CHECK(load_error([](json::object& d) { question(d, 0)["options"] = json::array{question(d, 0).at("options").as_array().at(0)}; }) ==
          "questions[0].options: a question needs at least two options");
}

TEST_CASE("duplicate ids and values and malformed ids are refused with their JSON path", "[audit]") {
    CHECK(load_error([](json::object& d) { question(d, 1)["id"] = "q1"; }) == "questions[1].id: duplicate id \"q1\"");
    CHECK(load_error([](json::object& d) { option(d, 0, 1)["value"] = "paper_safe"; }) ==
          "questions[0].options[1].value: duplicate value \"paper_safe\"");
    CHECK(load_error([](json::object& d) { d.at("areas").as_array().at(1).as_object()["id"] = "storage"; }) ==
          "areas[1].id: duplicate id \"storage\"");
    CHECK(load_error([](json::object& d) { d.at("vulnerabilities").as_array().at(1).as_object()["id"] = "seed_digital"; }) ==
          "vulnerabilities[1].id: duplicate id \"seed_digital\"");
    CHECK(load_error([](json::object& d) { option(d, 0, 0)["value"] = "Paper safe"; }) ==
          "questions[0].options[0].value: \"Paper safe\" is not an id: use up to 40 of a-z, 0-9 and _");
}

TEST_CASE("weights, points and best options that do not add up are refused with their JSON path", "[audit]") {
    CHECK(load_error([](json::object& d) {
              question(d, 11)["weight"] = 6;
              option(d, 11, 0)["points"] = 6;
          }) == "questions: weights sum to 99, not 100");
    CHECK(load_error([](json::object& d) { option(d, 2, 0)["points"] = 9; }) ==
          "questions[2].options[0].points: 9 is out of range 0..8 (the question's weight)");
    CHECK(load_error([](json::object& d) { option(d, 2, 2)["points"] = -1; }) ==
          "questions[2].options[2].points: -1 is out of range 0..8 (the question's weight)");
    CHECK(load_error([](json::object& d) { option(d, 0, 0)["points"] = 11; }) ==
          "questions[0].options: the best option is worth 11 points, not the question's weight 12");
    CHECK(load_error([](json::object& d) { question(d, 4)["weight"] = 0; }) == "questions[4].weight: 0 is out of range 1..100");
}

TEST_CASE("references to undefined areas and vulnerabilities, and unused ones, are refused with their JSON path", "[audit]") {
    CHECK(load_error([](json::object& d) { option(d, 0, 1)["vulnerability"] = "nope"; }) ==
          "questions[0].options[1].vulnerability: \"nope\" is not defined in vulnerabilities");
    CHECK(load_error([](json::object& d) { question(d, 0)["area"] = "wallets"; }) == "questions[0].area: unknown area \"wallets\"");
    CHECK(load_error([](json::object& d) {
              json::object extra = d.at("vulnerabilities").as_array().at(0).as_object();
              extra["id"] = "unused";
              d.at("vulnerabilities").as_array().push_back(extra);
          }) == "vulnerabilities[15]: \"unused\" is not revealed by any option");
    CHECK(load_error([](json::object& d) {
              d.at("areas").as_array().push_back(json::object{{"id", "extra"}, {"name", {{"en", "E"}, {"ru", "Р"}, {"es", "E"}}}});
          }) == "areas[4]: area \"extra\" has no questions");
}

TEST_CASE("a questionnaire that is not JSON, or a file that cannot be read, is refused", "[audit]") {
    CHECK_THROWS_WITH(Questionnaire::load("{\"areas\": ["), Catch::StartsWith("questionnaire: invalid JSON"));
    CHECK_THROWS_WITH(Questionnaire::load("[]"), "questionnaire: must be an object");
    CHECK_THROWS_WITH(Questionnaire::load_file("/nonexistent/q.json"), "/nonexistent/q.json: cannot be read");
}

// ---- answers ------------------------------------------------------------------------------------

TEST_CASE("a complete body gives the answers in question order whatever the order of its keys", "[audit]") {
    std::string const text = R"({"answers":{"q12":"ignore","q11":"ignore_block","q10":"app_or_key","q9":"bookmarks",
        "q8":"clean_device","q7":"official_site","q6":"verify_full","q5":"no_defi","q4":"read_everything",
        "q3":"separate_vault","q2":"hw_wallet","q1":"paper_safe"},"lang":"ru"})";
    auto r = audit::parse_answers(shipped(), text);
    REQUIRE(std::holds_alternative<Answers>(r));
    Answers const& a = std::get<Answers>(r);
    CHECK(a.lang == Lang::ru);
    CHECK(a.values == std::vector<std::string>{"paper_safe", "hw_wallet", "separate_vault", "read_everything", "no_defi", "verify_full",
                                               "official_site", "clean_device", "bookmarks", "app_or_key", "ignore_block", "ignore"});
}

TEST_CASE("a missing answer is refused naming the question and its allowed values", "[audit]") {
    CHECK(refusal(body(best(), [](json::object& b) { b.at("answers").as_object().erase("q3"); })) ==
          "q3 is missing: allowed values are separate_vault, partly, single_wallet");
}

TEST_CASE("an unknown value is refused naming the question and its allowed values", "[audit]") {
    CHECK(refusal(body(best(), [](json::object& b) { b.at("answers").as_object()["q2"] = "cold_storage"; })) ==
          "q2 has an unknown value \"cold_storage\": allowed values are hw_wallet, exchange, hot_wallet, not_sure");
    // What the client sent is quoted as JSON and cut short, never echoed raw.
    std::string const m = refusal(body(best(), [](json::object& b) { b.at("answers").as_object()["q2"] = "a\"b\n" + std::string(100, 'x'); }));
    CHECK(contains(m, R"(q2 has an unknown value "a\"b\nxxx)"));
    CHECK(contains(m, "...\": allowed values are"));
    CHECK(m.size() < 200);
}

TEST_CASE("a value that is not a string is refused naming the question and its allowed values", "[audit]") {
    CHECK(refusal(body(best(), [](json::object& b) { b.at("answers").as_object()["q2"] = 3; })) ==
          "q2 must be a string, one of: hw_wallet, exchange, hot_wallet, not_sure");
    CHECK(refusal(body(best(), [](json::object& b) { b.at("answers").as_object()["q7"] = json::array{"official_site"}; })) ==
          "q7 must be a string, one of: official_site, store_search, ad_or_link");
}

TEST_CASE("an unknown question or an unknown top-level field is refused", "[audit]") {
    CHECK(refusal(body(best(), [](json::object& b) { b.at("answers").as_object()["q13"] = "x"; })) ==
          "unknown question \"q13\": the questions are q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12");
    CHECK(refusal(body(best(), [](json::object& b) { b["email"] = "a@b.c"; })) ==
          "unknown field \"email\": the body has only \"lang\" and \"answers\"");
}

TEST_CASE("a body that is not JSON, not an object, or whose answers are not an object is refused", "[audit]") {
    CHECK_THAT(refusal("{\"lang\": \"en\", "), Catch::StartsWith("the body is not valid JSON ("));
    CHECK_THAT(refusal(""), Catch::StartsWith("the body is not valid JSON ("));
    CHECK(refusal("[1,2]") == R"(the body is not an object: it must be a JSON object like {"lang":"en","answers":{"q1":"..."}})");
    CHECK(refusal(R"({"lang":"en","answers":["paper_safe"]})") ==
          "answers must be an object mapping each question (q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12) to a value");
    CHECK(refusal(R"({"lang":"en"})") ==
          "answers is missing: it must be an object mapping each question (q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12) to a value");
}

TEST_CASE("a missing lang or one other than en, ru, es is refused", "[audit]") {
    CHECK(refusal(body(best(), [](json::object& b) { b.erase("lang"); })) == "lang is missing: allowed values are en, ru, es");
    CHECK(refusal(body(best(), [](json::object& b) { b["lang"] = "fr"; })) == "lang \"fr\" is not supported: allowed values are en, ru, es");
    CHECK(refusal(body(best(), [](json::object& b) { b["lang"] = "RU"; })) == "lang \"RU\" is not supported: allowed values are en, ru, es");
    CHECK(refusal(body(best(), [](json::object& b) { b["lang"] = nullptr; })) == "lang must be a string, one of: en, ru, es");
}

// ---- scores -------------------------------------------------------------------------------------

TEST_CASE("the best answers score 100 with every area full and no vulnerability", "[audit]") {
    audit::Score const s = audit::score(shipped(), best());
    CHECK(s.total == 100);
    CHECK(s.vulnerabilities.empty());
    REQUIRE(s.breakdown.size() == 4);
    for (auto const& a : s.breakdown) CHECK(a.points == a.max);
}

TEST_CASE("the worst answers score 0 and reveal one vulnerability per question, in question order", "[audit]") {
    audit::Score const s = audit::score(shipped(), worst());
    CHECK(s.total == 0);
    CHECK(audit::band_of(s.total) == audit::Band::low);
    CHECK(s.vulnerabilities == std::vector<std::string>{"seed_digital", "hot_wallet_savings", "no_wallet_separation", "blind_signing",
                                                        "stale_approvals", "address_poisoning", "fake_wallet_app", "malware_risk",
                                                        "phishing_sites", "weak_account_security", "seed_phishing", "wallet_drainer"});
}

TEST_CASE("the per-area breakdown sums to the total and its maxima to 100", "[audit]") {
    for (Answers const& a : {best(), worst(), half(), pick(Lang::en, [](int x, int y) { return x > 0 && (y == 0 || x < y); })}) {
        audit::Score const s = audit::score(shipped(), a);
        int points = 0, max = 0;
        for (auto const& area : s.breakdown) {
            points += area.points;
            max += area.max;
        }
        CHECK(points == s.total);
        CHECK(max == 100);
    }
    CHECK(audit::score(shipped(), half()).total == 55);
}

TEST_CASE("a vulnerability revealed by two answers is listed once", "[audit]") {
    Answers a = best();
    a.values[0] = "exchange_only";  // q1
    a.values[1] = "exchange";       // q2
    audit::Score const s = audit::score(shipped(), a);
    CHECK(s.total == 100 - 12 + 6 - 10 + 4);
    CHECK(s.vulnerabilities == std::vector<std::string>{"exchange_custody"});
}

TEST_CASE("answers that do not fit the questionnaire are a programming error, not a score", "[audit]") {
    Answers a = best();
    a.values.pop_back();
    CHECK_THROWS_AS(audit::score(shipped(), a), std::invalid_argument);
    a = best();
    a.values[4] = "revoke_daily";
    CHECK_THROWS_AS(audit::score(shipped(), a), std::invalid_argument);
    CHECK_THROWS_AS(audit::template_report(shipped(), a, audit::Score{}), std::invalid_argument);
}

// ---- languages ----------------------------------------------------------------------------------

static_assert(audit::parse_lang("ru") == Lang::ru && audit::parse_lang("es") == Lang::es && audit::parse_lang("en") == Lang::en);
static_assert(!audit::parse_lang("RU") && !audit::parse_lang("ru-RU") && !audit::parse_lang(""));
static_assert(audit::code(Lang::es) == "es");

TEST_CASE("Accept-Language picks the supported language of highest weight, and English otherwise", "[audit]") {
    using audit::lang_from_accept_language;
    CHECK(lang_from_accept_language("ru-RU,ru;q=0.9,en;q=0.8") == Lang::ru);
    CHECK(lang_from_accept_language("es;q=0.1, en;q=0.9") == Lang::en);
    CHECK(lang_from_accept_language("fr-FR,fr;q=0.9,es-MX;q=0.8,en;q=0.5") == Lang::es);
    CHECK(lang_from_accept_language("de, RU;q=0.3") == Lang::ru);
    CHECK(lang_from_accept_language("es_ES") == Lang::es);
    CHECK(lang_from_accept_language("en;q=0.5, ru;q=0.5") == Lang::en);  // a tie goes to the earlier
    CHECK(lang_from_accept_language("ru;q=0, es;q=0.001") == Lang::es);  // q=0: not this one
    CHECK(lang_from_accept_language("ru;q=0") == Lang::en);
    CHECK(lang_from_accept_language("ru;q=2, es;q=0.5") == Lang::es);    // a malformed weight drops its entry
    CHECK(lang_from_accept_language("*") == Lang::en);
    CHECK(lang_from_accept_language("") == Lang::en);
    CHECK(lang_from_accept_language("garbage;;;,,,=q") == Lang::en);
    static_assert(audit::lang_from_accept_language("ru-RU,ru;q=0.9,en;q=0.8") == Lang::ru);
}

// ---- the template report ------------------------------------------------------------------------

TEST_CASE("the template report has its title with the score, the band's introduction and one section per vulnerability, in each language", "[audit]") {
    std::string const titles[] = {"# Your digital fortress: ", "# Твоя цифровая крепость: ", "# Tu fortaleza digital: "};
    for (Lang l : audit::all_langs) {
        for (Answers const& a : {worst(l), half(l), best(l)}) {
            audit::Score const s = audit::score(shipped(), a);
            std::string const r = audit::template_report(shipped(), a, s);
            INFO(audit::code(l) << " " << s.total << "\n" << r);
            CHECK(r.rfind(titles[static_cast<int>(l)] + std::to_string(s.total) + "/100\n", 0) == 0);
            CHECK(contains(r, audit::report_texts(l).intro[static_cast<int>(audit::band_of(s.total))]));
            CHECK(count(r, "\n### ") == s.vulnerabilities.size());
            for (auto const& id : s.vulnerabilities) {
                CHECK(contains(r, shipped().vulnerability(id)->title.in(l)));
                CHECK(contains(r, shipped().vulnerability(id)->advice.in(l)));
            }
            for (auto const& area : shipped().areas) CHECK(contains(r, area.name.in(l)));
            CHECK(r.size() > 400);
            CHECK_FALSE(contains(r, "<"));
            CHECK(r == audit::template_report(shipped(), a, s));
        }
    }
}

TEST_CASE("the template report without vulnerabilities says so and still has substance", "[audit]") {
    for (Lang l : audit::all_langs) {
        std::string const r = audit::template_report(shipped(), best(l), audit::score(shipped(), best(l)));
        CHECK(contains(r, audit::report_texts(l).none_heading));
        CHECK(contains(r, audit::report_texts(l).intro[static_cast<int>(audit::Band::high)]));
        CHECK(r.size() > 400);
    }
}

TEST_CASE("score bands: under 40 is low, 40 to 69 is mid, 70 and over is high", "[audit]") {
    static_assert(audit::band_of(0) == audit::Band::low && audit::band_of(39) == audit::Band::low);
    static_assert(audit::band_of(40) == audit::Band::mid && audit::band_of(69) == audit::Band::mid);
    static_assert(audit::band_of(70) == audit::Band::high && audit::band_of(100) == audit::Band::high);
    CHECK(audit::report_title(Lang::ru, 72) == "Твоя цифровая крепость: 72/100");
    CHECK(audit::report_title(Lang::es, 72) == "Tu fortaleza digital: 72/100");
    CHECK(audit::report_title(Lang::en, 72) == "Your digital fortress: 72/100");
}

// ---- the prompt ---------------------------------------------------------------------------------

TEST_CASE("the prompt is byte-identical for the same answers and differs for other answers or another language", "[audit]") {
    Answers const a = half(Lang::es);
    audit::Prompt const p1 = audit::build_prompt(shipped(), a, audit::score(shipped(), a));
    audit::Prompt const p2 = audit::build_prompt(shipped(), a, audit::score(shipped(), a));
    CHECK(p1.system == p2.system);
    CHECK(p1.user == p2.user);
    Answers const ru = half(Lang::ru);
    CHECK(audit::build_prompt(shipped(), ru, audit::score(shipped(), ru)).user != p1.user);
    Answers const other = worst(Lang::es);
    CHECK(audit::build_prompt(shipped(), other, audit::score(shipped(), other)).user != p1.user);
}

TEST_CASE("the prompt names the language and carries the score, breakdown, every answer and each incident", "[audit]") {
    Answers const a = half(Lang::ru);
    audit::Score const s = audit::score(shipped(), a);
    audit::Prompt const p = audit::build_prompt(shipped(), a, s);
    CHECK(contains(p.system, "Write the whole report in Russian (ru)."));
    CHECK(contains(p.system, "Markdown"));
    CHECK(contains(p.system, "No HTML"));
    CHECK(contains(p.system, "500 to 1000 words"));
    CHECK(contains(p.user, "Report language: Russian (ru)\n"));
    CHECK(contains(p.user, "Score: 55/100\n"));
    CHECK(contains(p.user, "- Хранение ключей: 30/30\n"));
    CHECK(contains(p.user, "- Аккаунты и социальная инженерия: 0/24\n"));
    for (std::size_t i = 0; i < shipped().questions.size(); ++i) {
        auto const& q = shipped().questions[i];
        CHECK(contains(p.user, q.text.ru));
        CHECK(contains(p.user, q.option(a.values[i])->text.ru));
    }
    REQUIRE(s.vulnerabilities.size() == 6);
    for (auto const& id : s.vulnerabilities) CHECK(contains(p.user, shipped().vulnerability(id)->incident));
    Answers const e = best(Lang::es);
    audit::Prompt const pe = audit::build_prompt(shipped(), e, audit::score(shipped(), e));
    CHECK(contains(pe.system, "Spanish (es)"));
    CHECK(contains(pe.user, "Weaknesses found: none."));
}

// ---- the answers tag ----------------------------------------------------------------------------

TEST_CASE("the answers tag spells the language and the values in question order and round-trips", "[audit]") {
    CHECK(audit::answers_tag(best(Lang::ru)) ==
          "audit=ru:paper_safe,hw_wallet,separate_vault,read_everything,revoke_regularly,verify_full,official_site,clean_device,"
          "bookmarks,app_or_key,ignore_block,ignore");
    for (Lang l : audit::all_langs)
        for (Answers const& a : {best(l), worst(l), half(l)}) {
            auto back = audit::answers_from_tag(shipped(), audit::answers_tag(a));
            REQUIRE(back);
            CHECK(*back == a);
            CHECK(audit::template_report(shipped(), *back, audit::score(shipped(), *back)) ==
                  audit::template_report(shipped(), a, audit::score(shipped(), a)));
        }
}

TEST_CASE("a tampered or foreign tag is rejected", "[audit]") {
    std::string const good = audit::answers_tag(half(Lang::es));
    REQUIRE(audit::answers_from_tag(shipped(), good));
    auto replaced = [&](std::string const& from, std::string const& to) {
        std::string t = good;
        return t.replace(t.find(from), from.size(), to);
    };
    std::vector<std::string> const bad = {
        "",
        "audit=",
        "audit=es:",
        good.substr(6),                                   // no prefix
        "lang=es",
        replaced("audit=es:", "audit=fr:"),               // unknown language
        replaced("audit=es:", "audit=ES:"),
        replaced("audit=es:", "audit=es;"),
        replaced("paper_safe", "paper_unsafe"),           // unknown value
        replaced("paper_safe,hw_wallet", "hw_wallet,paper_safe"),  // values swapped between questions
        replaced("paper_safe", "PAPER_SAFE"),
        replaced("paper_safe,", "paper_safe,,"),          // an empty value
        replaced(",hw_wallet", ""),                       // one value short
        good + ",ignore",                                 // one value too many
        good + ",",
        " " + good,
        good + " ",
        good.substr(0, good.size() - 1),                  // a truncated last value
    };
    for (auto const& t : bad) {
        INFO(t);
        CHECK_FALSE(audit::answers_from_tag(shipped(), t));
    }
}

TEST_CASE("a request's tags give the answers of their audit tag, and nothing without a valid one", "[audit]") {
    Answers const a = half(Lang::ru);
    CHECK(audit::answers_from_tags(shipped(), {"lang=ru", audit::answers_tag(a)}) == a);
    CHECK_FALSE(audit::answers_from_tags(shipped(), {"lang=ru"}));
    CHECK_FALSE(audit::answers_from_tags(shipped(), {}));
    CHECK_FALSE(audit::answers_from_tags(shipped(), {"audit=ru:paper_safe"}));
}
