/*
 * cli.h: the small toolkit every `possum` subcommand uses: the command table, option
 * parsing in the --name VALUE style, and the exit-code contract (0 ok, 1 failed, 2 usage).
 */
#ifndef PX_CLI_H
#define PX_CLI_H

#include <stddef.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's own name */
    const char *summary;
} cli_command;

extern const cli_command cli_commands[]; /* generated: one row per src/app/cmd_*.c */

/* Options of one (sub)command. Flags take no value; others take exactly one. */
typedef struct cli_opt {
    const char *name; /* "key" for --key */
    int is_flag;
    const char *help;
    const char *value; /* filled by cli_parse: the value, "1" for a set flag, or NULL */
} cli_opt;

/* Parse argv[first..] as --name VALUE / --flag, and positionals into pos (at most maxpos).
 * Unknown option, missing value or too many positionals: prints why to stderr and returns
 * CLI_USAGE. --help / -h: prints usage (the synopsis and each option) and returns -1. */
int cli_parse(int argc, char **argv, int first, cli_opt *opts, const char **pos, size_t maxpos,
              size_t *npos, const char *synopsis);

const char *cli_get(const cli_opt *opts, const char *name); /* value or NULL */
int cli_has(const cli_opt *opts, const char *name);

/* Print "possum: <msg>" to stderr; returns CLI_FAIL (or CLI_USAGE for cli_usage_error). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Dispatch argv[1] among a nested table (for `possum hsm generate ...`). */
int cli_dispatch(const char *prog, const cli_command *table, int argc, char **argv);
/* The same with "-c FILE" taken as "--config FILE" (at most 64 arguments are passed on). */
int cli_dispatch_config(const char *prog, const cli_command *table, int argc, char **argv);

#endif
