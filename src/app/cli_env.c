/* cli_env.c: the configuration, store and HSM of a `possum` command (cli_env.h). */
#include "app/cli_env.h"
#include "lib/str.h"

#include <string.h>
#include <unistd.h>

void cli_env_init(cli_env *env, const cli_env_spec *spec)
{
    memset(env, 0, sizeof *env);
    env->spec = spec;
    store_config_default(&env->scfg);
    hsm_config_default(&env->hcfg);
}

/* Find and read the configuration ([store] bound), or take --db. */
static int load(cli_env *env, const cli_opt *opts, unsigned need, px_error *e)
{
    const char *cfg = cli_get(opts, "config"), *db = cli_get(opts, "db");
    const char *def = env->spec->default_config;
    int rc;
    if ((need & CLI_ENV_DB) == 0)
        db = NULL;
    if (cfg == NULL && db == NULL && ((need & CLI_ENV_CONFIG) != 0 || access(def, R_OK) == 0))
        cfg = def;
    if (cfg == NULL && db != NULL)
        return px_strlcpy(env->scfg.path, db, sizeof env->scfg.path) == PX_OK
                   ? PX_OK
                   : px_error_set(e, PX_EINVAL, "--db: path too long");
    if (cfg == NULL && (need & CLI_ENV_DB) != 0)
        return px_error_set(e, PX_EINVAL, "give --config FILE or --db PATH (no %s here)", def);
    if (cfg == NULL)
        return PX_OK; /* the configuration is optional: the defaults */
    rc = px_config_load_file(cfg, &env->ini, e);
    if (rc == PX_OK && px_config_has_section(env->ini, "store"))
        rc = store_config_bind(env->ini, "store", &env->scfg, e);
    return rc;
}

/* The HSM settings from the configuration (if any), then who calls and how to ask secrets. */
static int bind_hsm(cli_env *env, px_error *e)
{
    int rc = PX_OK;
    if (env->ini != NULL && env->spec->hsm_bind != NULL)
        rc = env->spec->hsm_bind(env->ini, &env->hcfg, e);
    else if (env->ini != NULL && px_config_has_section(env->ini, "hsm"))
        rc = hsm_config_bind(env->ini, "hsm", &env->hcfg, e);
    if (rc != PX_OK)
        return rc;
    if (env->spec->caller != NULL)
        px_strlcpy(env->hcfg.caller, env->spec->caller, sizeof env->hcfg.caller);
    env->hcfg.secret_fn = isatty(STDIN_FILENO) ? hsm_secret_prompt : NULL;
    return PX_OK;
}

int cli_env_open(cli_env *env, const cli_opt *opts, unsigned need, px_error *e)
{
    int rc = PX_OK;
    if (need & CLI_ENV_HSM)
        need |= CLI_ENV_HSM_CONFIG;
    if ((env->done & CLI_ENV_CONFIG) == 0) {
        rc = load(env, opts, need, e);
        env->done |= CLI_ENV_CONFIG;
    }
    if (rc == PX_OK && (need & ~env->done & CLI_ENV_HSM_CONFIG) != 0) {
        rc = bind_hsm(env, e);
        env->done |= CLI_ENV_HSM_CONFIG;
    }
    if (rc == PX_OK && (need & CLI_ENV_STORE) != 0 && env->st == NULL)
        rc = store_open(&env->scfg, &env->st, e);
    if (rc == PX_OK && (need & CLI_ENV_HSM) != 0 && env->h == NULL)
        rc = hsm_open(&env->hcfg, env->st, &env->h, e);
    return rc;
}

void cli_env_close(cli_env *env)
{
    hsm_close(env->h);
    store_close(env->st);
    px_config_free(env->ini);
    cli_env_init(env, env->spec);
}
