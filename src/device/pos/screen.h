/*
 * screen.h: the POS simulator's screen: menus, prompts, masked PIN entry on the PIN pad, and
 * each result with its reason in plain words, on a pair of file descriptors (a terminal, or
 * pipes in tests). docs/pos.md, "The POS screen".
 */
#ifndef PX_DEVICE_POS_SCREEN_H
#define PX_DEVICE_POS_SCREEN_H

#include "device/pos/pos.h"

/* Run the menu until the operator chooses Exit or input ends. Returns 0, or a negative
 * px_err when the terminal itself failed (its state could not be written). */
int pos_screen_run(pos_terminal *t, int fd_in, int fd_out);

#endif
