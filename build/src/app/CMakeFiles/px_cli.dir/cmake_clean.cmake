file(REMOVE_RECURSE
  "CMakeFiles/px_cli.dir/cli.c.o"
  "CMakeFiles/px_cli.dir/cli.c.o.d"
  "libpx_cli.a"
  "libpx_cli.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/px_cli.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
