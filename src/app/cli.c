#include "app/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void print_usage(const char *synopsis, const cli_opt *opts)
{
    printf("usage: %s\n", synopsis);
    for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++)
        printf("  --%-14s %s%s\n", opts[i].name, opts[i].is_flag ? "" : "VALUE  ",
               opts[i].help ? opts[i].help : "");
}

static cli_opt *find_opt(cli_opt *opts, const char *name)
{
    for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

int cli_parse(int argc, char **argv, int first, cli_opt *opts, const char **pos, size_t maxpos,
              size_t *npos, const char *synopsis)
{
    size_t np = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(synopsis, opts);
            return -1;
        }
        if (strncmp(a, "--", 2) == 0 && a[2] != 0) {
            cli_opt *o = find_opt(opts, a + 2);
            if (o == NULL)
                return cli_usage_error("unknown option '%s' (see --help)", a);
            if (o->is_flag) {
                o->value = "1";
            } else {
                if (i + 1 >= argc)
                    return cli_usage_error("option '%s' needs a value", a);
                o->value = argv[++i];
            }
            continue;
        }
        if (np >= maxpos)
            return cli_usage_error("unexpected argument '%s' (see --help)", a);
        pos[np++] = a;
    }
    if (npos != NULL)
        *npos = np;
    return CLI_OK;
}

const char *cli_get(const cli_opt *opts, const char *name)
{
    for (size_t i = 0; opts[i].name != NULL; i++)
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].value;
    return NULL;
}

int cli_has(const cli_opt *opts, const char *name)
{
    return cli_get(opts, name) != NULL;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("possum: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("possum: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_USAGE;
}

int cli_dispatch(const char *prog, const cli_command *table, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s COMMAND [OPTIONS]\n\ncommands:\n", prog);
        for (size_t i = 0; table[i].name != NULL; i++)
            printf("  %-12s %s\n", table[i].name, table[i].summary);
        printf("\nRun '%s COMMAND --help' for a command's options.\n", prog);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    for (size_t i = 0; table[i].name != NULL; i++)
        if (strcmp(table[i].name, argv[1]) == 0)
            return table[i].run(argc - 1, argv + 1);
    return cli_usage_error("%s: unknown command '%s' (see %s --help)", prog, argv[1], prog);
}

int cli_dispatch_config(const char *prog, const cli_command *table, int argc, char **argv)
{
    char *args[64];
    int n = argc < 64 ? argc : 64;
    for (int i = 0; i < n; i++)
        args[i] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
    return cli_dispatch(prog, table, n, args);
}
