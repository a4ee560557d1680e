file(REMOVE_RECURSE
  "libpx_cli.a"
)
