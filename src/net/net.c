/*
 * net.c: process set-up, cross-thread posting, close reasons and configuration binding.
 */
#include "net/net.h"
#include "lib/str.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = PX_OK;

static void init_once(void)
{
    struct sigaction sa;
    if (evthread_use_pthreads() != 0) {
        g_init_rc = PX_EINTERNAL;
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL); /* a peer that vanished is an error code, not a signal */
}

int net_init(px_error *e)
{
    pthread_once(&g_once, init_once);
    if (g_init_rc != PX_OK)
        return px_error_set(e, g_init_rc, "net: libevent pthread support unavailable");
    return PX_OK;
}

int net_base_new(struct event_base **out, px_error *e)
{
    int rc = net_init(e);
    *out = NULL;
    if (rc != PX_OK)
        return rc;
    *out = event_base_new();
    if (*out == NULL)
        return px_error_set(e, PX_ENOMEM, "net: cannot create an event base");
    return PX_OK;
}

void net_base_free(struct event_base *base)
{
    if (base == NULL)
        return;
    /* a few passes: a finalizer may schedule another (bufferevent, then its SSL) */
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
}

typedef struct post_rec {
    void (*fn)(void *arg);
    void *arg;
} post_rec;

static void post_cb(evutil_socket_t fd, short what, void *arg)
{
    post_rec rec = *(post_rec *)arg;
    (void)fd;
    (void)what;
    free(arg);
    rec.fn(rec.arg);
}

int net_post(struct event_base *base, void (*fn)(void *arg), void *arg)
{
    const struct timeval now = {0, 0};
    post_rec *rec = malloc(sizeof *rec);
    if (rec == NULL)
        return PX_ENOMEM;
    rec->fn = fn;
    rec->arg = arg;
    if (event_base_once(base, -1, EV_TIMEOUT, post_cb, rec, &now) != 0) {
        free(rec);
        return PX_ENOMEM;
    }
    return PX_OK;
}

const char *net_close_reason_name(int reason)
{
    static const char *const names[] = {"peer",        "local", "idle",  "oversize",
                                        "output_full", "tls",   "error", "shutdown"};
    if (reason < 0 || reason > NET_CLOSE_SHUTDOWN)
        return "unknown";
    return names[reason];
}

int net_name_is_valid(const char *name)
{
    if (name[0] == 0)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

void net_listener_config_defaults(net_listener_config *cfg, const char *name)
{
    memset(cfg, 0, sizeof *cfg);
    px_strlcpy(cfg->name, name ? name : "net", sizeof cfg->name);
    px_strlcpy(cfg->listen, "127.0.0.1:0", sizeof cfg->listen);
    cfg->max_frame = PX_FRAME_MAX_DEFAULT;
    cfg->idle_timeout_ms = PX_IDLE_TIMEOUT_MS_DEFAULT;
    cfg->max_conns = PX_CONN_MAX_DEFAULT;
    cfg->max_output = PX_OUTPUT_MAX_DEFAULT;
    cfg->max_body = PX_HTTP_BODY_MAX_DEFAULT;
}

void net_link_config_defaults(net_link_config *cfg, const char *name)
{
    memset(cfg, 0, sizeof *cfg);
    px_strlcpy(cfg->name, name ? name : "link", sizeof cfg->name);
    cfg->max_frame = PX_FRAME_MAX_DEFAULT;
    cfg->connect_timeout_ms = 5000;
    cfg->reconnect_min_ms = 100;
    cfg->reconnect_max_ms = 10000;
    cfg->max_output = PX_OUTPUT_MAX_DEFAULT;
}

/* A relative path in the config file means relative to the file's directory. */
static int resolve_path(px_config *c, char *path, size_t pathsz, const char *key, px_error *e)
{
    const char *cfgpath = px_config_path(c);
    const char *slash = cfgpath ? strrchr(cfgpath, '/') : NULL;
    char joined[PX_PATH_MAX];
    int n;
    if (path[0] == 0 || path[0] == '/' || slash == NULL)
        return PX_OK;
    n = snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - cfgpath), cfgpath, path);
    if (n < 0 || (size_t)n >= sizeof joined || (size_t)n >= pathsz)
        return px_error_set(e, PX_ECONFIG, "%s: %s: path too long", cfgpath, key);
    memcpy(path, joined, (size_t)n + 1);
    return PX_OK;
}

/* "tms" or, with prefix "admin_", "tms.admin": distinct metric labels per listener. */
static void name_with_prefix(char *out, size_t outsz, const char *section, const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    while (n > 0 && prefix[n - 1] == '_')
        n--;
    if (n == 0)
        snprintf(out, outsz, "%s", section);
    else
        snprintf(out, outsz, "%s.%.*s", section, (int)n, prefix);
}

#define KEY_MAX 64
typedef char key_text[KEY_MAX];

static const char *pkey(key_text out, const char *prefix, const char *key)
{
    snprintf(out, KEY_MAX, "%s%s", prefix ? prefix : "", key);
    return out;
}

static int bind_listener_fields(px_config *c, const char *section, const char *prefix,
                                net_listener_config *out, key_text *k, px_error *e)
{
    typedef net_listener_config L;
    const px_config_field f[] = {
        PX_CFG_ADDR(L, listen, pkey(k[0], prefix, "listen"), "127.0.0.1:0"),
        PX_CFG_INT_(L, max_frame, pkey(k[1], prefix, "max_frame"), 1, PX_FRAME_MAX_CEILING, "4096"),
        PX_CFG_INT_(L, idle_timeout_ms, pkey(k[2], prefix, "idle_timeout_ms"), 0, INT64_C(86400000),
                    "60000"),
        PX_CFG_INT_(L, max_conns, pkey(k[3], prefix, "max_connections"), 1, PX_CONN_MAX_CEILING,
                    "1024"),
        PX_CFG_INT_(L, max_output, pkey(k[4], prefix, "max_output"), 1024, PX_OUTPUT_MAX_CEILING,
                    "262144"),
        PX_CFG_INT_(L, max_body, pkey(k[5], prefix, "max_body"), 0, PX_HTTP_BODY_MAX_CEILING,
                    "65536"),
        PX_CFG_STR(L, tls.cert, pkey(k[6], prefix, "tls_cert"), ""),
        PX_CFG_STR(L, tls.key, pkey(k[7], prefix, "tls_key"), ""),
        PX_CFG_STR(L, tls.ca, pkey(k[8], prefix, "tls_ca"), ""),
        PX_CFG_STR(L, tls.crl, pkey(k[9], prefix, "tls_crl"), ""),
        PX_CFG_BOOL_(L, tls.require_client_cert, pkey(k[10], prefix, "tls_require_client_cert"),
                     "false"),
    };
    return px_config_bind(c, section, f, sizeof f / sizeof f[0], out, e);
}

int net_listener_config_bind(px_config *c, const char *section, const char *prefix,
                             net_listener_config *out, px_error *e)
{
    key_text k[11];
    const char *where = px_config_path(c);
    int rc;
    net_listener_config_defaults(out, section);
    name_with_prefix(out->name, sizeof out->name, section, prefix);
    rc = bind_listener_fields(c, section, prefix, out, k, e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.cert, sizeof out->tls.cert, k[6], e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.key, sizeof out->tls.key, k[7], e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.ca, sizeof out->tls.ca, k[8], e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.crl, sizeof out->tls.crl, k[9], e);
    if (rc != PX_OK)
        return rc;
    if ((out->tls.cert[0] == 0) != (out->tls.key[0] == 0))
        return px_error_set(e, PX_ECONFIG, "%s: [%s] %s and %s go together", where, section, k[6],
                            k[7]);
    if ((out->tls.require_client_cert || out->tls.crl[0] != 0) && out->tls.ca[0] == 0)
        return px_error_set(e, PX_ECONFIG, "%s: [%s] %s needs %s", where, section,
                            out->tls.crl[0] ? k[9] : k[10], k[8]);
    if (out->tls.cert[0] == 0 && (out->tls.ca[0] != 0 || out->tls.require_client_cert))
        return px_error_set(e, PX_ECONFIG, "%s: [%s] %s without %s", where, section, k[8], k[6]);
    return PX_OK;
}

int net_link_config_bind(px_config *c, const char *section, const char *prefix,
                         net_link_config *out, px_error *e)
{
    typedef net_link_config K;
    key_text k[10];
    const px_config_field f[] = {
        {pkey(k[0], prefix, "connect"), PX_CFG_HOSTPORT, offsetof(K, connect),
         sizeof(((K *)0)->connect), 0, 0, NULL, 1, NULL},
        PX_CFG_INT_(K, max_frame, pkey(k[1], prefix, "max_frame"), 1, PX_FRAME_MAX_CEILING, "4096"),
        PX_CFG_INT_(K, connect_timeout_ms, pkey(k[2], prefix, "connect_timeout_ms"), 1,
                    INT64_C(600000), "5000"),
        PX_CFG_INT_(K, reconnect_min_ms, pkey(k[3], prefix, "reconnect_min_ms"), 1,
                    PX_LINK_BACKOFF_MAX_MS, "100"),
        PX_CFG_INT_(K, reconnect_max_ms, pkey(k[4], prefix, "reconnect_max_ms"), 1,
                    PX_LINK_BACKOFF_MAX_MS, "10000"),
        PX_CFG_INT_(K, max_output, pkey(k[5], prefix, "max_output"), 1024, PX_OUTPUT_MAX_CEILING,
                    "262144"),
        PX_CFG_STR(K, tls.ca, pkey(k[6], prefix, "tls_ca"), ""),
        PX_CFG_STR(K, tls.cert, pkey(k[7], prefix, "tls_cert"), ""),
        PX_CFG_STR(K, tls.key, pkey(k[8], prefix, "tls_key"), ""),
        PX_CFG_STR(K, tls.server_name, pkey(k[9], prefix, "tls_server_name"), ""),
    };
    int rc;
    net_link_config_defaults(out, section);
    name_with_prefix(out->name, sizeof out->name, section, prefix);
    rc = px_config_bind(c, section, f, sizeof f / sizeof f[0], out, e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.ca, sizeof out->tls.ca, k[6], e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.cert, sizeof out->tls.cert, k[7], e);
    if (rc == PX_OK)
        rc = resolve_path(c, out->tls.key, sizeof out->tls.key, k[8], e);
    if (rc != PX_OK)
        return rc;
    if (out->reconnect_min_ms > out->reconnect_max_ms)
        return px_error_set(e, PX_ECONFIG, "%s: [%s] %s is above %s", px_config_path(c), section,
                            k[3], k[4]);
    if ((out->tls.cert[0] != 0 || out->tls.server_name[0] != 0) && out->tls.ca[0] == 0)
        return px_error_set(e, PX_ECONFIG, "%s: [%s] TLS settings need %s", px_config_path(c),
                            section, k[6]);
    if ((out->tls.cert[0] == 0) != (out->tls.key[0] == 0))
        return px_error_set(e, PX_ECONFIG, "%s: [%s] %s and %s go together", px_config_path(c),
                            section, k[7], k[8]);
    return PX_OK;
}
