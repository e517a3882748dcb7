// libFuzzer target: cache keys. The input describes two requests (the second often a variation of the
// first: tags reordered, repeated, split or spliced, one field changed). Their keys are equal exactly when
// the requests are equal after normalisation: the same messages, max_tokens (unset and 0 or less alike),
// temperature rounded to 3 decimals (-0 is 0, NaNs are one; unset apart from every number), seed, stop
// sequences, model override, and the same set of tags. The normalised text also reads back, per
// its documented format, to the request it was made from.

#include <cascade/cache/key.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Stops the run when an invariant fails, naming it (libFuzzer then saves the input).
[[noreturn]] void fail(char const* what) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    __builtin_trap();
}

cascade::Request make_request(FuzzedDataProvider& in) {
    cascade::Request r;
    auto n = in.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < n; ++i) {
        auto role = static_cast<cascade::Role>(in.ConsumeIntegralInRange<int>(0, 2));
        r.messages.push_back(cascade::Message{role, in.ConsumeRandomLengthString(64)});
    }
    if (in.ConsumeBool()) r.max_tokens = in.ConsumeIntegral<int>();
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: r.temperature = 0.7; break;
    case 1: r.temperature = in.ConsumeIntegralInRange<int>(-2000, 2000) / 1000.0; break;
    case 2: r.temperature = in.ConsumeFloatingPoint<double>(); break;
    case 3: break;  // unset
    default: {
        auto bits = in.ConsumeIntegral<std::uint64_t>();  // any double: NaNs, infinities, -0, subnormals
        double t = 0;
        std::memcpy(&t, &bits, sizeof bits);
        r.temperature = t;
    }
    }
    if (in.ConsumeBool()) r.seed = in.ConsumeIntegral<std::int64_t>();
    auto stops = in.ConsumeIntegralInRange<int>(0, 2);
    for (int i = 0; i < stops; ++i) r.stop.push_back(in.ConsumeRandomLengthString(16));
    if (in.ConsumeBool()) r.model = in.ConsumeRandomLengthString(16);
    auto tags = in.ConsumeIntegralInRange<int>(0, 4);
    for (int i = 0; i < tags; ++i) r.tags.push_back(in.ConsumeRandomLengthString(32));
    return r;
}

cascade::Request vary(cascade::Request r, FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: std::reverse(r.tags.begin(), r.tags.end()); break;
    case 1:
        if (!r.tags.empty()) r.tags.push_back(r.tags.front());
        break;
    case 2:
        if (r.temperature) *r.temperature += in.ConsumeIntegralInRange<int>(-1, 1) * 0.0004;
        break;
    case 3:
        if (!r.messages.empty()) r.messages.back().content += in.ConsumeRandomLengthString(4);
        break;
    case 4:
        // Move the last tag's tail into a new tag: "ab" -> "a", "b".
        if (!r.tags.empty() && r.tags.back().size() > 1) {
            auto& t = r.tags.back();
            auto cut = in.ConsumeIntegralInRange<std::size_t>(1, t.size() - 1);
            auto tail = t.substr(cut);
            t.resize(cut);
            r.tags.push_back(tail);
        }
        break;
    case 6:
        // Splice the last two tags into one that embeds what looks like the encoding of the second (as v1
        // and as v2 wrote tags): a tag holding a newline must not pass for two.
        if (r.tags.size() >= 2) {
            auto second = r.tags.back();
            r.tags.pop_back();
            r.tags.back() += in.ConsumeBool() ? "\ntag=" + second : "\ntag:" + std::to_string(second.size()) + ":" + second;
        }
        break;
    case 5:
        // Move text between two messages.
        if (r.messages.size() >= 2 && !r.messages[0].content.empty()) {
            r.messages[1].content.insert(0, 1, r.messages[0].content.back());
            r.messages[0].content.pop_back();
        }
        break;
    default: break;
    }
    return r;
}

// The normalised request, compared field by field (not through the text the key is made from).
bool same_normalised(cascade::Request const& a, cascade::Request const& b) {
    if (a.messages.size() != b.messages.size()) return false;
    for (std::size_t i = 0; i < a.messages.size(); ++i)
        if (a.messages[i].role != b.messages[i].role || a.messages[i].content != b.messages[i].content) return false;
    auto tokens = [](cascade::Request const& r) { return r.max_tokens && *r.max_tokens > 0 ? *r.max_tokens : 0; };
    if (tokens(a) != tokens(b)) return false;
    if (a.temperature.has_value() != b.temperature.has_value()) return false;
    if (a.temperature) {
        double ta = std::round(*a.temperature * 1000.0) / 1000.0, tb = std::round(*b.temperature * 1000.0) / 1000.0;
        if (!(ta == tb || (std::isnan(ta) && std::isnan(tb)))) return false;
    }
    if (a.seed != b.seed || a.stop != b.stop || a.model != b.model) return false;
    return std::set<std::string>(a.tags.begin(), a.tags.end()) == std::set<std::string>(b.tags.begin(), b.tags.end());
}

// Reads the documented normalised text back (cache/key.hpp): it must give the normalised request, so
// that no two different requests can share it.
bool decodes_to(std::string_view text, cascade::Request const& r) {
    auto line = [&](std::string_view prefix) -> std::optional<std::string_view> {
        if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
        auto nl = text.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;
        auto value = text.substr(prefix.size(), nl - prefix.size());
        text.remove_prefix(nl + 1);
        return value;
    };
    // "<label>:<byte length>:<bytes>\n"
    auto counted = [&](std::string_view label) -> std::optional<std::string> {
        if (text.substr(0, label.size() + 1) != std::string(label) + ":") return std::nullopt;
        text.remove_prefix(label.size() + 1);
        std::size_t n = 0, i = 0;
        for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) n = n * 10 + static_cast<std::size_t>(text[i] - '0');
        if (i == 0 || i >= text.size() || text[i] != ':' || text.size() < i + 1 + n + 1 || text[i + 1 + n] != '\n') return std::nullopt;
        std::string value(text.substr(i + 1, n));
        text.remove_prefix(i + 1 + n + 1);
        return value;
    };
    if (!line("cascade-cache-v2")) return false;
    std::size_t m = 0;
    for (;;) {
        std::optional<std::string> content;
        cascade::Role role{};
        for (auto [name, rl] : {std::pair{"system", cascade::Role::system}, std::pair{"user", cascade::Role::user},
                                std::pair{"assistant", cascade::Role::assistant}})
            if (!content && (content = counted(name))) role = rl;
        if (!content) break;
        if (m >= r.messages.size() || r.messages[m].role != role || r.messages[m].content != *content) return false;
        ++m;
    }
    if (m != r.messages.size()) return false;
    bool const has_tokens = r.max_tokens && *r.max_tokens > 0;
    auto max_tokens = line("max_tokens=");
    if (max_tokens.has_value() != has_tokens || (has_tokens && *max_tokens != std::to_string(*r.max_tokens))) return false;
    if (line("temperature=").has_value() != r.temperature.has_value()) return false;
    auto seed = line("seed=");
    if (seed.has_value() != r.seed.has_value() || (seed && *seed != std::to_string(*r.seed))) return false;
    for (auto const& stop : r.stop)
        if (counted("stop") != stop) return false;
    if (counted("model") != r.model) return false;
    std::set<std::string> tags;
    while (!text.empty()) {
        auto tag = counted("tag");
        if (!tag || !tags.insert(*tag).second) return false;
    }
    return tags == std::set<std::string>(r.tags.begin(), r.tags.end());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    auto a = make_request(in);
    auto b = in.ConsumeBool() ? vary(a, in) : make_request(in);
    auto ka = cascade::cache_key(a), kb = cascade::cache_key(b);
    if (ka.size() != 64 || kb.size() != 64) fail("a key is 64 hex characters");
    if ((ka == kb) != same_normalised(a, b)) fail("keys are equal exactly when the normalised requests are");
    if (ka != cascade::cache_key(a)) fail("a key is stable");
    if (!decodes_to(cascade::cache_key_material(a), a) || !decodes_to(cascade::cache_key_material(b), b)) fail("the normalised text reads back to the request");
    return 0;
}
