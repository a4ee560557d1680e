# Empty dependencies file for px_lib.
# This may be replaced when dependencies are built.
