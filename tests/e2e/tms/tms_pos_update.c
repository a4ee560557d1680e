/*
 * tms_pos_update.c: `possum pos update ...` as its own program (tmsclient_cli), for the e2e
 * tests and the demo until src/app/cmd_pos.c dispatches "update" to the same function.
 */
#include "device/tmsclient/tmsclient.h"

#include <string.h>

int main(int argc, char **argv)
{
    argv[0] = "update";
    return tmsclient_cli(argc, argv);
}
