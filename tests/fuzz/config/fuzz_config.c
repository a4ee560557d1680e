/* Fuzz the INI configuration loader and a typical schema binding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

typedef struct fz_cfg {
    int enabled;
    char listen[64];
    int64_t n;
    char name[32];
} fz_cfg;

static const px_config_field fz_fields[] = {
    PX_CFG_BOOL_(fz_cfg, enabled, "enabled", "false"),
    PX_CFG_ADDR(fz_cfg, listen, "listen", "127.0.0.1:0"),
    PX_CFG_INT_(fz_cfg, n, "n", 0, 1000, "1"),
    PX_CFG_STR(fz_cfg, name, "name", "x"),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    px_config *c = NULL;
    px_error e = {0};
    fz_cfg out;
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (px_config_load_string(text, "fuzz.ini", &c, &e) == 0) {
        for (size_t i = 0; px_config_section_at(c, i) != NULL; i++)
            (void)px_config_bind(c, px_config_section_at(c, i), fz_fields,
                                 sizeof fz_fields / sizeof fz_fields[0], &out, &e);
        (void)px_config_check_unused(c, NULL, &e);
        px_config_free(c);
    }
    free(text);
    return 0;
}
