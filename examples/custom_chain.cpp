// Composing a chain at compile time with your own policies and tiers: reports shorter than 400
// characters are failures, rate limits are never retried on the same key, a cache with single flight,
// and a tier of your own (an in-process model, a rules engine, another API).

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>

namespace asio = boost::asio;

// A tier is any type with name() and attempt(); this one answers from a canned store.
struct CannedAnswers {
    std::string_view name() const noexcept { return "canned"; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const& req, cascade::Context&) {
        // No response to show: the tier names the fault, the chain's classify policy makes it a verdict.
        if (req.prompt().find("weather") == std::string::npos)
            co_return cascade::failed_without_response(cascade::Fault::bad_request, "no canned answer");
        cascade::Completion c;
        c.text = std::string(500, '*');
        co_return cascade::Outcome(std::move(c));
    }
};

using Policies = cascade::DefaultPolicies::with_accept<cascade::MinLength<400>>::with_retry<cascade::NoRetry>::with_cache<cascade::MemoryCache>;
using Reports = cascade::BasicChain<Policies, CannedAnswers, cascade::Groq<5>, cascade::Template>;

int main() {
    asio::io_context io;
    cascade::ChainConfig cfg;
    cfg.deadline = std::chrono::seconds(20);  // one budget for the whole chain
    cfg.key_order = cascade::KeyOrder::round_robin;
    Reports chain(io.get_executor(), cfg, CannedAnswers{}, cascade::Groq<5>{},
                  cascade::Template{[](cascade::Request const&) { return std::string("We will send the report by e-mail."); }});
    auto run = [&]() -> asio::awaitable<void> {
        for (auto prompt : {"weather report", "weather report", "sales report"}) {
            auto req = cascade::Request::chat("", prompt);
            auto c = co_await chain.complete(req);
            std::cout << prompt << " -> " << c.label << (c.origin == cascade::Origin::cache ? " (from " + c.cached_label + ")" : "")
                      << "\n";
        }
        std::cout << "\n" << chain.observer().table();
    };
    asio::co_spawn(io, run(), asio::detached);
    io.run();
}
