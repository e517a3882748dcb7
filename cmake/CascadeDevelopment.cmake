# Settings for the project's own tests, examples and benchmarks (never for consumers).

# Asio and Beast are compiled once, in this library, instead of in every translation unit.
add_library(cascade_boost_src STATIC ${PROJECT_SOURCE_DIR}/cmake/boost_src.cpp)
target_compile_definitions(cascade_boost_src PUBLIC BOOST_ASIO_SEPARATE_COMPILATION BOOST_BEAST_SEPARATE_COMPILATION)
target_link_libraries(cascade_boost_src PUBLIC cascade::cascade)

add_library(cascade_dev_flags INTERFACE)
if(CASCADE_WARNINGS_AS_ERRORS)
  target_compile_options(cascade_dev_flags INTERFACE -Wall -Wextra -Wpedantic -Werror)
else()
  target_compile_options(cascade_dev_flags INTERFACE -Wall -Wextra -Wpedantic)
endif()
if(CASCADE_SANITIZE)
  set(_cascade_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    list(APPEND _cascade_san -fno-sanitize=function)
  endif()
  target_compile_options(cascade_dev_flags INTERFACE ${_cascade_san})
  target_link_options(cascade_dev_flags INTERFACE ${_cascade_san})
  target_compile_options(cascade_boost_src PRIVATE ${_cascade_san})
endif()
target_link_libraries(cascade_boost_src PUBLIC cascade_dev_flags)
