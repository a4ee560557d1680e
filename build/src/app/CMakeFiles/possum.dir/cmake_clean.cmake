file(REMOVE_RECURSE
  "CMakeFiles/possum.dir/commands.c.o"
  "CMakeFiles/possum.dir/commands.c.o.d"
  "CMakeFiles/possum.dir/possum.c.o"
  "CMakeFiles/possum.dir/possum.c.o.d"
  "possum"
  "possum.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/possum.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
