/* cfgload: the generic loader (see cfgload.h): YAML tree with positions,
 * diagnostics, typed access, table-driven mappings and did-you-mean. Nothing
 * here knows what auth, upstreams or routes mean; config.c and the section
 * files in cfgint.h do. Messages are sorted by position so output reads top-down. */
#include "cfgload.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util.h"

/* ---- diagnostics ---------------------------------------------------------- */

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
        cl_diag *p = realloc(c->diags, cap * sizeof(*p));
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
    c->diags[c->ndiags] = (cl_diag){line, col, c->ndiags, warn, ag_buf_steal(&b)};
    c->ndiags++;
}

void cl_err(lctx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, false, line, col, fmt, ap);
    va_end(ap);
}

void cl_warn(lctx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, true, line, col, fmt, ap);
    va_end(ap);
}

static int diag_cmp(const void *a, const void *b)
{
    const cl_diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

int cl_push_str(char ***arr, size_t *n, char *s)
{
    char **p = realloc(*arr, (*n + 1) * sizeof(*p));
    if (!p)
        return -1;
    *arr = p;
    p[(*n)++] = s;
    return 0;
}

/* Move sorted diagnostics into the caller's list. */
void cl_flush(lctx *c, cfg_diags *d)
{
    if (c->ndiags)
        qsort(c->diags, c->ndiags, sizeof(*c->diags), diag_cmp);
    for (size_t i = 0; i < c->ndiags; i++) {
        cl_diag *x = &c->diags[i];
        if (cl_push_str(x->warn ? &d->warnings : &d->errors, x->warn ? &d->nwarnings : &d->nerrors,
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
        if (extra && cl_push_str(&d->errors, &d->nerrors, extra) != 0)
            free(extra);
    }
    if (c->oom) {
        /* Whatever else happened, the caller must see a failure. */
        char *m = ag_strdup("out of memory while loading the configuration");
        if (m && cl_push_str(&d->errors, &d->nerrors, m) != 0)
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

/* A user string quoted for a message: printable ASCII only, cut at 60 bytes. */
const char *cl_qstr(char *buf, size_t cap, const char *s, size_t len)
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

/* ---- typed access --------------------------------------------------------- */

bool cl_is_null(const ynode *n)
{
    return n->kind == Y_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
            strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0);
}

const char *cl_kind_name(const ynode *n)
{
    if (n->kind == Y_MAP)
        return "a mapping";
    if (n->kind == Y_SEQ)
        return "a list";
    if (cl_is_null(n))
        return "nothing (null)";
    return "a scalar";
}

/* where: "auth.issuer" style path of the value, for messages. */
int cl_get_str(lctx *c, const ynode *n, const char *where, char **out)
{
    if (n->bad)
        return -1;
    if (n->kind != Y_SCALAR || cl_is_null(n)) {
        cl_err(c, n->line, n->col, "%s: expected a string, got %s", where, cl_kind_name(n));
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

int cl_get_bool(lctx *c, const ynode *n, const char *where, bool *out)
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
        cl_err(c, n->line, n->col, "%s: expected true or false, got %s", where, QN(qb, n));
    else
        cl_err(c, n->line, n->col, "%s: expected true or false, got %s", where, cl_kind_name(n));
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

int cl_get_int(lctx *c, const ynode *n, const char *where, long long min, long long max,
               long long *out)
{
    char qb[96];
    long long v;
    if (n->bad)
        return -1;
    if (n->kind != Y_SCALAR || cl_is_null(n)) {
        cl_err(c, n->line, n->col, "%s: expected an integer, got %s", where, cl_kind_name(n));
        return -1;
    }
    if (!n->plain || parse_ll(n->s, &v) != 0) {
        cl_err(c, n->line, n->col, "%s: expected an integer, got %s", where, QN(qb, n));
        return -1;
    }
    if (v < min || v > max) {
        cl_err(c, n->line, n->col, "%s: must be between %lld and %lld, got %lld", where, min, max,
               v);
        return -1;
    }
    *out = v;
    return 0;
}

/* Seconds as an integer, or a string "<n>s", "<n>m", "<n>h". */
int cl_get_duration(lctx *c, const ynode *n, const char *where, long long min, long long max,
                    long long *out)
{
    char qb[96];
    long long v;
    if (n->bad)
        return -1;
    if (n->kind == Y_SCALAR && n->plain && parse_ll(n->s, &v) == 0)
        goto range;
    if (n->kind != Y_SCALAR || cl_is_null(n) || n->len < 2) {
        cl_err(c, n->line, n->col,
               "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\"", where);
        return -1;
    }
    {
        char num[32];
        char unit = n->s[n->len - 1];
        long long mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
        if (mul == 0 || n->len - 1 >= sizeof(num) || n->s[0] == '-') {
            cl_err(c, n->line, n->col,
                   "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\", got %s",
                   where, QN(qb, n));
            return -1;
        }
        memcpy(num, n->s, n->len - 1);
        num[n->len - 1] = '\0';
        if (parse_ll(num, &v) != 0 || v > LLONG_MAX / mul) {
            cl_err(c, n->line, n->col,
                   "%s: expected seconds or a duration like \"30s\", \"10m\", \"1h\", got %s",
                   where, QN(qb, n));
            return -1;
        }
        v *= mul;
    }
range:
    if (v < min || v > max) {
        cl_err(c, n->line, n->col, "%s: must be between %lld and %lld seconds, got %lld", where,
               min, max, v);
        return -1;
    }
    *out = v;
    return 0;
}

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

bool cl_expect_map(lctx *c, const ynode *n, const char *where)
{
    if (n->bad)
        return false;
    if (n->kind != Y_MAP) {
        cl_err(c, n->line, n->col, "%s: expected a mapping, got %s", where, cl_kind_name(n));
        return false;
    }
    return true;
}

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

bool cl_valid_host(const char *s, size_t len)
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
bool cl_valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return false;
    if (s[0] == '[' && colon > s && colon[-1] != ']')
        return false;
    return cl_valid_host(s, (size_t)(colon - s)) && valid_port(colon + 1, strlen(colon + 1));
}

/* http(s)://host[:port][/path] without credentials, query or fragment. Returns
 * NULL when fine, else why. */
const char *cl_url_problem(const char *u)
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
    if (!cl_valid_host(auth, hlen))
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
void cl_resolve_in_place(lctx *c, char **path)
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

void cl_ctx_free(lctx *c)
{
    for (size_t i = 0; i < c->ndiags; i++)
        free(c->diags[i].text);
    free(c->diags);
    free(c->basedir);
    free(c->misses);
}

/* ---- did you mean ----------------------------------------------------------- */

const char *cl_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t wl = strlen(word), best_d = SIZE_MAX;
    /* A wrong case is the likeliest slip and is never a different word here. */
    for (size_t i = 0; i < n; i++)
        if (strlen(cands[i]) == wl && strncasecmp(cands[i], word, wl) == 0)
            return cands[i];
    /* Allow more edits in longer words: require_org_member_with_min_role is
     * four edits from its policy, a useful hint; "log" is not "org". */
    size_t bound = wl / 4 > 2 ? wl / 4 : 2;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        if (d <= bound && d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    if (best)
        return best;
    /* "warning" for warn, "perm" for permission: one is the start of the
     * other. Only a unique such candidate is a useful hint. */
    for (size_t i = 0; i < n; i++) {
        size_t cl = strlen(cands[i]), m = cl < wl ? cl : wl;
        if (m >= 3 && strncmp(cands[i], word, m) == 0) {
            if (best)
                return NULL;
            best = cands[i];
        }
    }
    return best;
}

/* ---- table-driven mappings -------------------------------------------------- */

/* The row's name after scope + ".", when the row belongs to scope directly. */
static const char *leaf_of(const cfg_key *k, const char *scope)
{
    size_t sl = strlen(scope);
    if (sl == 0)
        return strchr(k->name, '.') || strchr(k->name, '[') ? NULL : k->name;
    if (strncmp(k->name, scope, sl) != 0 || k->name[sl] != '.')
        return NULL;
    const char *leaf = k->name + sl + 1;
    return strchr(leaf, '.') ? NULL : leaf;
}

static void remember_miss(lctx *c, const ynode *m, const char *meant)
{
    cl_miss *p = realloc(c->misses, (c->nmisses + 1) * sizeof(*p));
    if (!p) {
        c->oom = true;
        return;
    }
    c->misses = p;
    c->misses[c->nmisses++] = (cl_miss){m, meant};
}

bool cl_misspelt(const lctx *c, const ynode *m, const char *leaf)
{
    for (size_t i = 0; i < c->nmisses; i++)
        if (c->misses[i].map == m && strcmp(c->misses[i].meant, leaf) == 0)
            return true;
    return false;
}

const kseen *cl_seen(const cl_walk *w, const char *leaf)
{
    static const kseen none = {NULL, NULL};
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(leaf_of(w->rows[i], w->scope), leaf) == 0)
            return &w->seen[i];
    return &none;
}

/* "expected all, requested or none, got X (did you mean "all"?)" */
static int get_choice(lctx *c, const ynode *v, const char *where, const cfg_key *k, int *out)
{
    char *s = NULL;
    char qb[96];
    const char *names[16];
    size_t n = 0;
    int rc = -1;
    if (cl_get_str(c, v, where, &s) != 0)
        return -1;
    for (const cfg_choice *ch = k->choices; ch->name && n < AG_ARRAY_LEN(names); ch++) {
        if (strcmp(ch->name, s) == 0) {
            *out = ch->value;
            rc = 0;
            goto out;
        }
        names[n++] = ch->name;
    }
    {
        ag_buf b;
        ag_buf_init(&b);
        for (size_t i = 0; i < n; i++)
            ag_buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
        const char *near = cl_suggest(s, names, n);
        cl_err(c, v->line, v->col, "%s: expected %s, got %s%s%s%s", where, b.p ? b.p : "",
               QS(qb, s), near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
        ag_buf_free(&b);
    }
out:
    free(s);
    return rc;
}

static void convert(lctx *c, const cfg_key *k, const ynode *v, const char *where, void *base)
{
    char *p = (char *)base + k->off;
    long long ll = 0;
    int e = 0;
    switch (k->type) {
    case CK_NODE:
        break;
    case CK_STR:
        if (k->choices) {
            char *s = NULL;
            if (get_choice(c, v, where, k, &e) == 0 && cl_get_str(c, v, where, &s) == 0) {
                free(*(char **)(void *)p);
                *(char **)(void *)p = s;
            }
        } else {
            cl_get_str(c, v, where, (char **)(void *)p);
        }
        break;
    case CK_BOOL:
        cl_get_bool(c, v, where, (bool *)(void *)p);
        break;
    case CK_ENUM:
        if (get_choice(c, v, where, k, &e) == 0)
            *(int *)(void *)p = e;
        break;
    case CK_INT:
        if (cl_get_int(c, v, where, k->min, k->max, &ll) == 0)
            *(int *)(void *)p = (int)ll;
        break;
    case CK_LONG:
        if (cl_get_int(c, v, where, k->min, k->max, &ll) == 0)
            *(long *)(void *)p = (long)ll;
        break;
    case CK_SIZE:
        if (cl_get_int(c, v, where, k->min, k->max, &ll) == 0)
            *(size_t *)(void *)p = (size_t)ll;
        break;
    case CK_U64:
        if (cl_get_int(c, v, where, k->min, k->max, &ll) == 0)
            *(uint64_t *)(void *)p = (uint64_t)ll;
        break;
    case CK_DUR:
        if (cl_get_duration(c, v, where, k->min, k->max, &ll) == 0)
            *(long *)(void *)p = (long)ll;
        break;
    }
}

void cl_walk_map(lctx *c, const ynode *m, const char *scope, const char *where_prefix, void *base,
                 cl_walk *w)
{
    char qb[96];
    char where[200];
    const char *names[CL_SCOPE_MAX];
    const char *prefix = where_prefix ? where_prefix : scope;
    memset(w, 0, sizeof(*w));
    w->scope = scope;
    for (size_t i = 0; i < cfg_nkeys && w->n < CL_SCOPE_MAX; i++) {
        const char *leaf = leaf_of(&cfg_keys[i], scope);
        if (leaf) {
            names[w->n] = leaf;
            w->rows[w->n++] = &cfg_keys[i];
        }
    }
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = m->kids[i], *v = m->kids[i + 1];
        if (k->bad)
            continue;
        size_t d;
        for (d = 0; d < w->n; d++)
            if (strcmp(k->s, names[d]) == 0)
                break;
        if (d == w->n) {
            const char *near = cl_suggest(k->s, names, w->n);
            cl_err(c, k->line, k->col, "unknown key %s%s%s%s%s%s", QN(qb, k),
                   prefix[0] ? " in " : "", prefix, near ? " (did you mean \"" : "",
                   near ? near : "", near ? "\"?)" : "");
            if (near)
                remember_miss(c, m, near);
            continue;
        }
        w->seen[d].k = k;
        w->seen[d].v = v;
        snprintf(where, sizeof(where), "%s%s%s", prefix, prefix[0] ? "." : "", names[d]);
        convert(c, w->rows[d], v, where, base);
    }
}

int cl_apply_defaults(const char *scope, void *base)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (!k->def || !leaf_of(k, scope))
            continue;
        char *p = (char *)base + k->off;
        long long v = strtoll(k->def, NULL, 10);
        switch (k->type) {
        case CK_NODE:
            break;
        case CK_STR:
            free(*(char **)(void *)p);
            *(char **)(void *)p = ag_strdup(k->def);
            if (!*(char **)(void *)p)
                return -1;
            break;
        case CK_BOOL:
            *(bool *)(void *)p = strcmp(k->def, "true") == 0;
            break;
        case CK_ENUM:
            for (const cfg_choice *ch = k->choices; ch->name; ch++)
                if (strcmp(ch->name, k->def) == 0)
                    *(int *)(void *)p = ch->value;
            break;
        case CK_INT:
            *(int *)(void *)p = (int)v;
            break;
        case CK_LONG:
        case CK_DUR:
            *(long *)(void *)p = (long)v;
            break;
        case CK_SIZE:
            *(size_t *)(void *)p = (size_t)v;
            break;
        case CK_U64:
            *(uint64_t *)(void *)p = (uint64_t)v;
            break;
        }
    }
    return 0;
}

/* ---- reading the file ------------------------------------------------------- */

static void read_error(cfg_diags *d, ag_buf *b)
{
    char *e = ag_buf_steal(b);
    if (!e || cl_push_str(&d->errors, &d->nerrors, e) != 0) {
        free(e);
        e = ag_strdup("out of memory");
        if (e && cl_push_str(&d->errors, &d->nerrors, e) != 0)
            free(e);
    }
}

int cl_read_file(const char *path, char **data, size_t *len, size_t *cap, unsigned *mode,
                 cfg_diags *d)
{
    int rc = -1;
    int fd = -1;
    struct stat st;
    ag_buf b;
    ag_buf_init(&b);
    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        ag_buf_printf(&b, "%s:1:1: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ag_buf_printf(&b, "%s:1:1: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > CFG_MAX_FILE_BYTES) {
        ag_buf_printf(&b, "%s:1:1: file larger than %u bytes", path, CFG_MAX_FILE_BYTES);
        goto out;
    }
    /* +1 so a file that grew since fstat is noticed rather than cut short. */
    *cap = (size_t)st.st_size + 1;
    *data = malloc(*cap);
    if (!*data) {
        ag_buf_printf(&b, "%s:1:1: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, *data + *len, *cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ag_buf_printf(&b, "%s:1:1: read error: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        *len += (size_t)r;
        if (*len == *cap) {
            ag_buf_printf(&b, "%s:1:1: file changed while reading; try again", path);
            goto out;
        }
    }
    *mode = (unsigned)st.st_mode;
    rc = 0;
out:
    if (rc != 0) {
        read_error(d, &b);
        if (*data)
            OPENSSL_cleanse(*data, *cap);
        free(*data);
        *data = NULL;
    }
    if (fd >= 0)
        close(fd);
    ag_buf_free(&b);
    return rc;
}

void cl_hash16(const char *data, size_t len, char out[17])
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

/* Directory relative paths in the file are resolved against: the config file's
 * own directory, made absolute so a later chdir (or systemd's cwd) cannot
 * change what the paths mean. NULL when it cannot be determined. */
char *cl_base_dir(const char *path)
{
    char *copy = ag_strdup(path);
    char *res = NULL;
    if (!copy)
        return NULL;
    res = realpath(dirname(copy), NULL);
    free(copy);
    return res;
}
