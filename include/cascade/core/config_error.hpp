#pragma once
/// @file
/// @brief `ConfigError`: a configuration mistake, said at once with what is wrong and where.

#include <boost/assert/source_location.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace cascade {

/// @brief What is wrong with a configuration and where (a field, a path, a URL). Never holds a secret.
struct ConfigError {
    ConfigError() = default;
    explicit ConfigError(std::string m) : message(std::move(m)) {}
    std::string message;
};

/// @brief `value()` on a result holding a ConfigError throws `std::invalid_argument` with its message.
[[noreturn]] inline void throw_exception_from_error(ConfigError const& e, boost::source_location const& loc) {
    boost::throw_exception(std::invalid_argument(e.message), loc);
}

} // namespace cascade
