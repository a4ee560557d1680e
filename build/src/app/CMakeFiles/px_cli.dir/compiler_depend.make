# Empty compiler generated dependencies file for px_cli.
# This may be replaced when dependencies are built.
