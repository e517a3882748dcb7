#pragma once
/// @file
/// @brief A visitor's answers: read from the request body (with a message for every way it can be
/// wrong), scored, and carried in a request tag so a template tier can rebuild the report.
///
/// @code
/// auto parsed = audit::parse_answers(q, body);
/// if (auto const* e = std::get_if<audit::AnswersError>(&parsed)) return bad_request(e->message);  // HTTP 400
/// audit::Answers const& answers = std::get<audit::Answers>(parsed);
/// audit::Score const s = audit::score(q, answers);
/// @endcode

#include "questionnaire.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace audit {

/// @brief One visitor's answers: the language and the chosen value of every question, in question order.
struct Answers {
    Lang lang = Lang::en;
    /// `values[i]` answers `Questionnaire::questions[i]`.
    std::vector<std::string> values;

    friend bool operator==(Answers const&, Answers const&) = default;
};

/// @brief Why a body was refused: one English sentence for the client, naming the question and its
/// allowed values where there is one (the caller answers HTTP 400 with it).
struct AnswersError {
    std::string message;
};

/// @brief `Answers` when the body is usable, `AnswersError` when it is not.
using AnswersOrError = std::variant<Answers, AnswersError>;

/// @brief One area's share of the score.
struct AreaScore {
    /// The area's id.
    std::string area;
    int points = 0;
    /// The sum of its questions' weights.
    int max = 0;
};

/// @brief The score of one set of answers.
struct Score {
    /// 0..100: the sum of the chosen options' points.
    int total = 0;
    /// One entry per area, in the questionnaire's order; the points sum to `total`.
    std::vector<AreaScore> breakdown;
    /// Ids of the vulnerabilities revealed, each once, in the order of the questions revealing them.
    std::vector<std::string> vulnerabilities;
};

namespace detail {

inline std::string_view view(boost::json::string const& s) noexcept { return {s.data(), s.size()}; }

// A client's string quoted as JSON (escapes included) and cut to a readable length.
inline std::string quoted(std::string_view s) {
    constexpr std::size_t limit = 40;
    std::string const cut = s.size() > limit ? std::string(s.substr(0, limit)) + "..." : std::string(s);
    return boost::json::serialize(boost::json::value(boost::json::string_view(cut.data(), cut.size())));
}

inline std::string question_ids(Questionnaire const& q) {
    std::string out;
    for (auto const& question : q.questions) out += (out.empty() ? "" : ", ") + question.id;
    return out;
}

// Answers that parse_answers or answers_from_tag did not vouch for are a programming error downstream.
inline void require_valid(Questionnaire const& q, Answers const& a) {
    if (a.values.size() != q.questions.size())
        throw std::invalid_argument("audit: " + std::to_string(a.values.size()) + " answers for " + std::to_string(q.questions.size()) + " questions");
    for (std::size_t i = 0; i < a.values.size(); ++i)
        if (!q.questions[i].option(a.values[i]))
            throw std::invalid_argument("audit: " + q.questions[i].id + " has no value " + quoted(a.values[i]));
}

} // namespace detail

/// @brief The answers in a request body, `{"lang":"ru","answers":{"q1":"paper_safe",...}}`, or why not.
///
/// Both fields are required and no other is allowed; every question must be answered with one of its
/// values. Faults are reported one at a time, the first in this order: invalid JSON; not an object; an
/// unknown field; `lang` missing, not a string or not en/ru/es; `answers` missing or not an object; an
/// unknown question id; then, question by question, a value that is not a string, an unknown value, a
/// missing answer. E.g. `q3 is missing: allowed values are separate_vault, partly, single_wallet`.
inline AnswersOrError parse_answers(Questionnaire const& q, std::string_view body) {
    namespace json = boost::json;
    auto error = [](std::string m) { return AnswersOrError(AnswersError{std::move(m)}); };
    auto shape = [&q] {
        return R"(it must be a JSON object like {"lang":"en","answers":{")" + (q.questions.empty() ? std::string("q1") : q.questions.front().id) +
               R"(":"..."}})";
    };

    boost::system::error_code ec;
    json::value const root = json::parse(json::string_view(body.data(), body.size()), ec);
    if (ec) return error("the body is not valid JSON (" + ec.message() + "): " + shape());
    if (!root.is_object()) return error("the body is not an object: " + shape());
    json::object const& top = root.get_object();
    for (auto const& kv : top)
        if (kv.key() != "lang" && kv.key() != "answers")
            return error("unknown field " + detail::quoted(kv.key()) + ": the body has only \"lang\" and \"answers\"");

    Answers out;
    json::value const* lang = top.if_contains("lang");
    if (!lang) return error("lang is missing: allowed values are en, ru, es");
    if (!lang->is_string()) return error("lang must be a string, one of: en, ru, es");
    std::optional<Lang> const l = parse_lang(detail::view(lang->get_string()));
    if (!l) return error("lang " + detail::quoted(detail::view(lang->get_string())) + " is not supported: allowed values are en, ru, es");
    out.lang = *l;

    std::string const ids = detail::question_ids(q);
    json::value const* answers = top.if_contains("answers");
    if (!answers) return error("answers is missing: it must be an object mapping each question (" + ids + ") to a value");
    if (!answers->is_object()) return error("answers must be an object mapping each question (" + ids + ") to a value");
    json::object const& given = answers->get_object();
    for (auto const& kv : given)
        if (!q.question(kv.key())) return error("unknown question " + detail::quoted(kv.key()) + ": the questions are " + ids);

    for (auto const& question : q.questions) {
        json::value const* v = given.if_contains(question.id);
        if (!v) return error(question.id + " is missing: allowed values are " + question.allowed_values());
        if (!v->is_string()) return error(question.id + " must be a string, one of: " + question.allowed_values());
        std::string_view const value = detail::view(v->get_string());
        if (!question.option(value))
            return error(question.id + " has an unknown value " + detail::quoted(value) + ": allowed values are " + question.allowed_values());
        out.values.emplace_back(value);
    }
    return out;
}

/// @brief The score of answers from `parse_answers` or `answers_from_tag`.
/// @throws std::invalid_argument when `answers` do not fit `q` (wrong count or an unknown value).
inline Score score(Questionnaire const& q, Answers const& answers) {
    detail::require_valid(q, answers);
    Score s;
    for (auto const& area : q.areas) s.breakdown.push_back(AreaScore{area.id, 0, 0});
    for (std::size_t i = 0; i < q.questions.size(); ++i) {
        Question const& question = q.questions[i];
        Option const& chosen = *question.option(answers.values[i]);
        s.total += chosen.points;
        for (auto& a : s.breakdown)
            if (a.area == question.area) {
                a.points += chosen.points;
                a.max += question.weight;
            }
        bool const seen = std::find(s.vulnerabilities.begin(), s.vulnerabilities.end(), chosen.vulnerability) != s.vulnerabilities.end();
        if (!chosen.vulnerability.empty() && !seen) s.vulnerabilities.push_back(chosen.vulnerability);
    }
    return s;
}

/// @brief The answers as a request tag, `audit=<lang>:<value>,<value>,...` in question order, e.g.
/// `audit=ru:paper_safe,hw_wallet,...`. Values are `[a-z0-9_]+`, so the tag needs no escaping.
inline std::string answers_tag(Answers const& answers) {
    std::string tag = "audit=" + std::string(code(answers.lang)) + ":";
    for (std::size_t i = 0; i < answers.values.size(); ++i) tag += (i ? "," : "") + answers.values[i];
    return tag;
}

/// @brief The answers a tag from `answers_tag` carries; nullopt unless it is exactly such a tag for `q`
/// (prefix, language, one allowed value per question, nothing else).
inline std::optional<Answers> answers_from_tag(Questionnaire const& q, std::string_view tag) {
    constexpr std::string_view prefix = "audit=";
    if (tag.substr(0, prefix.size()) != prefix) return std::nullopt;
    tag.remove_prefix(prefix.size());
    std::size_t const colon = tag.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::optional<Lang> const lang = parse_lang(tag.substr(0, colon));
    if (!lang) return std::nullopt;
    Answers out{*lang, {}};
    std::string_view rest = tag.substr(colon + 1);
    for (auto const& question : q.questions) {
        if (!out.values.empty()) {
            if (rest.empty() || rest.front() != ',') return std::nullopt;
            rest.remove_prefix(1);
        }
        std::string_view const value = rest.substr(0, rest.find(','));
        if (!question.option(value)) return std::nullopt;
        out.values.emplace_back(value);
        rest.remove_prefix(value.size());
    }
    if (!rest.empty()) return std::nullopt;
    return out;
}

/// @brief The answers of the first `audit=` tag among a request's tags (what a template tier reads from
/// `cascade::Request::tags`); nullopt when there is none or it is not valid for `q`.
inline std::optional<Answers> answers_from_tags(Questionnaire const& q, std::vector<std::string> const& tags) {
    for (auto const& t : tags)
        if (t.rfind("audit=", 0) == 0) return answers_from_tag(q, t);
    return std::nullopt;
}

} // namespace audit
