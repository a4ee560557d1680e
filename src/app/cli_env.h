/*
 * cli_env.h: what a `possum` command works on — its configuration file, its store and its
 * HSM — found and opened the same way by every command (docs/cli.md):
 *
 *   --config FILE   a configuration ([store], [hsm] and the service's sections);
 *   --db PATH       (commands that take it) a SQLite database file, without a configuration;
 *   neither         the command's default configuration (etc/possum.ini, etc/kms.ini, ...).
 *
 * The store comes from [store] (its defaults when the file has none), the HSM settings from
 * the command's binder ([hsm] when there is none); the LMK passphrase from
 * POSSUM_LMK_PASSPHRASE, or a prompt when stdin is a terminal.
 */
#ifndef PX_APP_CLI_ENV_H
#define PX_APP_CLI_ENV_H

#include "app/cli.h"
#include "hsm/hsm.h"
#include "lib/config.h"
#include "lib/err.h"
#include "store/store.h"

/* What cli_env_open is asked for (need). How the configuration is found is fixed by the
 * first call: CLI_ENV_CONFIG or CLI_ENV_DB, else it is optional. */
enum {
    CLI_ENV_CONFIG = 1u << 0,     /* a configuration is required: --config, else the default */
    CLI_ENV_DB = 1u << 1,         /* --config, or --db PATH, else the default if it exists */
    CLI_ENV_STORE = 1u << 2,      /* open the store */
    CLI_ENV_HSM_CONFIG = 1u << 3, /* bind the HSM settings (without opening the HSM) */
    CLI_ENV_HSM = 1u << 4         /* open the HSM (its settings bound first) */
};

/* A command's particulars. */
typedef struct cli_env_spec {
    const char *default_config; /* used when neither --config nor --db is given */
    const char *caller;         /* the HSM audit log's caller ("cli:terminal"); NULL: "possum" */
    int (*hsm_bind)(px_config *ini, hsm_config *out, px_error *e); /* NULL: [hsm] if present */
} cli_env_spec;

typedef struct cli_env {
    const cli_env_spec *spec;
    px_config *ini; /* NULL without a configuration (--db, or an optional one absent) */
    store_config scfg;
    hsm_config hcfg; /* the command may adjust it between calls, before the HSM is opened */
    store *st;
    hsm *h;
    unsigned done; /* what has been loaded, bound or opened (CLI_ENV_* bits) */
} cli_env;

/* Defaults for everything, nothing open; cli_env_close is safe after it. */
void cli_env_init(cli_env *env, const cli_env_spec *spec);

/* Open what need asks for and is not open yet, in order: read the configuration (once),
 * bind the HSM settings, open the store, open the HSM (on the store when it is open, so
 * named keys work). Errors name what failed ("give --config FILE or --db PATH (no
 * etc/possum.ini here)", the file's line, the store's or the HSM's reason); what was opened
 * stays open until cli_env_close. */
int cli_env_open(cli_env *env, const cli_opt *opts, unsigned need, px_error *e);

/* Close the HSM, the store and the configuration; env is as after cli_env_init. */
void cli_env_close(cli_env *env);

#endif
