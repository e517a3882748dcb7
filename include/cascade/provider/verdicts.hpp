#pragma once
/// @file
/// @brief What providers hand to the chain's classify policy: a transport error, or a response they
/// could not use.

#include <cascade/core/tier.hpp>
#include <cascade/core/verdict.hpp>
#include <cascade/net/http_client.hpp>

namespace cascade::detail {

/// The classifier's verdict on a transport error (timeout, reset, TLS, cancellation...).
inline Verdict transport_verdict(boost::system::error_code ec, Context const& ctx) {
    Observation o;
    o.transport = ec;
    return ctx.classify(o);
}

/// The classifier's verdict on a response: an error status, or a 2xx whose body was not usable.
inline Verdict response_verdict(net::HttpResponse const& resp, Context const& ctx) {
    Observation o;
    o.status = resp.status;
    o.headers = &resp.headers;
    o.body = resp.body;
    return ctx.classify(o);
}

} // namespace cascade::detail
