#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"

typedef struct svc_cfg {
    int enabled;
    char listen[64];
    int64_t max_frame;
    int mode;
    char name[16];
} svc_cfg;

static const char *const modes[] = {"text", "json", NULL};

static const px_config_field svc_fields[] = {
    PX_CFG_BOOL_(svc_cfg, enabled, "enabled", "false"),
    PX_CFG_ADDR(svc_cfg, listen, "listen", "127.0.0.1:0"),
    PX_CFG_INT_(svc_cfg, max_frame, "max_frame", 16, 65535, "4096"),
    PX_CFG_ENUM_(svc_cfg, mode, "mode", modes, "text"),
    PX_CFG_STR_REQ(svc_cfg, name, "name"),
};
#define NFIELDS (sizeof svc_fields / sizeof svc_fields[0])

static int bind_text(const char *text, svc_cfg *out, px_error *e)
{
    px_config *c = NULL;
    int rc = px_config_load_string(text, "t.ini", &c, e);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof *out);
    rc = px_config_bind(c, "switch", svc_fields, NFIELDS, out, e);
    if (rc == 0)
        rc = px_config_check_unused(c, NULL, e);
    px_config_free(c);
    return rc;
}

static void test_binds_values_and_defaults(void **state)
{
    svc_cfg s;
    px_error e = {0};
    assert_int_equal(bind_text("[switch]\nenabled = yes\nname = hub\nmode = json\n", &s, &e), 0);
    assert_true(s.enabled);
    assert_string_equal(s.listen, "127.0.0.1:0");
    assert_int_equal(s.max_frame, 4096);
    assert_int_equal(s.mode, 1);
    assert_string_equal(s.name, "hub");
}

static void expect_error(const char *text, const char *msg)
{
    svc_cfg s;
    px_error e = {0};
    assert_int_not_equal(bind_text(text, &s, &e), 0);
    if (strstr(e.msg, msg) == NULL)
        fail_msg("expected '%s' in '%s'", msg, e.msg);
}

static void test_errors_name_file_line_key(void **state)
{
    expect_error("[switch]\nname = a\n\nmax_frame = 10\n",
                 "t.ini:4: [switch] max_frame: number out of range (16..65535)");
    expect_error("[switch]\nname = a\nmax_frame = 4k\n",
                 "t.ini:3: [switch] max_frame: expected a whole number");
    expect_error("[switch]\nname = a\nlisten = nowhere\n",
                 "t.ini:3: [switch] listen: expected host:port");
    expect_error("[switch]\nname = a\nmode = xml\n",
                 "t.ini:3: [switch] mode: 'xml' not one of the allowed values (text, json)");
    expect_error("[switch]\nenabled = maybe\nname = a\n",
                 "t.ini:2: [switch] enabled: expected true or false");
    expect_error("[switch]\nenabled = true\n", "t.ini: [switch] name: required but missing");
    expect_error("[switch]\nname = a\nlistne = 1:2\n", "t.ini:3: [switch] listne: unknown key");
    expect_error("[switch]\nname = a\nname = b\n",
                 "t.ini:3: [switch] name: set twice (first on line 2)");
    expect_error("[switch]\nname = 0123456789abcdefXYZ\n",
                 "t.ini:2: [switch] name: value too long");
    expect_error("[switch\nname = a\n", "t.ini:1: syntax error");
}

static void test_missing_file(void **state)
{
    px_config *c = NULL;
    px_error e = {0};
    assert_int_not_equal(px_config_load_file("/nonexistent/possum.ini", &c, &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent/possum.ini: cannot open"));
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binds_values_and_defaults),
        cmocka_unit_test(test_errors_name_file_line_key),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
