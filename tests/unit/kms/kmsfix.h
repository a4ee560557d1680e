/*
 * kmsfix.h: fixtures for the KMS and MTMS tests: a CA, a KMS (soft LMK, SQLite, receiving
 * key certified by the CA) and PIN pads with device certificates, all in a private temp
 * dir. Everything is the real code: the PIN pad wraps with device/pinpad/tk.c.
 */
#ifndef PX_KMSFIX_H
#define PX_KMSFIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/pinpad/pinpad.h"
#include "device/pinpad/tk.h"
#include "host/kms/kms.h"
#include "pki/pki.h"

#define KF_PASSPHRASE "kms test passphrase"

typedef struct kf_kms {
    char dir[PX_PATH_MAX];
    char customer[PX_CUSTOMER_CODE_MAX];
    char recv_cert[PX_PATH_MAX]; /* dir/recv.crt */
    char *recv_pem;              /* its text */
    hsm_config hcfg;
    store *st;
    hsm *h;
    kms *k;
} kf_kms;

typedef struct kf {
    char dir[PX_PATH_MAX];
    char ca_dir[PX_PATH_MAX], ca_crt[PX_PATH_MAX], crl[PX_PATH_MAX];
    pki_ca *ca;
    kf_kms kms; /* customer C001 */
} kf;

/* CA + a KMS for customer C001. */
void kf_setup(kf *f, const char *name);
void kf_teardown(kf *f);

/* A KMS for customer in f->dir/kms-<customer> (LMK, store, receiving key and certificate). */
void kf_kms_make(kf *f, kf_kms *m, const char *customer);
void kf_kms_free(kf_kms *m);
/* Reopen m->k (after the CRL changed). */
void kf_kms_reopen(kf *f, kf_kms *m);

/* A personalised PIN pad in f->dir/pp-<serial>: device secret, key store, device key and
 * certificate from the CA, CA certificate. */
pinpad *kf_pinpad(kf *f, const char *serial);
/* The CA's current CRL text (malloc'd). */
char *kf_crl(const kf *f);
/* A TK envelope from p for m (tk_export). */
size_t kf_envelope(kf *f, pinpad *p, const kf_kms *m, uint8_t *out, size_t cap);

/* Full download from the PIN pad's side; returns the kms_download rc, loads the TMK. */
int kf_download(kf_kms *m, pinpad *p, px_error *e);

/* 1 if some file under dir holds the 16-byte key in binary or hex (either case). */
int kf_dir_has_key(const char *dir, const uint8_t key[16]);

#endif
