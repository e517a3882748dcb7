#pragma once
/// @file
/// @brief Ready OpenAI-compatible tiers for OpenAI, Mistral, Together, Fireworks and Cerebras, and Azure
/// OpenAI (`api-key` header, a deployment URL, `api-version`).
///
/// Prices are USD per million input / output tokens. None of these providers' prices is in the project's
/// reference tables yet, so none is shipped: their answers say `Completion::cost_known == false` (cost not
/// counted) until `ProviderConfig::prices` is set from the provider's page.

#include <cascade/provider/openai_compatible.hpp>

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace cascade {

/// OpenAI: `gpt-4.1-mini`, a small model that takes `max_tokens` and `temperature` (the reasoning models
/// refuse both). Limits depend on the organization's usage tier; none is set. Price: not in the references.
/// Rate-limit headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, resets as Go durations.
struct OpenAITraits {
    static constexpr std::string_view env_prefix = "OPENAI";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "openai";
        c.base_url = "https://api.openai.com/v1";
        c.model = "gpt-4.1-mini";
        return c;
    }
};

/// Mistral: `mistral-small-latest` (Mistral serves only its own models; `*-latest` follows the current
/// release). The free "Experiment" plan's limits (requests per second, tokens per minute and per month) are
/// shown only in Mistral's console, so none is set. Price: not in the references.
struct MistralTraits {
    static constexpr std::string_view env_prefix = "MISTRAL";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "mistral";
        c.base_url = "https://api.mistral.ai/v1";
        c.model = "mistral-small-latest";
        c.stream_usage = false;  // Mistral refuses `stream_options`; its streams end with usage anyway
        return c;
    }
};

/// Together: `meta-llama/Llama-3.3-70B-Instruct-Turbo`. Limits are dynamic, per organization and model,
/// and not published: a 503 means the model is out of capacity, a 429 that this organization went past
/// its dynamic rate. No free tier is documented. Price: not in the references.
struct TogetherTraits {
    static constexpr std::string_view env_prefix = "TOGETHER";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "together";
        c.base_url = "https://api.together.xyz/v1";
        c.model = "meta-llama/Llama-3.3-70B-Instruct-Turbo";
        return c;
    }
};

/// Fireworks: `accounts/fireworks/models/llama-v3p3-70b-instruct` (not verified as still served in late
/// 2026; `accounts/fireworks/models/gpt-oss-120b` is the common choice there). Limits are adaptive; every
/// account starts at 3.6 million prompt and 36,000 generated tokens a minute, which a total-token budget
/// cannot express, so none is set. Price: not in the references.
struct FireworksTraits {
    static constexpr std::string_view env_prefix = "FIREWORKS";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "fireworks";
        c.base_url = "https://api.fireworks.ai/inference/v1";
        c.model = "accounts/fireworks/models/llama-v3p3-70b-instruct";
        return c;
    }
};

/// Cerebras: `gpt-oss-120b` (`llama-3.3-70b` was deprecated on 2026-02-16). Free tier (read 2026-08-31):
/// 5 requests and 30,000 tokens a minute, 1,000,000 tokens a day, per organization; an earlier revision
/// of Cerebras's own page gave 30 requests and 60,000 tokens a minute. Cerebras counts a request's
/// `max_tokens` against the minute's budget when it admits it: send a tight `Request::max_tokens`.
/// Price: not in the references.
struct CerebrasTraits {
    static constexpr std::string_view env_prefix = "CEREBRAS";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "cerebras";
        c.base_url = "https://api.cerebras.ai/v1";
        c.model = "gpt-oss-120b";
        c.key_limits.requests_per_minute = 5;
        c.key_limits.tokens_per_minute = 30'000;
        c.key_limits.tokens_per_day = 1'000'000;
        return c;
    }
};

/// @brief Points an Azure OpenAI configuration at deployment `deployment`.
///
/// No `api_version` (or `v1`): the v1 API, `/openai/v1/chat/completions` with the deployment as the body's
/// `model` (generally available since August 2025; no version needed). `preview` or `latest`: the same
/// path with `?api-version=preview`. A dated version (`2024-10-21`): the classic
/// `/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21`.
inline void azure_deployment(ProviderConfig& c, std::string deployment, std::string const& api_version = {}) {
    c.model = std::move(deployment);
    c.query = api_version.empty() || api_version == "v1" ? std::string() : "api-version=" + api_version;
    if (api_version.empty() || api_version == "v1" || api_version == "preview" || api_version == "latest")
        c.path = "/openai/v1/chat/completions";
    else
        c.path = "/openai/deployments/" + c.model + "/chat/completions";
}

/// Azure OpenAI: one resource's endpoint (`https://{resource}.openai.azure.com`, or an AI Services
/// `*.cognitiveservices.azure.com`) and one deployment, with keys sent as `api-key`. The endpoint and the
/// deployment have no default: without them every attempt fails as `unconfigured` ("no base URL", "no
/// model"). The keys of one resource share its deployments' limits, so keys read from the environment form
/// one quota group unless `AZURE_OPENAI_QUOTA_GROUPS` says otherwise. Price: the deployment's, not known here.
struct AzureOpenAITraits {
    static constexpr std::string_view env_prefix = "AZURE_OPENAI";
    static ProviderConfig defaults() {
        ProviderConfig c;
        c.name = "azure-openai";
        c.path = "/openai/v1/chat/completions";
        c.key_header = "api-key";
        c.key_prefix.clear();
        return c;
    }
    /// `AZURE_OPENAI_ENDPOINT` (when `AZURE_OPENAI_BASE_URL` is unset), `AZURE_OPENAI_DEPLOYMENT` (else
    /// `AZURE_OPENAI_MODEL`) and `AZURE_OPENAI_API_VERSION`, as `azure_deployment` reads them.
    static void from_env(ProviderConfig& c) {
        if (c.base_url.empty()) c.base_url = detail::env_or("AZURE_OPENAI_ENDPOINT", {});
        std::string deployment = detail::env_or("AZURE_OPENAI_DEPLOYMENT", c.model);
        if (!deployment.empty()) azure_deployment(c, std::move(deployment), detail::env_or("AZURE_OPENAI_API_VERSION", {}));
        if (c.quota_groups.empty() && c.keys.size() > 1) c.quota_groups.assign(c.keys.size(), "resource");
    }
};

/// @brief OpenAI with a pool of up to `N` keys (`openai1`..`openaiN` when `N` > 1).
template <std::size_t N = 1>
using OpenAI = BasicProvider<OpenAITraits, N>;
template <std::size_t N = 1>
using Mistral = BasicProvider<MistralTraits, N>;
template <std::size_t N = 1>
using Together = BasicProvider<TogetherTraits, N>;
template <std::size_t N = 1>
using Fireworks = BasicProvider<FireworksTraits, N>;
template <std::size_t N = 1>
using Cerebras = BasicProvider<CerebrasTraits, N>;
/// @brief Azure OpenAI with up to `N` keys of one resource (its key 1 and key 2: `N` = 2).
template <std::size_t N = 1>
using AzureOpenAI = BasicProvider<AzureOpenAITraits, N>;

} // namespace cascade
