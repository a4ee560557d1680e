file(REMOVE_RECURSE
  "libpx_lib.a"
)
