/* config: YAML -> cfg_config. libyaml's event stream is turned into a small
 * tree that keeps every node's line and column (libyaml's document API would
 * silently expand aliases and drop whether a node came from one). The tree is
 * then walked with per-section key tables, so unknown keys, wrong types and
 * range errors come out of one place, and validation collects every problem
 * before giving up. Messages are sorted by position so output reads top-down. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "httpx.h"
#include "routes.h"
#include "util.h"

/* Hostile-file bounds (docs/security.md case 89). Generous for real configs: a
 * 10,000-route file is about 1 MiB and 100k nodes. */
#define CFG_MAX_FILE_BYTES (4u << 20)
#define CFG_MAX_SCALAR_BYTES 65536
#define CFG_MAX_DEPTH 32
#define CFG_MAX_NODES 1000000
#define CFG_MAX_ERRORS 100
#define CFG_MAX_STRIP_HEADERS 64

/* ---- diagnostics ---------------------------------------------------------- */

typedef struct diag {
    int line, col;
    size_t seq; /* stable order for equal positions */
    bool warn;
    char *text;
} diag;

typedef struct ynode ynode;

typedef struct lctx {
    const char *file;
    diag *diags;
    size_t ndiags, capdiags;
    size_t nerrors;
    bool truncated;
    bool oom;
    size_t nnodes;
    char *basedir; /* absolute directory relative paths are resolved against; NULL = keep */
    cfg_config *cfg;
} lctx;

__attribute__((format(printf, 5, 0))) static void vdiag(lctx *c, bool warn, int line, int col,
                                                        const char *fmt, va_list ap)
{
    char msg[768];
    ag_buf b;

    if (!warn) {
        c->nerrors++;
        if (c->nerrors > CFG_MAX_ERRORS) {
            c->truncated = true;
            return;
        }
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    ag_buf_init(&b);
    if (c->ndiags == c->capdiags) {
        size_t cap = c->capdiags ? c->capdiags * 2 : 16;
        diag *p = realloc(c->diags, cap * sizeof(*p));
        if (!p) {
            c->oom = true;
            return;
        }
        c->diags = p;
        c->capdiags = cap;
    }
    if (ag_buf_printf(&b, "%s:%d:%d: %s%s", c->file, line, col, warn ? "warning: " : "", msg) !=
        0) {
        ag_buf_free(&b);
        c->oom = true;
        return;
    }
    c->diags[c->ndiags] = (diag){line, col, c->ndiags, warn, ag_buf_steal(&b)};
    c->ndiags++;
}

__attribute__((format(printf, 4, 5))) static void err_at(lctx *c, int line, int col,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, false, line, col, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void warn_at(lctx *c, int line, int col,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, true, line, col, fmt, ap);
    va_end(ap);
}

static int diag_cmp(const void *a, const void *b)
{
    const diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

static int push_str(char ***arr, size_t *n, char *s)
{
    char **p = realloc(*arr, (*n + 1) * sizeof(*p));
    if (!p)
        return -1;
    *arr = p;
    p[(*n)++] = s;
    return 0;
}

/* Move sorted diagnostics into the caller's list. */
static void flush_diags(lctx *c, cfg_diags *d)
{
    if (c->ndiags)
        qsort(c->diags, c->ndiags, sizeof(*c->diags), diag_cmp);
    for (size_t i = 0; i < c->ndiags; i++) {
        diag *x = &c->diags[i];
        if (push_str(x->warn ? &d->warnings : &d->errors, x->warn ? &d->nwarnings : &d->nerrors,
                     x->text) != 0) {
            free(x->text);
            c->oom = true;
        }
        x->text = NULL;
    }
    c->ndiags = 0;
    char *extra = NULL;
    if (c->truncated) {
        ag_buf b;
        ag_buf_init(&b);
        if (ag_buf_printf(&b, "%s: too many errors (%zu); only the first %d are shown", c->file,
                          c->nerrors, CFG_MAX_ERRORS) == 0)
            extra = ag_buf_steal(&b);
        ag_buf_free(&b);
        if (extra && push_str(&d->errors, &d->nerrors, extra) != 0)
            free(extra);
    }
    if (c->oom) {
        /* Whatever else happened, the caller must see a failure. */
        char *m = ag_strdup("out of memory while loading the configuration");
        if (m && push_str(&d->errors, &d->nerrors, m) != 0)
            free(m);
    }
}

void cfg_diags_free(cfg_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nerrors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof(*d));
}

void cfg_diags_print(const cfg_diags *d, FILE *f)
{
    for (size_t i = 0; i < d->nerrors; i++)
        fprintf(f, "%s\n", d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        fprintf(f, "%s\n", d->warnings[i]);
}

/* ---- YAML tree ------------------------------------------------------------ */

typedef enum ykind { Y_SCALAR, Y_MAP, Y_SEQ } ykind;

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

static void ynode_free(ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        ynode_free(n->kids[i]);
    free(n->kids);
    /* Scalars may hold an inline API key or key material. */
    if (n->s)
        OPENSSL_cleanse(n->s, n->len);
    free(n->s);
    free(n);
}

/* A user string quoted for a message: printable ASCII only, cut at 60 bytes. */
static const char *qstr(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    if (cap < 16)
        return "";
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o + 8 >= cap || i >= 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            buf[o++] = (char)ch;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", ch);
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

#define QN(buf, node) qstr((buf), sizeof(buf), (node)->s ? (node)->s : "", (node)->len)
#define QS(buf, str) qstr((buf), sizeof(buf), (str), strlen(str))

static ynode *ynode_new(lctx *c, ykind kind, const yaml_mark_t *m)
{
    if (++c->nnodes > CFG_MAX_NODES)
        return NULL;
    ynode *n = calloc(1, sizeof(*n));
    if (!n) {
        c->oom = true;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static int ynode_append(lctx *c, ynode *parent, ynode *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        ynode **p = realloc(parent->kids, cap * sizeof(*p));
        if (!p) {
            c->oom = true;
            return -1;
        }
        parent->kids = p;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const ynode *x = *(const ynode *const *)a, *y = *(const ynode *const *)b;
    size_t m = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->s, y->s, m);
    if (r != 0)
        return r;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col ? 1 : 0;
}

/* libyaml reports mapping events, it does not detect duplicate keys. Sorting
 * keeps a hostile 100k-key mapping at O(n log n). */
static void check_map_keys(lctx *c, ynode *m)
{
    size_t nk = 0;
    ynode **keys = NULL;
    char qb[96];

    if (m->n == 0)
        return;
    keys = malloc((m->n / 2) * sizeof(*keys));
    if (!keys) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        ynode *k = m->kids[i];
        if (k->bad)
            continue;
        if (k->kind != Y_SCALAR) {
            err_at(c, k->line, k->col, "mapping keys must be plain strings");
            k->bad = true;
            continue;
        }
        keys[nk++] = k;
    }
    if (nk > 1)
        qsort(keys, nk, sizeof(*keys), key_cmp);
    for (size_t i = 1; i < nk; i++) {
        if (keys[i]->len == keys[i - 1]->len &&
            memcmp(keys[i]->s, keys[i - 1]->s, keys[i]->len) == 0) {
            err_at(c, keys[i]->line, keys[i]->col, "duplicate key %s (first at line %d)",
                   QN(qb, keys[i]), keys[i - 1]->line);
            keys[i]->bad = true;
        }
    }
    free(keys);
}

/* libyaml reader errors carry a byte offset, not a mark. */
static void offset_to_mark(const char *data, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void syntax_error(lctx *c, const yaml_parser_t *p, const char *data, size_t len)
{
    int line, col;
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_to_mark(data, len, p->problem_offset, &line, &col);
        err_at(c, line, col, "invalid YAML: %s", p->problem ? p->problem : "unreadable input");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        err_at(c, line, col, "invalid YAML: %s (%s at line %d)",
               p->problem ? p->problem : "syntax error", p->context, (int)p->context_mark.line + 1);
    else
        err_at(c, line, col, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
}

static void check_props(lctx *c, ynode *n, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    if (anchor) {
        err_at(c, n->line, n->col, "YAML anchors and aliases are not supported");
        n->bad = true;
    }
    if (tag) {
        err_at(c, n->line, n->col, "YAML tags are not supported");
        n->bad = true;
    }
}

/* Build the tree. Returns 0 with *out (NULL for an empty document), or -1
 * after reporting why. */
static int build_tree(lctx *c, const char *data, size_t len, ynode **out)
{
    int rc = -1;
    yaml_parser_t p;
    yaml_event_t ev;
    ynode *stack[CFG_MAX_DEPTH];
    size_t depth = 0;
    ynode *root = NULL;
    int ndocs = 0;
    bool done = false;

    *out = NULL;
    if (!yaml_parser_initialize(&p)) {
        c->oom = true;
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(c, &p, data, len);
            goto out;
        }
        ynode *n = NULL;
        bool push = false, pop = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                err_at(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                       "only one YAML document is allowed");
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT:
            n = ynode_new(c, Y_SCALAR, &ev.start_mark);
            if (n) {
                err_at(c, n->line, n->col, "YAML anchors and aliases are not supported");
                n->bad = true;
            }
            break;
        case YAML_SCALAR_EVENT:
            n = ynode_new(c, Y_SCALAR, &ev.start_mark);
            if (!n)
                break;
            check_props(c, n, ev.data.scalar.anchor, ev.data.scalar.tag);
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (ev.data.scalar.length > CFG_MAX_SCALAR_BYTES) {
                err_at(c, n->line, n->col, "value longer than %d bytes", CFG_MAX_SCALAR_BYTES);
                n->bad = true;
            } else if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
                err_at(c, n->line, n->col, "NUL byte in value");
                n->bad = true;
            } else {
                n->s = ag_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                n->len = ev.data.scalar.length;
                if (!n->s)
                    c->oom = true;
            }
            if (!n->s) {
                n->s = ag_strdup("");
                n->len = 0;
                if (!n->s)
                    c->oom = true;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
            n = ynode_new(c, Y_SEQ, &ev.start_mark);
            if (n)
                check_props(c, n, ev.data.sequence_start.anchor, ev.data.sequence_start.tag);
            push = true;
            break;
        case YAML_MAPPING_START_EVENT:
            n = ynode_new(c, Y_MAP, &ev.start_mark);
            if (n)
                check_props(c, n, ev.data.mapping_start.anchor, ev.data.mapping_start.tag);
            push = true;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            pop = true;
            break;
        default:
            break;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        bool is_node = ev.type == YAML_ALIAS_EVENT || ev.type == YAML_SCALAR_EVENT || push;
        yaml_event_delete(&ev);

        if (is_node) {
            if (!n) {
                if (!c->oom)
                    err_at(c, line, col, "too many YAML nodes (more than %d)", CFG_MAX_NODES);
                goto out;
            }
            if (depth == 0) {
                root = n;
            } else if (ynode_append(c, stack[depth - 1], n) != 0) {
                ynode_free(n);
                goto out;
            }
            if (push) {
                if (depth == CFG_MAX_DEPTH) {
                    err_at(c, line, col, "nesting deeper than %d levels", CFG_MAX_DEPTH);
                    goto out;
                }
                stack[depth++] = n;
            }
        } else if (pop && depth > 0) {
            ynode *top = stack[--depth];
            if (top->kind == Y_MAP)
                check_map_keys(c, top);
        }
        if (c->oom)
            goto out;
    }
    *out = root;
    root = NULL;
    rc = 0;
out:
    ynode_free(root);
    yaml_parser_delete(&p);
    return rc;
}

/* ---- typed access --------------------------------------------------------- */

static bool is_null(const ynode *n)
{
    return n->kind == Y_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
            strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0);
}

static const char *kind_name(const ynode *n)
{
    if (n->kind == Y_MAP)
        return "a mapping";
    if (n->kind == Y_SEQ)
        return "a list";
    if (is_null(n))
        return "nothing (null)";
    return "a scalar";
}

/* where: "auth.issuer" style path of the value, for messages. */
static int get_str(lctx *c, const ynode *n, const char *where, char **out)
{
    if (n->bad)
        return -1;
    if (n->kind != Y_SCALAR || is_null(n)) {
        err_at(c, n->line, n->col, "%s: expected a string, got %s", where, kind_name(n));
        return -1;
    }
    char *s = ag_strdup(n->s);
    if (!s) {
        c->oom = true;
        return -1;
    }
    free(*out);
    *out = s;
    return 0;
}

static int get_bool(lctx *c, const ynode *n, const char *where, bool *out)
{
    char qb[96];
    if (n->bad)
        return -1;
    if (n->kind == Y_SCALAR && n->plain && strcmp(n->s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (n->kind == Y_SCALAR && n->plain && strcmp(n->s, "false") == 0) {
        *out = false;
        return 0;
    }
    if (n->kind == Y_SCALAR)
        err_at(c, n->line, n->col, "%s: expected true or false, got %s", where, QN(qb, n));
    else
        err_at(c, n->line, n->col, "%s: expected true or false, got %s", where, kind_name(n));
    return -1;
}

/* Strict decimal: optional '-', digits, nothing else (no 0x, no "1e3", no
 * spaces), as a plain (unquoted) scalar. */
static int parse_ll(const char *s, long long *out)
{
    const char *p = s;
    bool neg = false;
    unsigned long long v = 0;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!*p)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static int get_int(lctx *c, const ynode *n, const char *where, long long min, long long max,
                   long long *out)
{
    char qb[96];
    long long v;
    if (n->bad)
        return -1;
    if (n->kind != Y_SCALAR || is_null(n)) {
        err_at(c, n->line, n->col, "%s: expected an integer, got %s", where, kind_name(n));
        return -1;
    }
    if (!n->plain || parse_ll(n->s, &v) != 0) {
        err_at(c, n->line, n->col, "%s: expected an integer, got %s", where, QN(qb, n));
        return -1;
    }
    if (v < min || v > max) {
        err_at(c, n->line, n->col, "%s: must be between %lld and %lld, got %lld", where, min, max,
               v);
        return -1;
    }
    *out = v;
    return 0;
}

/* Seconds as an integer, or a string "<n>s", "<n>m", "<n>h". */
static int get_duration(lctx *c, const ynode *n, const char *where, long long min, long long max,
                        long long *out)
{
    char qb[96];
    long long v;
    if (n->bad)
        return -1;
    if (n->kind == Y_SCALAR && n->plain && parse_ll(n->s, &v) == 0)
        goto range;
    if (n->kind != Y_SCALAR || is_null(n) || n->len < 2) {
        err_at(c, n->line, n->col,
               "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\"", where);
        return -1;
    }
    {
        char num[32];
        char unit = n->s[n->len - 1];
        long long mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
        if (mul == 0 || n->len - 1 >= sizeof(num) || n->s[0] == '-') {
            err_at(c, n->line, n->col,
                   "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\", got %s",
                   where, QN(qb, n));
            return -1;
        }
        memcpy(num, n->s, n->len - 1);
        num[n->len - 1] = '\0';
        if (parse_ll(num, &v) != 0 || v > LLONG_MAX / mul) {
            err_at(c, n->line, n->col,
                   "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\", got %s",
                   where, QN(qb, n));
            return -1;
        }
        v *= mul;
    }
range:
    if (v < min || v > max) {
        err_at(c, n->line, n->col, "%s: must be between %lld and %lld seconds, got %lld", where,
               min, max, v);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- key tables ----------------------------------------------------------- */

typedef enum ktype {
    K_NODE, /* handled by the caller */
    K_STR,
    K_BOOL,
    K_INT,  /* int */
    K_LONG, /* long */
    K_SIZE, /* size_t */
    K_U64,  /* uint64_t */
    K_DUR,  /* long, seconds */
} ktype;

typedef struct kdef {
    const char *name;
    ktype type;
    size_t off;
    long long min, max;
} kdef;

typedef struct kseen {
    const ynode *k, *v;
} kseen;

#define MAX_KEYS 20

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag_prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag_prev + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag_prev = up;
        }
    }
    return row[lb];
}

/* Walk a mapping against its key table: unknown keys are errors (with a
 * suggestion for near misses), values are converted into base + off. */
static void walk_map(lctx *c, const ynode *m, const char *section, const kdef *defs, size_t ndefs,
                     void *base, kseen *seen)
{
    char qb[96];
    char where[160];
    memset(seen, 0, ndefs * sizeof(*seen));
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = m->kids[i], *v = m->kids[i + 1];
        if (k->bad)
            continue;
        size_t d;
        for (d = 0; d < ndefs; d++)
            if (strcmp(k->s, defs[d].name) == 0)
                break;
        if (d == ndefs) {
            const char *near = NULL;
            size_t best = 3;
            for (size_t j = 0; j < ndefs; j++) {
                size_t e = edit_distance(k->s, defs[j].name);
                if (e < best) {
                    best = e;
                    near = defs[j].name;
                }
            }
            err_at(c, k->line, k->col, "unknown key %s%s%s%s%s%s", QN(qb, k),
                   section[0] ? " in " : "", section, near ? " (did you mean \"" : "",
                   near ? near : "", near ? "\"?)" : "");
            continue;
        }
        seen[d].k = k;
        seen[d].v = v;
        snprintf(where, sizeof(where), "%s%s%s", section, section[0] ? "." : "", defs[d].name);
        char *p = (char *)base + defs[d].off;
        long long ll = 0;
        switch (defs[d].type) {
        case K_NODE:
            break;
        case K_STR:
            get_str(c, v, where, (char **)(void *)p);
            break;
        case K_BOOL:
            get_bool(c, v, where, (bool *)(void *)p);
            break;
        case K_INT:
            if (get_int(c, v, where, defs[d].min, defs[d].max, &ll) == 0)
                *(int *)(void *)p = (int)ll;
            break;
        case K_LONG:
            if (get_int(c, v, where, defs[d].min, defs[d].max, &ll) == 0)
                *(long *)(void *)p = (long)ll;
            break;
        case K_SIZE:
            if (get_int(c, v, where, defs[d].min, defs[d].max, &ll) == 0)
                *(size_t *)(void *)p = (size_t)ll;
            break;
        case K_U64:
            if (get_int(c, v, where, defs[d].min, defs[d].max, &ll) == 0)
                *(uint64_t *)(void *)p = (uint64_t)ll;
            break;
        case K_DUR:
            if (get_duration(c, v, where, defs[d].min, defs[d].max, &ll) == 0)
                *(long *)(void *)p = (long)ll;
            break;
        }
    }
}

static bool expect_map(lctx *c, const ynode *n, const char *where)
{
    if (n->bad)
        return false;
    if (n->kind != Y_MAP) {
        err_at(c, n->line, n->col, "%s: expected a mapping, got %s", where, kind_name(n));
        return false;
    }
    return true;
}

static int idx_of(const kdef *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return (int)i;
    return -1;
}

#define SEEN(defs, seen, name) (&(seen)[idx_of((defs), AG_ARRAY_LEN(defs), (name))])

/* ---- value validators ----------------------------------------------------- */

static bool valid_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static bool valid_host(const char *s, size_t len)
{
    if (len == 0)
        return false;
    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++) {
            char ch = s[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '.' || ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* host:port, host being a name, IPv4 or [IPv6]. */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return false;
    if (s[0] == '[' && colon > s && colon[-1] != ']')
        return false;
    return valid_host(s, (size_t)(colon - s)) && valid_port(colon + 1, strlen(colon + 1));
}

/* http(s)://host[:port][/path] without credentials, query or fragment. Returns
 * NULL when fine, else why. */
static const char *url_problem(const char *u)
{
    const char *rest;
    if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    else if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else
        return "must start with http:// or https://";
    size_t alen = strcspn(rest, "/?#");
    const char *auth = rest;
    if (memchr(auth, '@', alen))
        return "must not contain credentials (user@)";
    const char *colon = NULL;
    for (const char *p = auth + alen; p > auth; p--) {
        if (p[-1] == ':') {
            colon = p - 1;
            break;
        }
        if (p[-1] == ']')
            break;
    }
    size_t hlen = colon ? (size_t)(colon - auth) : alen;
    if (hlen == 0)
        return "has no host";
    if (!valid_host(auth, hlen))
        return "has an invalid host";
    if (colon && !valid_port(colon + 1, (size_t)(auth + alen - colon - 1)))
        return "has an invalid port";
    for (const char *p = auth + alen; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '?' || ch == '#')
            return "must not contain a query or fragment";
        if (ch <= 0x20 || ch >= 0x7f)
            return "contains a space or control byte";
    }
    return NULL;
}

static char *resolve_path(lctx *c, const char *p)
{
    if (!c->basedir || p[0] == '/')
        return ag_strdup(p);
    ag_buf b;
    ag_buf_init(&b);
    if (ag_buf_printf(&b, "%s/%s", c->basedir, p) != 0) {
        ag_buf_free(&b);
        return NULL;
    }
    return ag_buf_steal(&b);
}

/* Replace *path with its resolved form. */
static void resolve_in_place(lctx *c, char **path)
{
    if (!*path)
        return;
    char *r = resolve_path(c, *path);
    if (!r) {
        c->oom = true;
        return;
    }
    free(*path);
    *path = r;
}

/* ---- sections ------------------------------------------------------------- */

static const kdef auth_defs[] = {
    {"auth_url", K_STR, offsetof(cfg_auth, auth_url), 0, 0},
    {"api_key_env", K_STR, offsetof(cfg_auth, api_key_env), 0, 0},
    {"api_key_file", K_STR, offsetof(cfg_auth, api_key_file), 0, 0},
    {"api_key", K_STR, offsetof(cfg_auth, api_key), 0, 0},
    {"api_base_url", K_STR, offsetof(cfg_auth, api_base_url), 0, 0},
    {"verifier_key_file", K_STR, offsetof(cfg_auth, verifier_key_file), 0, 0},
    {"verifier_key_pem", K_STR, offsetof(cfg_auth, verifier_key_pem), 0, 0},
    {"issuer", K_STR, offsetof(cfg_auth, issuer), 0, 0},
    {"leeway_seconds", K_LONG, offsetof(cfg_auth, leeway_seconds), 0, 3600},
    {"refresh_interval", K_DUR, offsetof(cfg_auth, refresh_interval_s), 10, 7 * 86400},
    {"previous_key_grace", K_DUR, offsetof(cfg_auth, previous_key_grace_s), 0, 7 * 86400},
    {"ca_file", K_STR, offsetof(cfg_auth, ca_file), 0, 0},
    {"fetch_timeout_ms", K_LONG, offsetof(cfg_auth, fetch_timeout_ms), 100, 600000},
    {"token_cache_entries", K_SIZE, offsetof(cfg_auth, token_cache_entries), 0, 10000000},
};

static void check_readable(lctx *c, const kseen *s, const char *where, const char *path,
                           bool secret)
{
    struct stat st;
    if (!s->v || !path)
        return;
    if (stat(path, &st) != 0) {
        err_at(c, s->v->line, s->v->col, "%s: cannot read %s: %s", where, path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        err_at(c, s->v->line, s->v->col, "%s: %s is not a regular file", where, path);
        return;
    }
    if (access(path, R_OK) != 0) {
        err_at(c, s->v->line, s->v->col, "%s: cannot read %s: %s", where, path, strerror(errno));
        return;
    }
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
        warn_at(c, s->v->line, s->v->col,
                "%s: %s holds a secret but is accessible by group or others (mode %04o); "
                "chmod 600 it (authgate run refuses to start until then)",
                where, path, (unsigned)(st.st_mode & 07777));
}

static void do_auth(lctx *c, const ynode *key, const ynode *n)
{
    cfg_auth *a = &c->cfg->auth;
    kseen seen[AG_ARRAY_LEN(auth_defs)];
    int line = key ? key->line : 1, col = key ? key->col : 1;

    if (!n) {
        err_at(c, 1, 1,
               "auth: missing; give auth_url with an API key, or "
               "verifier_key_file/verifier_key_pem with issuer");
        return;
    }
    if (!expect_map(c, n, "auth"))
        return;
    walk_map(c, n, "auth", auth_defs, AG_ARRAY_LEN(auth_defs), a, seen);

    const kseen *s_url = SEEN(auth_defs, seen, "auth_url");
    const kseen *s_env = SEEN(auth_defs, seen, "api_key_env");
    const kseen *s_kf = SEEN(auth_defs, seen, "api_key_file");
    const kseen *s_key = SEEN(auth_defs, seen, "api_key");
    const kseen *s_base = SEEN(auth_defs, seen, "api_base_url");
    const kseen *s_vf = SEEN(auth_defs, seen, "verifier_key_file");
    const kseen *s_vp = SEEN(auth_defs, seen, "verifier_key_pem");
    const kseen *s_iss = SEEN(auth_defs, seen, "issuer");
    const kseen *s_ca = SEEN(auth_defs, seen, "ca_file");

    bool fetch = s_url->v != NULL, manual = s_vf->v || s_vp->v;
    int nkeys = (s_env->v != NULL) + (s_kf->v != NULL) + (s_key->v != NULL);

    if (fetch && manual) {
        const kseen *second = s_vf->v ? s_vf : s_vp;
        err_at(c, second->k->line, second->k->col,
               "auth: give either auth_url (fetch the verifier key) or %s with issuer, not both",
               second->k->s);
    } else if (!fetch && !manual) {
        err_at(c, line, col,
               "auth: need auth_url with an API key, or verifier_key_file/verifier_key_pem with "
               "issuer");
    }
    if (fetch) {
        const char *why = a->auth_url ? url_problem(a->auth_url) : NULL;
        if (why)
            err_at(c, s_url->v->line, s_url->v->col, "auth.auth_url: %s", why);
        if (nkeys == 0)
            err_at(c, s_url->k->line, s_url->k->col,
                   "auth: auth_url needs exactly one of api_key_env, api_key_file, api_key");
        if (nkeys > 1) {
            const kseen *second = s_key->v ? s_key : s_kf;
            err_at(c, second->k->line, second->k->col,
                   "auth: give exactly one of api_key_env, api_key_file, api_key");
        }
        if (s_iss->v)
            err_at(c, s_iss->k->line, s_iss->k->col,
                   "auth.issuer: with auth_url the issuer is derived from it; set issuer only "
                   "with verifier_key_file/verifier_key_pem");
    } else {
        const kseen *apis[] = {s_env, s_kf, s_key, s_base};
        for (size_t i = 0; i < AG_ARRAY_LEN(apis); i++)
            if (apis[i]->v)
                err_at(c, apis[i]->k->line, apis[i]->k->col,
                       "auth.%s: only used to fetch the verifier key with auth_url", apis[i]->k->s);
    }
    if (manual) {
        if (s_vf->v && s_vp->v)
            err_at(c, s_vp->k->line, s_vp->k->col,
                   "auth: give either verifier_key_file or verifier_key_pem, not both");
        if (!s_iss->v)
            err_at(c, line, col, "auth: issuer is required with %s",
                   s_vf->v ? "verifier_key_file" : "verifier_key_pem");
        else if (a->issuer && a->issuer[0] == '\0')
            err_at(c, s_iss->v->line, s_iss->v->col, "auth.issuer: must not be empty");
        if (a->verifier_key_pem && !strstr(a->verifier_key_pem, "-----BEGIN "))
            err_at(c, s_vp->v->line, s_vp->v->col,
                   "auth.verifier_key_pem: not a PEM block (no \"-----BEGIN \" line)");
    }
    if (a->api_key_env && (a->api_key_env[0] == '\0' || strchr(a->api_key_env, '=')))
        err_at(c, s_env->v->line, s_env->v->col,
               "auth.api_key_env: not an environment variable name");
    if (a->api_key) {
        if (a->api_key[0] == '\0')
            err_at(c, s_key->v->line, s_key->v->col, "auth.api_key: must not be empty");
        else
            warn_at(c, s_key->v->line, s_key->v->col,
                    "auth.api_key: secret written inline in the config file; prefer api_key_env "
                    "or api_key_file");
    }
    if (s_base->v && a->api_base_url) {
        const char *why = url_problem(a->api_base_url);
        if (why)
            err_at(c, s_base->v->line, s_base->v->col, "auth.api_base_url: %s", why);
    }
    resolve_in_place(c, &a->api_key_file);
    resolve_in_place(c, &a->verifier_key_file);
    resolve_in_place(c, &a->ca_file);
    check_readable(c, s_kf, "auth.api_key_file", a->api_key_file, true);
    check_readable(c, s_vf, "auth.verifier_key_file", a->verifier_key_file, false);
    check_readable(c, s_ca, "auth.ca_file", a->ca_file, false);
}

static const kdef ident_defs[] = {
    {"user_header", K_STR, offsetof(cfg_identity, user_header), 0, 0},
    {"org_header", K_STR, offsetof(cfg_identity, org_header), 0, 0},
    {"user_orgs", K_NODE, 0, 0, 0},
    {"forward_authorization", K_BOOL, offsetof(cfg_identity, forward_authorization), 0, 0},
    {"strip_headers", K_NODE, 0, 0, 0},
};

static bool check_header_name(lctx *c, const ynode *v, const char *where, const char *name)
{
    char qb[96];
    if (!hx_valid_header_name(name, strlen(name))) {
        err_at(c, v->line, v->col, "%s: %s is not a valid header name", where, QS(qb, name));
        return false;
    }
    return true;
}

static void do_identity(lctx *c, const ynode *n)
{
    cfg_identity *id = &c->cfg->identity;
    kseen seen[AG_ARRAY_LEN(ident_defs)];
    char qb[96];

    if (!n || !expect_map(c, n, "identity"))
        return;
    walk_map(c, n, "identity", ident_defs, AG_ARRAY_LEN(ident_defs), id, seen);
    const kseen *s_user = SEEN(ident_defs, seen, "user_header");
    const kseen *s_org = SEEN(ident_defs, seen, "org_header");
    const kseen *s_mode = SEEN(ident_defs, seen, "user_orgs");
    const kseen *s_strip = SEEN(ident_defs, seen, "strip_headers");

    if (s_user->v && id->user_header)
        check_header_name(c, s_user->v, "identity.user_header", id->user_header);
    if (s_org->v && id->org_header)
        check_header_name(c, s_org->v, "identity.org_header", id->org_header);
    if (id->user_header && id->org_header &&
        ag_streq_ci(id->user_header, strlen(id->user_header), id->org_header)) {
        const ynode *at = s_org->v ? s_org->v : s_user->v ? s_user->v : n;
        err_at(c, at->line, at->col, "identity: user_header and org_header must differ");
    }
    const kseen *hdrs[] = {s_user, s_org};
    for (size_t i = 0; i < 2; i++) {
        const char *h = i == 0 ? id->user_header : id->org_header;
        if (hdrs[i]->v && h &&
            (hx_is_hop_by_hop(h, strlen(h)) || ag_streq_ci(h, strlen(h), "authorization")))
            err_at(c, hdrs[i]->v->line, hdrs[i]->v->col, "identity.%s: %s is reserved",
                   hdrs[i]->k->s, QS(qb, h));
    }
    if (s_mode->v) {
        char *m = NULL;
        if (get_str(c, s_mode->v, "identity.user_orgs", &m) == 0) {
            if (strcmp(m, "all") == 0)
                id->user_orgs = ID_ORGS_ALL;
            else if (strcmp(m, "requested") == 0)
                id->user_orgs = ID_ORGS_REQUESTED;
            else if (strcmp(m, "none") == 0)
                id->user_orgs = ID_ORGS_NONE;
            else
                err_at(c, s_mode->v->line, s_mode->v->col,
                       "identity.user_orgs: expected all, requested or none, got %s", QS(qb, m));
        }
        free(m);
    }
    if (s_strip->v && !s_strip->v->bad) {
        const ynode *l = s_strip->v;
        if (l->kind != Y_SEQ) {
            err_at(c, l->line, l->col, "identity.strip_headers: expected a list, got %s",
                   kind_name(l));
            return;
        }
        if (l->n > CFG_MAX_STRIP_HEADERS) {
            err_at(c, l->line, l->col, "identity.strip_headers: more than %d entries",
                   CFG_MAX_STRIP_HEADERS);
            return;
        }
        for (size_t i = 0; i < l->n; i++) {
            char *h = NULL;
            if (get_str(c, l->kids[i], "identity.strip_headers[]", &h) != 0)
                continue;
            if (!check_header_name(c, l->kids[i], "identity.strip_headers[]", h) ||
                push_str(&id->strip_headers, &id->nstrip_headers, h) != 0) {
                free(h);
                continue;
            }
        }
    }
}

static const kdef limit_defs[] = {
    {"max_header_bytes", K_SIZE, offsetof(cfg_limits, max_header_bytes), 256, 1 << 24},
    {"max_headers", K_SIZE, offsetof(cfg_limits, max_headers), 1, 10000},
    {"max_uri_bytes", K_SIZE, offsetof(cfg_limits, max_uri_bytes), 16, 65536},
    {"max_token_bytes", K_SIZE, offsetof(cfg_limits, max_token_bytes), 64, 1 << 24},
    {"max_body_bytes", K_U64, offsetof(cfg_limits, max_body_bytes), 0, INT64_MAX},
    {"max_connections", K_SIZE, offsetof(cfg_limits, max_connections), 1, 1000000},
    {"max_connections_per_ip", K_SIZE, offsetof(cfg_limits, max_connections_per_ip), 0, 1000000},
    {"idle_timeout_ms", K_LONG, offsetof(cfg_limits, idle_timeout_ms), 1, 86400000},
    {"request_timeout_ms", K_LONG, offsetof(cfg_limits, request_timeout_ms), 1, 3600000},
    {"max_identity_bytes", K_SIZE, offsetof(cfg_limits, max_identity_bytes), 256, 1 << 24},
    {"max_response_header_bytes", K_SIZE, offsetof(cfg_limits, max_response_header_bytes), 256,
     1 << 24},
};

static void do_limits(lctx *c, const ynode *n)
{
    kseen seen[AG_ARRAY_LEN(limit_defs)];
    if (!n || !expect_map(c, n, "limits"))
        return;
    walk_map(c, n, "limits", limit_defs, AG_ARRAY_LEN(limit_defs), &c->cfg->limits, seen);
}

static const kdef path_defs[] = {
    {"resolve_dot_segments", K_BOOL, offsetof(cfg_paths, resolve_dot_segments), 0, 0},
    {"merge_slashes", K_BOOL, offsetof(cfg_paths, merge_slashes), 0, 0},
    {"org_id_pattern", K_STR, offsetof(cfg_paths, org_id_pattern), 0, 0},
};

static void do_paths(lctx *c, const ynode *n)
{
    kseen seen[AG_ARRAY_LEN(path_defs)];
    if (!n || !expect_map(c, n, "paths"))
        return;
    walk_map(c, n, "paths", path_defs, AG_ARRAY_LEN(path_defs), &c->cfg->paths, seen);
    const kseen *s = SEEN(path_defs, seen, "org_id_pattern");
    if (s->v && !s->v->bad && c->cfg->paths.org_id_pattern) {
        regex_t re;
        ag_buf b;
        ag_buf_init(&b);
        /* Compiled the way the gate uses it: anchored around the whole id. */
        if (ag_buf_printf(&b, "^(%s)$", c->cfg->paths.org_id_pattern) != 0) {
            c->oom = true;
        } else {
            int e = regcomp(&re, b.p, REG_EXTENDED | REG_NOSUB);
            if (e != 0) {
                char why[128];
                regerror(e, &re, why, sizeof(why));
                err_at(c, s->v->line, s->v->col,
                       "paths.org_id_pattern: not a POSIX extended regular expression: %s", why);
            } else {
                regfree(&re);
            }
            if (c->cfg->paths.org_id_pattern[0] == '\0')
                err_at(c, s->v->line, s->v->col, "paths.org_id_pattern: must not be empty");
        }
        ag_buf_free(&b);
    }
}

static const kdef log_defs[] = {
    {"access_log", K_STR, offsetof(cfg_log, access_log), 0, 0},
    {"level", K_STR, offsetof(cfg_log, level), 0, 0},
};

static void do_log(lctx *c, const ynode *n)
{
    kseen seen[AG_ARRAY_LEN(log_defs)];
    char qb[96];
    cfg_log *l = &c->cfg->log;
    if (!n || !expect_map(c, n, "log"))
        return;
    walk_map(c, n, "log", log_defs, AG_ARRAY_LEN(log_defs), l, seen);
    const kseen *s_lvl = SEEN(log_defs, seen, "level");
    const kseen *s_al = SEEN(log_defs, seen, "access_log");
    if (s_lvl->v && l->level && strcmp(l->level, "error") != 0 && strcmp(l->level, "warn") != 0 &&
        strcmp(l->level, "info") != 0 && strcmp(l->level, "debug") != 0)
        err_at(c, s_lvl->v->line, s_lvl->v->col,
               "log.level: expected error, warn, info or debug, got %s", QS(qb, l->level));
    if (s_al->v && l->access_log) {
        if (l->access_log[0] == '\0')
            err_at(c, s_al->v->line, s_al->v->col,
                   "log.access_log: must be stdout, off or a file path");
        else if (strcmp(l->access_log, "stdout") != 0 && strcmp(l->access_log, "off") != 0)
            resolve_in_place(c, &l->access_log);
    }
}

static const kdef up_defs[] = {
    {"url", K_STR, offsetof(cfg_upstream, url), 0, 0},
    {"connect_timeout_ms", K_LONG, offsetof(cfg_upstream, connect_timeout_ms), 1, 600000},
    {"timeout_ms", K_LONG, offsetof(cfg_upstream, timeout_ms), 1, 86400000},
    {"ca_file", K_STR, offsetof(cfg_upstream, ca_file), 0, 0},
};

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

static void do_upstreams(lctx *c, const ynode *n)
{
    cfg_config *cfg = c->cfg;
    char qb[96], where[160];

    if (!n) {
        err_at(c, 1, 1, "upstreams: missing; at least one upstream is required");
        return;
    }
    if (!expect_map(c, n, "upstreams"))
        return;
    if (n->n == 0) {
        err_at(c, n->line, n->col, "upstreams: at least one upstream is required");
        return;
    }
    /* Allocated once so routes can point into it. */
    cfg->upstreams = calloc(n->n / 2, sizeof(*cfg->upstreams));
    if (!cfg->upstreams) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        const ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (k->bad)
            continue;
        if (!valid_name(k->s)) {
            err_at(c, k->line, k->col,
                   "upstreams: name %s must be 1-64 characters of [A-Za-z0-9_.-]", QN(qb, k));
            continue;
        }
        cfg_upstream *u = &cfg->upstreams[cfg->nupstreams++];
        u->connect_timeout_ms = 2000;
        u->timeout_ms = 30000;
        u->line = k->line;
        u->col = k->col;
        u->name = ag_strdup(k->s);
        if (!u->name) {
            c->oom = true;
            return;
        }
        snprintf(where, sizeof(where), "upstreams.%s", k->s);
        const ynode *urlnode = NULL;
        if (v->bad)
            continue;
        if (v->kind == Y_SCALAR && !is_null(v)) {
            urlnode = v;
            get_str(c, v, where, &u->url);
        } else if (v->kind == Y_MAP) {
            kseen seen[AG_ARRAY_LEN(up_defs)];
            walk_map(c, v, where, up_defs, AG_ARRAY_LEN(up_defs), u, seen);
            urlnode = SEEN(up_defs, seen, "url")->v;
            if (!urlnode)
                err_at(c, v->line, v->col, "%s: url is required", where);
            const kseen *s_ca = SEEN(up_defs, seen, "ca_file");
            if (s_ca->v && u->ca_file) {
                char cw[200];
                snprintf(cw, sizeof(cw), "%s.ca_file", where);
                resolve_in_place(c, &u->ca_file);
                check_readable(c, s_ca, cw, u->ca_file, false);
                if (u->url && strncmp(u->url, "https://", 8) != 0)
                    err_at(c, s_ca->v->line, s_ca->v->col, "%s: only used with an https:// url",
                           cw);
            }
        } else {
            err_at(c, v->line, v->col, "%s: expected a url or a mapping, got %s", where,
                   kind_name(v));
            continue;
        }
        if (urlnode && u->url) {
            const char *why = url_problem(u->url);
            if (why) {
                err_at(c, urlnode->line, urlnode->col, "%s.url: %s", where, why);
            } else {
                size_t l = strlen(u->url);
                while (l > 0 && u->url[l - 1] == '/')
                    u->url[--l] = '\0';
            }
        }
    }
}

/* ---- routes --------------------------------------------------------------- */

typedef struct rtmp {
    char *path, *policy, *role, *permission, *org_id_from, *upstream;
} rtmp;

static const kdef route_defs[] = {
    {"path", K_STR, offsetof(rtmp, path), 0, 0},
    {"methods", K_NODE, 0, 0, 0},
    {"policy", K_STR, offsetof(rtmp, policy), 0, 0},
    {"role", K_STR, offsetof(rtmp, role), 0, 0},
    {"permission", K_STR, offsetof(rtmp, permission), 0, 0},
    {"permissions", K_NODE, 0, 0, 0},
    {"org_id_from", K_STR, offsetof(rtmp, org_id_from), 0, 0},
    {"upstream", K_STR, offsetof(rtmp, upstream), 0, 0},
};

/* Does the (valid) template have a {name} segment? */
static bool tmpl_has_param(const char *tmpl, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        if (strncmp(p + 1, name, nl) == 0 && p[1 + nl] == '}')
            return true;
    }
    return false;
}

static bool valid_query_name(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || ch == '&' || ch == '=' || ch == '#' || ch == '%' ||
            ch == '+')
            return false;
    }
    return true;
}

static void parse_methods(lctx *c, const ynode *l, const char *rname, unsigned *out)
{
    char qb[96];
    unsigned mask = 0;
    if (l->bad)
        return;
    if (l->kind != Y_SEQ) {
        err_at(c, l->line, l->col, "route %s: methods: expected a list like [GET, POST], got %s",
               rname, kind_name(l));
        return;
    }
    if (l->n == 0) {
        err_at(c, l->line, l->col, "route %s: methods: empty list (omit it for all methods)",
               rname);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        const ynode *m = l->kids[i];
        if (m->bad)
            continue;
        if (m->kind != Y_SCALAR || is_null(m)) {
            err_at(c, m->line, m->col, "route %s: methods: expected a method name, got %s", rname,
                   kind_name(m));
            continue;
        }
        unsigned bit = hx_method_bit(m->s);
        if (bit == 0) {
            err_at(c, m->line, m->col,
                   "route %s: unknown method %s (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
                   rname, QN(qb, m));
            continue;
        }
        if (mask & bit) {
            err_at(c, m->line, m->col, "route %s: method %s listed twice", rname, QN(qb, m));
            continue;
        }
        mask |= bit;
    }
    if (mask)
        *out = mask;
}

static void warn_space(lctx *c, const ynode *v, const char *rname, const char *key, const char *s)
{
    size_t l = strlen(s);
    if (l && (s[0] == ' ' || s[0] == '\t' || s[l - 1] == ' ' || s[l - 1] == '\t'))
        warn_at(c, v->line, v->col,
                "route %s: %s has leading or trailing whitespace (comparisons are exact)", rname,
                key);
}

/* Header names an org source may not use because the gateway strips them. */
static bool header_is_stripped(const cfg_identity *id, const char *h)
{
    size_t l = strlen(h);
    if (ag_streq_ci(h, l, id->user_header) || ag_streq_ci(h, l, id->org_header) ||
        ag_streq_ci(h, l, "authorization") || hx_is_hop_by_hop(h, l))
        return true;
    for (size_t i = 0; i < id->nstrip_headers; i++)
        if (ag_streq_ci(h, l, id->strip_headers[i]))
            return true;
    return false;
}

static void do_route(lctx *c, const ynode *n, size_t idx, rt_table *table)
{
    cfg_config *cfg = c->cfg;
    cfg_route *r = &cfg->routes[idx];
    rtmp t = {0};
    kseen seen[AG_ARRAY_LEN(route_defs)];
    char qb[96], rname[96], where[160];
    bool ok = true;

    r->line = n->line;
    r->col = n->col;
    r->index = idx;
    r->methods = HX_M_ALL;
    snprintf(rname, sizeof(rname), "#%zu", idx + 1);
    if (!expect_map(c, n, "routes[]"))
        return;
    walk_map(c, n, "route", route_defs, AG_ARRAY_LEN(route_defs), &t, seen);
    const kseen *s_path = SEEN(route_defs, seen, "path");
    const kseen *s_meth = SEEN(route_defs, seen, "methods");
    const kseen *s_pol = SEEN(route_defs, seen, "policy");
    const kseen *s_role = SEEN(route_defs, seen, "role");
    const kseen *s_perm = SEEN(route_defs, seen, "permission");
    const kseen *s_perms = SEEN(route_defs, seen, "permissions");
    const kseen *s_org = SEEN(route_defs, seen, "org_id_from");
    const kseen *s_up = SEEN(route_defs, seen, "upstream");

    if (t.path) {
        QS(rname, t.path);
        char why[160];
        if (rt_template_check(t.path, why, sizeof(why)) != 0) {
            err_at(c, s_path->v->line, s_path->v->col, "route %s: %s", rname, why);
            ok = false;
        }
    } else {
        if (!s_path->v)
            err_at(c, n->line, n->col, "route %s: path is required", rname);
        ok = false;
    }
    snprintf(where, sizeof(where), "route %s", rname);
    if (s_meth->v)
        parse_methods(c, s_meth->v, rname, &r->methods);

    /* policy and its arguments */
    bool have_kind = false;
    if (t.policy) {
        if (pol_kind_from_name(t.policy, &r->policy.kind) == 0) {
            have_kind = true;
        } else {
            ag_buf b;
            ag_buf_init(&b);
            for (int k = 0; k < POL__COUNT; k++)
                ag_buf_printf(&b, "%s%s", k ? ", " : "", pol_kind_name((pol_kind)k));
            err_at(c, s_pol->v->line, s_pol->v->col, "%s: unknown policy %s (one of %s)", where,
                   QS(qb, t.policy), b.p ? b.p : "");
            ag_buf_free(&b);
        }
    } else if (!s_pol->v) {
        err_at(c, n->line, n->col, "%s: policy is required", where);
    }
    if (have_kind) {
        pol_kind k = r->policy.kind;
        bool takes_role = k == POL_ORG_MIN_ROLE || k == POL_ORG_EXACT_ROLE;
        bool takes_perm = k == POL_ORG_PERMISSION;
        bool takes_perms = k == POL_ORG_ALL_PERMISSIONS;
        const char *pname = pol_kind_name(k);
        if (s_role->v && !takes_role)
            err_at(c, s_role->k->line, s_role->k->col, "%s: policy %s does not take a role", where,
                   pname);
        if (s_perm->v && !takes_perm)
            err_at(c, s_perm->k->line, s_perm->k->col, "%s: policy %s does not take a permission%s",
                   where, pname, takes_perms ? " (use permissions: [...])" : "");
        if (s_perms->v && !takes_perms)
            err_at(c, s_perms->k->line, s_perms->k->col,
                   "%s: policy %s does not take permissions%s", where, pname,
                   takes_perm ? " (use permission: NAME)" : "");
        if (takes_role) {
            if (!s_role->v)
                err_at(c, n->line, n->col, "%s: policy %s needs a role", where, pname);
            else if (t.role && t.role[0] == '\0')
                err_at(c, s_role->v->line, s_role->v->col, "%s: role must not be empty", where);
            else if (t.role) {
                warn_space(c, s_role->v, rname, "role", t.role);
                r->policy.role = t.role;
                t.role = NULL;
            }
        }
        if (takes_perm) {
            if (!s_perm->v)
                err_at(c, n->line, n->col, "%s: policy %s needs a permission", where, pname);
            else if (t.permission && t.permission[0] == '\0')
                err_at(c, s_perm->v->line, s_perm->v->col, "%s: permission must not be empty",
                       where);
            else if (t.permission) {
                warn_space(c, s_perm->v, rname, "permission", t.permission);
                r->policy.permission = t.permission;
                t.permission = NULL;
            }
        }
        if (takes_perms) {
            const ynode *l = s_perms->v;
            if (!l) {
                err_at(c, n->line, n->col, "%s: policy %s needs permissions: [...]", where, pname);
            } else if (!l->bad && l->kind != Y_SEQ) {
                err_at(c, l->line, l->col, "%s: permissions: expected a list, got %s", where,
                       kind_name(l));
            } else if (!l->bad) {
                /* The libraries define has_all([]) as true (their own tests
                 * check it), so an empty list is legal; it is the same as
                 * require_org_member, which is likely not what was meant. */
                if (l->n == 0)
                    warn_at(c, l->line, l->col,
                            "%s: permissions: [] requires no permission at all (same as "
                            "require_org_member)",
                            where);
                for (size_t i = 0; i < l->n; i++) {
                    char *p = NULL;
                    char pw[200];
                    snprintf(pw, sizeof(pw), "%s: permissions[]", where);
                    if (get_str(c, l->kids[i], pw, &p) != 0)
                        continue;
                    if (p[0] == '\0') {
                        err_at(c, l->kids[i]->line, l->kids[i]->col,
                               "%s: permissions: entries must not be empty", where);
                        free(p);
                        continue;
                    }
                    warn_space(c, l->kids[i], rname, "a permission", p);
                    if (push_str(&r->policy.permissions, &r->policy.npermissions, p) != 0) {
                        free(p);
                        c->oom = true;
                    }
                }
            }
        }

        /* org source */
        if (pol_needs_org(k)) {
            const char *src = t.org_id_from;
            if (!s_org->v) {
                if (t.path && tmpl_has_param(t.path, "org_id")) {
                    r->org_kind = CFG_ORG_PATH;
                    r->org_name = ag_strdup("org_id");
                    if (!r->org_name)
                        c->oom = true;
                } else {
                    err_at(c, n->line, n->col,
                           "%s: policy %s needs an org id: put {org_id} in the path or set "
                           "org_id_from",
                           where, pname);
                }
            } else if (src) {
                const char *colon = strchr(src, ':');
                size_t kl = colon ? (size_t)(colon - src) : strlen(src);
                const char *name = colon ? colon + 1 : NULL;
                const ynode *at = s_org->v;
                if (kl == 4 && strncmp(src, "path", 4) == 0) {
                    r->org_kind = CFG_ORG_PATH;
                    name = name ? name : "org_id";
                    if (t.path && ok && !tmpl_has_param(t.path, name))
                        err_at(c, at->line, at->col,
                               "%s: org_id_from %s but the path has no {%s} parameter", where,
                               QS(qb, src), name);
                } else if (kl == 5 && strncmp(src, "query", 5) == 0) {
                    r->org_kind = CFG_ORG_QUERY;
                    name = name ? name : "org_id";
                    if (!valid_query_name(name))
                        err_at(c, at->line, at->col, "%s: org_id_from: bad query parameter name %s",
                               where, QS(qb, name));
                } else if (kl == 6 && strncmp(src, "header", 6) == 0 && name) {
                    r->org_kind = CFG_ORG_HEADER;
                    if (!hx_valid_header_name(name, strlen(name)))
                        err_at(c, at->line, at->col, "%s: org_id_from: bad header name %s", where,
                               QS(qb, name));
                    else if (header_is_stripped(&cfg->identity, name))
                        err_at(c, at->line, at->col,
                               "%s: org_id_from: header %s is stripped or reserved by the gateway",
                               where, QS(qb, name));
                } else {
                    err_at(c, at->line, at->col,
                           "%s: org_id_from: expected path, path:NAME, query, query:NAME or "
                           "header:NAME, got %s",
                           where, QS(qb, src));
                    name = NULL;
                }
                if (name) {
                    r->org_name = ag_strdup(name);
                    if (!r->org_name)
                        c->oom = true;
                }
            }
        } else if (s_org->v) {
            err_at(c, s_org->k->line, s_org->k->col,
                   "%s: policy %s does not use an org id; remove org_id_from", where, pname);
        }
    }

    /* upstream: every route forwards somewhere */
    if (t.upstream) {
        for (size_t i = 0; i < cfg->nupstreams; i++)
            if (strcmp(cfg->upstreams[i].name, t.upstream) == 0)
                r->upstream = &cfg->upstreams[i];
        if (!r->upstream)
            err_at(c, s_up->v->line, s_up->v->col, "%s: unknown upstream %s", where,
                   QS(qb, t.upstream));
    } else if (!s_up->v) {
        if (cfg->nupstreams == 1)
            r->upstream = &cfg->upstreams[0];
        else if (cfg->nupstreams > 1)
            err_at(c, n->line, n->col, "%s: upstream is required when %zu upstreams are defined",
                   where, cfg->nupstreams);
    }

    if (t.path) {
        r->path = t.path;
        t.path = NULL;
        if (ok && table) {
            void *dup = NULL;
            char why[256];
            int rc = rt_add(table, r->path, r->methods, r, &dup, why, sizeof(why));
            if (rc == -2 && dup) {
                const cfg_route *first = dup;
                err_at(c, n->line, n->col,
                       "%s: same path shape and overlapping methods as route %s at line %d "
                       "(ambiguous; give them disjoint methods or different paths)",
                       where, QS(qb, first->path), first->line);
            } else if (rc != 0) {
                err_at(c, n->line, n->col, "%s: %s", where, why);
            }
        }
    }
    free(t.path);
    free(t.policy);
    free(t.role);
    free(t.permission);
    free(t.org_id_from);
    free(t.upstream);
}

/* A template split into segments, for the lint below. */
static size_t split_segs(const char *p, const char **segs, size_t *lens, size_t max)
{
    size_t n = 0;
    /* Invalid templates (already reported) may be empty or lack the '/'. */
    if (p[0] != '/' || strcmp(p, "/") == 0)
        return 0;
    p++;
    while (n < max) {
        const char *e = strchr(p, '/');
        segs[n] = p;
        lens[n] = e ? (size_t)(e - p) : strlen(p);
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

/* Warn about public routes carved out of a protected subtree: e.g. a public
 * /api/org/{org_id}/x next to a protected /api/org/{org_id}/ ** route. Usually an
 * accident, since everything else under the prefix needs a token. */
static void lint_public_holes(lctx *c)
{
    cfg_config *cfg = c->cfg;
    const char *ps[64], *rs[64];
    size_t pl[64], rl[64];
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const cfg_route *p = &cfg->routes[i];
        if (!p->path || !pol_needs_token(p->policy.kind))
            continue;
        size_t np = split_segs(p->path, ps, pl, 64);
        if (np == 0 || pl[np - 1] != 2 || strncmp(ps[np - 1], "**", 2) != 0)
            continue;
        np--; /* the prefix before ** */
        for (size_t j = 0; j < cfg->nroutes; j++) {
            const cfg_route *r = &cfg->routes[j];
            if (!r->path || r->policy.kind != POL_PUBLIC || !(r->methods & p->methods))
                continue;
            size_t nr = split_segs(r->path, rs, rl, 64);
            if (nr < np)
                continue;
            bool overlap = true;
            for (size_t s = 0; s < np && overlap; s++) {
                bool pp = ps[s][0] == '{', rp = rs[s][0] == '{';
                bool rstar = rl[s] == 2 && strncmp(rs[s], "**", 2) == 0;
                if (rstar)
                    overlap = false; /* a broader public route: the protected one wins */
                else if (!pp && !rp)
                    overlap = pl[s] == rl[s] && memcmp(ps[s], rs[s], pl[s]) == 0;
            }
            if (overlap)
                warn_at(c, r->line, r->col,
                        "route \"%s\" is public but lies under protected route \"%s\" (line %d); "
                        "it is reachable without a token",
                        r->path, p->path, p->line);
        }
    }
}

static void do_routes(lctx *c, const ynode *n)
{
    cfg_config *cfg = c->cfg;
    rt_table *table = NULL;
    if (!n) {
        err_at(c, 1, 1, "routes: missing; at least one route is required");
        return;
    }
    if (n->bad)
        return;
    if (n->kind != Y_SEQ) {
        err_at(c, n->line, n->col, "routes: expected a list, got %s", kind_name(n));
        return;
    }
    if (n->n == 0) {
        err_at(c, n->line, n->col, "routes: at least one route is required");
        return;
    }
    cfg->routes = calloc(n->n, sizeof(*cfg->routes));
    table = rt_new();
    if (!cfg->routes || !table) {
        c->oom = true;
        goto out;
    }
    cfg->nroutes = n->n;
    for (size_t i = 0; i < n->n && !c->oom; i++)
        do_route(c, n->kids[i], i, table);
    lint_public_holes(c);
out:
    rt_free(table);
}

/* ---- top level ------------------------------------------------------------ */

static const kdef top_defs[] = {
    {"listen", K_STR, offsetof(cfg_config, listen), 0, 0},
    {"admin_listen", K_STR, offsetof(cfg_config, admin_listen), 0, 0},
    {"workers", K_INT, offsetof(cfg_config, workers), 0, 1024},
    {"shutdown_grace_ms", K_LONG, offsetof(cfg_config, shutdown_grace_ms), 0, 3600000},
    {"trust_forwarded_headers", K_BOOL, offsetof(cfg_config, trust_forwarded_headers), 0, 0},
    {"auth", K_NODE, 0, 0, 0},
    {"upstreams", K_NODE, 0, 0, 0},
    {"identity", K_NODE, 0, 0, 0},
    {"limits", K_NODE, 0, 0, 0},
    {"paths", K_NODE, 0, 0, 0},
    {"log", K_NODE, 0, 0, 0},
    {"routes", K_NODE, 0, 0, 0},
};

static int set_defaults(cfg_config *cfg)
{
    cfg->listen = ag_strdup("127.0.0.1:8080");
    cfg->shutdown_grace_ms = 10000;
    cfg->auth.api_base_url = ag_strdup("https://propelauth-api.com");
    cfg->auth.leeway_seconds = 60;
    cfg->auth.refresh_interval_s = 3600;
    cfg->auth.previous_key_grace_s = 600;
    cfg->auth.fetch_timeout_ms = 10000;
    cfg->auth.token_cache_entries = 10000;
    cfg->identity.user_header = ag_strdup("X-User");
    cfg->identity.org_header = ag_strdup("X-Org");
    cfg->identity.user_orgs = ID_ORGS_ALL;
    cfg->identity.forward_authorization = true;
    cfg->limits = (cfg_limits){
        .max_header_bytes = 16384,
        .max_headers = 100,
        .max_uri_bytes = 8192,
        .max_token_bytes = 49152,
        .max_body_bytes = 0,
        .max_connections = 10000,
        .max_connections_per_ip = 0,
        .idle_timeout_ms = 60000,
        .request_timeout_ms = 10000,
        .max_identity_bytes = 65536,
        .max_response_header_bytes = 65536,
    };
    cfg->paths.org_id_pattern = ag_strdup(CFG_DEFAULT_ORG_ID_PATTERN);
    cfg->log.access_log = ag_strdup("stdout");
    cfg->log.level = ag_strdup("info");
    if (!cfg->listen || !cfg->auth.api_base_url || !cfg->identity.user_header ||
        !cfg->identity.org_header || !cfg->paths.org_id_pattern || !cfg->log.access_log ||
        !cfg->log.level)
        return -1;
    return 0;
}

static void validate_top(lctx *c, const kseen *seen)
{
    cfg_config *cfg = c->cfg;
    const kseen *s_listen = SEEN(top_defs, seen, "listen");
    const kseen *s_admin = SEEN(top_defs, seen, "admin_listen");
    char qb[96];
    if (s_listen->v && cfg->listen && !valid_listen(cfg->listen))
        err_at(c, s_listen->v->line, s_listen->v->col,
               "listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got %s",
               QS(qb, cfg->listen));
    if (s_admin->v && cfg->admin_listen) {
        if (!valid_listen(cfg->admin_listen))
            err_at(c, s_admin->v->line, s_admin->v->col,
                   "admin_listen: expected HOST:PORT (e.g. 127.0.0.1:9090), got %s",
                   QS(qb, cfg->admin_listen));
        else if (cfg->listen && strcmp(cfg->listen, cfg->admin_listen) == 0)
            err_at(c, s_admin->v->line, s_admin->v->col, "admin_listen: must differ from listen");
    }
}

static void hash_hex(const char *data, size_t len, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    memset(out, 0, 17);
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8)
        return;
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
}

static int load(const char *name, const char *basedir, const char *yaml, size_t len,
                cfg_config **out, cfg_diags *diags)
{
    int rc = -1;
    lctx c = {0};
    ynode *root = NULL;
    cfg_config *cfg = NULL;

    *out = NULL;
    c.file = name;
    if (basedir) {
        c.basedir = ag_strdup(basedir);
        if (!c.basedir)
            c.oom = true;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || set_defaults(cfg) != 0) {
        c.oom = true;
        goto out;
    }
    cfg->file = ag_strdup(name);
    if (!cfg->file) {
        c.oom = true;
        goto out;
    }
    c.cfg = cfg;
    hash_hex(yaml, len, cfg->hash);

    if (len > CFG_MAX_FILE_BYTES) {
        err_at(&c, 1, 1, "file larger than %u bytes", CFG_MAX_FILE_BYTES);
        goto out;
    }
    if (build_tree(&c, yaml, len, &root) != 0)
        goto out;
    if (!root || is_null(root)) {
        /* Never "no routes": an empty file is an error (docs/security.md case 87). */
        err_at(&c, 1, 1, "configuration is empty");
        goto out;
    }
    if (root->bad)
        goto out;
    if (root->kind != Y_MAP) {
        err_at(&c, root->line, root->col, "top level: expected a mapping, got %s", kind_name(root));
        goto out;
    }
    kseen seen[AG_ARRAY_LEN(top_defs)];
    walk_map(&c, root, "", top_defs, AG_ARRAY_LEN(top_defs), cfg, seen);
    validate_top(&c, seen);
    do_identity(&c, SEEN(top_defs, seen, "identity")->v);
    do_auth(&c, SEEN(top_defs, seen, "auth")->k, SEEN(top_defs, seen, "auth")->v);
    do_limits(&c, SEEN(top_defs, seen, "limits")->v);
    do_paths(&c, SEEN(top_defs, seen, "paths")->v);
    do_log(&c, SEEN(top_defs, seen, "log")->v);
    do_upstreams(&c, SEEN(top_defs, seen, "upstreams")->v);
    do_routes(&c, SEEN(top_defs, seen, "routes")->v);
    if (c.nerrors == 0 && !c.oom) {
        *out = cfg;
        cfg = NULL;
        rc = 0;
    }
out:
    flush_diags(&c, diags);
    if (c.oom || diags->nerrors > 0) {
        rc = -1;
        if (*out) {
            cfg_free(*out);
            *out = NULL;
        }
    }
    for (size_t i = 0; i < c.ndiags; i++)
        free(c.diags[i].text);
    free(c.diags);
    free(c.basedir);
    ynode_free(root);
    cfg_free(cfg);
    return rc;
}

/* Directory relative paths in the file are resolved against: the config file's
 * own directory, made absolute so a later chdir (or systemd's cwd) cannot
 * change what the paths mean. NULL when it cannot be determined. */
static char *base_dir_of(const char *path)
{
    char *copy = ag_strdup(path);
    char *res = NULL;
    if (!copy)
        return NULL;
    res = realpath(dirname(copy), NULL);
    free(copy);
    return res;
}

int cfg_load_string(const char *name, const char *yaml, size_t len, cfg_config **out,
                    cfg_diags *diags)
{
    char *dir = base_dir_of(name);
    int rc = load(name, dir, yaml, len, out, diags);
    free(dir);
    return rc;
}

int cfg_load_file(const char *path, cfg_config **out, cfg_diags *diags)
{
    int rc = -1;
    int fd = -1;
    char *data = NULL;
    char *dir = NULL;
    size_t cap = 0, len = 0;
    struct stat st;
    ag_buf b;
    ag_buf_init(&b);

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        ag_buf_printf(&b, "%s:1:1: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ag_buf_printf(&b, "%s:1:1: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > CFG_MAX_FILE_BYTES) {
        ag_buf_printf(&b, "%s:1:1: file larger than %u bytes", path, CFG_MAX_FILE_BYTES);
        goto fail;
    }
    /* +1 so a file that grew since fstat is noticed rather than cut short. */
    cap = (size_t)st.st_size + 1;
    data = malloc(cap);
    if (!data) {
        ag_buf_printf(&b, "%s:1:1: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ag_buf_printf(&b, "%s:1:1: read error: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            ag_buf_printf(&b, "%s:1:1: file changed while reading; try again", path);
            goto fail;
        }
    }
    dir = base_dir_of(path);
    rc = load(path, dir, data, len, out, diags);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        ag_buf_printf(&b,
                      "%s:1:1: warning: file is writable by %s (mode %04o); whoever can "
                      "write it controls who is let through",
                      path, (st.st_mode & S_IWOTH) ? "others" : "group",
                      (unsigned)(st.st_mode & 07777));
        char *w = ag_buf_steal(&b);
        if (w && push_str(&diags->warnings, &diags->nwarnings, w) != 0)
            free(w);
    }
    goto out;
fail : {
    char *e = ag_buf_steal(&b);
    if (!e || push_str(&diags->errors, &diags->nerrors, e) != 0) {
        free(e);
        e = ag_strdup("out of memory");
        if (e && push_str(&diags->errors, &diags->nerrors, e) != 0)
            free(e);
    }
    rc = -1;
}
out:
    if (fd >= 0)
        close(fd);
    if (data)
        OPENSSL_cleanse(data, cap);
    free(data);
    free(dir);
    ag_buf_free(&b);
    return rc;
}

void cfg_free(cfg_config *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->listen);
    free(c->admin_listen);
    cfg_auth *a = &c->auth;
    free(a->auth_url);
    free(a->api_key_env);
    free(a->api_key_file);
    if (a->api_key) {
        OPENSSL_cleanse(a->api_key, strlen(a->api_key));
        free(a->api_key);
    }
    free(a->api_base_url);
    free(a->verifier_key_file);
    free(a->verifier_key_pem);
    free(a->issuer);
    free(a->ca_file);
    free(c->identity.user_header);
    free(c->identity.org_header);
    for (size_t i = 0; i < c->identity.nstrip_headers; i++)
        free(c->identity.strip_headers[i]);
    free(c->identity.strip_headers);
    free(c->paths.org_id_pattern);
    free(c->log.access_log);
    free(c->log.level);
    for (size_t i = 0; i < c->nupstreams; i++) {
        free(c->upstreams[i].name);
        free(c->upstreams[i].url);
        free(c->upstreams[i].ca_file);
    }
    free(c->upstreams);
    for (size_t i = 0; i < c->nroutes; i++) {
        free(c->routes[i].path);
        free(c->routes[i].org_name);
        pol_spec_free(&c->routes[i].policy);
    }
    free(c->routes);
    free(c);
}
