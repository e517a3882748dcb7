#pragma once
// A scriptable in-process tier for chain tests: per key, a queue of steps (succeed, fail with a given
// verdict, answer with an HTTP response for the chain's classifier, delay, throw).
//
// A `fail` step names its fault as a fault-coded Observation, as a tier without a response does; the
// tier's `refine` hook then gives the verdict the scope, cooldown and retry the script asked for (carried
// in headers of the Observation: the chain's classifier never sees a verdict from a tier).

#include <cascade/core/tier.hpp>
#include <cascade/engine/clock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace cascade::test {

struct Step {
    enum class Kind { succeed, fail, http, throws } kind = Kind::succeed;
    std::string text = "an answer";
    Usage usage{10, 20};
    double cost = 0.0;
    std::string finish_reason = "stop";
    Verdict verdict;
    int status = 0;
    Headers headers;
    std::string body;
    std::chrono::milliseconds delay{0};

    static Step ok(std::string text = "an answer", Usage u = {10, 20}, double cost = 0.0) {
        Step s;
        s.text = std::move(text);
        s.usage = u;
        s.cost = cost;
        return s;
    }
    static Step fail(Fault f, Scope scope = Scope::attempt, std::optional<std::chrono::milliseconds> cool = {}, bool retry_same = false) {
        Step s;
        s.kind = Kind::fail;
        s.verdict.fault = f;
        s.verdict.scope = scope;
        s.verdict.cool_for = cool;
        s.verdict.retry_same = retry_same;
        return s;
    }
    static Step http(int status, std::string body = {}, Headers h = {}) {
        Step s;
        s.kind = Kind::http;
        s.status = status;
        s.body = std::move(body);
        s.headers = std::move(h);
        return s;
    }
    static Step throws() {
        Step s;
        s.kind = Kind::throws;
        return s;
    }
    Step after(std::chrono::milliseconds d) && {
        delay = d;
        return std::move(*this);
    }
};

class ScriptedTier {
public:
    struct Script {
        std::mutex mutex;
        std::map<int, std::deque<Step>> queued;
        Step fallback = Step::ok();
        std::map<int, int> calls;
        std::atomic<int> total{0};
        std::atomic<int> in_flight{0};
        std::atomic<int> cancelled{0};
    };

    explicit ScriptedTier(std::string name, std::size_t keys = 1, KeyLimits limits = {})
        : name_(std::move(name)), keys_(keys), limits_(limits), script_(std::make_shared<Script>()) {}

    std::string_view name() const noexcept { return name_; }
    std::size_t key_count() const noexcept { return keys_; }
    KeyLimits key_limits() const noexcept { return limits_; }
    std::string quota_group(int key) const {
        return key >= 0 && static_cast<std::size_t>(key) < groups_.size() ? groups_[static_cast<std::size_t>(key)] : std::string();
    }

    /// Keys' quota groups, by name.
    ScriptedTier& groups(std::vector<std::string> g) {
        groups_ = std::move(g);
        return *this;
    }
    /// Delays then run on `clock` (a manual clock: simulated time).
    ScriptedTier& use_clock(ManualClock clock) {
        clock_ = std::move(clock);
        return *this;
    }

    /// The verdict a `fail` step asked for.
    Verdict refine(Verdict v, Observation const& o) const {
        if (auto scope = o.header("x-scripted-scope")) v.scope = static_cast<Scope>(std::stoi(std::string(*scope)));
        if (auto cool = o.header("x-scripted-cool-ms")) v.cool_for = std::chrono::milliseconds(std::stoll(std::string(*cool)));
        if (auto retry = o.header("x-scripted-retry")) v.retry_same = *retry == "1";
        return v;
    }

    /// Queue a step for `key` (no_key = the tier's only slot, key 0).
    ScriptedTier& then(Step s, int key = 0) {
        std::lock_guard lock(script_->mutex);
        script_->queued[key].push_back(std::move(s));
        return *this;
    }
    /// The step used when a key's queue is empty.
    ScriptedTier& otherwise(Step s) {
        std::lock_guard lock(script_->mutex);
        script_->fallback = std::move(s);
        return *this;
    }
    int calls(int key = 0) const {
        std::lock_guard lock(script_->mutex);
        auto it = script_->calls.find(key);
        return it == script_->calls.end() ? 0 : it->second;
    }
    int total_calls() const { return script_->total.load(); }
    int cancellations() const { return script_->cancelled.load(); }
    std::shared_ptr<Script> script() const { return script_; }

    boost::asio::awaitable<Outcome> attempt(Request const&, Context& ctx) {
        auto script = script_;
        int key = ctx.key < 0 ? 0 : ctx.key;
        Step step;
        {
            std::lock_guard lock(script->mutex);
            auto& q = script->queued[key];
            if (q.empty()) {
                step = script->fallback;
            } else {
                step = std::move(q.front());
                q.pop_front();
            }
            ++script->calls[key];
        }
        ++script->total;
        if (step.delay.count() > 0) {
            ++script->in_flight;
            boost::system::error_code ec;
            if (clock_) {
                ec = co_await clock_->wait_until(clock_->now() + step.delay);
            } else {
                boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, step.delay);
                std::tie(ec) = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            }
            --script->in_flight;
            if (ec) {
                ++script->cancelled;
                co_return failed_without_response(boost::asio::error::operation_aborted);
            }
        }
        switch (step.kind) {
        case Step::Kind::succeed: {
            Completion c;
            c.text = step.text;
            c.usage = step.usage;
            c.cost_usd = step.cost;
            c.model = "scripted";
            c.finish_reason = step.finish_reason;
            co_return Outcome(std::move(c));
        }
        case Step::Kind::fail: {
            Observation o;
            o.transport = make_error_code(step.verdict.fault);
            o.detail = "scripted " + std::string(to_string(step.verdict.fault));
            o.headers.add("x-scripted-scope", std::to_string(static_cast<int>(step.verdict.scope)));
            if (step.verdict.cool_for) o.headers.add("x-scripted-cool-ms", std::to_string(step.verdict.cool_for->count()));
            o.headers.add("x-scripted-retry", step.verdict.retry_same ? "1" : "0");
            co_return Outcome(boost::system::in_place_error, std::move(o));
        }
        case Step::Kind::http:
            co_return failed_response(step.status, step.headers, step.body);
        case Step::Kind::throws:
            throw std::runtime_error("scripted tier exploded");
        }
        co_return failed_without_response(Fault::server_error);
    }

private:
    std::string name_;
    std::size_t keys_;
    KeyLimits limits_;
    std::vector<std::string> groups_;
    std::optional<ManualClock> clock_;
    std::shared_ptr<Script> script_;
};

} // namespace cascade::test
