#pragma once
/// @file
/// @brief Everything of the crypto-security self-audit: languages, the questionnaire, answers and
/// scoring, the LLM prompt and the template report. Data and logic only, no networking.

#include "lang.hpp"
#include "questionnaire.hpp"
#include "answers.hpp"
#include "report.hpp"
