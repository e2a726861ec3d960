/* cfgtab: the configuration as one table. One row per key: its dotted name,
 * type, bounds, default, whether a reload applies it or a restart is needed,
 * and a one-line description. The loader converts values and fills defaults
 * from these rows, the daemon asks them which changes a reload cannot apply,
 * and `authgate check --dump-keys` prints them so a test can hold
 * docs/configuration.md to them. */
#ifndef AG_CFGTAB_H
#define AG_CFGTAB_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

typedef enum cfg_ktype {
    CK_NODE = 0, /* a section or list the semantic loader handles itself */
    CK_STR,
    CK_BOOL,
    CK_INT,  /* int */
    CK_LONG, /* long */
    CK_SIZE, /* size_t */
    CK_U64,  /* uint64_t */
    CK_DUR,  /* long, seconds; "30s", "10m", "1h" also accepted */
    CK_ENUM, /* int: the value of the matching choice */
} cfg_ktype;

/* When a changed value takes effect. The zero value is the conservative
 * answer: an unclassified key is reported as needing a restart. */
typedef enum cfg_apply {
    CFG_APPLY_RESTART = 0,
    CFG_APPLY_RELOAD,
    CFG_APPLY_RELOAD_LOWER, /* lowering applies on reload; raising needs a restart */
} cfg_apply;

typedef struct cfg_choice {
    const char *name;
    int value;
} cfg_choice;

typedef struct cfg_key {
    const char *name; /* "listen", "auth.issuer", "upstreams.*.url", "routes[].path" */
    cfg_ktype type;
    size_t off; /* in cfg_config; for upstreams.* / routes[] rows, in the item */
    long long min, max;
    const char *def;           /* default in file syntax; NULL = none (applied to scalars) */
    const char *defdoc;        /* how the docs show the default, when not `def` */
    const char *typedoc;       /* how the docs show the type, when not derived */
    const cfg_choice *choices; /* CK_ENUM, or allowed words of a CK_STR; NULL-name ended */
    cfg_apply apply;
    const char *doc;
} cfg_key;

extern const cfg_key cfg_keys[];
extern const size_t cfg_nkeys;

/* The row named exactly name, or NULL. */
const cfg_key *cfg_key_find(const char *name);

/* Call cb once for every key whose change between old and new a reload does
 * not apply (as the rows say). The key is the dotted name, with " (raised)"
 * for keys where only raising needs a restart. */
void cfg_restart_only_changes(const cfg_config *old, const cfg_config *new_cfg,
                              void (*cb)(const char *key, void *ctx), void *ctx);

/* The table as tab-separated lines: name, type, default, reload, doc (the
 * same texts docs/configuration.md shows). */
void cfg_dump_keys(FILE *f);

#endif
