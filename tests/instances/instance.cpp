// instances_instance: one server instance as a closed-loop load generator, for the multi-instance test
// (run.py). A chain of one OpenAI-compatible tier (`groq`, keys test-key-1..N at `--upstream`) and the
// template tier, its state shared through Redis (`cascade::RedisState`) or, with `--local`, kept in the
// process. It keeps `--concurrency` requests in flight for `--seconds`, then prints one JSON line:
//
//   {"requests":..,"by_label":{"groq1":..,"fallback-template":..},"failed":..,
//    "lat_us":{"p50":..,"p99":..,"max":..},"cpu_us_per_request":..,"req_per_s":..,
//    "estimated_tokens":..,"elapsed_s":..}
//
// With `--split-at S`, "lat_us_after_split" summarizes the requests started S seconds or more into the load.
// `estimated_tokens` is what the chain budgets for each request (`Request::estimated_tokens()`: every
// prompt has the same length). CPU is getrusage (user + sys) over the load phase only. The load starts
// once the chain is configured and, with Redis, a first Redis command went through or failed; with
// `--ready-file` that file is then created, and with `--wait-start` the load waits for that file to exist
// (so a driver starts several instances at one moment).

#include <cascade/state/redis_state.hpp>
#include <cascade/chain.hpp>
#include <cascade/provider/openai_compatible.hpp>
#include <cascade/provider/template.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

struct Options {
    int keys = 3;
    std::string upstream;
    std::uint32_t tpm = 0;
    std::uint32_t rpm = 0;
    std::uint16_t redis_port = 0;
    int redis_timeout_ms = 100;
    // RedisStateConfig::lease_share; negative: its default.
    double lease_share = -1;
    bool local = false;
    int concurrency = 8;
    double seconds = 3;
    int max_tokens = 50;
    int threads = 1;
    std::string wait_start;
    std::string ready_file;
    // Latencies of requests started this long into the load are also reported apart (`lat_us_after_split`).
    double split_at = -1;
};

[[noreturn]] void usage(std::string_view why) {
    std::cerr << "instances_instance: " << why
              << "\nusage: instances_instance --upstream http://127.0.0.1:PORT/v1 (--redis-port P | --local) [--keys N] [--tpm N]\n"
                 "       [--rpm N] [--redis-timeout-ms N] [--lease-share X] [--concurrency C] [--seconds S] [--max-tokens N] [--threads T]\n"
                 "       [--wait-start FILE] [--ready-file FILE] [--split-at S]\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(std::string(a) + " needs a value");
            return argv[++i];
        };
        auto number = [&] { return std::strtod(value().c_str(), nullptr); };
        if (a == "--keys") o.keys = static_cast<int>(number());
        else if (a == "--upstream") o.upstream = value();
        else if (a == "--tpm") o.tpm = static_cast<std::uint32_t>(number());
        else if (a == "--rpm") o.rpm = static_cast<std::uint32_t>(number());
        else if (a == "--redis-port") o.redis_port = static_cast<std::uint16_t>(number());
        else if (a == "--redis-timeout-ms") o.redis_timeout_ms = static_cast<int>(number());
        else if (a == "--lease-share") o.lease_share = number();
        else if (a == "--local") o.local = true;
        else if (a == "--concurrency") o.concurrency = static_cast<int>(number());
        else if (a == "--seconds") o.seconds = number();
        else if (a == "--max-tokens") o.max_tokens = static_cast<int>(number());
        else if (a == "--threads") o.threads = static_cast<int>(number());
        else if (a == "--wait-start") o.wait_start = value();
        else if (a == "--ready-file") o.ready_file = value();
        else if (a == "--split-at") o.split_at = number();
        else usage("unknown argument " + std::string(a));
    }
    if (o.upstream.empty()) usage("--upstream is required");
    if (!o.local && o.redis_port == 0) usage("--redis-port is required without --local");
    if (o.keys < 1 || o.concurrency < 1 || o.threads < 1 || o.seconds <= 0) usage("keys, concurrency, threads and seconds must be positive");
    return o;
}

using Groq = cascade::Groq<64>;
using SharedPolicies = cascade::DefaultPolicies::with_state<cascade::RedisState>;
using SharedChain = cascade::BasicChain<SharedPolicies, Groq, cascade::Template>;
using LocalChain = cascade::Chain<Groq, cascade::Template>;

Groq make_groq(Options const& o) {
    cascade::ProviderConfig cfg = Groq::defaults();
    cfg.base_url = o.upstream;
    cfg.model = "mock-model";
    for (int k = 1; k <= o.keys; ++k) cfg.keys.emplace_back("test-key-" + std::to_string(k));
    // Only the limits asked for: Groq's own free-tier limits would decide the test instead.
    cfg.key_limits = {};
    cfg.key_limits.tokens_per_minute = o.tpm;
    cfg.key_limits.requests_per_minute = o.rpm;
    cfg.number_labels = true;
    return Groq(std::move(cfg));
}

// Every prompt has the same length, so every request has the same token estimate; unique, so nothing is shared.
cascade::Request make_request(Options const& o, std::uint64_t seq) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "instance %d request %012llu: answer briefly.", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(seq));
    std::string prompt(buf);
    prompt.resize(64, '.');
    cascade::Request r = cascade::Request::chat("", std::move(prompt));
    r.max_tokens = o.max_tokens;
    return r;
}

std::int64_t cpu_us() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto us = [](timeval t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000 + t.tv_usec; };
    return us(u.ru_utime) + us(u.ru_stime);
}

// What one worker saw; merged once every worker is done.
struct Tally {
    std::uint64_t requests = 0;
    std::uint64_t failed = 0;
    std::map<std::string, std::uint64_t> by_label;
    std::vector<std::int64_t> lat_us;
    std::vector<std::int64_t> lat_us_after_split;
};

struct Run {
    Options opts;
    steady::time_point end;
    steady::time_point split = steady::time_point::max();
    std::atomic<std::uint64_t> next{0};
    std::atomic<int> running{0};
    std::vector<Tally> tallies;
    std::mutex done_mutex;
    steady::time_point finished;
    std::function<void()> on_done;
};

template <class ChainT>
asio::awaitable<void> worker(ChainT& chain, Run& run, std::size_t index) {
    Tally& t = run.tallies[index];
    while (steady::now() < run.end) {
        cascade::Request req = make_request(run.opts, run.next.fetch_add(1));
        auto const t0 = steady::now();
        bool answered = false;
        std::string label;
        try {
            cascade::Completion c = co_await chain.complete(req);
            answered = !c.text.empty();
            label = std::move(c.label);
        } catch (std::exception const& e) {
            std::cerr << "instances_instance: a request threw: " << e.what() << "\n";
        }
        auto const lat = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count();
        t.lat_us.push_back(lat);
        if (t0 >= run.split) t.lat_us_after_split.push_back(lat);
        ++t.requests;
        if (answered) ++t.by_label[label.empty() ? std::string("(none)") : label];
        else ++t.failed;
        // A request the template answers completes without suspending: without a yield this loop would
        // keep the thread from the other requests' I/O (a server yields when it writes its response).
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
    if (run.running.fetch_sub(1) == 1) {
        run.finished = steady::now();
        run.on_done();
    }
}

// One PING on a connection of our own: Redis answers or it does not; either way the load may start.
asio::awaitable<void> ping_redis(std::uint16_t port, std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    auto socket = std::make_shared<asio::ip::tcp::socket>(ex);
    asio::steady_timer timer(ex, timeout);
    timer.async_wait([socket](boost::system::error_code ec) {
        if (!ec) socket->close();
    });
    asio::ip::tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
    auto [cec] = co_await socket->async_connect(ep, tuple_awaitable);
    if (!cec) {
        std::string const ping = "*1\r\n$4\r\nPING\r\n";
        auto [wec, wn] = co_await asio::async_write(*socket, asio::buffer(ping), tuple_awaitable);
        std::string reply;
        if (!wec) {
            auto [rec, rn] = co_await asio::async_read_until(*socket, asio::dynamic_buffer(reply), "\r\n", tuple_awaitable);
            (void)rec;
        }
        if (reply.rfind("+PONG", 0) != 0) std::cerr << "instances_instance: redis did not answer PING\n";
    } else {
        std::cerr << "instances_instance: redis not reachable: " << cec.message() << "\n";
    }
    timer.cancel();
}

// Waits until the chain's shared state has loaded what Redis knows (at most 5 s), or, for a state without
// that count, until Redis answered our own PING.
template <class ChainT>
asio::awaitable<void> warm_up(ChainT& chain, Options const& o, std::vector<std::string> ids) {
    (void)ids;
    if constexpr (ChainT::sharing) {
        auto& state = chain.shared_state();
        if constexpr (requires { { state.loads() } -> std::convertible_to<std::uint64_t>; }) {
            asio::steady_timer timer(co_await asio::this_coro::executor);
            for (int i = 0; i < 500 && state.loads() == 0; ++i) {
                timer.expires_after(std::chrono::milliseconds(10));
                co_await timer.async_wait(asio::use_awaitable);
            }
            if (state.loads() == 0) std::cerr << "instances_instance: the shared state did not load from redis\n";
        } else {
            co_await ping_redis(o.redis_port, std::chrono::milliseconds(o.redis_timeout_ms));
        }
    }
    co_return;
}

template <class ChainT>
int run_load(Options const& o) {
    asio::io_context io(o.threads);
    auto work = asio::make_work_guard(io);
    Groq groq = make_groq(o);
    std::vector<std::string> ids;
    for (int k = 0; k < o.keys; ++k) ids.push_back(groq.key_id(k));
    cascade::ChainConfig cfg;
    cfg.name = "instance";
    ChainT chain(io.get_executor(), std::move(cfg), std::move(groq), cascade::Template{});
    if constexpr (ChainT::sharing) {
        cascade::RedisStateConfig rs;
        rs.server.port = o.redis_port;
        rs.server.command_timeout = std::chrono::milliseconds(o.redis_timeout_ms);
        if (o.lease_share >= 0) rs.lease_share = o.lease_share;
        if (auto err = chain.shared_state().configure(io.get_executor(), std::move(rs)); !err.empty()) {
            std::cerr << "instances_instance: " << err << "\n";
            return 2;
        }
    }

    std::vector<std::thread> threads;
    for (int i = 1; i < o.threads; ++i) threads.emplace_back([&io] { io.run(); });
    std::thread runner([&io] { io.run(); });

    // Ready: the chain is configured and its store has seen a first command.
    {
        auto warm = asio::co_spawn(io, warm_up(chain, o, ids), asio::use_future);
        warm.get();
    }
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << ::getpid() << "\n";
    if (!o.wait_start.empty())
        while (!std::filesystem::exists(o.wait_start)) std::this_thread::sleep_for(std::chrono::milliseconds(1));

    Run run;
    run.opts = o;
    run.tallies.resize(static_cast<std::size_t>(o.concurrency));
    run.running = o.concurrency;
    std::promise<void> done;
    run.on_done = [&done] { done.set_value(); };
    auto const cpu0 = cpu_us();
    auto const t0 = steady::now();
    run.end = t0 + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.seconds));
    if (o.split_at >= 0) run.split = t0 + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.split_at));
    for (std::size_t i = 0; i < run.tallies.size(); ++i) asio::co_spawn(io, worker(chain, run, i), asio::detached);
    done.get_future().wait();
    auto const cpu = cpu_us() - cpu0;
    double const elapsed = std::chrono::duration<double>(run.finished - t0).count();

    Tally all;
    for (auto& t : run.tallies) {
        all.requests += t.requests;
        all.failed += t.failed;
        for (auto const& [label, n] : t.by_label) all.by_label[label] += n;
        all.lat_us.insert(all.lat_us.end(), t.lat_us.begin(), t.lat_us.end());
        all.lat_us_after_split.insert(all.lat_us_after_split.end(), t.lat_us_after_split.begin(), t.lat_us_after_split.end());
    }
    auto summary = [](std::vector<std::int64_t>& v) {
        std::sort(v.begin(), v.end());
        auto pct = [&](double p) -> std::int64_t {
            if (v.empty()) return 0;
            auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
            return v[std::min(i, v.size() - 1)];
        };
        boost::json::object s{{"p50", pct(0.50)}, {"p99", pct(0.99)}, {"max", v.empty() ? 0 : v.back()}, {"n", v.size()}};
        return s;
    };
    boost::json::object labels;
    for (auto const& [label, n] : all.by_label) labels[label] = n;
    cascade::Request const probe = make_request(o, 0);
    boost::json::object out{
        {"requests", all.requests},
        {"by_label", std::move(labels)},
        {"failed", all.failed},
        {"lat_us", summary(all.lat_us)},
        {"cpu_us_per_request", all.requests ? static_cast<double>(cpu) / static_cast<double>(all.requests) : 0.0},
        {"req_per_s", elapsed > 0 ? static_cast<double>(all.requests) / elapsed : 0.0},
        {"estimated_tokens", probe.estimated_tokens()},
        {"elapsed_s", elapsed}};
    if (o.split_at >= 0) out["lat_us_after_split"] = summary(all.lat_us_after_split);
    std::cout << boost::json::serialize(out) << std::endl;
    // The chain's idle connections and the state's clients are not torn down: the process ends here.
    std::cerr.flush();
    std::_Exit(0);
}

} // namespace

int main(int argc, char** argv) {
    Options const o = parse(argc, argv);
    return o.local ? run_load<LocalChain>(o) : run_load<SharedChain>(o);
}
