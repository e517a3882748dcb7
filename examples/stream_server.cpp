// An OpenAI-compatible `POST /v1/chat/completions` in front of a chain, so clients written for the OpenAI
// SDKs stream from cascade as they would from OpenAI: `stream: true` is answered with `chat.completion.chunk`
// server-sent events (cascade::server::OpenAISseWriter), flushed delta by delta; `stream: false` with one
// `chat.completion`. An answer cut after its first delta ends with an error event, which the SDKs raise.
//
// The chain: one keyless OpenAI-compatible upstream (a local Ollama or vLLM, or any gateway), then a
// template. Listens on 127.0.0.1 only.
//
//   export CASCADE_EXAMPLE_UPSTREAM=http://127.0.0.1:11434/v1 CASCADE_EXAMPLE_MODEL=llama3.2
//   ./build/examples/example_stream_server 8080 &
//   curl -N http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json'
//        -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
//
// argv[1]: the port (0: any free one; the server prints "listening on <port>"). argv[2], or the
// environment's CASCADE_EXAMPLE_UPSTREAM: the upstream's base URL.

#include <cascade/cascade.hpp>
#include <cascade/server/openai_sse.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

using Upstream = cascade::Chain<cascade::OpenAICompatible, cascade::Template>;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// What a client asked for, read from its JSON body.
struct ChatCall {
    cascade::Request req;
    std::string model = "cascade";
    bool stream = false;
    bool include_usage = false;
};

std::optional<cascade::Role> role_of(std::string_view r) {
    if (r == "system" || r == "developer") return cascade::Role::system;
    if (r == "user") return cascade::Role::user;
    if (r == "assistant") return cascade::Role::assistant;
    return std::nullopt;
}

// A message's content: a string, null (an assistant's tool call), or text parts.
std::optional<std::string> content_of(json::value const& c) {
    if (c.is_string()) return std::string(c.get_string());
    if (c.is_null()) return std::string();
    if (!c.is_array()) return std::nullopt;
    std::string text;
    for (auto const& part : c.get_array()) {
        auto const* o = part.if_object();
        auto const* type = o ? o->if_contains("type") : nullptr;
        auto const* t = o ? o->if_contains("text") : nullptr;
        if (!type || !type->is_string() || type->get_string() != "text" || !t || !t->is_string()) return std::nullopt;
        text += t->get_string();
    }
    return text;
}

// The call, or what is wrong with the body (for a 400).
std::optional<std::string> read_call(std::string_view body, ChatCall& call) {
    json::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return "the body is not JSON: " + ec.message();
    auto const* o = v.if_object();
    if (!o) return "the body must be a JSON object";
    auto const* messages = o->if_contains("messages");
    if (!messages || !messages->is_array() || messages->get_array().empty())
        return "'messages' must be a non-empty array";
    for (auto const& m : messages->get_array()) {
        auto const* mo = m.if_object();
        auto const* role = mo ? mo->if_contains("role") : nullptr;
        auto const r = role && role->is_string() ? role_of(role->get_string()) : std::nullopt;
        if (!r) return "each message needs a 'role' of system, developer, user or assistant";
        auto const* content = mo->if_contains("content");
        auto text = content ? content_of(*content) : std::optional<std::string>();
        if (!text) return "each message needs a 'content' string or an array of text parts";
        call.req.messages.push_back(cascade::Message{*r, std::move(*text)});
    }
    if (auto const* model = o->if_contains("model"); model && model->is_string() && !model->get_string().empty())
        call.model = model->get_string();
    if (auto const* s = o->if_contains("stream"); s && !s->is_null()) {
        if (!s->is_bool()) return "'stream' must be a boolean";
        call.stream = s->get_bool();
    }
    if (auto const* so = o->if_contains("stream_options"); so && so->is_object())
        if (auto const* u = so->get_object().if_contains("include_usage"); u && u->is_bool()) call.include_usage = u->get_bool();
    for (char const* name : {"max_completion_tokens", "max_tokens"})
        if (auto const* n = o->if_contains(name); n && n->is_int64() && n->get_int64() > 0 && n->get_int64() <= 1'000'000) {
            call.req.max_tokens = static_cast<int>(n->get_int64());
            break;
        }
    if (auto const* t = o->if_contains("temperature"); t && t->is_number()) call.req.temperature = t->to_number<double>();
    return std::nullopt;
}

std::string response_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "chatcmpl-";
    for (int i = 0; i < 24; ++i) id += hex[rng() % 16];
    return id;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

http::response<http::string_body> json_response(http::status status, std::string body, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// An OpenAI-style error body: the SDKs raise it as BadRequestError, NotFoundError...
std::string error_body(std::string_view message, std::string_view type) {
    json::object e;
    e["message"] = message;
    e["type"] = type;
    e["param"] = nullptr;
    e["code"] = nullptr;
    json::object o;
    o["error"] = std::move(e);
    return json::serialize(o);
}

asio::awaitable<bool> write_chunk(beast::tcp_stream& stream, std::string const& data) {
    stream.expires_after(30s);
    auto chunk = http::make_chunk(asio::buffer(data));
    auto [ec, n] = co_await asio::async_write(stream, chunk, tuple_awaitable);
    co_return !ec;
}

// Streams the chain's answer as server-sent events. False when the client went away (the stream is then
// dropped, which cancels the request and closes the upstream connection).
asio::awaitable<bool> answer_streamed(beast::tcp_stream& stream, unsigned version, bool keep_alive, Upstream& chain, ChatCall& call) {
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::content_type, "text/event-stream; charset=utf-8");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(keep_alive);
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(30s);
    auto [ec, n] = co_await http::async_write_header(stream, sr, tuple_awaitable);
    if (ec) co_return false;

    cascade::server::OpenAISseWriter writer(response_id(), call.model, unix_now(), call.include_usage);
    auto s = chain.stream(call.req);
    if (!co_await write_chunk(stream, writer.first())) co_return false;
    while (auto d = co_await s.next()) {
        auto event = writer.delta(*d);
        if (!event.empty() && !co_await write_chunk(stream, event)) co_return false;
    }
    auto const& r = s.result();
    std::clog << "stream " << cascade::to_string(r.end) << " from " << r.completion.label << ", " << r.deltas << " deltas"
              << (r.error ? " (" + r.error.message() + ")" : std::string()) << std::endl;
    if (!co_await write_chunk(stream, writer.end(r))) co_return false;
    stream.expires_after(30s);
    auto last = http::make_chunk_last();
    auto [ec2, n2] = co_await asio::async_write(stream, last, tuple_awaitable);
    co_return !ec2;
}

asio::awaitable<bool> answer_whole(beast::tcp_stream& stream, unsigned version, bool keep_alive, Upstream& chain, ChatCall& call) {
    cascade::Completion c = co_await chain.complete(call.req);  // the chain ends in a template: no error branch
    json::object message;
    message["role"] = "assistant";
    message["content"] = c.text;
    message["refusal"] = nullptr;
    json::object choice;
    choice["index"] = 0;
    choice["message"] = std::move(message);
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = cascade::server::OpenAISseWriter::finish_reason(c.finish_reason);
    json::object usage;
    usage["prompt_tokens"] = c.usage.prompt_tokens;
    usage["completion_tokens"] = c.usage.completion_tokens;
    usage["total_tokens"] = c.usage.total();
    json::object o;
    o["id"] = response_id();
    o["object"] = "chat.completion";
    o["created"] = unix_now();
    o["model"] = call.model;
    o["choices"] = json::array{std::move(choice)};
    o["usage"] = std::move(usage);
    auto res = json_response(http::status::ok, json::serialize(o), version, keep_alive);
    res.set("x-cascade-label", c.label);  // which tier answered; a tier name, never a key
    std::clog << "complete from " << c.label << std::endl;
    stream.expires_after(30s);
    auto [ec, n] = co_await http::async_write(stream, res, tuple_awaitable);
    co_return !ec;
}

asio::awaitable<void> serve(beast::tcp_stream stream, Upstream& chain) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        stream.expires_after(60s);  // an idle keep-alive connection is closed after this
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
        if (ec == http::error::body_limit) {
            auto res = json_response(http::status::payload_too_large, error_body("the body is larger than 1 MiB", "invalid_request_error"), 11, false);
            co_await http::async_write(stream, res, tuple_awaitable);
            break;
        }
        if (ec) break;
        auto req = parser.release();
        bool const keep_alive = req.keep_alive();
        std::string_view target(req.target().data(), req.target().size());
        target = target.substr(0, target.find('?'));
        bool ok = true;
        if (target != "/v1/chat/completions") {
            auto res = json_response(http::status::not_found, error_body("no such endpoint; try POST /v1/chat/completions", "invalid_request_error"),
                                     req.version(), keep_alive);
            ok = !std::get<0>(co_await http::async_write(stream, res, tuple_awaitable));
        } else if (req.method() != http::verb::post) {
            auto res = json_response(http::status::method_not_allowed, error_body("use POST", "invalid_request_error"), req.version(), keep_alive);
            res.set(http::field::allow, "POST");
            ok = !std::get<0>(co_await http::async_write(stream, res, tuple_awaitable));
        } else {
            ChatCall call;
            if (auto problem = read_call(req.body(), call)) {
                auto res = json_response(http::status::bad_request, error_body(*problem, "invalid_request_error"), req.version(), keep_alive);
                ok = !std::get<0>(co_await http::async_write(stream, res, tuple_awaitable));
            } else if (call.stream) {
                ok = co_await answer_streamed(stream, req.version(), keep_alive, chain, call);
            } else {
                ok = co_await answer_whole(stream, req.version(), keep_alive, chain, call);
            }
        }
        if (!ok || !keep_alive) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor, Upstream& chain) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), serve(beast::tcp_stream(std::move(socket)), chain), asio::detached);
    }
}

int main(int argc, char** argv) {
    unsigned short port = 8080;
    if (argc > 1) {
        char* end = nullptr;
        long p = std::strtol(argv[1], &end, 10);
        if (*end != '\0' || p < 0 || p > 65535) {
            std::cerr << "usage: " << argv[0] << " <port, 0 for any> [upstream base URL]\n";
            return 2;
        }
        port = static_cast<unsigned short>(p);
    }
    char const* env_upstream = std::getenv("CASCADE_EXAMPLE_UPSTREAM");
    char const* env_model = std::getenv("CASCADE_EXAMPLE_MODEL");

    cascade::ProviderConfig up;
    up.name = "upstream";
    up.base_url = argc > 2 ? argv[2] : env_upstream ? env_upstream : "http://127.0.0.1:11434/v1";
    up.model = env_model ? env_model : "llama3.2";
    up.key_required = false;  // a local server: no key is held, sent or logged

    asio::io_context io(2);
    Upstream chain(io.get_executor(), cascade::OpenAICompatible(std::move(up)),
                   cascade::Template{[](cascade::Request const&) {
                       return std::string("The assistant is unavailable right now. Please try again in a minute.");
                   }});
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) {
        acceptor.close();
        io.stop();
    });
    asio::co_spawn(io, listen(acceptor, chain), asio::detached);
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;  // flushed: a test reads it
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    std::cout << chain.observer().table() << std::flush;
}
