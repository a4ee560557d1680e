file(REMOVE_RECURSE
  "CMakeFiles/px_lib.dir/buf.c.o"
  "CMakeFiles/px_lib.dir/buf.c.o.d"
  "CMakeFiles/px_lib.dir/config.c.o"
  "CMakeFiles/px_lib.dir/config.c.o.d"
  "CMakeFiles/px_lib.dir/err.c.o"
  "CMakeFiles/px_lib.dir/err.c.o.d"
  "CMakeFiles/px_lib.dir/hex.c.o"
  "CMakeFiles/px_lib.dir/hex.c.o.d"
  "CMakeFiles/px_lib.dir/log.c.o"
  "CMakeFiles/px_lib.dir/log.c.o.d"
  "CMakeFiles/px_lib.dir/str.c.o"
  "CMakeFiles/px_lib.dir/str.c.o.d"
  "CMakeFiles/px_lib.dir/time.c.o"
  "CMakeFiles/px_lib.dir/time.c.o.d"
  "libpx_lib.a"
  "libpx_lib.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/px_lib.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
