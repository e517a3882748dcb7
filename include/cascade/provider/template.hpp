#pragma once
/// @file
/// @brief `BasicTemplate<F>` / `Template`: the deterministic last tier that cannot fail.

#include <cascade/core/completion.hpp>
#include <cascade/core/request.hpp>
#include <cascade/core/tier.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace cascade {

/// @brief The infallible last tier: renders an answer from the request with a user callable
/// `Request const& -> std::string`, no I/O.
///
/// If the callable throws, the answer is `safe_text` instead: the tier never fails, so a chain ending in
/// it returns `Completion`, not a result. Its label is `fallback-template`; cost is zero.
/// @code
/// cascade::Template tpl{[](cascade::Request const& r) { return "Report for: " + r.prompt(); }};
/// @endcode
template <class F>
class BasicTemplate {
public:
    static constexpr bool infallible = true;

    /// Text returned when the callable throws.
    static constexpr std::string_view safe_text =
        "This content could not be generated right now. Please try again later.";

    BasicTemplate() requires std::default_initializable<F> = default;
    explicit BasicTemplate(F render, std::string label = "fallback-template")
        : render_(std::move(render)), label_(std::move(label)) {}

    std::string_view name() const noexcept { return label_; }

    Completion attempt(Request const& req, Context const&) noexcept {
        Completion c;
        try {
            c.text = render(req);
        } catch (...) {
            c.text = std::string(safe_text);
        }
        c.label = label_;
        c.model = "template";
        c.finish_reason = "stop";
        c.origin = Origin::fallback;
        return c;
    }

private:
    std::string render(Request const& req) {
        if constexpr (requires { static_cast<bool>(render_); }) {
            if (!static_cast<bool>(render_)) return std::string(safe_text);
        }
        return std::string(render_(req));
    }

    F render_{};
    std::string label_ = "fallback-template";
};

/// @brief A template tier around any `std::string(Request const&)` callable.
using Template = BasicTemplate<std::function<std::string(Request const&)>>;

} // namespace cascade
