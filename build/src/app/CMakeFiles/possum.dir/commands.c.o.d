src/app/CMakeFiles/possum.dir/commands.c.o: \
 /work/main/build/src/app/commands.c /usr/include/stdc-predef.h \
 /work/main/src/app/cli.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h
