// A loopback OpenAI-compatible upstream for the peer benchmark (benchmarks/peer/run.sh): answers every
// request at once, so that what wrk measures through a gateway is the gateway.
//
//   a path with "/429/" in it   429 with `retry-after: 60` and OpenAI's rate-limit error JSON
//   a path with "/1010/" in it  403 text/plain "error code: 1010" (Cloudflare's block of a banned client)
//   any other path               200 with a fixed `chat.completion`
//
// argv[1]: the port (0: any free one); prints "listening on <port>" (flushed). Listens on 127.0.0.1 only.
// Two threads, keep-alive, no timeouts: a benchmark fixture, not a server.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <iostream>
#include <string_view>
#include <thread>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view completion_body =
    R"({"id":"chatcmpl-mock","object":"chat.completion","created":1764547200,"model":"mock-model",)"
    R"("system_fingerprint":"fp_mock","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}})";

constexpr std::string_view rate_limit_body =
    R"({"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}})";

using Response = http::response<http::span_body<char const>>;

Response answer(std::string_view target, unsigned version, bool keep_alive) {
    http::status status = http::status::ok;
    std::string_view type = "application/json";
    std::string_view body = completion_body;
    bool rate_limited = false;
    if (target.find("/429/") != std::string_view::npos) {
        status = http::status::too_many_requests;
        body = rate_limit_body;
        rate_limited = true;
    } else if (target.find("/1010/") != std::string_view::npos) {
        status = http::status::forbidden;
        type = "text/plain; charset=UTF-8";
        body = "error code: 1010";
    }
    Response res{status, version};
    res.set(http::field::content_type, type);
    if (rate_limited) res.set(http::field::retry_after, "60");
    res.keep_alive(keep_alive);
    res.body() = {body.data(), body.size()};
    res.prepare_payload();
    return res;
}

asio::awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        auto [rec, rn] = co_await http::async_read(socket, buffer, req, tuple_awaitable);
        if (rec) co_return;
        auto res = answer({req.target().data(), req.target().size()}, req.version(), req.keep_alive());
        auto [wec, wn] = co_await http::async_write(socket, res, tuple_awaitable);
        if (wec || !req.keep_alive()) co_return;
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            continue;
        }
        socket.set_option(tcp::no_delay(true));
        // Each connection on the io_context's executor: with two threads, two connections run at once.
        asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    if (argc > 1) port = static_cast<unsigned short>(std::strtoul(argv[1], nullptr, 10));
    asio::io_context io(2);
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) {
        acceptor.close();
        io.stop();
    });
    asio::co_spawn(io, listen(acceptor), asio::detached);
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: run.sh reads it
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
}
