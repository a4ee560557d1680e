/*
 * tuf_host.c: the release-metadata code (device/tmsclient/tuf.c) built into the host side.
 * One implementation serves both halves, so the TMS signs and checks exactly what terminals
 * verify. Its natural home is a layer below host/ and device/ (crypto/); until it moves
 * there, the host library compiles it from here (docs/tms.md, "Layout").
 */
#include "device/tmsclient/tuf.c"
