# Install rules: headers, the exported INTERFACE target and a config file that finds its dependencies.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(CASCADE_INSTALL)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cascade DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(TARGETS cascade EXPORT cascadeTargets)
  install(EXPORT cascadeTargets NAMESPACE cascade:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cascade)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cascadeConfig.cmake.in
    ${PROJECT_BINARY_DIR}/cascadeConfig.cmake
    INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cascade)
  # Header-only: any architecture may consume it.
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/cascadeConfigVersion.cmake
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
  install(FILES ${PROJECT_BINARY_DIR}/cascadeConfig.cmake ${PROJECT_BINARY_DIR}/cascadeConfigVersion.cmake
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cascade)
endif()
