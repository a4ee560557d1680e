/*
 * terminal.c: a terminal's data directory (docs/pos.md): its configuration terminal.ini,
 * its PIN pad (device.secret, pinpad.keys) and its state; creating, opening and reporting.
 */
#include "device/pinpad/devfile.h"
#include "device/pos/pos_int.h"
#include "lib/config.h"
#include "lib/str.h"
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define INI_NAME "terminal.ini"

void pos_config_defaults(pos_config *c)
{
    memset(c, 0, sizeof *c);
    px_strlcpy(c->tid, "10000001", sizeof c->tid);
    px_strlcpy(c->mid, "898100000000001", sizeof c->mid);
    px_strlcpy(c->host, "127.0.0.1", sizeof c->host);
    c->port = 5000;
    c->timeout_ms = 30000;
    c->connect_timeout_ms = 10000;
    snprintf(c->data_dir, sizeof c->data_dir, "var/pos/%s", c->tid);
    snprintf(c->serial, sizeof c->serial, "PP%s", c->tid);
    px_strlcpy(c->sw_version, "310000", sizeof c->sw_version);
}

static void path_in(const pos_config *c, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", c->data_dir, name);
}

int pos_config_load(pos_config *c, px_error *e)
{
    static const px_config_field fields[] = {
        PX_CFG_STR(pos_config, tid, "tid", NULL),
        PX_CFG_STR(pos_config, mid, "mid", NULL),
        PX_CFG_STR(pos_config, host, "host", NULL),
        PX_CFG_INT_(pos_config, port, "port", 1, 65535, NULL),
        PX_CFG_STR(pos_config, tls_ca, "tls_ca", NULL),
        PX_CFG_STR(pos_config, tls_cert, "tls_cert", NULL),
        PX_CFG_STR(pos_config, tls_key, "tls_key", NULL),
        PX_CFG_INT_(pos_config, timeout_ms, "timeout_ms", 100, 600000, NULL),
        PX_CFG_INT_(pos_config, connect_timeout_ms, "connect_timeout_ms", 100, 600000, NULL),
        PX_CFG_STR(pos_config, serial, "serial", NULL),
        PX_CFG_STR(pos_config, sw_version, "sw_version", NULL),
    };
    static const char *const ignore[] = {NULL};
    char path[PX_PATH_MAX + 16];
    px_config *cfg = NULL;
    int rc;
    path_in(c, INI_NAME, path, sizeof path);
    if (!devfile_exists(path))
        return px_error_set(e, PX_ENOTFOUND, "%s: no terminal here (run possum pos init)",
                            c->data_dir);
    rc = px_config_load_file(path, &cfg, e);
    if (rc == PX_OK)
        rc = px_config_bind(cfg, "pos", fields, sizeof fields / sizeof fields[0], c, e);
    if (rc == PX_OK)
        rc = px_config_check_unused(cfg, ignore, e);
    px_config_free(cfg);
    return rc;
}

static int is_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7E)
            return 0;
    return 1;
}

int pos_config_check(const pos_config *c, px_error *e)
{
    if (strlen(c->tid) != POS_TID_LEN || !is_printable(c->tid, POS_TID_LEN))
        return px_error_set(e, PX_ECONFIG, "tid: 8 printable characters");
    if (strlen(c->mid) != POS_MID_LEN || !is_printable(c->mid, POS_MID_LEN))
        return px_error_set(e, PX_ECONFIG, "mid: 15 printable characters");
    if (c->host[0] == 0 || !is_printable(c->host, strlen(c->host)))
        return px_error_set(e, PX_ECONFIG, "host: a name or address");
    if (c->port < 1 || c->port > 65535)
        return px_error_set(e, PX_ECONFIG, "port: 1 to 65535");
    if (c->timeout_ms < 100 || c->timeout_ms > 600000 || c->connect_timeout_ms < 100 ||
        c->connect_timeout_ms > 600000)
        return px_error_set(e, PX_ECONFIG, "timeouts: 100 to 600000 ms");
    if (strlen(c->sw_version) != 6 || !px_is_digits(c->sw_version, 6))
        return px_error_set(e, PX_ECONFIG, "sw_version: 6 digits");
    if (c->data_dir[0] == 0)
        return px_error_set(e, PX_ECONFIG, "data dir: empty");
    if ((c->tls_cert[0] != 0) != (c->tls_key[0] != 0) || (c->tls_cert[0] != 0 && c->tls_ca[0] == 0))
        return px_error_set(e, PX_ECONFIG, "tls: a client certificate needs its key and a CA");
    return PX_OK;
}

static int write_ini(const pos_config *c, px_error *e)
{
    char path[PX_PATH_MAX + 16];
    px_buf b;
    int rc;
    px_buf_init(&b, 16384);
    rc = px_buf_printf(&b,
                       "# possum POS terminal (docs/pos.md)\n[pos]\ntid = %s\nmid = %s\n"
                       "host = %s\nport = %lld\ntimeout_ms = %lld\nconnect_timeout_ms = %lld\n"
                       "serial = %s\nsw_version = %s\n",
                       c->tid, c->mid, c->host, (long long)c->port, (long long)c->timeout_ms,
                       (long long)c->connect_timeout_ms, c->serial, c->sw_version);
    if (rc == PX_OK && c->tls_ca[0] != 0)
        rc = px_buf_printf(&b, "tls_ca = %s\n", c->tls_ca);
    if (rc == PX_OK && c->tls_cert[0] != 0)
        rc = px_buf_printf(&b, "tls_cert = %s\ntls_key = %s\n", c->tls_cert, c->tls_key);
    path_in(c, INI_NAME, path, sizeof path);
    if (rc == PX_OK)
        rc = devfile_write_atomic(path, b.data, b.len, 0600, e);
    px_buf_free(&b);
    return rc;
}

int pos_init(const pos_config *c, px_error *e)
{
    static const char *const names[] = {INI_NAME, "state", "device.secret", "pinpad.keys"};
    char path[PX_PATH_MAX + 16], secret[PX_PATH_MAX + 16];
    pos_state *st;
    pinpad *pp = NULL;
    int rc = pos_config_check(c, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof names / sizeof names[0]; i++) {
        path_in(c, names[i], path, sizeof path);
        if (devfile_exists(path))
            rc = px_error_set(e, PX_EEXIST, "%s: a terminal is already there", path);
    }
    if (rc == PX_OK)
        rc = devfile_mkdirs(c->data_dir, 0700, e);
    path_in(c, "device.secret", secret, sizeof secret);
    if (rc == PX_OK)
        rc = pinpad_secret_create(secret, e);
    path_in(c, "pinpad.keys", path, sizeof path);
    if (rc == PX_OK)
        rc = pinpad_create(path, secret, c->serial, &pp, e);
    pinpad_close(pp);
    if (rc != PX_OK)
        return rc;
    st = malloc(sizeof *st);
    if (st == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    pos_state_fresh(st);
    px_buf b;
    px_buf_init(&b, PX_POS_STATE_FILE_MAX);
    rc = pos_state_encode(st, &b);
    path_in(c, "state", path, sizeof path);
    if (rc == PX_OK)
        rc = devfile_write_atomic(path, b.data, b.len, 0600, e);
    px_buf_free(&b);
    free(st);
    return rc == PX_OK ? write_ini(c, e) : rc;
}

/* One process at a time drives a terminal: an exclusive flock on DIR/lock, waited for up
 * to 5 s (a CLI command in flight), held until pos_close. */
static int lock_terminal(pos_terminal *t, px_error *e)
{
    char path[PX_PATH_MAX + 16];
    path_in(&t->cfg, "lock", path, sizeof path);
    t->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (t->lock_fd < 0)
        return px_error_set(e, PX_EIO, "%s: cannot open: %s", path, strerror(errno));
    for (int i = 0; i < 50; i++) {
        if (flock(t->lock_fd, LOCK_EX | LOCK_NB) == 0)
            return PX_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        usleep(100 * 1000);
    }
    return px_error_set(e, PX_ESTATE, "%s: the terminal is in use by another process",
                        t->cfg.data_dir);
}

static int tls_setup(pos_terminal *t, px_error *e)
{
    net_tls_config tc;
    SSL_CTX *ctx = NULL;
    int rc;
    if (t->cfg.tls_ca[0] == 0)
        return PX_OK;
    memset(&tc, 0, sizeof tc);
    px_strlcpy(tc.ca, t->cfg.tls_ca, sizeof tc.ca);
    px_strlcpy(tc.cert, t->cfg.tls_cert, sizeof tc.cert);
    px_strlcpy(tc.key, t->cfg.tls_key, sizeof tc.key);
    rc = net_tls_client_ctx(&tc, &ctx, e);
    t->tls = ctx;
    return rc;
}

int pos_open(const pos_config *c, pos_terminal **out, px_error *e)
{
    char keys[PX_PATH_MAX + 16], secret[PX_PATH_MAX + 16];
    pos_terminal *t;
    int rc = pos_config_check(c, e);
    if (rc != PX_OK)
        return rc;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    t->cfg = *c;
    t->lock_fd = -1;
    path_in(c, "state", t->state_path, sizeof t->state_path);
    path_in(c, "pinpad.keys", keys, sizeof keys);
    path_in(c, "device.secret", secret, sizeof secret);
    rc = lock_terminal(t, e);
    if (rc == PX_OK)
        rc = pinpad_open(keys, secret, c->serial, &t->pp, e);
    if (rc == PX_OK)
        rc = pos_state_load(t, e);
    if (rc == PX_OK)
        rc = tls_setup(t, e);
    if (rc != PX_OK) {
        pos_close(t);
        return rc;
    }
    if (!pinpad_has_key(t->pp, PINPAD_MAK))
        t->st.signed_on = 0; /* keys gone (wiped, or a new TMK): a sign-on must come first */
    *out = t;
    return PX_OK;
}

void pos_close(pos_terminal *t)
{
    if (t == NULL)
        return;
    pos_msg_end(t, PX_OK);
    net_tls_ctx_free((SSL_CTX *)t->tls);
    pinpad_close(t->pp);
    if (t->lock_fd >= 0)
        close(t->lock_fd); /* releases the flock */
    memset(&t->st, 0, sizeof t->st);
    free(t);
}

pinpad *pos_pinpad(pos_terminal *t)
{
    return t->pp;
}

const pos_config *pos_get_config(const pos_terminal *t)
{
    return &t->cfg;
}

void pos_status_get(const pos_terminal *t, pos_status *out)
{
    const pos_reversal *r = &t->st.rev;
    memset(out, 0, sizeof *out);
    out->stan = t->st.stan;
    out->batch = t->st.batch;
    out->signed_on = t->st.signed_on;
    out->update_waiting = t->st.update_waiting;
    out->last_proc_req = t->st.last_proc_req;
    out->reversal_pending = r->pending;
    if (r->pending) {
        px_strlcpy(out->reversal_stan, r->stan, sizeof out->reversal_stan);
        px_strlcpy(out->reversal_reason, r->reason, sizeof out->reversal_reason);
        if (r->amount[0] != 0)
            px_parse_i64(r->amount, 0, POS_AMOUNT_MAX, &out->reversal_amount_minor);
        out->reversal_sends = r->sends;
    }
    out->batch_count = t->st.ntxn;
    for (size_t i = 0; i < t->st.ntxn; i++) {
        if (t->st.txn[i].kind == 'V') {
            out->credit_count++;
            out->credit_minor += t->st.txn[i].amount_minor;
        } else {
            out->debit_count++;
            out->debit_minor += t->st.txn[i].amount_minor;
        }
    }
    for (int s = 0; s < PINPAD_SLOTS; s++)
        pinpad_key_info_get(t->pp, (pinpad_slot)s, &out->keys[s]);
}

int pos_batch_get(const pos_terminal *t, size_t i, pos_batch_entry *out)
{
    const pos_txn *x;
    if (i >= t->st.ntxn)
        return PX_ENOTFOUND;
    x = &t->st.txn[i];
    memset(out, 0, sizeof *out);
    out->kind = x->kind;
    memcpy(out->stan, x->stan, sizeof out->stan);
    memcpy(out->rrn, x->rrn, sizeof out->rrn);
    memcpy(out->auth_code, x->auth, sizeof out->auth_code);
    memcpy(out->proc, x->proc, sizeof out->proc);
    out->amount_minor = x->amount_minor;
    memcpy(out->pan_masked, x->pan_masked, sizeof out->pan_masked);
    out->voided = x->voided;
    return PX_OK;
}
