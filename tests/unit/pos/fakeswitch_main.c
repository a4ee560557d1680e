/* fakeswitch_main.c: the fake switch as a process for the CLI test (test_cli.sh): writes
 * its port to argv[1], serves until its standard input closes. */
#include <stdio.h>
#include <unistd.h>

#include "fakeswitch.h"

int main(int argc, char **argv)
{
    static fake_switch fs;
    char c;
    FILE *f;
    if (argc != 2 || fs_start(&fs) != 0)
        return 2;
    f = fopen(argv[1], "w");
    if (f == NULL)
        return 2;
    fprintf(f, "%d\n", fs.port);
    fclose(f);
    while (read(0, &c, 1) > 0)
        ;
    fs_stop(&fs);
    return 0;
}
