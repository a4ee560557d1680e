
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/lib/buf.c" "src/lib/CMakeFiles/px_lib.dir/buf.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/buf.c.o.d"
  "/work/main/src/lib/config.c" "src/lib/CMakeFiles/px_lib.dir/config.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/config.c.o.d"
  "/work/main/src/lib/err.c" "src/lib/CMakeFiles/px_lib.dir/err.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/err.c.o.d"
  "/work/main/src/lib/hex.c" "src/lib/CMakeFiles/px_lib.dir/hex.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/hex.c.o.d"
  "/work/main/src/lib/log.c" "src/lib/CMakeFiles/px_lib.dir/log.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/log.c.o.d"
  "/work/main/src/lib/str.c" "src/lib/CMakeFiles/px_lib.dir/str.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/str.c.o.d"
  "/work/main/src/lib/time.c" "src/lib/CMakeFiles/px_lib.dir/time.c.o" "gcc" "src/lib/CMakeFiles/px_lib.dir/time.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
