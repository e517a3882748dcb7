// Composes a chain and awaits it: proves headers, usage requirements (C++20, Boost, OpenSSL) and linking.
#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
    boost::asio::io_context io;
    cascade::Chain<cascade::Template> chain(io.get_executor(),
                                            cascade::Template{[](cascade::Request const& r) { return "echo: " + r.prompt(); }});
    int status = 1;
    auto run = [&]() -> boost::asio::awaitable<void> {
        auto req = cascade::Request::chat("", "consumer");
        cascade::Completion c = co_await chain.complete(req);
        std::cout << c.label << ": " << c.text << "\n";
        status = (c.text == "echo: consumer" && c.label == "fallback-template") ? 0 : 1;
    };
    boost::asio::co_spawn(io, run(), boost::asio::detached);
    io.run();
    return status;
}
