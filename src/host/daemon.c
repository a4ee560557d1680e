#include "host/service.h"
#include "lib/log.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

int px_daemon_announce(px_daemon *d, const char *what, const char *listen, int port)
{
    char host[256];
    int ignored;
    FILE *f;
    if (px_parse_hostport(listen, host, sizeof host, &ignored) != PX_OK)
        px_strlcpy(host, "?", sizeof host);
    px_info("possumd", "%s listening on %s:%d", what, host[0] ? host : "*", port);
    if (d->ports_file[0] == 0)
        return PX_OK;
    f = fopen(d->ports_file, "a");
    if (f == NULL)
        return PX_EIO;
    fprintf(f, "%s=%s:%d\n", what, host[0] ? host : "127.0.0.1", port);
    return fclose(f) == 0 ? PX_OK : PX_EIO;
}

int px_service_is_enabled(px_config *cfg, const char *section, int *enabled, px_error *e)
{
    const char *v = px_config_get(cfg, section, "enabled");
    *enabled = 0;
    if (v == NULL)
        return PX_OK;
    if (px_parse_bool(v, enabled) != PX_OK)
        return px_error_set(e, PX_ECONFIG, "%s:%d: [%s] enabled: expected true or false",
                            px_config_path(cfg), px_config_line(cfg, section, "enabled"), section);
    return PX_OK;
}
