// The seed's chain, awaited once. With no keys in the environment every provider tier is skipped as
// unconfigured and the template answers; with keys (GROQ_API_KEY_1..5, DEEPSEEK_API_KEY,
// GOOGLE_APPLICATION_CREDENTIALS) the same binary calls the real APIs.
//
//   ./scripts/example.sh          (builds and runs this)

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>

namespace asio = boost::asio;
using Reports = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro, cascade::Template>;

asio::awaitable<void> report(Reports& chain) {
    auto req = cascade::Request::chat("You write short business reports.", "Revenue +12%, churn 3%.");
    req.tags = {"lang=en"};
    cascade::Completion c = co_await chain.complete(req);  // the chain ends in a template: no error branch
    std::cout << "label:  " << c.label << "\n"
              << "answer: " << c.text << "\n"
              << "tokens: " << c.usage.total() << ", cost: $" << c.cost_usd << "\n";
    for (auto const& a : c.trail) std::cout << "  tried " << a.label << ": " << a.fault.message() << " " << a.detail << "\n";
    std::cout << "\n" << chain.observer().table();
}

int main() {
    asio::io_context io;
    Reports chain(io.get_executor(), cascade::Groq<5>{}, cascade::DeepSeek{}, cascade::VertexPro{},
                  cascade::Template{[](cascade::Request const& r) {
                      return "Automatic summary unavailable; figures: " + r.prompt();
                  }});
    asio::co_spawn(io, report(chain), asio::detached);
    io.run();
}
