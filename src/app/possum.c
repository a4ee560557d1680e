/* possum: the operator's and developer's command-line tool. */
#include "app/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("possum %s\n", POSSUM_VERSION);
        return CLI_OK;
    }
    return cli_dispatch("possum", cli_commands, argc, argv);
}
