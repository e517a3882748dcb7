#pragma once
/// @file
/// @brief The self-audit's data: areas, questions with weighted options, and the vulnerabilities an
/// option reveals, in English, Russian and Spanish; loaded from JSON and validated as a whole.
///
/// @code
/// auto const q = audit::Questionnaire::load_file("examples/audit/questionnaire.json");
/// for (auto const& question : q.questions) std::cout << question.text.in(audit::Lang::es) << '\n';
/// @endcode
/// The file's shape (every field required unless said otherwise; no other field allowed):
/// `{"areas": [{"id", "name": Text}], "questions": [{"id", "area", "weight", "text": Text, "options":
/// [{"value", "points", "text": Text, "vulnerability"?}]}], "vulnerabilities": [{"id", "area",
/// "title": Text, "advice": Text, "incident"}]}`, where a Text is `{"en", "ru", "es"}`.

#include "lang.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace audit {

/// @brief One text in each language.
struct Text {
    std::string en;
    std::string ru;
    std::string es;

    /// @brief The text in `lang`.
    std::string const& in(Lang lang) const noexcept { return lang == Lang::ru ? ru : lang == Lang::es ? es : en; }
};

/// @brief An area of the audit ("storage"); the score is broken down by area.
struct Area {
    std::string id;
    Text name;
};

/// @brief One choice of a question.
struct Option {
    /// Short ASCII id sent by the client and kept in the answers tag: `[a-z0-9_]+`.
    std::string value;
    /// 0 to the question's weight.
    int points = 0;
    Text text;
    /// The id of the vulnerability that choosing this option reveals; empty: none.
    std::string vulnerability;
};

/// @brief One multiple-choice question.
struct Question {
    std::string id;
    /// The id of its area.
    std::string area;
    /// Its share of the 100 points; its best option is worth exactly this.
    int weight = 0;
    Text text;
    std::vector<Option> options;

    /// @brief The option whose value is `value`, or nullptr.
    Option const* option(std::string_view value) const noexcept {
        auto it = std::find_if(options.begin(), options.end(), [&](Option const& o) { return o.value == value; });
        return it == options.end() ? nullptr : &*it;
    }

    /// @brief The allowed values, in order, as a message names them: "a, b, c".
    std::string allowed_values() const {
        std::string out;
        for (auto const& o : options) out += (out.empty() ? "" : ", ") + o.value;
        return out;
    }
};

/// @brief A weakness an answer reveals, with what to do about it.
struct Vulnerability {
    std::string id;
    /// The id of its area.
    std::string area;
    Text title;
    /// What to do: concrete, two to four sentences.
    Text advice;
    /// A short factual anchor in English (a real incident), given to the LLM; never shown as is.
    std::string incident;
};

/// @brief A questionnaire file that cannot be used; what() starts with the JSON path of the fault,
/// e.g. `questions[3].options[1].text.es: missing`.
class QuestionnaireError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief The whole audit, as loaded and validated; load it once at start-up and share it (const).
struct Questionnaire {
    std::vector<Area> areas;
    /// In the order they are asked; `Answers::values` follows this order.
    std::vector<Question> questions;
    std::vector<Vulnerability> vulnerabilities;

    /// @brief Parses and validates the JSON text.
    ///
    /// Refuses, naming the path: invalid JSON; a wrong type; an unknown or missing field; a missing or
    /// empty language of a text; an id or value that is not `[a-z0-9_]+` or is a duplicate; a question
    /// or vulnerability in an unknown area; an area without questions; a weight outside 1..100 or
    /// weights not summing to 100; fewer than two options; points outside 0..weight; a question whose
    /// best option is not worth its weight; a vulnerability id not defined, or defined and never revealed.
    /// (A key repeated in one JSON object is not detected: Boost.JSON keeps the last.)
    /// @throws QuestionnaireError
    static Questionnaire load(std::string_view json_text);

    /// @brief `load` of a file's contents; a fault's message starts with the file's path.
    /// @throws QuestionnaireError, also when the file cannot be read.
    static Questionnaire load_file(std::string const& path);

    /// @brief The area, question or vulnerability with that id, or nullptr.
    Area const* area(std::string_view id) const noexcept { return find(areas, id); }
    Question const* question(std::string_view id) const noexcept { return find(questions, id); }
    Vulnerability const* vulnerability(std::string_view id) const noexcept { return find(vulnerabilities, id); }

private:
    template <class T>
    static T const* find(std::vector<T> const& items, std::string_view id) noexcept {
        auto it = std::find_if(items.begin(), items.end(), [&](T const& x) { return x.id == id; });
        return it == items.end() ? nullptr : &*it;
    }
};

namespace detail {

namespace json = boost::json;

[[noreturn]] inline void fail(std::string const& path, std::string const& what) {
    throw QuestionnaireError((path.empty() ? std::string("questionnaire") : path) + ": " + what);
}

inline std::string member(std::string const& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

inline std::string element(std::string const& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

inline json::object const& as_object(json::value const& v, std::string const& path) {
    if (!v.is_object()) fail(path, "must be an object");
    return v.get_object();
}

inline json::array const& as_array(json::value const& v, std::string const& path) {
    if (!v.is_array()) fail(path, "must be an array");
    return v.get_array();
}

// Names the first field that is neither required nor optional, then the first required one missing.
inline void expect_fields(json::object const& o, std::string const& path, std::initializer_list<std::string_view> required,
                          std::initializer_list<std::string_view> optional = {}) {
    auto listed = [](std::initializer_list<std::string_view> names, std::string_view key) {
        return std::find(names.begin(), names.end(), key) != names.end();
    };
    for (auto const& kv : o)
        if (!listed(required, kv.key()) && !listed(optional, kv.key())) fail(member(path, kv.key()), "unknown field");
    for (std::string_view name : required)
        if (!o.contains(name)) fail(member(path, name), "missing");
}

inline std::string string_field(json::object const& o, std::string_view key, std::string const& path) {
    json::value const& v = o.at(key);
    if (!v.is_string()) fail(member(path, key), "must be a string");
    std::string s(v.get_string().data(), v.get_string().size());
    if (s.find_first_not_of(" \t\r\n") == std::string::npos) fail(member(path, key), "empty");
    return s;
}

inline std::string id_field(json::object const& o, std::string_view key, std::string const& path) {
    std::string s = string_field(o, key, path);
    bool const ok = s.size() <= 40 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!ok) fail(member(path, key), "\"" + s + "\" is not an id: use up to 40 of a-z, 0-9 and _");
    return s;
}

inline int int_field(json::object const& o, std::string_view key, std::string const& path) {
    json::value const& v = o.at(key);
    if (v.is_int64() && v.get_int64() >= -1'000'000 && v.get_int64() <= 1'000'000) return static_cast<int>(v.get_int64());
    if (v.is_uint64() && v.get_uint64() <= 1'000'000) return static_cast<int>(v.get_uint64());
    fail(member(path, key), "must be an integer");
}

inline Text text_field(json::object const& o, std::string_view key, std::string const& path) {
    std::string const p = member(path, key);
    json::object const& t = as_object(o.at(key), p);
    expect_fields(t, p, {"en", "ru", "es"});
    return Text{string_field(t, "en", p), string_field(t, "ru", p), string_field(t, "es", p)};
}

template <class T>
bool has_id(std::vector<T> const& items, std::string const& id) {
    return std::any_of(items.begin(), items.end(), [&](T const& x) { return x.id == id; });
}

inline std::vector<Area> load_areas(json::value const& v) {
    std::vector<Area> out;
    json::array const& arr = as_array(v, "areas");
    if (arr.empty()) fail("areas", "empty");
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string const p = element("areas", i);
        json::object const& o = as_object(arr[i], p);
        expect_fields(o, p, {"id", "name"});
        Area a{id_field(o, "id", p), text_field(o, "name", p)};
        if (has_id(out, a.id)) fail(member(p, "id"), "duplicate id \"" + a.id + "\"");
        out.push_back(std::move(a));
    }
    return out;
}

inline std::string area_field(json::object const& o, std::string const& path, std::vector<Area> const& areas) {
    std::string id = id_field(o, "area", path);
    if (!has_id(areas, id)) fail(member(path, "area"), "unknown area \"" + id + "\"");
    return id;
}

inline std::vector<Vulnerability> load_vulnerabilities(json::value const& v, std::vector<Area> const& areas) {
    std::vector<Vulnerability> out;
    json::array const& arr = as_array(v, "vulnerabilities");
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string const p = element("vulnerabilities", i);
        json::object const& o = as_object(arr[i], p);
        expect_fields(o, p, {"id", "area", "title", "advice", "incident"});
        Vulnerability x{id_field(o, "id", p), area_field(o, p, areas), text_field(o, "title", p),
                        text_field(o, "advice", p), string_field(o, "incident", p)};
        if (has_id(out, x.id)) fail(member(p, "id"), "duplicate id \"" + x.id + "\"");
        out.push_back(std::move(x));
    }
    return out;
}

inline Question load_question(json::object const& o, std::string const& p, std::vector<Area> const& areas,
                              std::vector<Vulnerability> const& vulnerabilities) {
    expect_fields(o, p, {"id", "area", "weight", "text", "options"});
    Question q{id_field(o, "id", p), area_field(o, p, areas), int_field(o, "weight", p), text_field(o, "text", p), {}};
    if (q.weight < 1 || q.weight > 100) fail(member(p, "weight"), std::to_string(q.weight) + " is out of range 1..100");
    std::string const po = member(p, "options");
    json::array const& arr = as_array(o.at("options"), po);
    if (arr.size() < 2) fail(po, "a question needs at least two options");
    for (std::size_t j = 0; j < arr.size(); ++j) {
        std::string const pj = element(po, j);
        json::object const& oj = as_object(arr[j], pj);
        expect_fields(oj, pj, {"value", "points", "text"}, {"vulnerability"});
        Option opt{id_field(oj, "value", pj), int_field(oj, "points", pj), text_field(oj, "text", pj), {}};
        if (q.option(opt.value)) fail(member(pj, "value"), "duplicate value \"" + opt.value + "\"");
        if (opt.points < 0 || opt.points > q.weight)
            fail(member(pj, "points"), std::to_string(opt.points) + " is out of range 0.." + std::to_string(q.weight) + " (the question's weight)");
        if (oj.contains("vulnerability")) {
            opt.vulnerability = id_field(oj, "vulnerability", pj);
            if (!has_id(vulnerabilities, opt.vulnerability))
                fail(member(pj, "vulnerability"), "\"" + opt.vulnerability + "\" is not defined in vulnerabilities");
        }
        q.options.push_back(std::move(opt));
    }
    int best = 0;
    for (auto const& opt : q.options) best = std::max(best, opt.points);
    if (best != q.weight)
        fail(po, "the best option is worth " + std::to_string(best) + " points, not the question's weight " + std::to_string(q.weight));
    return q;
}

// What no single element can check: weights sum to 100, every area asked about, every vulnerability reachable.
inline void check_whole(Questionnaire const& q) {
    int sum = 0;
    for (auto const& question : q.questions) sum += question.weight;
    if (sum != 100) fail("questions", "weights sum to " + std::to_string(sum) + ", not 100");
    for (std::size_t i = 0; i < q.areas.size(); ++i) {
        bool const asked = std::any_of(q.questions.begin(), q.questions.end(), [&](Question const& x) { return x.area == q.areas[i].id; });
        if (!asked) fail(element("areas", i), "area \"" + q.areas[i].id + "\" has no questions");
    }
    for (std::size_t i = 0; i < q.vulnerabilities.size(); ++i) {
        bool const revealed = std::any_of(q.questions.begin(), q.questions.end(), [&](Question const& x) {
            return std::any_of(x.options.begin(), x.options.end(), [&](Option const& o) { return o.vulnerability == q.vulnerabilities[i].id; });
        });
        if (!revealed) fail(element("vulnerabilities", i), "\"" + q.vulnerabilities[i].id + "\" is not revealed by any option");
    }
}

} // namespace detail

inline Questionnaire Questionnaire::load(std::string_view json_text) {
    namespace json = boost::json;
    boost::system::error_code ec;
    json::value const root = json::parse(json::string_view(json_text.data(), json_text.size()), ec);
    if (ec) throw QuestionnaireError("questionnaire: invalid JSON: " + ec.message());
    json::object const& top = detail::as_object(root, "");
    detail::expect_fields(top, "", {"areas", "questions", "vulnerabilities"});

    Questionnaire q;
    q.areas = detail::load_areas(top.at("areas"));
    q.vulnerabilities = detail::load_vulnerabilities(top.at("vulnerabilities"), q.areas);
    json::array const& questions = detail::as_array(top.at("questions"), "questions");
    if (questions.empty()) detail::fail("questions", "empty");
    for (std::size_t i = 0; i < questions.size(); ++i) {
        std::string const p = detail::element("questions", i);
        Question question = detail::load_question(detail::as_object(questions[i], p), p, q.areas, q.vulnerabilities);
        if (q.question(question.id)) detail::fail(detail::member(p, "id"), "duplicate id \"" + question.id + "\"");
        q.questions.push_back(std::move(question));
    }
    detail::check_whole(q);
    return q;
}

inline Questionnaire Questionnaire::load_file(std::string const& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw QuestionnaireError(path + ": cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return load(text.str());
    } catch (QuestionnaireError const& e) {
        throw QuestionnaireError(path + ": " + e.what());
    }
}

} // namespace audit
