#pragma once
/// @file
/// @brief A simulation scenario as JSON (`parse_scenario`): the modelled providers (keys, quota groups,
/// limits, prices, latency, episodes), the chain's settings and the load. Strict: an unknown field, a
/// wrong type or an impossible value is a `ScenarioError` naming its path (`tiers[0].limits.tokens_per_minute`).
/// `apply_override` sets one field from the command line (`load.requests_per_day=10000`).
/// The schema is documented in docs/economics.md.

#include <cascade/engine/config.hpp>
#include <cascade/sim/load.hpp>
#include <cascade/sim/modelled_tier.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::sim {

/// @brief A scenario that cannot be read: its message names the field.
class ScenarioError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief The most modelled tiers a scenario may list (the simulator's chain is composed at compile time).
inline constexpr std::size_t max_scenario_tiers = 6;

/// @brief A whole scenario.
struct Scenario {
    std::string name;
    std::string description;
    /// Where each limit and price comes from, and when it was read.
    std::vector<std::string> sources;
    std::vector<ModelledTierConfig> tiers;
    LoadConfig load;
    /// Answers cached by (prompt, language) in memory, identical requests in flight coalesced.
    bool cache = false;
    /// The accept policy's minimum answer length (the seed's reports: 400).
    std::size_t min_answer_chars = 400;
    /// `ChainConfig::max_wait`.
    std::chrono::milliseconds max_wait{5'000};
    KeyOrder key_order = KeyOrder::sequential;
};

namespace detail {

class Reader {
public:
    Reader(boost::json::value const& v, std::string path) : v_(v), path_(std::move(path)) {}

    [[noreturn]] void fail(std::string const& what) const { throw ScenarioError(path_ + ": " + what); }

    boost::json::object const& object(std::initializer_list<std::string_view> known) const {
        if (!v_.is_object()) fail("expected an object");
        auto const& o = v_.get_object();
        for (auto const& kv : o) {
            bool ok = false;
            for (auto k : known) ok = ok || kv.key() == k;
            if (!ok) {
                std::string list;
                for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
                throw ScenarioError(child(kv.key()) + ": unknown field (known: " + list + ")");
            }
        }
        return o;
    }
    std::string child(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
    std::string const& path() const noexcept { return path_; }
    boost::json::value const& value() const noexcept { return v_; }

    double number(double lo, double hi) const {
        if (!v_.is_number()) fail("expected a number");
        double const d = v_.to_number<double>();
        if (!(d >= lo && d <= hi)) fail("must be between " + fmt(lo) + " and " + fmt(hi));
        return d;
    }
    std::uint32_t count(std::uint64_t hi = 4'000'000'000ull) const {
        if (!v_.is_int64() && !v_.is_uint64()) fail("expected a whole number");
        if (v_.is_int64() && v_.get_int64() < 0) fail("must not be negative");
        auto const n = v_.is_int64() ? static_cast<std::uint64_t>(v_.get_int64()) : v_.get_uint64();
        if (n > hi) fail("must be at most " + std::to_string(hi));
        return static_cast<std::uint32_t>(n);
    }
    bool boolean() const {
        if (!v_.is_bool()) fail("expected true or false");
        return v_.get_bool();
    }
    std::string string() const {
        if (!v_.is_string()) fail("expected a string");
        return std::string(v_.get_string());
    }
    boost::json::array const& array() const {
        if (!v_.is_array()) fail("expected an array");
        return v_.get_array();
    }

private:
    static std::string fmt(double d) {
        auto s = std::to_string(d);
        while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) {
            bool const dot = s.back() == '.';
            s.pop_back();
            if (dot) break;
        }
        return s;
    }
    boost::json::value const& v_;
    std::string path_;
};

inline Reader field(Reader const& r, boost::json::object const& o, std::string_view key) { return Reader(o.at(key), r.child(key)); }

} // namespace detail

/// @brief Reads a scenario from its JSON text. Throws `ScenarioError` naming what is wrong.
inline Scenario parse_scenario(std::string_view json_text);

/// @brief Sets `path=value` in a scenario's JSON (before `parse_scenario`): `path` is dotted with `[i]`
/// indexes (`tiers[0].organizations`), `value` is JSON (`10000`, `true`, `"eu"`) or else a bare string.
/// Throws `ScenarioError` when the path does not lead to an existing object or array element.
inline void apply_override(boost::json::value& scenario, std::string_view assignment);

} // namespace cascade::sim

#include <cascade/sim/impl/scenario.hpp>
