# cs_add_test(NAME name SOURCES a.c b.c [LIBS x y] [TIMEOUT s] [LABELS l])
#
# The one helper that builds a cmocka test program and registers it with
# ctest.  Each test binary runs in its own process (a crash fails that test,
# not the suite) with a timeout, and finds the project's test helpers
# through environment variables set here.
find_package(cmocka CONFIG QUIET)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

function(cs_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    LABELS "${T_LABELS}"
    ENVIRONMENT "CS_SOURCE_DIR=${PROJECT_SOURCE_DIR};CS_BINARY_DIR=${PROJECT_BINARY_DIR};CS_MAKE_PKI=${PROJECT_SOURCE_DIR}/tests/pki/make-pki.sh;CS_MAKE_TOKEN=${PROJECT_SOURCE_DIR}/tests/hsm/make-token.sh")
endfunction()
