/* dialect.c: looking up, describing and checking dialects (the tables live beside this). */
#include "iso8583/iso8583.h"
#include "iso8583/iso8583_int.h"

#include <stdio.h>
#include <string.h>

static const iso8583_dialect *const builtin[] = {&iso8583_unionpay_pos, &iso8583_1987_ascii};

const iso8583_dialect *iso8583_dialect_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    return NULL;
}

const iso8583_field_spec *iso8583_field_spec_of(const iso8583_dialect *d, int f)
{
    if (d == NULL || f < 2 || f > d->max_field || f > PX_ISO_FIELDS)
        return NULL;
    if (d->fields[f].type == ISO8583_T_UNDEF)
        return NULL;
    return &d->fields[f];
}

void iso8583_spec_format(const iso8583_field_spec *s, char *out, size_t outsz)
{
    static const char *const types[] = {"?", "n", "an", "ans", "b", "z", "x+n"};
    static const char *const dots[] = {"", "..", "..."};
    unsigned len = s->max_len;
    if (outsz == 0)
        return;
    if (s->type == ISO8583_T_XN && len > 0)
        len--; /* x+n8: the sign is not counted */
    snprintf(out, outsz, "%s%s%u", types[s->type < 7 ? s->type : 0],
             dots[s->len_kind < 3 ? s->len_kind : 0], len);
}

static int check_framing(const iso8583_dialect *d, px_error *e)
{
    if (d->name == NULL || d->fields == NULL)
        return px_error_set(e, PX_ECONFIG, "dialect: needs a name and a field table");
    if (d->tpdu_len > PX_ISO_TPDU_MAX || d->header_len > PX_ISO_HEADER_MAX)
        return px_error_set(e, PX_ECONFIG, "dialect %s: TPDU or header too long", d->name);
    if (d->frame_len_bytes > 4)
        return px_error_set(e, PX_ECONFIG, "dialect %s: frame length over 4 bytes", d->name);
    if (d->mti_enc != ISO8583_ENC_BCD && d->mti_enc != ISO8583_ENC_ASCII)
        return px_error_set(e, PX_ECONFIG, "dialect %s: MTI must be BCD or ASCII", d->name);
    if (d->bitmap_enc != ISO8583_ENC_BINARY && d->bitmap_enc != ISO8583_ENC_ASCII)
        return px_error_set(e, PX_ECONFIG, "dialect %s: bitmap must be binary or ASCII hex",
                            d->name);
    if (d->max_field != 64 && d->max_field != 128)
        return px_error_set(e, PX_ECONFIG, "dialect %s: max_field must be 64 or 128", d->name);
    return PX_OK;
}

/* The rules every field spec obeys; the codec relies on them (no bounds re-checked). */
static const char *check_field(const iso8583_field_spec *s)
{
    int bcd = s->data_enc == ISO8583_ENC_BCD;
    if (s->name == NULL || s->type > ISO8583_T_XN)
        return "needs a name and a known type";
    if (s->len_kind > ISO8583_LLLVAR || s->len_enc > ISO8583_ENC_BINARY ||
        s->data_enc > ISO8583_ENC_BINARY || s->align > ISO8583_ALIGN_LEFT)
        return "unknown length kind or encoding";
    if (s->max_len == 0 || s->max_len > PX_ISO_FIELD_MAX)
        return "length must be 1-999";
    if (s->len_kind == ISO8583_LLVAR && s->max_len > 99)
        return "LLVAR maximum over 99";
    if (bcd && s->type != ISO8583_T_N && s->type != ISO8583_T_Z)
        return "BCD is only for n and z";
    if ((s->type == ISO8583_T_B) != (s->data_enc == ISO8583_ENC_BINARY))
        return "binary encoding is for b fields, and b fields are binary";
    if (s->pad != 0x0 && s->pad != 0xF)
        return "pad nibble must be 0 or F";
    if (s->type == ISO8583_T_XN && (s->len_kind != ISO8583_FIXED || s->max_len < 2))
        return "x+n must be fixed, sign plus digits";
    if (s->sens > ISO8583_SENS_KEY)
        return "unknown sensitivity";
    return NULL;
}

int iso8583_dialect_check(const iso8583_dialect *d, px_error *e)
{
    int rc = check_framing(d, e);
    if (rc != PX_OK)
        return rc;
    if (d->fields[0].type != ISO8583_T_UNDEF || d->fields[1].type != ISO8583_T_UNDEF)
        return px_error_set(e, PX_ECONFIG, "dialect %s: fields 0 and 1 are framing, not data",
                            d->name);
    for (int f = 2; f <= PX_ISO_FIELDS; f++) {
        const iso8583_field_spec *s = &d->fields[f];
        const char *why;
        if (s->type == ISO8583_T_UNDEF)
            continue;
        if (f > d->max_field)
            return px_error_set(e, PX_ECONFIG, "dialect %s: field %d: beyond max_field %u", d->name,
                                f, (unsigned)d->max_field);
        if ((why = check_field(s)) != NULL)
            return px_error_set(e, PX_ECONFIG, "dialect %s: field %d: %s", d->name, f, why);
    }
    return PX_OK;
}
