/*
 * lmk_pkcs11.c: the PKCS#11 LMK backend. The LMK is an AES-256 secret key object in a
 * token, generated there with CKA_SENSITIVE = TRUE and CKA_EXTRACTABLE = FALSE, usable only
 * for CKM_AES_CMAC signing. The hsm asks the token for CMACs to derive its working keys
 * (hsm_lmk_derive_keys); the LMK value itself never leaves the token. The module is
 * dlopen()ed; the session lives only as long as hsm_open or hsm_lmk_init needs it.
 */
#include "hsm/hsm_int.h"
#include "lib/str.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#define SLOTS_MAX 64

typedef struct p11 {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE lmk;
    int initialized; /* we called C_Initialize (so we finalize) */
    int session;
} p11;

/* A short, secret-free name for a PKCS#11 return value. */
static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT: return "wrong PIN (CKR_PIN_INCORRECT)";
    case CKR_PIN_LOCKED: return "PIN locked (CKR_PIN_LOCKED)";
    case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_KEY_UNEXTRACTABLE: return "CKR_KEY_UNEXTRACTABLE";
    case CKR_MECHANISM_INVALID: return "mechanism not supported (CKR_MECHANISM_INVALID)";
    case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_TOKEN_NOT_PRESENT: return "token not present";
    default: return "PKCS#11 error";
    }
}

static int p11_fail(px_error *e, int code, const char *what, CK_RV rv)
{
    return px_error_set(e, code, "pkcs11: %s: %s (0x%lx)", what, rv_name(rv), (unsigned long)rv);
}

static void p11_close(void *ctx)
{
    p11 *p = ctx;
    if (p == NULL)
        return;
    if (p->session)
        p->f->C_CloseSession(p->s);
    if (p->initialized)
        p->f->C_Finalize(NULL);
    if (p->dl != NULL)
        dlclose(p->dl);
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

/* Load the module and initialise it (tolerating another user in this process). */
static int p11_load(const char *module, p11 *p, px_error *e)
{
    CK_C_GetFunctionList gfl = NULL;
    CK_C_INITIALIZE_ARGS ia;
    CK_RV rv;
    p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL)
        return px_error_set(e, PX_ECONFIG, "pkcs11: cannot load module %s", module);
    void *sym = dlsym(p->dl, "C_GetFunctionList");
    if (sym != NULL)
        memcpy(&gfl, &sym, sizeof gfl); /* POSIX: a data pointer that holds a function */
    if (sym == NULL || gfl(&p->f) != CKR_OK || p->f == NULL)
        return px_error_set(e, PX_ECONFIG, "pkcs11: %s is not a PKCS#11 module", module);
    memset(&ia, 0, sizeof ia);
    ia.flags = CKF_OS_LOCKING_OK;
    rv = p->f->C_Initialize(&ia);
    if (rv == CKR_OK)
        p->initialized = 1;
    else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return p11_fail(e, PX_EIO, "C_Initialize", rv);
    return PX_OK;
}

/* Find the slot whose token label is label (CK_TOKEN_INFO pads it with blanks). */
static int p11_find_slot(p11 *p, const char *label, CK_SLOT_ID *slot, px_error *e)
{
    CK_SLOT_ID slots[SLOTS_MAX];
    CK_ULONG n = SLOTS_MAX;
    CK_RV rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
    size_t ll = strlen(label);
    if (rv != CKR_OK)
        return p11_fail(e, PX_EIO, "C_GetSlotList", rv);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        size_t tl = sizeof ti.label;
        while (tl > 0 && ti.label[tl - 1] == ' ')
            tl--;
        if (tl == ll && memcmp(ti.label, label, ll) == 0) {
            *slot = slots[i];
            return PX_OK;
        }
    }
    return px_error_set(e, PX_ENOTFOUND, "pkcs11: no token labelled '%s'", label);
}

/* Open a read-write session on the token and log in as user. */
static int p11_login(const hsm_config *cfg, p11 *p, px_error *e)
{
    char pin[PX_HSM_SECRET_MAX];
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    int rc = p11_find_slot(p, cfg->pkcs11_token_label, &slot, e);
    if (rc != PX_OK)
        return rc;
    rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->s);
    if (rv != CKR_OK)
        return p11_fail(e, PX_EIO, "C_OpenSession", rv);
    p->session = 1;
    if ((rc = hsm_secret_get(cfg, HSM_ENV_PKCS11_PIN, "Token user PIN: ", pin, sizeof pin, e)) !=
        PX_OK)
        return rc;
    rv = p->f->C_Login(p->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
    OPENSSL_cleanse(pin, sizeof pin);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        return p11_fail(e, rv == CKR_PIN_INCORRECT ? PX_EAUTH : PX_EIO, "C_Login", rv);
    return PX_OK;
}

/* Handles of secret keys labelled label: *n of them (at most 2 looked for). */
static int p11_find_keys(p11 *p, const char *label, CK_OBJECT_HANDLE found[2], CK_ULONG *n,
                         px_error *e)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &cls, sizeof cls},
                          {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    CK_RV rv = p->f->C_FindObjectsInit(p->s, tpl, 2);
    if (rv != CKR_OK)
        return p11_fail(e, PX_EIO, "C_FindObjectsInit", rv);
    rv = p->f->C_FindObjects(p->s, found, 2, n);
    p->f->C_FindObjectsFinal(p->s);
    return rv == CKR_OK ? PX_OK : p11_fail(e, PX_EIO, "C_FindObjects", rv);
}

/* Refuse a token key that could leave the token or is not an AES-256 CMAC key. */
static int p11_check_lmk(p11 *p, const char *label, px_error *e)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG len = 0;
    CK_BBOOL sens = CK_FALSE, extr = CK_TRUE, never = CK_FALSE, sign = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_VALUE_LEN, &len, sizeof len},
                        {CKA_SENSITIVE, &sens, sizeof sens},
                        {CKA_EXTRACTABLE, &extr, sizeof extr},
                        {CKA_NEVER_EXTRACTABLE, &never, sizeof never},
                        {CKA_SIGN, &sign, sizeof sign}};
    CK_RV rv = p->f->C_GetAttributeValue(p->s, p->lmk, a, sizeof a / sizeof a[0]);
    if (rv != CKR_OK)
        return p11_fail(e, PX_EIO, "C_GetAttributeValue(LMK attributes)", rv);
    if (kt != CKK_AES || len != HSM_LMK_LEN || !sign)
        return px_error_set(e, PX_EPERM, "pkcs11: key '%s' is not an AES-256 signing (CMAC) key",
                            label);
    if (!sens || extr || !never)
        return px_error_set(e, PX_EPERM,
                            "pkcs11: key '%s' is extractable or not sensitive: refused as LMK",
                            label);
    return PX_OK;
}

static int p11_cmac(void *ctx, const uint8_t *msg, size_t n, uint8_t out[16], px_error *e)
{
    p11 *p = ctx;
    CK_MECHANISM m = {CKM_AES_CMAC, NULL, 0};
    CK_ULONG ol = 16;
    CK_RV rv = p->f->C_SignInit(p->s, &m, p->lmk);
    if (rv != CKR_OK)
        return p11_fail(e, PX_ECRYPTO, "C_SignInit(CKM_AES_CMAC)", rv);
    rv = p->f->C_Sign(p->s, (CK_BYTE_PTR)msg, (CK_ULONG)n, out, &ol);
    if (rv != CKR_OK || ol != 16)
        return p11_fail(e, PX_ECRYPTO, "C_Sign(CKM_AES_CMAC)", rv);
    return PX_OK;
}

/* Load, log in; *out is the context (closed by the caller on failure too). */
static int p11_start(const hsm_config *cfg, p11 **out, px_error *e)
{
    p11 *p = calloc(1, sizeof *p);
    int rc;
    *out = p;
    if (p == NULL)
        return px_error_set(e, PX_ENOMEM, "pkcs11: out of memory");
    if ((rc = p11_load(cfg->pkcs11_module, p, e)) != PX_OK)
        return rc;
    return p11_login(cfg, p, e);
}

int hsm_lmk_pkcs11_open(const hsm_config *cfg, hsm_lmk *out, px_error *e)
{
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    p11 *p = NULL;
    int rc = p11_start(cfg, &p, e);
    if (rc == PX_OK && (rc = p11_find_keys(p, cfg->pkcs11_key_label, found, &n, e)) == PX_OK) {
        if (n != 1)
            rc = px_error_set(e, n == 0 ? PX_ENOTFOUND : PX_ECONFLICT,
                              "pkcs11: %s key labelled '%s' in token '%s'%s",
                              n == 0 ? "no" : "more than one", cfg->pkcs11_key_label,
                              cfg->pkcs11_token_label, n == 0 ? "; run 'possum hsm init'" : "");
        else {
            p->lmk = found[0];
            rc = p11_check_lmk(p, cfg->pkcs11_key_label, e);
        }
    }
    if (rc != PX_OK) {
        p11_close(p);
        return rc;
    }
    out->cmac = p11_cmac;
    out->close = p11_close;
    out->ctx = p;
    return PX_OK;
}

int hsm_lmk_pkcs11_create(const hsm_config *cfg, hsm_lmk *out, px_error *e)
{
    CK_OBJECT_HANDLE found[2], k;
    CK_ULONG n = 0, len = HSM_LMK_LEN;
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    const char *label = cfg->pkcs11_key_label;
    CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &cls, sizeof cls},
                          {CKA_KEY_TYPE, &kt, sizeof kt},
                          {CKA_VALUE_LEN, &len, sizeof len},
                          {CKA_TOKEN, &t, 1},
                          {CKA_PRIVATE, &t, 1},
                          {CKA_SENSITIVE, &t, 1},
                          {CKA_EXTRACTABLE, &f, 1},
                          {CKA_SIGN, &t, 1},
                          {CKA_VERIFY, &t, 1},
                          {CKA_ENCRYPT, &f, 1},
                          {CKA_DECRYPT, &f, 1},
                          {CKA_WRAP, &f, 1},
                          {CKA_UNWRAP, &f, 1},
                          {CKA_DERIVE, &f, 1},
                          {CKA_MODIFIABLE, &f, 1},
                          {CKA_COPYABLE, &f, 1},
                          {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    p11 *p = NULL;
    int rc = p11_start(cfg, &p, e);
    if (rc == PX_OK && (rc = p11_find_keys(p, label, found, &n, e)) == PX_OK && n > 0)
        rc = px_error_set(e, PX_EEXIST,
                          "pkcs11: token '%s' already holds a key labelled '%s' "
                          "(an LMK is never overwritten)",
                          cfg->pkcs11_token_label, label);
    if (rc == PX_OK) {
        CK_RV rv = p->f->C_GenerateKey(p->s, &m, tpl, sizeof tpl / sizeof tpl[0], &k);
        if (rv != CKR_OK)
            rc = p11_fail(e, PX_EIO, "C_GenerateKey(CKM_AES_KEY_GEN)", rv);
    }
    if (rc == PX_OK) {
        p->lmk = k;
        rc = p11_check_lmk(p, label, e);
    }
    if (rc != PX_OK) {
        p11_close(p);
        return rc;
    }
    out->cmac = p11_cmac;
    out->close = p11_close;
    out->ctx = p;
    return PX_OK;
}
