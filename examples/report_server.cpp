// A tiny report server: one chain shared by every request on a two-thread io_context, LLM output
// escaped before it goes into HTML, report links signed with HMAC. Listens on 127.0.0.1 only.
//
//   ./build/examples/example_report_server 8080 &
//   curl 'http://127.0.0.1:8080/report?q=revenue%20up'

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <iostream>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Reports = cascade::Chain<cascade::Groq<5>, cascade::DeepSeek, cascade::VertexPro, cascade::Template>;

std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

asio::awaitable<void> serve(boost::beast::tcp_stream stream, Reports& chain, std::string const& secret) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    std::string target(req.target());
    std::string prompt = target.rfind("/report?q=", 0) == 0 ? url_decode(target.substr(10)) : "empty";
    auto request = cascade::Request::chat("You write short business reports.", prompt);
    cascade::Completion c = co_await chain.complete(request);
    auto expires = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 3600;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.body() = "<html><body><p>" + cascade::escape_html(c.text) + "</p><p><small>" + cascade::escape_html(c.label) +
                 "</small></p><a href=\"" + cascade::escape_html(cascade::sign_url("/reports/latest", expires, secret)) +
                 "\">share</a></body></html>";
    res.prepare_payload();
    co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor, Reports& chain, std::string const& secret) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        asio::co_spawn(acceptor.get_executor(), serve(boost::beast::tcp_stream(std::move(socket)), chain, secret), asio::detached);
    }
}

int main(int argc, char** argv) {
    unsigned short port = argc > 1 ? static_cast<unsigned short>(std::stoi(argv[1])) : 8080;
    char const* env_secret = std::getenv("REPORT_SIGNING_SECRET");
    std::string secret = env_secret ? env_secret : "change-me";
    asio::io_context io(2);
    Reports chain(io.get_executor(), cascade::Groq<5>{}, cascade::DeepSeek{}, cascade::VertexPro{},
                  cascade::Template{[](cascade::Request const& r) { return "Report pending for: " + r.prompt(); }});
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { io.stop(); });
    asio::co_spawn(io, listen(acceptor, chain, secret), asio::detached);
    std::cout << "listening on http://127.0.0.1:" << port << "/report?q=...\n";
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    std::cout << chain.observer().table();
}
