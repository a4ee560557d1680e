/*
 * audit.c: the HSM's append-only audit log (docs/hsm.md, "Audit log").
 *
 * One JSON object per line:
 *   {"seq":N,"ts":"...","op":"...","caller":"...","label":"...","kcv":"...","result":"...",
 *    "count":N,"detail":"...","prev":"<hash of line N-1>","mac":"<HMAC>","hash":"<SHA-256>"}
 * mac  = HMAC-SHA-256(audit key from the LMK, the line up to and including prev's value)
 * hash = SHA-256(the line up to and including mac's value); line 1 has prev = 64 zeros.
 * Beside the log, "<file>.head" holds the last seq, hash and an HMAC over both, so cutting
 * entries off the end is detected. Entries are chained at write time under flock, so
 * several processes can share one log. Nothing in an entry is secret.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define TAIL_LEN 148   /* ,"mac":"<64>","hash":"<64>"} */
#define HASHED_CUT 75  /* chars after the part the hash covers: ,"hash":"<64>"} */
#define PREV_LEN 74    /* ,"prev":"<64>" */
#define DETAIL_MAX 300 /* characters of detail kept */

static const char zero_hash[HSM_SHA256_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Append s to b as JSON string content (quotes and backslashes escaped, controls \u00XX). */
static int json_append(px_buf *b, const char *s, size_t max)
{
    int rc = PX_OK;
    for (size_t i = 0; s != NULL && s[i] != 0 && i < max && rc == PX_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            rc = px_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            rc = px_buf_printf(b, "\\u%04x", c);
        else
            rc = px_buf_append_byte(b, c);
    }
    return rc;
}

int hsm_audit_open(hsm_audit *a, const char *path, const uint8_t key[HSM_AUDIT_KEY_LEN],
                   px_error *e)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    if (px_strlcpy(a->path, path, sizeof a->path) != PX_OK ||
        (size_t)snprintf(a->head_path, sizeof a->head_path, "%s.head", path) >= sizeof a->head_path)
        return px_error_set(e, PX_ETOOBIG, "audit_file: path too long");
    memcpy(a->key, key, HSM_AUDIT_KEY_LEN);
    px_buf_init(&a->pending, PX_HSM_AUDIT_PENDING_MAX);
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        int err = errno;
        OPENSSL_cleanse(a->key, sizeof a->key);
        return px_error_set(e, PX_EIO, "audit log %s: cannot open (%s)", path, strerror(err));
    }
    return PX_OK;
}

void hsm_audit_close(hsm_audit *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    px_buf_free(&a->pending);
    OPENSSL_cleanse(a->key, sizeof a->key);
}

int hsm_audit_add(hsm_audit *a, const char *caller, const hsm_audit_entry *en,
                  hsm_audit_level level, px_error *e)
{
    char ts[32];
    size_t mark = a->pending.len;
    int rc;
    if (a->pending.len + PX_HSM_AUDIT_LINE_MAX > a->pending.max &&
        (rc = hsm_audit_write(a, 0, e)) != PX_OK)
        return rc;
    mark = a->pending.len;
    px_time_iso8601(px_now_ms(), ts, sizeof ts);
    rc = px_buf_printf(&a->pending, "\"ts\":\"%s\",\"op\":\"%s\",\"caller\":\"", ts, en->op);
    rc = rc ? rc : json_append(&a->pending, caller, PX_HSM_CALLER_MAX);
    rc = rc ? rc : px_buf_append_str(&a->pending, "\",\"label\":\"");
    rc = rc ? rc : json_append(&a->pending, en->label, PX_HSM_LABEL_MAX);
    rc = rc ? rc : px_buf_append_str(&a->pending, "\",\"kcv\":\"");
    rc = rc ? rc : json_append(&a->pending, en->kcv, PX_HSM_KCV_HEX_MAX);
    rc = rc ? rc
            : px_buf_printf(&a->pending, "\",\"result\":\"%s\",\"count\":%llu,\"detail\":\"",
                            en->result, (unsigned long long)en->count);
    rc = rc ? rc : json_append(&a->pending, en->detail, DETAIL_MAX);
    rc = rc ? rc : px_buf_append_str(&a->pending, "\"\n");
    if (rc != PX_OK) {
        a->pending.len = mark;
        return px_error_set(e, rc, "audit log: entry too large");
    }
    return level == HSM_AUDIT_QUEUE ? PX_OK : hsm_audit_write(a, level == HSM_AUDIT_SYNC, e);
}

static void sha256_hex(const void *p, size_t n, char out[HSM_SHA256_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    px_hex_encode(md, sizeof md, out);
}

static void hmac_hex(const uint8_t key[HSM_AUDIT_KEY_LEN], const void *p, size_t n,
                     char out[HSM_SHA256_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, HSM_AUDIT_KEY_LEN, p, n, md, &len);
    px_hex_encode(md, sizeof md, out);
}

/* Split a complete line (no newline) into seq, prev, mac and hash; PX_EFORMAT if it is
 * not shaped like an entry. */
static int line_fields(const char *l, size_t n, unsigned long long *seq, const char **prev,
                       const char **mac, const char **hash)
{
    char *end = NULL;
    if (n < TAIL_LEN + PREV_LEN + 10 || strncmp(l, "{\"seq\":", 7) != 0 || l[7] < '1' || l[7] > '9')
        return PX_EFORMAT;
    *seq = strtoull(l + 7, &end, 10);
    if (end == NULL || *end != ',' || end > l + 27)
        return PX_EFORMAT;
    const char *t = l + n - TAIL_LEN, *pv = t - PREV_LEN;
    if (strncmp(pv, ",\"prev\":\"", 9) != 0 || pv[73] != '"' || strncmp(t, ",\"mac\":\"", 8) != 0 ||
        strncmp(t + 72, "\",\"hash\":\"", 10) != 0 || strncmp(t + 146, "\"}", 2) != 0 ||
        !px_hex_is_valid(pv + 9, 64) || !px_hex_is_valid(t + 8, 64) || !px_hex_is_valid(t + 82, 64))
        return PX_EFORMAT;
    *prev = pv + 9;
    *mac = t + 8;
    *hash = t + 82;
    return PX_OK;
}

/* The last entry's seq and hash (seq 0 and zeros for an empty log). */
static int read_tail(hsm_audit *a, off_t size, unsigned long long *seq,
                     char hash[HSM_SHA256_HEX + 1], px_error *e)
{
    char buf[PX_HSM_AUDIT_LINE_MAX + 1];
    size_t want = size < (off_t)sizeof buf ? (size_t)size : sizeof buf, start;
    const char *prev, *mac, *h;
    *seq = 0;
    memcpy(hash, zero_hash, sizeof zero_hash);
    if (size == 0)
        return PX_OK;
    if (pread(a->fd, buf, want, size - (off_t)want) != (ssize_t)want || buf[want - 1] != '\n')
        return px_error_set(e, PX_EIO,
                            "audit log %s: last line is incomplete; run 'possum hsm audit verify'",
                            a->path);
    for (start = want - 1; start > 0 && buf[start - 1] != '\n'; start--)
        ;
    if ((start == 0 && want == sizeof buf && size > (off_t)want) ||
        line_fields(buf + start, want - 1 - start, seq, &prev, &mac, &h) != PX_OK)
        return px_error_set(e, PX_EIO,
                            "audit log %s: last line is damaged; run 'possum hsm audit verify'",
                            a->path);
    memcpy(hash, h, HSM_SHA256_HEX);
    hash[HSM_SHA256_HEX] = 0;
    return PX_OK;
}

/* Chain the pending bodies after (seq, hash) into out; updates seq and hash. */
static int chain_pending(hsm_audit *a, unsigned long long *seq, char hash[HSM_SHA256_HEX + 1],
                         px_buf *out)
{
    const char *p = (const char *)a->pending.data, *end = p + a->pending.len;
    char mac[HSM_SHA256_HEX + 1];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t start = out->len;
        int rc = px_buf_printf(out, "{\"seq\":%llu,%.*s,\"prev\":\"%s\"", *seq + 1, (int)(nl - p),
                               p, hash);
        if (rc != PX_OK)
            return rc;
        hmac_hex(a->key, out->data + start, out->len - start, mac);
        if ((rc = px_buf_printf(out, ",\"mac\":\"%s\"", mac)) != PX_OK)
            return rc;
        sha256_hex(out->data + start, out->len - start, hash);
        if ((rc = px_buf_printf(out, ",\"hash\":\"%s\"}\n", hash)) != PX_OK)
            return rc;
        (*seq)++;
        p = nl + 1;
    }
    return PX_OK;
}

/* Replace the head anchor with (seq, hash), atomically; fsync when sync. */
static int write_head(hsm_audit *a, unsigned long long seq, const char *hash, int sync)
{
    char tmp[PX_PATH_MAX + 8], body[256], anchor[256], mac[HSM_SHA256_HEX + 1];
    int fd, n, ok;
    snprintf(tmp, sizeof tmp, "%s.tmp", a->head_path);
    n = snprintf(anchor, sizeof anchor, "possum.audit.head|%llu|%s", seq, hash);
    hmac_hex(a->key, anchor, (size_t)n, mac);
    n = snprintf(body, sizeof body, "{\"seq\":%llu,\"hash\":\"%s\",\"mac\":\"%s\"}\n", seq, hash,
                 mac);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return PX_EIO;
    ok = write(fd, body, (size_t)n) == n && (!sync || fsync(fd) == 0);
    close(fd);
    return ok && rename(tmp, a->head_path) == 0 ? PX_OK : PX_EIO;
}

/* Write all of b to fd (O_APPEND). */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PX_EIO;
        p += w;
        n -= (size_t)w;
    }
    return PX_OK;
}

int hsm_audit_write(hsm_audit *a, int sync, px_error *e)
{
    char hash[HSM_SHA256_HEX + 1];
    unsigned long long seq = 0;
    struct stat st;
    px_buf out;
    int rc;
    if (a->pending.len == 0 && !sync)
        return PX_OK;
    if (a->fd < 0 || flock(a->fd, LOCK_EX) != 0) {
        a->broken = 1;
        return px_error_set(e, PX_EIO, "audit log %s: cannot lock", a->path);
    }
    px_buf_init(&out, 4 * PX_HSM_AUDIT_PENDING_MAX);
    rc = fstat(a->fd, &st) == 0 ? read_tail(a, st.st_size, &seq, hash, e)
                                : px_error_set(e, PX_EIO, "audit log %s: cannot stat", a->path);
    if (rc == PX_OK && (rc = chain_pending(a, &seq, hash, &out)) != PX_OK)
        px_error_set(e, rc, "audit log %s: out of memory", a->path);
    if (rc == PX_OK && (write_all(a->fd, out.data, out.len) != PX_OK ||
                        (sync && fsync(a->fd) != 0) || write_head(a, seq, hash, sync) != PX_OK))
        rc = px_error_set(e, PX_EIO, "audit log %s: write failed (%s)", a->path, strerror(errno));
    flock(a->fd, LOCK_UN);
    px_buf_free(&out);
    a->broken = rc != PX_OK;
    if (rc == PX_OK)
        px_buf_reset(&a->pending);
    return rc;
}

/* ---- verification ---- */

typedef struct head_anchor {
    int present;
    unsigned long long seq;
    char hash[HSM_SHA256_HEX + 1];
} head_anchor;

/* Read "<file>.head" if there is one; with key, check its MAC. */
static int read_head(const char *path, const uint8_t *key, head_anchor *hd, px_error *e)
{
    char hp[PX_PATH_MAX + 8], buf[512], mac[HSM_SHA256_HEX + 1], anchor[256],
        want[HSM_SHA256_HEX + 1];
    FILE *f;
    int n;
    memset(hd, 0, sizeof *hd);
    snprintf(hp, sizeof hp, "%s.head", path);
    if ((f = fopen(hp, "r")) == NULL)
        return errno == ENOENT ? PX_OK : px_error_set(e, PX_EIO, "%s: cannot open", hp);
    n = fgets(buf, sizeof buf, f) != NULL &&
        sscanf(buf, "{\"seq\":%llu,\"hash\":\"%64[0-9A-F]\",\"mac\":\"%64[0-9A-F]\"}", &hd->seq,
               hd->hash, mac) == 3;
    fclose(f);
    if (!n || strlen(hd->hash) != HSM_SHA256_HEX || strlen(mac) != HSM_SHA256_HEX)
        return px_error_set(e, PX_EAUTH, "%s: damaged head anchor", hp);
    if (key != NULL) {
        n = snprintf(anchor, sizeof anchor, "possum.audit.head|%llu|%s", hd->seq, hd->hash);
        hmac_hex(key, anchor, (size_t)n, want);
        if (!px_ct_equal(want, mac, HSM_SHA256_HEX))
            return px_error_set(e, PX_EAUTH, "%s: head anchor MAC does not verify (forged)", hp);
    }
    hd->present = 1;
    return PX_OK;
}

/* Check one complete line (no newline) as entry number no after prev. */
static int verify_line(const char *l, size_t n, size_t no, const uint8_t *key,
                       char prev[HSM_SHA256_HEX + 1], px_error *e)
{
    char want[HSM_SHA256_HEX + 1];
    const char *pv, *mac, *hash;
    unsigned long long seq = 0;
    if (line_fields(l, n, &seq, &pv, &mac, &hash) != PX_OK)
        return px_error_set(e, PX_EAUTH, "line %zu: not an audit entry (damaged or edited)", no);
    sha256_hex(l, n - HASHED_CUT, want);
    if (!px_ct_equal(want, hash, HSM_SHA256_HEX))
        return px_error_set(e, PX_EAUTH, "line %zu: hash does not match its content (entry edited)",
                            no);
    if (seq != no)
        return px_error_set(e, PX_EAUTH,
                            "line %zu: seq %llu where %zu was expected (entries deleted, "
                            "inserted or reordered)",
                            no, seq, no);
    if (memcmp(pv, prev, HSM_SHA256_HEX) != 0)
        return px_error_set(e, PX_EAUTH,
                            "line %zu: prev is not the hash of line %zu (entries deleted or "
                            "reordered)",
                            no, no - 1);
    if (key != NULL) {
        hmac_hex(key, l, (size_t)(mac - 8 - l), want);
        if (!px_ct_equal(want, mac, HSM_SHA256_HEX))
            return px_error_set(e, PX_EAUTH,
                                "line %zu: MAC does not verify (entry forged or rewritten)", no);
    }
    memcpy(prev, hash, HSM_SHA256_HEX);
    return PX_OK;
}

/* Walk every line of f; *count receives the entries, *at_head the hash of entry hd->seq. */
static int verify_lines(FILE *f, const uint8_t *key, const head_anchor *hd, size_t *count,
                        char at_head[HSM_SHA256_HEX + 1], px_error *e)
{
    char line[PX_HSM_AUDIT_LINE_MAX + 2], prev[HSM_SHA256_HEX + 1];
    size_t no = 0;
    int rc = PX_OK;
    memcpy(prev, zero_hash, sizeof prev);
    while (rc == PX_OK && fgets(line, sizeof line, f) != NULL) {
        size_t n = strlen(line);
        no++;
        if (n == 0 || line[n - 1] != '\n')
            return px_error_set(e, PX_EAUTH, "line %zu: %s", no,
                                feof(f) ? "incomplete (log truncated)"
                                        : "longer than an entry can be");
        rc = verify_line(line, n - 1, no, key, prev, e);
        if (rc == PX_OK && hd->present && no == hd->seq)
            memcpy(at_head, prev, HSM_SHA256_HEX + 1);
    }
    *count = no;
    return rc;
}

/* Verify with the audit key (NULL: chain only). */
static int verify_file(const char *path, const uint8_t *key, size_t *entries, px_error *e)
{
    char at_head[HSM_SHA256_HEX + 1] = "";
    head_anchor hd;
    size_t count = 0;
    FILE *f;
    int rc = read_head(path, key, &hd, e);
    if (rc != PX_OK)
        return rc;
    if ((f = fopen(path, "r")) == NULL)
        return px_error_set(e, hd.present ? PX_EAUTH : PX_EIO, "audit log %s: cannot open (%s)%s",
                            path, strerror(errno),
                            hd.present ? " but its head anchor exists (log deleted?)" : "");
    flock(fileno(f), LOCK_SH);
    rc = verify_lines(f, key, &hd, &count, at_head, e);
    flock(fileno(f), LOCK_UN);
    fclose(f);
    if (rc != PX_OK)
        return rc;
    if (hd.present && count < hd.seq)
        return px_error_set(e, PX_EAUTH,
                            "audit log %s: %zu entries but the head anchor records %llu "
                            "(log truncated)",
                            path, count, hd.seq);
    if (hd.present && hd.seq > 0 && strcmp(at_head, hd.hash) != 0)
        return px_error_set(e, PX_EAUTH, "audit log %s: entry %llu differs from the head anchor",
                            path, hd.seq);
    *entries = count;
    return PX_OK;
}

int hsm_audit_verify(const char *path, const hsm_config *cfg, size_t *entries, px_error *e)
{
    hsm_lmk_keys lk;
    int rc;
    *entries = 0;
    if (cfg == NULL)
        return verify_file(path, NULL, entries, e);
    if ((rc = hsm_unlock_lmk(cfg, &lk, e)) != PX_OK)
        return rc;
    rc = verify_file(path, lk.audit_key, entries, e);
    OPENSSL_cleanse(&lk, sizeof lk);
    return rc;
}
