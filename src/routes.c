/* routes: a segment trie. Each trie edge consumes exactly one path segment and
 * a final ** consumes the rest, so a match visits each trie node at most once:
 * matching costs O(path segments x log(fan-out)) whatever the table size. */
#include "routes.h"
#include "util.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_route {
    void *data;
    unsigned methods;
    char *names[RT_MAX_PARAMS]; /* by position; each route keeps its own names */
    size_t nnames;
    struct rt_route *next; /* same shape, disjoint methods; in insertion order */
} rt_route;

typedef struct lit_slot {
    uint64_t h;
    struct rt_node *node; /* NULL: empty slot */
} lit_slot;

typedef struct rt_node {
    char *seg; /* literal segment leading here (NULL for root and {param}) */
    size_t seglen;
    struct rt_node **lit; /* sorted by (seglen-aware) byte order for bsearch */
    size_t nlit, caplit;
    /* Nodes with many literal children also get a hash index, so a lookup
     * among thousands of siblings touches one or two slots instead of a
     * binary search that chases a pointer per step. */
    lit_slot *idx;
    size_t idxcap; /* power of two, or 0 */
    struct rt_node *param;
    rt_route *term; /* routes ending exactly here */
    rt_route *star; /* routes ending with ** here */
} rt_node;

struct rt_table {
    rt_node root;
};

/* Per-process seed: where a segment lands in an index is not predictable from
 * outside, so crafted paths cannot pile up in one probe chain. */
static uint64_t g_lit_seed;

rt_table *rt_new(void)
{
    if (!__atomic_load_n(&g_lit_seed, __ATOMIC_RELAXED)) {
        uint64_t seed = 0;
        if (ag_random(&seed, sizeof(seed)) != 0 || seed == 0)
            seed = 0x9E3779B97F4A7C15ull ^ ag_now_mono_ns();
        __atomic_store_n(&g_lit_seed, seed, __ATOMIC_RELAXED);
    }
    return calloc(1, sizeof(rt_table));
}

static void route_list_free(rt_route *r)
{
    while (r) {
        rt_route *next = r->next;
        for (size_t i = 0; i < r->nnames; i++)
            free(r->names[i]);
        free(r);
        r = next;
    }
}

/* Iterative over siblings but recursive over depth; depth is bounded by the
 * longest template, which the config loader caps in size. */
static void node_clear(rt_node *n)
{
    for (size_t i = 0; i < n->nlit; i++) {
        node_clear(n->lit[i]);
        free(n->lit[i]);
    }
    free(n->lit);
    free(n->idx);
    if (n->param) {
        node_clear(n->param);
        free(n->param);
    }
    route_list_free(n->term);
    route_list_free(n->star);
    free(n->seg);
}

void rt_free(rt_table *t)
{
    if (!t)
        return;
    node_clear(&t->root);
    free(t);
}

/* ---- segment iteration ------------------------------------------------------
 * A path "/" has zero segments; otherwise the text after the leading '/' is
 * split on '/', so "/x/" is ["x", ""]: a trailing empty segment is real and only
 * a ** can absorb it. `rest` NULL means no segments remain. */

static const char *first_rest(const char *p, size_t len, const char **end)
{
    *end = p + len;
    if (len <= 1)
        return NULL;
    return p + 1;
}

/* Cut one segment from rest; returns the new rest (NULL when done). */
static const char *next_seg(const char *rest, const char *end, const char **seg, size_t *seglen)
{
    const char *slash = memchr(rest, '/', (size_t)(end - rest));
    *seg = rest;
    if (!slash) {
        *seglen = (size_t)(end - rest);
        return NULL;
    }
    *seglen = (size_t)(slash - rest);
    return slash + 1;
}

/* ---- template syntax ------------------------------------------------------ */

typedef enum seg_kind { SEG_LIT, SEG_PARAM, SEG_STAR } seg_kind;

typedef struct tseg {
    seg_kind kind;
    const char *s; /* literal text or parameter name */
    size_t len;
} tseg;

/* Bound on segments per template, which also bounds trie depth and recursion. */
#define RT_MAX_SEGS 64

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int is_unreserved(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* pchar minus '*' (reserved for **) and minus '%', which is checked apart. */
static int is_lit_char(int c)
{
    if (is_unreserved(c))
        return 1;
    return c != '\0' && strchr("!$&'()+,;=:@", c) != NULL;
}

static int is_name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* A literal segment must be spelled the way the canonicalizer spells paths
 * (unreserved bytes decoded, other escapes upper-case hex), otherwise the route
 * could never match. */
static int check_literal(const char *s, size_t len, char *err, size_t errlen)
{
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
        snprintf(err, errlen, "dot segment \"%.*s\" is not allowed in a route", (int)len, s);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0) {
                snprintf(err, errlen, "bad percent-escape in segment \"%.*s\"", (int)len, s);
                return -1;
            }
            if ((s[i + 1] >= 'a' && s[i + 1] <= 'f') || (s[i + 2] >= 'a' && s[i + 2] <= 'f')) {
                snprintf(err, errlen, "percent-escape must use upper-case hex in \"%.*s\"",
                         (int)len, s);
                return -1;
            }
            int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
            int v = hi * 16 + lo;
            if (is_unreserved(v)) {
                snprintf(err, errlen, "write %%%c%c as '%c' (canonical paths decode it)", s[i + 1],
                         s[i + 2], v);
                return -1;
            }
            if (v < 0x20 || v == 0x7f || v == '/' || v == '\\') {
                snprintf(err, errlen, "escape %%%c%c is never accepted in a path", s[i + 1],
                         s[i + 2]);
                return -1;
            }
            i += 2;
            continue;
        }
        if (c == '*') {
            snprintf(err, errlen, "'*' is only allowed as a whole final \"**\" segment");
            return -1;
        }
        if (c == '{' || c == '}') {
            snprintf(err, errlen, "parameter must be a whole segment: \"%.*s\"", (int)len, s);
            return -1;
        }
        if (!is_lit_char(c)) {
            if (c >= 0x21 && c < 0x7f)
                snprintf(err, errlen, "character '%c' is not allowed in a path segment", c);
            else
                snprintf(err, errlen, "byte 0x%02X is not allowed in a path segment", c);
            return -1;
        }
    }
    return 0;
}

/* Parse a template into segments. 0, or -1 with err. */
static int parse_template(const char *tmpl, tseg *segs, size_t *nsegs, size_t *nparams, char *err,
                          size_t errlen)
{
    size_t n = 0, np = 0;
    if (!tmpl || tmpl[0] != '/') {
        snprintf(err, errlen, "route path must start with '/'");
        return -1;
    }
    const char *end;
    const char *rest = first_rest(tmpl, strlen(tmpl), &end);
    while (rest) {
        const char *s;
        size_t len;
        rest = next_seg(rest, end, &s, &len);
        if (n == RT_MAX_SEGS) {
            snprintf(err, errlen, "route path has more than %d segments", RT_MAX_SEGS);
            return -1;
        }
        if (len == 0) {
            snprintf(err, errlen, "empty segment in route path (\"//\" or trailing '/')");
            return -1;
        }
        if (len == 2 && s[0] == '*' && s[1] == '*') {
            if (rest) {
                snprintf(err, errlen, "\"**\" must be the last segment");
                return -1;
            }
            segs[n++] = (tseg){SEG_STAR, s, len};
            continue;
        }
        if (s[0] == '{') {
            if (len < 3 || s[len - 1] != '}') {
                snprintf(err, errlen, "parameter must be a whole segment \"{name}\": \"%.*s\"",
                         (int)len, s);
                return -1;
            }
            const char *nm = s + 1;
            size_t nlen = len - 2;
            if (!is_name_start((unsigned char)nm[0])) {
                snprintf(err, errlen, "bad parameter name \"%.*s\" (want [A-Za-z_][A-Za-z0-9_]*)",
                         (int)nlen, nm);
                return -1;
            }
            for (size_t i = 1; i < nlen; i++) {
                if (!is_name_char((unsigned char)nm[i])) {
                    snprintf(err, errlen,
                             "bad parameter name \"%.*s\" (want [A-Za-z_][A-Za-z0-9_]*)", (int)nlen,
                             nm);
                    return -1;
                }
            }
            for (size_t k = 0; k < n; k++) {
                if (segs[k].kind == SEG_PARAM && segs[k].len == nlen &&
                    memcmp(segs[k].s, nm, nlen) == 0) {
                    snprintf(err, errlen, "duplicate parameter name \"%.*s\"", (int)nlen, nm);
                    return -1;
                }
            }
            if (np == RT_MAX_PARAMS) {
                snprintf(err, errlen, "more than %d parameters", RT_MAX_PARAMS);
                return -1;
            }
            np++;
            segs[n++] = (tseg){SEG_PARAM, nm, nlen};
            continue;
        }
        if (check_literal(s, len, err, errlen) < 0)
            return -1;
        segs[n++] = (tseg){SEG_LIT, s, len};
    }
    *nsegs = n;
    *nparams = np;
    return 0;
}

int rt_template_check(const char *tmpl, char *err, size_t errlen)
{
    tseg segs[RT_MAX_SEGS];
    size_t n, np;
    return parse_template(tmpl, segs, &n, &np, err, errlen);
}

/* ---- trie ----------------------------------------------------------------- */

static int seg_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = memcmp(a, b, m);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of the child with segment s, or of the insertion point (found = 0). */
static size_t lit_find(const rt_node *n, const char *s, size_t len, int *found)
{
    size_t lo = 0, hi = n->nlit;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = seg_cmp(n->lit[mid]->seg, n->lit[mid]->seglen, s, len);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

#define LIT_INDEX_MIN 16

static uint64_t seg_hash(const char *s, size_t len)
{
    return ag_hash64(s, len, g_lit_seed);
}

static void idx_put(lit_slot *idx, size_t cap, uint64_t h, rt_node *node)
{
    size_t i = (size_t)h & (cap - 1);
    while (idx[i].node)
        i = (i + 1) & (cap - 1);
    idx[i].h = h;
    idx[i].node = node;
}

/* Keep the index at most half full; rebuild it when it grows. 0 or -1. */
static int idx_add(rt_node *n, rt_node *c)
{
    if (n->nlit < LIT_INDEX_MIN)
        return 0;
    if (n->idx && n->nlit * 2 <= n->idxcap) {
        idx_put(n->idx, n->idxcap, seg_hash(c->seg, c->seglen), c);
        return 0;
    }
    size_t cap = 64;
    while (cap < n->nlit * 4)
        cap *= 2;
    lit_slot *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    for (size_t i = 0; i < n->nlit; i++)
        idx_put(idx, cap, seg_hash(n->lit[i]->seg, n->lit[i]->seglen), n->lit[i]);
    free(n->idx);
    n->idx = idx;
    n->idxcap = cap;
    return 0;
}

/* The literal child for a segment, or NULL. */
static const rt_node *lit_lookup(const rt_node *n, const char *s, size_t len)
{
    if (n->idx) {
        uint64_t h = seg_hash(s, len);
        for (size_t i = (size_t)h & (n->idxcap - 1);; i = (i + 1) & (n->idxcap - 1)) {
            const lit_slot *sl = &n->idx[i];
            if (!sl->node)
                return NULL;
            if (sl->h == h && sl->node->seglen == len && memcmp(sl->node->seg, s, len) == 0)
                return sl->node;
        }
    }
    int found;
    size_t i = lit_find(n, s, len, &found);
    return found ? n->lit[i] : NULL;
}

static rt_node *lit_child(rt_node *n, const char *s, size_t len)
{
    int found;
    size_t i = lit_find(n, s, len, &found);
    if (found)
        return n->lit[i];
    if (n->nlit == n->caplit) {
        size_t cap = n->caplit ? n->caplit * 2 : 4;
        rt_node **p = realloc(n->lit, cap * sizeof(*p));
        if (!p)
            return NULL;
        n->lit = p;
        n->caplit = cap;
    }
    rt_node *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->seg = malloc(len + 1);
    if (!c->seg) {
        free(c);
        return NULL;
    }
    memcpy(c->seg, s, len);
    c->seg[len] = '\0';
    c->seglen = len;
    memmove(n->lit + i + 1, n->lit + i, (n->nlit - i) * sizeof(*n->lit));
    n->lit[i] = c;
    n->nlit++;
    if (idx_add(n, c) != 0) {
        /* Without the index lookups fall back to the sorted array. */
        free(n->idx);
        n->idx = NULL;
        n->idxcap = 0;
    }
    return c;
}

/* Empty nodes left behind by a failed add are harmless: they match nothing. */
int rt_add(rt_table *t, const char *tmpl, unsigned methods, void *data, void **dup_data, char *err,
           size_t errlen)
{
    int rc = -1;
    tseg segs[RT_MAX_SEGS];
    size_t n = 0, np = 0;
    rt_route *r = NULL;

    if (dup_data)
        *dup_data = NULL;
    if (parse_template(tmpl, segs, &n, &np, err, errlen) < 0)
        goto out;
    if (methods == 0) {
        snprintf(err, errlen, "route has no methods");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    r->data = data;
    r->methods = methods;

    rt_node *node = &t->root;
    int star = 0;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].kind == SEG_STAR) {
            star = 1;
            break;
        }
        if (segs[i].kind == SEG_PARAM) {
            r->names[r->nnames] = malloc(segs[i].len + 1);
            if (!r->names[r->nnames]) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            memcpy(r->names[r->nnames], segs[i].s, segs[i].len);
            r->names[r->nnames][segs[i].len] = '\0';
            r->nnames++;
            if (!node->param) {
                node->param = calloc(1, sizeof(rt_node));
                if (!node->param) {
                    snprintf(err, errlen, "out of memory");
                    goto out;
                }
            }
            node = node->param;
        } else {
            node = lit_child(node, segs[i].s, segs[i].len);
            if (!node) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }

    rt_route **list = star ? &node->star : &node->term;
    for (rt_route *o = *list; o; o = o->next) {
        if (o->methods & methods) {
            if (dup_data)
                *dup_data = o->data;
            snprintf(
                err, errlen,
                "route \"%s\" has the same shape and an overlapping method as an earlier route",
                tmpl);
            rc = -2;
            goto out;
        }
    }
    while (*list)
        list = &(*list)->next;
    *list = r;
    r = NULL;
    rc = 0;
out:
    route_list_free(r);
    return rc;
}

/* ---- matching ------------------------------------------------------------- */

typedef struct mstate {
    const char *end;
    unsigned method;
    unsigned allow;
    const char *pv[RT_MAX_PARAMS]; /* parameter values by position */
    size_t pl[RT_MAX_PARAMS];
    size_t depth; /* parameters bound so far */
    /* candidates mode */
    void **out;
    size_t max, nout;
    int all;
    rt_match *m;
} mstate;

/* Returns 1 when a route was chosen (match mode). In candidates mode every
 * route on the path is appended and 0 is returned. */
static int visit_list(mstate *st, const rt_route *r)
{
    for (; r; r = r->next) {
        if (st->all) {
            if (st->nout < st->max)
                st->out[st->nout] = r->data;
            st->nout++;
            continue;
        }
        if (r->methods & st->method) {
            rt_match *m = st->m;
            m->data = r->data;
            m->allow = 0;
            m->nparams = r->nnames < st->depth ? r->nnames : st->depth;
            for (size_t i = 0; i < m->nparams; i++) {
                m->params[i].name = r->names[i];
                m->params[i].value = st->pv[i];
                m->params[i].value_len = st->pl[i];
            }
            return 1;
        }
        st->allow |= r->methods;
    }
    return 0;
}

static int walk(mstate *st, const rt_node *n, const char *rest)
{
    if (!rest) {
        if (visit_list(st, n->term))
            return 1;
        return visit_list(st, n->star);
    }
    const char *seg;
    size_t len;
    const char *next = next_seg(rest, st->end, &seg, &len);
    if (n->nlit && len) {
        const rt_node *c = lit_lookup(n, seg, len);
        if (c && walk(st, c, next))
            return 1;
    }
    if (n->param && len && st->depth < RT_MAX_PARAMS) {
        st->pv[st->depth] = seg;
        st->pl[st->depth] = len;
        st->depth++;
        int r = walk(st, n->param, next);
        st->depth--;
        if (r)
            return 1;
    }
    return visit_list(st, n->star);
}

void rt_match_path(const rt_table *t, const char *path, size_t len, unsigned method, rt_match *m)
{
    memset(m, 0, sizeof(*m));
    if (!t || !path || len == 0 || path[0] != '/')
        return;
    mstate st = {0};
    st.method = method;
    st.m = m;
    const char *rest = first_rest(path, len, &st.end);
    if (!walk(&st, &t->root, rest)) {
        m->data = NULL;
        m->nparams = 0;
        m->allow = st.allow;
    }
}

size_t rt_candidates(const rt_table *t, const char *path, size_t len, void **out, size_t max)
{
    if (!t || !path || len == 0 || path[0] != '/')
        return 0;
    mstate st = {0};
    st.all = 1;
    st.out = out;
    st.max = max;
    const char *rest = first_rest(path, len, &st.end);
    walk(&st, &t->root, rest);
    return st.nout < max ? st.nout : max;
}
