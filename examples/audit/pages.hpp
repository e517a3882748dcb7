#pragma once
// The audit server's HTML: the questionnaire (a form and a little JS, no build step), the report (the model's
// Markdown rendered by CommonMark, whose default safe mode drops raw HTML and javascript: links; every other
// piece of text escaped), and short message pages. Content-Security-Policy headers forbid what the pages
// do not need, as a second wall behind the escaping.

#include "store.hpp"

#include <audit/audit.hpp>

#include <cascade/security/html.hpp>

#include <cmark.h>

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace audit {

/// The questionnaire page runs its own inline script and styles, nothing else.
inline constexpr char const* page_csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'";
/// The report page runs no script at all.
inline constexpr char const* report_csp = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'";

namespace html {

using cascade::escape_html;

/// Markdown to HTML through CommonMark in its default (safe) mode: raw HTML becomes a comment, links and
/// images with javascript:, vbscript:, file: or data: URLs (other than images) lose their URL.
inline std::string markdown(std::string_view md) {
    std::unique_ptr<char, decltype(&std::free)> out(cmark_markdown_to_html(md.data(), md.size(), CMARK_OPT_DEFAULT), &std::free);
    return out ? std::string(out.get()) : std::string();
}

struct Words {
    char const* title;     // "Your digital fortress"
    char const* heading;   // the questionnaire's heading
    char const* intro;
    char const* submit;
    char const* sending;
    char const* failed;
    char const* written_by;
    char const* cost;
    char const* again;
};

inline Words const& words(Lang l) {
    static Words const en{"Your digital fortress", "How safe are your crypto assets?",
                          "Twelve questions, two minutes. Your answers stay on this server; the report says what to fix first.",
                          "Get my report", "Writing your report…", "Something went wrong", "Report written by", "cost", "Take the audit again"};
    static Words const ru{"Твоя цифровая крепость", "Насколько защищены твои криптоактивы?",
                          "Двенадцать вопросов, две минуты. Ответы остаются на этом сервере; отчёт скажет, что исправить в первую очередь.",
                          "Получить отчёт", "Пишем отчёт…", "Что-то пошло не так", "Отчёт написал", "стоимость", "Пройти аудит ещё раз"};
    static Words const es{"Tu fortaleza digital", "¿Qué tan seguros están tus criptoactivos?",
                          "Doce preguntas, dos minutos. Tus respuestas se quedan en este servidor; el informe dice qué corregir primero.",
                          "Obtener mi informe", "Escribiendo tu informe…", "Algo salió mal", "Informe escrito por", "coste", "Repetir la auditoría"};
    return l == Lang::ru ? ru : l == Lang::es ? es : en;
}

inline std::string frame(Lang l, std::string const& title, std::string const& body) {
    std::string s = "<!DOCTYPE html>\n<html lang=\"" + std::string(code(l)) + "\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" + escape_html(title) + "</title><style>"
                    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;"
                    "color:#1c1c1c;line-height:1.5}h1{font-size:1.7rem}fieldset{border:1px solid #ddd;border-radius:8px;margin:1rem 0;padding:.6rem 1rem}"
                    "legend{font-weight:600;padding:0 .3rem}label{display:block;padding:.15rem 0;cursor:pointer}"
                    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:6px;background:#0b5;color:#fff;cursor:pointer}"
                    "nav a{margin-right:.8rem}.meta{color:#666;font-size:.9rem}.error{color:#b00}article{border-top:1px solid #eee;margin-top:1rem}"
                    "</style></head><body>";
    return s + body + "</body></html>\n";
}

} // namespace html

/// @brief The questionnaire in `lang`: every question with its options as radio buttons; the script posts
/// the answers as JSON and opens the signed report link.
inline std::string questionnaire_page(Questionnaire const& q, Lang lang) {
    auto const& w = html::words(lang);
    using html::escape_html;
    std::string b = "<nav><a href=\"/?lang=en\">English</a><a href=\"/?lang=ru\">Русский</a><a href=\"/?lang=es\">Español</a></nav>";
    b += "<h1>" + escape_html(w.heading) + "</h1><p>" + escape_html(w.intro) + "</p><form id=\"audit\" data-lang=\"" + std::string(code(lang)) + "\">";
    for (std::size_t i = 0; i < q.questions.size(); ++i) {
        auto const& question = q.questions[i];
        b += "<fieldset><legend>" + std::to_string(i + 1) + ". " + escape_html(question.text.in(lang)) + "</legend>";
        for (auto const& o : question.options)
            b += "<label><input type=\"radio\" required name=\"" + escape_html(question.id) + "\" value=\"" + escape_html(o.value) + "\"> " +
                 escape_html(o.text.in(lang)) + "</label>";
        b += "</fieldset>";
    }
    b += "<button id=\"submit\" type=\"submit\">" + escape_html(w.submit) + "</button> <span id=\"status\" class=\"meta\"></span></form>";
    // No build step: the answers as JSON to /api/audit, then to the signed report link.
    b += "<script>\n"
         "const form = document.getElementById('audit'), status = document.getElementById('status');\n"
         "form.addEventListener('submit', async (ev) => {\n"
         "  ev.preventDefault();\n"
         "  const answers = {};\n"
         "  for (const [k, v] of new FormData(form)) answers[k] = v;\n"
         "  status.textContent = " + boost::json::serialize(boost::json::value(w.sending)) + ";\n"
         "  document.getElementById('submit').disabled = true;\n"
         "  try {\n"
         "    const r = await fetch('/api/audit', {method: 'POST', headers: {'Content-Type': 'application/json'},\n"
         "                                         body: JSON.stringify({lang: form.dataset.lang, answers})});\n"
         "    const body = await r.json();\n"
         "    if (!r.ok) throw new Error(body.error || r.statusText);\n"
         "    location.assign(body.report_url);\n"
         "  } catch (e) {\n"
         "    status.className = 'error';\n"
         "    status.textContent = " + boost::json::serialize(boost::json::value(w.failed)) + " + ': ' + e.message;\n"
         "    document.getElementById('submit').disabled = false;\n"
         "  }\n"
         "});\n"
         "</script>";
    return html::frame(lang, w.title, b);
}

/// @brief A stored report: its title with the score, who wrote it, and the Markdown rendered.
inline std::string report_page(Questionnaire const&, StoredReport const& r) {
    Lang const lang = parse_lang(r.lang).value_or(Lang::en);
    auto const& w = html::words(lang);
    using html::escape_html;
    std::string_view md = r.markdown;
    // The page has the title; a report that starts with its own (the template's) drops it.
    if (md.starts_with("# ")) {
        auto const nl = md.find('\n');
        md = nl == std::string_view::npos ? std::string_view() : md.substr(nl + 1);
    }
    char cost[32];
    if (r.cost_usd == 0.0) std::snprintf(cost, sizeof cost, "$0");
    else std::snprintf(cost, sizeof cost, "$%.5f", r.cost_usd);
    std::string b = "<h1>" + escape_html(w.title) + ": " + std::to_string(r.score) + "/100</h1><p class=\"meta\">" + escape_html(w.written_by) + " " +
                    escape_html(r.provider) + " · " + escape_html(w.cost) + " " + cost + "</p><article>" + html::markdown(md) +
                    "</article><p><a href=\"/?lang=" + std::string(code(lang)) + "\">" + escape_html(w.again) + "</a></p>";
    return html::frame(lang, std::string(w.title) + ": " + std::to_string(r.score) + "/100", b);
}

/// @brief A short page saying why a report cannot be shown.
inline std::string message_page(std::string const& text) {
    return html::frame(Lang::en, text, "<h1>" + html::escape_html(text) + "</h1><p><a href=\"/\">Take the audit</a></p>");
}

} // namespace audit
