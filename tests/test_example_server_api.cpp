// examples/server/openai_api.hpp: the OpenAI wire format of the example server, without sockets. A body
// becomes the Request the chain gets (every field, unknown ones in `extra`) or the 400 naming the field;
// a Completion becomes the response JSON; a Failure the 502/503 the SDKs raise.

#include "http.hpp"
#include "openai_api.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <string_view>
#include <variant>

namespace json = boost::json;

namespace {

app::ChatCall call_of(std::string_view body) {
    auto parsed = app::parse_chat(body);
    if (auto const* e = std::get_if<app::ApiError>(&parsed)) FAIL("refused: " << e->message);
    return std::get<app::ChatCall>(std::move(parsed));
}

app::ApiError error_of(std::string_view body) {
    auto parsed = app::parse_chat(body);
    REQUIRE(std::holds_alternative<app::ApiError>(parsed));
    return std::get<app::ApiError>(std::move(parsed));
}

} // namespace

TEST_CASE("every field of the request surface is read from the body", "[example-server][parse]") {
    auto const call = call_of(R"J({"model":"my-model","stream":true,"stream_options":{"include_usage":true},
        "messages":[{"role":"developer","content":"Be terse."},{"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]},
                    {"role":"assistant","content":null}],
        "max_completion_tokens":64,"max_tokens":9,"temperature":0.5,"top_p":0.9,"seed":7,"stop":["END","STOP"],
        "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
        "user":"u-1","reasoning_effort":"low"})J");
    CHECK(call.model == "my-model");
    CHECK(call.stream);
    CHECK(call.include_usage);
    REQUIRE(call.req.messages.size() == 3);
    CHECK(call.req.messages[0].role == cascade::Role::system);
    CHECK(call.req.messages[1].content == "Hi there");
    CHECK(call.req.messages[2].content.empty());
    CHECK(call.req.max_tokens == 64);  // max_completion_tokens wins over the deprecated max_tokens
    CHECK(call.req.temperature == 0.5);
    CHECK(call.req.top_p == 0.9);
    CHECK(call.req.seed == 7);
    CHECK(call.req.stop == std::vector<std::string>{"END", "STOP"});
    REQUIRE(call.req.response_format);
    CHECK(json::parse(*call.req.response_format) == json::parse(R"J({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}})J"));
    CHECK(call.req.extra.size() == 2);
    CHECK(call.req.extra.at("user") == "u-1");
    CHECK(call.req.extra.at("reasoning_effort") == "low");
    CHECK_FALSE(call.req.model);  // the server decides whether the model names a chain or goes upstream
}

TEST_CASE("a single stop string, max_tokens alone and nulls are read as OpenAI means them", "[example-server][parse]") {
    auto const call = call_of(R"J({"messages":[{"role":"user","content":"x"}],"stop":"END","max_tokens":12,
        "temperature":null,"stream":null,"response_format":null})J");
    CHECK(call.req.stop == std::vector<std::string>{"END"});
    CHECK(call.req.max_tokens == 12);
    CHECK_FALSE(call.req.temperature);
    CHECK_FALSE(call.stream);
    CHECK_FALSE(call.req.response_format);
    CHECK(call.req.extra.empty());
    CHECK(call.model.empty());
}

TEST_CASE("a bad body is a 400 invalid_request_error naming the field", "[example-server][parse]") {
    CHECK(error_of("{\"messages\": [").param.empty());
    CHECK(error_of("{\"messages\": [").status == 400);
    CHECK(error_of("[1]").type == "invalid_request_error");
    CHECK(error_of(R"J({"model":"m"})J").param == "messages");
    CHECK(error_of(R"J({"messages":[]})J").param == "messages");
    CHECK(error_of(R"J({"messages":[{"content":"x"}]})J").param == "messages[0].role");
    CHECK(error_of(R"J({"messages":[{"role":"tool","content":"x"}]})J").param == "messages[0].role");
    CHECK(error_of(R"J({"messages":[{"role":"user"}]})J").param == "messages[0].content");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})J").param == "temperature");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"temperature":3})J").param == "temperature");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"max_tokens":0})J").param == "max_tokens");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"seed":1.5})J").param == "seed");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"stop":[1]})J").param == "stop");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"response_format":"json"})J").param == "response_format");
    CHECK(error_of(R"J({"messages":[{"role":"user","content":"x"}],"stream":"yes"})J").param == "stream");
}

TEST_CASE("an error body has message, type, param and code, null when unset", "[example-server][errors]") {
    auto const v = json::parse(app::error_body(app::bad_field("stop", "Invalid type")));
    CHECK(v.at("error").at("message") == "Invalid type");
    CHECK(v.at("error").at("type") == "invalid_request_error");
    CHECK(v.at("error").at("param") == "stop");
    CHECK(v.at("error").at("code").is_null());
}

TEST_CASE("a whole answer carries the upstream's id, created and fingerprint, or generated ones", "[example-server][response]") {
    cascade::Completion c;
    c.text = "Hello";
    c.finish_reason = "length";
    c.usage = {10, 5};
    c.id = "chatcmpl-up";
    c.created = 1700000000;
    c.system_fingerprint = "fp_1";
    auto v = json::parse(app::completion_body(c, "cascade-default"));
    CHECK(v.at("id") == "chatcmpl-up");
    CHECK(v.at("created") == 1700000000);
    CHECK(v.at("system_fingerprint") == "fp_1");
    CHECK(v.at("model") == "cascade-default");
    CHECK(v.at("object") == "chat.completion");
    CHECK(v.at("choices").at(0).at("message").at("content") == "Hello");
    CHECK(v.at("choices").at(0).at("finish_reason") == "length");
    CHECK(v.at("usage").at("total_tokens") == 15);

    cascade::Completion from_template;
    from_template.text = "Sorry";
    v = json::parse(app::completion_body(from_template, "m"));
    CHECK(v.at("id").as_string().starts_with("chatcmpl-"));
    CHECK(v.at("id").as_string().size() == 9 + 24);
    CHECK(v.at("created").as_int64() > 1700000000);
    CHECK(v.at("system_fingerprint").is_null());
}

TEST_CASE("a whole answer is the chat.completion shape, its text escaped and made valid UTF-8", "[example-server][response]") {
    cascade::Completion c;
    c.text = std::string("He said \"hi\"\n\x01 and \xff");  // quotes, a newline, a control byte, a stray byte
    c.finish_reason = "stop";
    c.usage = {10, 5};
    c.usage.cached_prompt_tokens = 4;
    auto const body = app::completion_body(c, "m\"x");
    auto v = json::parse(body);  // valid JSON
    auto const& choice = v.at("choices").at(0);
    CHECK(choice.at("index") == 0);
    CHECK(choice.at("message").at("role") == "assistant");
    CHECK(choice.at("message").at("refusal").is_null());
    CHECK(choice.at("logprobs").is_null());
    CHECK(choice.at("finish_reason") == "stop");
    CHECK(v.at("model") == "m\"x");
    auto const text = std::string(choice.at("message").at("content").as_string());
    CHECK(text.starts_with("He said \"hi\"\n\x01 and "));
    CHECK(text.find('\xff') == std::string::npos);  // the stray byte replaced
    CHECK(v.at("usage").at("prompt_tokens") == 10);
    CHECK(v.at("usage").at("completion_tokens") == 5);
    CHECK(v.at("usage").at("total_tokens") == 15);
    CHECK(v.at("usage").at("prompt_tokens_details").at("cached_tokens") == 4);
    CHECK(body.find("\n") == std::string::npos);  // one line: the newline went out escaped
}

TEST_CASE("the model list names each chain in OpenAI's list format", "[example-server][response]") {
    std::string const names[] = {"cascade-default", "cascade-cheap"};
    auto const v = json::parse(app::models_body(names, 42));
    CHECK(v.at("object") == "list");
    REQUIRE(v.at("data").as_array().size() == 2);
    CHECK(v.at("data").at(1) == json::parse(R"J({"id":"cascade-cheap","object":"model","created":42,"owned_by":"cascade"})J"));
}

TEST_CASE("a failed chain is a 503 when waiting may help, a 502 otherwise, naming fault and status", "[example-server][errors]") {
    cascade::Failure busy;
    busy.code = cascade::make_error_code(cascade::Fault::rate_limited);
    busy.http_status = 429;
    busy.trail.push_back(cascade::Attempt{"groq3", 0, 2, busy.code, 429, {}, {}, false});
    auto const e = app::failure_error(busy);
    CHECK(e.status == 503);
    CHECK(e.code == "rate_limited");
    CHECK(e.message.find("429") != std::string::npos);
    CHECK(e.message.find("groq3") != std::string::npos);

    cascade::Failure refused;
    refused.code = cascade::make_error_code(cascade::Fault::unauthorized);
    refused.http_status = 401;
    CHECK(app::failure_error(refused).status == 502);
    CHECK(app::failure_error(refused).code == "unauthorized");
}

namespace {
// Answers every request with 200 "ok"; a body over the limit with a 413.
struct PlainHandler {
    boost::asio::awaitable<bool> handle(boost::beast::tcp_stream& stream, app::http_io::Request& req) {
        auto res = app::http_io::make_response(boost::beast::http::status::ok, "text/plain", "ok", req.version(), req.keep_alive());
        co_return co_await app::http_io::write(stream, res);
    }
    app::http_io::Response too_large(unsigned version) const {
        return app::http_io::make_response(boost::beast::http::status::payload_too_large, "application/json", R"({"error":"too large"})",
                                           version, false);
    }
};
} // namespace

TEST_CASE("a client still sending a body over the limit reads its whole 413, then the server closes", "[example-server][http]") {
    // Without the lingering close, the server would close with the rest of the body unread, the kernel
    // would answer with a reset, and the reset would fail the client's writes and discard the 413 before
    // the client reads it.
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    asio::io_context server_io(1);
    asio::ip::tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
    PlainHandler handler;
    asio::co_spawn(server_io, app::http_io::listen(acceptor, server_io.get_executor(), handler, 1u << 20), asio::detached);
    std::thread server([&] { server_io.run(); });

    asio::io_context client_io;
    asio::ip::tcp::socket s(client_io);
    s.connect(acceptor.local_endpoint());
    std::size_t const body = 8u << 20;  // 8 times the limit, under linger_bytes
    REQUIRE(body < app::http_io::linger_bytes);
    std::string const head = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n";
    boost::system::error_code ec;
    asio::write(s, asio::buffer(head), ec);
    REQUIRE_FALSE(ec);
    std::string const chunk(64 * 1024, 'x');
    std::size_t sent = 0;
    while (sent < body && !ec) sent += asio::write(s, asio::buffer(chunk), ec);
    CHECK_FALSE(ec);  // no reset: the server read and dropped what it did not want
    CHECK(sent == body);

    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(s, buffer, res, ec);
    REQUIRE_FALSE(ec);
    CHECK(res.result_int() == 413);
    CHECK(res.body() == R"({"error":"too large"})");
    CHECK_FALSE(res.keep_alive());
    char byte = 0;
    s.read_some(asio::buffer(&byte, 1), ec);
    CHECK(ec == asio::error::eof);  // then the server's end of the connection

    // A request within the limit on a new connection is served as usual.
    asio::ip::tcp::socket again(client_io);
    again.connect(acceptor.local_endpoint());
    std::string const small = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}";
    asio::write(again, asio::buffer(small), ec);
    REQUIRE_FALSE(ec);
    http::response<http::string_body> ok;
    boost::beast::flat_buffer b2;
    http::read(again, b2, ok, ec);
    REQUIRE_FALSE(ec);
    CHECK(ok.result_int() == 200);

    asio::post(server_io, [&] { acceptor.close(); });
    server_io.stop();
    server.join();
}
