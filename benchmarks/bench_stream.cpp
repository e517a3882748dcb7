// What a chain's stream costs over reading the stream directly: per delta (the sink, the hold-back check,
// the queue and the consumer's wake-ups) and before the first delta (starting the request on its strand,
// the pipeline, the tier's dispatch, the first hand-over to the consumer).
//
// The tier is in-process: it hands its deltas to the sink from SSE text it parses, as the built-in
// providers do, so the baseline (BM_sse_direct) parses and assembles the same events without a chain.
//
//   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_BENCHMARKS=ON
//   cmake --build build/bench -j2 --target bench_stream && build/bench/benchmarks/bench_stream

#include <cascade/cascade.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

namespace asio = boost::asio;

namespace {

// One OpenAI-format stream of `n` deltas of about 6 characters, then a finish reason and [DONE].
std::string openai_stream(int n) {
    std::string s;
    for (int i = 0; i < n; ++i)
        s += "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word" +
             std::to_string(i % 10) + " \"},\"finish_reason\":null}]}\n\n";
    s += "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    s += "data: [DONE]\n\n";
    return s;
}

// Feeds `body` in 256-byte pieces, as a socket would; each event's new text goes to `out` when set.
cascade::openai::ChatReply assemble(std::string const& body, cascade::StreamSink* out) {
    cascade::net::SseParser sse;
    cascade::openai::StreamAssembler assembler;
    for (std::size_t at = 0; at < body.size(); at += 256) {
        sse.feed(std::string_view(body).substr(at, 256), [&](cascade::net::SseEvent const& e) {
            auto const before = assembler.reply().text.size();
            assembler.on_data(e.data, e.error);
            auto const& text = assembler.reply().text;
            if (out && text.size() > before) out->delta(std::string_view(text).substr(before));
        });
    }
    return std::move(assembler.reply());
}

// A tier that streams `body` to the chain's sink without I/O.
struct MemoryStreamTier {
    std::string const* body;
    static constexpr bool honours_deadline = true;
    std::string_view name() const noexcept { return "memory"; }
    asio::awaitable<cascade::Outcome> attempt(cascade::Request const&, cascade::Context& ctx) {
        auto r = assemble(*body, ctx.sink);
        cascade::Completion c;
        c.text = std::move(r.text);
        c.finish_reason = std::move(r.finish_reason);
        c.usage = {10, 20};
        co_return cascade::Outcome(std::move(c));
    }
};

void BM_sse_direct(benchmark::State& state) {
    auto const n = static_cast<int>(state.range(0));
    auto const body = openai_stream(n);
    for (auto _ : state) {
        auto r = assemble(body, nullptr);
        benchmark::DoNotOptimize(r);
    }
    state.counters["deltas"] = n;
    state.counters["ns/delta"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                                 benchmark::Counter::kInvert);
}
BENCHMARK(BM_sse_direct)->Arg(1)->Arg(200);

// The same events through chain.stream: the consumer takes every delta with `co_await next()`.
void BM_chain_stream(benchmark::State& state) {
    auto const n = static_cast<int>(state.range(0));
    auto const body = openai_stream(n);
    asio::io_context io;
    cascade::Chain<MemoryStreamTier, cascade::Template> chain(io.get_executor(), MemoryStreamTier{&body}, cascade::Template{});
    auto req = cascade::Request::chat("system", "prompt");
    auto loop = [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
            auto s = chain.stream(req);
            std::size_t got = 0;
            while (auto d = co_await s.next()) got += d->size();
            benchmark::DoNotOptimize(got);
        }
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
    state.counters["deltas"] = n;
    state.counters["ns/delta"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                                 benchmark::Counter::kInvert);
}
BENCHMARK(BM_chain_stream)->Arg(1)->Arg(200);

// From `chain.stream(req)` to the first delta in the consumer's hands, and the same tier awaited
// directly (its first delta is ready when its attempt returns): the difference is what the chain adds
// to the time to first token.
void BM_first_delta_chain(benchmark::State& state) {
    auto const body = openai_stream(1);
    asio::io_context io;
    cascade::Chain<MemoryStreamTier, cascade::Template> chain(io.get_executor(), MemoryStreamTier{&body}, cascade::Template{});
    auto req = cascade::Request::chat("system", "prompt");
    auto loop = [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
            auto s = chain.stream(req);
            auto d = co_await s.next();
            benchmark::DoNotOptimize(d);
            state.PauseTiming();
            // A named result: g++ 12 destroys the optional<string> of a bare `co_await` condition twice.
            while (auto rest = co_await s.next()) benchmark::DoNotOptimize(rest);
            state.ResumeTiming();
        }
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
}
BENCHMARK(BM_first_delta_chain);

void BM_first_delta_direct(benchmark::State& state) {
    auto const body = openai_stream(1);
    asio::io_context io;
    MemoryStreamTier tier{&body};
    auto req = cascade::Request::chat("system", "prompt");
    auto loop = [&]() -> asio::awaitable<void> {
        for (auto _ : state) {
            cascade::Context ctx;
            auto out = co_await tier.attempt(req, ctx);
            benchmark::DoNotOptimize(out);
        }
    };
    asio::co_spawn(io, loop(), asio::detached);
    io.run();
}
BENCHMARK(BM_first_delta_direct);

} // namespace

BENCHMARK_MAIN();
