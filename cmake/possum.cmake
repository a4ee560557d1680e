# Helpers shared by every module's CMakeLists.txt.

# possum_unit_test(NAME SOURCES... LIBS libs...): a cmocka test run by CTest, labelled "unit".
function(possum_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "unit;${T_LABELS}" TIMEOUT 300
    ENVIRONMENT "POSSUM_SOURCE_DIR=${PROJECT_SOURCE_DIR};POSSUM_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# possum_fuzz_target(NAME SOURCES... LIBS libs...): a libFuzzer target, built only with POSSUM_FUZZ.
# Its seed corpus lives in tests/fuzz/corpus/NAME/.
function(possum_fuzz_target name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  if(POSSUM_FUZZ)
    add_executable(${name} ${T_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${T_LIBS})
  endif()
endfunction()

# possum_subdirs(): add every immediate subdirectory that has a CMakeLists.txt, so that a
# new module needs no edit to its parent.
macro(possum_subdirs)
  file(GLOB _children RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _children)
  foreach(_child ${_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_child}
       AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_child}/CMakeLists.txt)
      add_subdirectory(${_child})
    endif()
  endforeach()
endmacro()
