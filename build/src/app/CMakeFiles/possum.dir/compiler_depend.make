# Empty compiler generated dependencies file for possum.
# This may be replaced when dependencies are built.
