# Installs cascade from BUILD_DIR into a temporary prefix, then configures, builds and runs the consumer
# against it with find_package; or, with MODE=subdirectory, with add_subdirectory of SOURCE_DIR.
cmake_minimum_required(VERSION 3.20)
set(work "${BUILD_DIR}/package-${MODE}")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "install")
  run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${work}/prefix")
  if(NOT EXISTS "${work}/prefix/include/cascade/cascade.hpp")
    message(FATAL_ERROR "the install did not put cascade/cascade.hpp under include/")
  endif()
  set(configure_args -DCMAKE_PREFIX_PATH=${work}/prefix)
else()
  set(configure_args -DCASCADE_SOURCE_DIR=${SOURCE_DIR})
endif()

run_step("configure consumer" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/consumer" -B "${work}/build"
  -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Debug ${configure_args})
run_step("build consumer" ${CMAKE_COMMAND} --build "${work}/build")
run_step("run consumer" "${work}/build/consumer")
if(NOT last_output MATCHES "fallback-template: echo: consumer")
  message(FATAL_ERROR "the consumer printed something unexpected: ${last_output}")
endif()
file(REMOVE_RECURSE "${work}")
