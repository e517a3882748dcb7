#pragma once
/// @file
/// @brief The classify policy: one attempt's `Observation` -> `Verdict`.

#include <cascade/core/fault.hpp>
#include <cascade/core/verdict.hpp>

#include <concepts>

namespace cascade {

/// @brief A classify policy turns what came back from one attempt into a `Verdict`.
///
/// Requirement: `p.classify(obs)` with `obs` an `Observation const&` returns a `Verdict`, and may be
/// called from several threads at once.
template <class P>
concept ClassifyPolicy = requires(P const& p, Observation const& obs) {
    { p.classify(obs) } -> std::same_as<Verdict>;
};

/// @brief The default classifier (generic HTTP statuses; provider shapes come with the providers).
struct DefaultClassify {
    Verdict classify(Observation const& obs) const {
        Verdict v;
        v.http_status = obs.status;
        if (obs.transport) {
            v.fault = Fault::network;
            v.retry_same = true;
            return v;
        }
        switch (obs.status) {
        case 429: v.fault = Fault::rate_limited; v.scope = Scope::key; break;
        case 401: v.fault = Fault::unauthorized; v.scope = Scope::key; break;
        case 402: v.fault = Fault::quota_exhausted; v.scope = Scope::key; break;
        case 403: v.fault = Fault::blocked; v.scope = Scope::provider; break;
        case 400: case 404: case 422: v.fault = Fault::bad_request; break;
        case 413: v.fault = Fault::context_too_long; break;
        default: v.fault = Fault::server_error; v.retry_same = obs.status >= 500; break;
        }
        return v;
    }
};

} // namespace cascade
