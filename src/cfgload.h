/* cfgload: the generic half of configuration loading, shared by config.c
 * and its section files in cfgint.h (what auth, upstreams and routes mean)
 * and cfgtab.c (the key table).
 *
 * - a YAML tree that keeps every node's line and column (libyaml's document
 *   API would expand aliases and lose where a node came from);
 * - diagnostics "FILE:LINE:COL: message", collected, sorted by position;
 * - typed access (string, bool, integer, duration, enum) with range errors;
 * - walking a mapping against the rows of the key table (cfgtab.h): unknown
 *   keys get a "did you mean", and each misspelling is remembered so the
 *   "missing" error it causes is not reported as if it were a second fault.
 *
 * The tree itself is built in cfgyaml.c. Not an operator-facing API: only
 * the loader's own files include it. */
#ifndef AG_CFGLOAD_H
#define AG_CFGLOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfgtab.h"
#include "config.h"

/* Hostile-file bounds (security.md case 89). Generous for real configs: a
 * 10,000-route file is about 1 MiB and 100k nodes. */
#define CFG_MAX_FILE_BYTES (4u << 20)
#define CFG_MAX_SCALAR_BYTES 65536
#define CFG_MAX_DEPTH 32
#define CFG_MAX_NODES 1000000
#define CFG_MAX_ERRORS 100
#define CFG_MAX_STRIP_HEADERS 64

typedef enum ykind { Y_SCALAR, Y_MAP, Y_SEQ } ykind;

typedef struct ynode ynode;
struct ynode {
    ykind kind;
    int line, col;
    bool bad;   /* already reported (alias, tag, oversize...): skip further checks */
    bool plain; /* plain scalar style, so null / true / 5 keep their YAML meaning */
    char *s;
    size_t len;
    ynode **kids; /* sequence items, or key, value, key, value... */
    size_t n, cap;
};

typedef struct cl_diag {
    int line, col;
    size_t seq; /* stable order for equal positions */
    bool warn;
    char *text;
} cl_diag;

/* An unknown key that looked like a known one: the mapping it was in and the
 * key it resembles. */
typedef struct cl_miss {
    const ynode *map;
    const char *meant; /* a row's leaf name (static) */
} cl_miss;

typedef struct lctx {
    const char *file;
    cl_diag *diags;
    size_t ndiags, capdiags;
    size_t nerrors;
    bool truncated;
    bool oom;
    size_t nnodes;
    char *basedir; /* absolute directory relative paths are resolved against; NULL = keep */
    cfg_config *cfg;
    const char *text; /* the file's bytes, for hints about YAML syntax errors */
    size_t text_len;
    const ynode *root; /* the top-level mapping, once known */
    cl_miss *misses;
    size_t nmisses;
} lctx;

__attribute__((format(printf, 4, 5))) void cl_err(lctx *c, int line, int col, const char *fmt, ...);
__attribute__((format(printf, 4, 5))) void cl_warn(lctx *c, int line, int col, const char *fmt,
                                                   ...);
/* Move the sorted diagnostics into d (and an error for truncation or OOM). */
void cl_flush(lctx *c, cfg_diags *d);
void cl_ctx_free(lctx *c);
int cl_push_str(char ***arr, size_t *n, char *s);

/* The file's bytes (*cap allocated: cleanse that much before freeing) and
 * its mode. -1 after adding a "FILE:1:1: ..." error to d. */
int cl_read_file(const char *path, char **data, size_t *len, size_t *cap, unsigned *mode,
                 cfg_diags *d);

/* The policy hash: first 16 hex digits of SHA-256 of the bytes. */
void cl_hash16(const char *data, size_t len, char out[17]);
/* The config file's directory, absolute (relative paths resolve against it);
 * NULL when it cannot be determined. */
char *cl_base_dir(const char *path);

/* Build the tree. 0 with *out (NULL for an empty document), or -1 after
 * reporting why. */
int cl_build_tree(lctx *c, const char *data, size_t len, ynode **out);
void cl_ynode_free(ynode *n);

/* A user string quoted for a message: printable ASCII only, cut at 60 bytes. */
const char *cl_qstr(char *buf, size_t cap, const char *s, size_t len);
#define QN(buf, node) cl_qstr((buf), sizeof(buf), (node)->s ? (node)->s : "", (node)->len)
#define QS(buf, str) cl_qstr((buf), sizeof(buf), (str), strlen(str))

bool cl_is_null(const ynode *n);
const char *cl_kind_name(const ynode *n);
/* where: "auth.issuer" style path of the value, for messages. */
int cl_get_str(lctx *c, const ynode *n, const char *where, char **out);
int cl_get_bool(lctx *c, const ynode *n, const char *where, bool *out);
int cl_get_int(lctx *c, const ynode *n, const char *where, long long min, long long max,
               long long *out);
int cl_get_duration(lctx *c, const ynode *n, const char *where, long long min, long long max,
                    long long *out);
bool cl_expect_map(lctx *c, const ynode *n, const char *where);

/* The closest of cands (case-insensitive equality first, then the smallest
 * edit distance within a bound that grows with the word), or NULL. */
const char *cl_suggest(const char *word, const char *const *cands, size_t n);

/* The keys one mapping held, by row. */
typedef struct kseen {
    const ynode *k, *v;
} kseen;
#define CL_SCOPE_MAX 24
typedef struct cl_walk {
    const char *scope;
    size_t n;
    const cfg_key *rows[CL_SCOPE_MAX];
    kseen seen[CL_SCOPE_MAX];
} cl_walk;

/* Walk mapping m against the rows of scope ("" for the top level, "auth",
 * "upstreams.*", "routes[]"...): unknown keys are errors with a suggestion,
 * scalar values are converted into base + row offset. where_prefix names the
 * mapping in messages (defaults to the scope). */
void cl_walk_map(lctx *c, const ynode *m, const char *scope, const char *where_prefix, void *base,
                 cl_walk *w);
/* What the walk saw for a leaf key; never NULL (an empty entry if absent). */
const kseen *cl_seen(const cl_walk *w, const char *leaf);
/* Did an unknown key in mapping m look like leaf? Then an error that leaf is
 * missing would only repeat that mistake. */
bool cl_misspelt(const lctx *c, const ynode *m, const char *leaf);

/* Scalar defaults of a scope's rows into base (0, or -1 when out of memory). */
int cl_apply_defaults(const char *scope, void *base);

/* A route's scalar keys as written, before cfgroute.c gives them meaning. */
typedef struct cl_route_raw {
    char *path, *policy, *role, *permission, *org_id_from, *upstream;
    char *strip_prefix;
    bool preserve_host;
    bool websocket;
} cl_route_raw;

/* host:port, host being a name, IPv4 or [IPv6]. */
bool cl_valid_listen(const char *s);
bool cl_valid_host(const char *s, size_t len);
/* http(s)://host[:port][/path] without credentials, query or fragment.
 * NULL when fine, else why. */
const char *cl_url_problem(const char *u);
/* Replace *path with its form resolved against the config file's directory. */
void cl_resolve_in_place(lctx *c, char **path);

#endif
