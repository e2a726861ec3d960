/* preflight: everything `authgate run` does with a loaded configuration short
 * of binding and serving, so that `authgate check` passing means the daemon
 * starts: listen addresses resolved as run resolves them (netaddr.c), the key
 * material read and parsed as keys_start does (no request to PropelAuth), the
 * upstream URLs parsed by the client that will use them, the access log
 * openable, and the route table built. */
#ifndef AG_PREFLIGHT_H
#define AG_PREFLIGHT_H

#include "config.h"

/* Appends "FILE:LINE:COL: message" errors to d. Takes ownership of cfg (the
 * route table is built from it and freed with it). Returns the number of
 * errors added. */
size_t pf_check(cfg_config *cfg, cfg_diags *d);

#endif
