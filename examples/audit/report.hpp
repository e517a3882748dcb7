#pragma once
/// @file
/// @brief The audit's report: the LLM prompt (which is also the cache key) and the template report
/// that answers when every LLM is down, both in the visitor's language.
///
/// @code
/// audit::Prompt const p = audit::build_prompt(q, answers, s);
/// auto req = cascade::Request::chat(p.system, p.user);
/// req.tags.push_back(audit::answers_tag(answers));   // the template tier rebuilds the report from it
///
/// cascade::Template{[&q](cascade::Request const& r) {
///     auto const a = audit::answers_from_tags(q, r.tags);
///     return a ? audit::template_report(q, *a, audit::score(q, *a)) : std::string("...");
/// }};
/// @endcode

#include "answers.hpp"
#include "questionnaire.hpp"

#include <string>
#include <string_view>

namespace audit {

/// @brief The score band that chooses the report's introduction: under 40, 40 to 69, 70 and over.
enum class Band { low, mid, high };

/// @brief The band of a total score.
constexpr Band band_of(int total) noexcept { return total < 40 ? Band::low : total < 70 ? Band::mid : Band::high; }

/// @brief The template report's fixed texts in one language.
struct ReportTexts {
    /// The title before "{score}/100": "Your digital fortress: ".
    std::string_view title;
    /// The introduction of each band, indexed by `Band`.
    std::string_view intro[3];
    std::string_view breakdown_heading;
    std::string_view fix_heading;
    /// Heading and text in place of the vulnerabilities when there are none.
    std::string_view none_heading;
    std::string_view none_text;
    std::string_view closing;
};

namespace detail {

inline constexpr ReportTexts report_en{
    "Your digital fortress: ",
    {"Right now your crypto is seriously exposed. Several of your habits match exactly how people lost money in 2024-25, so the steps below are urgent: start with the first one and work down the list. Most of them take an evening, not a budget.",
     "A solid start: the basics are in place, but there are gaps an attacker would look for first. Close them one by one with the steps below, and your fortress will hold against the attacks that cost people the most in 2024-25.",
     "Strong protection: your habits put you well ahead of most crypto holders. Keep it up! Attackers change their tricks all the time, so come back to this audit every few months."},
    "Score by area",
    "What to fix",
    "No critical gaps found",
    "None of your answers matches a known attack pattern. To keep it that way, check once a year that your recovery phrase backup is intact and readable, keep your devices and wallet apps updated, review token approvals after trying new dApps, and stay sceptical of anyone who writes to you first: real support never does.",
    "This report was put together from your answers using a fixed template: it is general guidance, not a guarantee. One rule always holds: nobody, not us and not any support team, will ever need your seed phrase."};

inline constexpr ReportTexts report_ru{
    "Твоя цифровая крепость: ",
    {"Сейчас твоя криптовалюта серьёзно уязвима. Несколько твоих привычек в точности повторяют то, из-за чего люди теряли деньги в 2024–2025 годах, поэтому шаги ниже — срочные: начни с первого и иди по списку. Большинство из них требуют одного вечера, а не денег.",
     "Хорошее начало: основа заложена, но есть бреши, которые злоумышленник станет искать в первую очередь. Закрой их по одной с помощью шагов ниже — и твоя крепость выдержит атаки, которые обошлись людям дороже всего в 2024–2025 годах.",
     "Сильная защита: по своим привычкам ты заметно опережаешь большинство владельцев криптовалюты. Так держать! Злоумышленники постоянно меняют приёмы, поэтому возвращайся к этому аудиту раз в несколько месяцев."},
    "Баллы по областям",
    "Что исправить",
    "Критичных брешей не найдено",
    "Ни один твой ответ не совпадает с известными схемами атак. Чтобы так и оставалось, раз в год проверяй, что резервная копия сид-фразы цела и читаема, обновляй устройства и приложения кошельков, пересматривай разрешения на токены после знакомства с новыми dApps и не доверяй тем, кто пишет тебе первым: настоящая поддержка так не делает.",
    "Этот отчёт составлен по твоим ответам на основе готового шаблона: это общие рекомендации, а не гарантия. Одно правило действует всегда: никому — ни нам, ни какой-либо поддержке — никогда не понадобится твоя сид-фраза."};

inline constexpr ReportTexts report_es{
    "Tu fortaleza digital: ",
    {"Ahora mismo tus criptomonedas están muy expuestas. Varios de tus hábitos coinciden exactamente con las formas en que la gente perdió dinero en 2024 y 2025, así que los pasos siguientes son urgentes: empieza por el primero y sigue la lista. La mayoría requiere una tarde, no dinero.",
     "Un buen comienzo: lo básico está en su sitio, pero hay huecos que un atacante buscaría primero. Ciérralos uno a uno con los pasos siguientes y tu fortaleza resistirá los ataques que más dinero costaron en 2024 y 2025.",
     "Una protección sólida: tus hábitos te sitúan muy por delante de la mayoría de quienes tienen criptomonedas. ¡Sigue así! Los atacantes cambian de trucos constantemente, así que vuelve a hacer esta auditoría cada pocos meses."},
    "Puntuación por área",
    "Qué corregir",
    "No se encontraron brechas críticas",
    "Ninguna de tus respuestas coincide con un patrón de ataque conocido. Para que siga así, comprueba una vez al año que la copia de tu frase de recuperación está intacta y legible, mantén actualizados tus dispositivos y apps de billetera, revisa las aprobaciones de tokens después de probar dApps nuevas y desconfía de quien te escriba primero: el soporte real nunca lo hace.",
    "Este informe se ha elaborado a partir de tus respuestas con una plantilla fija: son recomendaciones generales, no una garantía. Hay una regla que siempre se cumple: nadie —ni nosotros ni ningún soporte— necesitará nunca tu frase semilla."};

// How the LLM should address the reader, matching the template's "ты" and "tú".
constexpr std::string_view address(Lang lang) noexcept {
    return lang == Lang::ru ? "Address the reader informally, as \"ты\"."
         : lang == Lang::es ? "Address the reader informally, as \"tú\"."
                            : "Address the reader directly, as \"you\".";
}

} // namespace detail

/// @brief The fixed texts of the template report in `lang`.
constexpr ReportTexts const& report_texts(Lang lang) noexcept {
    return lang == Lang::ru ? detail::report_ru : lang == Lang::es ? detail::report_es : detail::report_en;
}

/// @brief The report's title: "Your digital fortress: 72/100" (RU "Твоя цифровая крепость: 72/100",
/// ES "Tu fortaleza digital: 72/100").
inline std::string report_title(Lang lang, int total) {
    return std::string(report_texts(lang).title) + std::to_string(total) + "/100";
}

/// @brief A chat prompt: the system instructions and the user message.
struct Prompt {
    std::string system;
    std::string user;
};

/// @brief The LLM prompt for these answers: a Markdown report in the visitor's language (named in both
/// messages), 500 to 1000 words, no HTML, anchored to the incidents of the revealed vulnerabilities;
/// the user message holds the score, the breakdown, every question with its answer and the
/// vulnerabilities with their incidents. Byte-identical for identical answers: it is the cache key.
/// @throws std::invalid_argument when `answers` do not fit `q`.
inline Prompt build_prompt(Questionnaire const& q, Answers const& answers, Score const& s) {
    detail::require_valid(q, answers);
    Lang const lang = answers.lang;
    std::string const language = std::string(english_name(lang)) + " (" + std::string(code(lang)) + ")";
    Prompt p;
    p.system =
        "You are a security analyst who writes personal crypto-security reports. The reader has just answered a "
        "self-audit of " + std::to_string(q.questions.size()) + " questions about how they store keys, sign "
        "transactions, use devices and software, and protect their accounts. The user message gives their score, "
        "their answers and the weaknesses those answers reveal, each with a real incident.\n\n"
        "Write the whole report in " + language + ". " + std::string(detail::address(lang)) + "\n"
        "Format: Markdown only (headings, short paragraphs, lists, bold). No HTML, no tables, no code blocks, no links.\n"
        "Length: 500 to 1000 words; with many weaknesses, keep each section short rather than run longer.\n"
        "Structure:\n"
        "1. A title that contains the score as N/100.\n"
        "2. A short verdict on the overall level, using the score by area.\n"
        "3. One section per weakness, in the order given: the risk in plain words; the real incident given for it, "
        "as an example of what happens (use only the facts given, and never invent incidents, names, dates or "
        "amounts); then concrete steps.\n"
        "4. What the reader already does well: the answers that earned full points (leave this out if there are none).\n"
        "5. A closing checklist of the three most urgent actions.\n"
        "If no weaknesses are listed, replace section 3 with how to keep the current level.\n"
        "Rules: never ask for a seed phrase, private key or password, and never suggest entering one into a website, "
        "app or chat; recommend no product or service other than those named in the input; do not promise that "
        "following the advice makes the reader safe.";

    std::string& u = p.user;
    u = "Report language: " + language + "\n";
    u += "Score: " + std::to_string(s.total) + "/100\n\nScore by area:\n";
    for (auto const& a : s.breakdown) {
        Area const* area = q.area(a.area);
        u += "- " + (area ? area->name.in(lang) : a.area) + ": " + std::to_string(a.points) + "/" + std::to_string(a.max) + "\n";
    }
    u += "\nAnswers (points earned / question weight):\n";
    for (std::size_t i = 0; i < q.questions.size(); ++i) {
        Question const& question = q.questions[i];
        Option const& chosen = *question.option(answers.values[i]);
        u += std::to_string(i + 1) + ". " + question.text.in(lang) + "\n   Answer: " + chosen.text.in(lang) + " (" +
             std::to_string(chosen.points) + "/" + std::to_string(question.weight) + ")\n";
    }
    if (s.vulnerabilities.empty()) {
        u += "\nWeaknesses found: none.\n";
        return p;
    }
    u += "\nWeaknesses found, in this order:\n";
    for (std::size_t i = 0; i < s.vulnerabilities.size(); ++i) {
        Vulnerability const* v = q.vulnerability(s.vulnerabilities[i]);
        if (!v) continue;
        u += std::to_string(i + 1) + ". " + v->title.in(lang) + "\n   Real incident: " + v->incident +
             "\n   Advice to build on: " + v->advice.in(lang) + "\n";
    }
    return p;
}

/// @brief The template report for these answers, in Markdown, in the visitor's language: the title
/// with the score, the band's introduction, the score by area, then one section per vulnerability
/// (its title and what to do), or a paragraph on keeping the level when there is none; a closing
/// note. Deterministic, and over 400 characters in every case.
/// @throws std::invalid_argument when `answers` do not fit `q`.
inline std::string template_report(Questionnaire const& q, Answers const& answers, Score const& s) {
    detail::require_valid(q, answers);
    Lang const lang = answers.lang;
    ReportTexts const& t = report_texts(lang);
    std::string r = "# " + report_title(lang, s.total) + "\n\n";
    r += std::string(t.intro[static_cast<int>(band_of(s.total))]) + "\n\n";
    r += "## " + std::string(t.breakdown_heading) + "\n\n";
    for (auto const& a : s.breakdown) {
        Area const* area = q.area(a.area);
        r += "- " + (area ? area->name.in(lang) : a.area) + ": " + std::to_string(a.points) + "/" + std::to_string(a.max) + "\n";
    }
    if (s.vulnerabilities.empty()) {
        r += "\n## " + std::string(t.none_heading) + "\n\n" + std::string(t.none_text) + "\n";
    } else {
        r += "\n## " + std::string(t.fix_heading) + "\n";
        int n = 0;
        for (auto const& id : s.vulnerabilities)
            if (Vulnerability const* v = q.vulnerability(id))
                r += "\n### " + std::to_string(++n) + ". " + v->title.in(lang) + "\n\n" + v->advice.in(lang) + "\n";
    }
    r += "\n---\n\n*" + std::string(t.closing) + "*\n";
    return r;
}

} // namespace audit
