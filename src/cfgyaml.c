/* cfgyaml: libyaml's event stream turned into a small tree that keeps every
 * node's line and column (libyaml's document API would silently expand
 * aliases and lose where a node came from), with the hostile-file bounds, and
 * syntax errors that carry a hint for the YAML traps this file invites. */
#include "cfgload.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

/* ---- YAML tree ------------------------------------------------------------ */

void cl_ynode_free(ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        cl_ynode_free(n->kids[i]);
    free(n->kids);
    /* Scalars may hold an inline API key or key material. */
    if (n->s)
        OPENSSL_cleanse(n->s, n->len);
    free(n->s);
    free(n);
}

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
            cl_err(c, k->line, k->col, "mapping keys must be plain strings");
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
            cl_err(c, keys[i]->line, keys[i]->col, "duplicate key %s (first at line %d)",
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

/* Line number ln (1-based) of data, as [*b, *e). */
static void line_span(const char *data, size_t len, int ln, const char **b, const char **e)
{
    const char *p = data, *end = data + len;
    for (int i = 1; i < ln && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    *b = p;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *e = nl ? nl : end;
}

static bool span_has_param(const char *b, const char *e)
{
    for (const char *p = b; p < e; p++) {
        if (*p != '{')
            continue;
        const char *q = p + 1;
        if (q < e && (*q == '_' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))) {
            while (q < e && (*q == '_' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                             (*q >= '0' && *q <= '9')))
                q++;
            if (q < e && *q == '}')
                return true;
        }
    }
    return false;
}

/* An unquoted "[...:...]" such as [::1]: libyaml reads the [ as a list. */
static bool span_has_v6(const char *b, const char *e)
{
    for (const char *p = b; p < e; p++) {
        if (*p != '[')
            continue;
        const char *q = p + 1;
        bool colon = false;
        while (q < e && (*q == ':' || (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                         (*q >= 'A' && *q <= 'F') || *q == '.')) {
            colon |= *q == ':';
            q++;
        }
        if (colon && q < e && *q == ']')
            return true;
    }
    return false;
}

/* libyaml's messages name the symptom; for the traps people fall into with
 * this file (tabs, {param} in flow style, [IPv6]:port) say what to do. */
static const char *syntax_hint(const lctx *c, int line, int ctx_line, bool flow)
{
    const char *b, *e, *cb, *ce;
    if (!c->text)
        return "";
    line_span(c->text, c->text_len, line, &b, &e);
    line_span(c->text, c->text_len, ctx_line > 0 ? ctx_line : line, &cb, &ce);
    for (const char *p = b; p < e && (*p == ' ' || *p == '\t'); p++)
        if (*p == '\t')
            return "; YAML does not allow tabs for indentation: indent with spaces";
    if (span_has_v6(b, e) || span_has_v6(cb, ce))
        return "; an unquoted [ starts a YAML list: quote an IPv6 address, e.g. "
               "listen: \"[::1]:8080\"";
    if (flow && (span_has_param(b, e) || span_has_param(cb, ce)))
        return "; in flow style ({ ... } or [ ... ]) a { inside a plain value starts a mapping: "
               "quote the template, e.g. path: \"/api/org/{org_id}\"";
    return "";
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
        cl_err(c, line, col, "invalid YAML: %s", p->problem ? p->problem : "unreadable input");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    int ctx_line = p->context ? (int)p->context_mark.line + 1 : 0;
    bool flow = p->context && strstr(p->context, "flow") != NULL;
    const char *hint = syntax_hint(c, line, ctx_line, flow);
    if (p->context)
        cl_err(c, line, col, "invalid YAML: %s (%s at line %d)%s",
               p->problem ? p->problem : "syntax error", p->context, ctx_line, hint);
    else
        cl_err(c, line, col, "invalid YAML: %s%s", p->problem ? p->problem : "syntax error", hint);
}

static void check_props(lctx *c, ynode *n, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    if (anchor) {
        cl_err(c, n->line, n->col, "YAML anchors and aliases are not supported");
        n->bad = true;
    }
    if (tag) {
        cl_err(c, n->line, n->col, "YAML tags are not supported");
        n->bad = true;
    }
}

/* Build the tree. Returns 0 with *out (NULL for an empty document), or -1
 * after reporting why. */
int cl_build_tree(lctx *c, const char *data, size_t len, ynode **out)
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
                cl_err(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                       "only one YAML document is allowed");
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT:
            n = ynode_new(c, Y_SCALAR, &ev.start_mark);
            if (n) {
                cl_err(c, n->line, n->col, "YAML anchors and aliases are not supported");
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
                cl_err(c, n->line, n->col, "value longer than %d bytes", CFG_MAX_SCALAR_BYTES);
                n->bad = true;
            } else if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
                cl_err(c, n->line, n->col, "NUL byte in value");
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
                    cl_err(c, line, col, "too many YAML nodes (more than %d)", CFG_MAX_NODES);
                goto out;
            }
            if (depth == 0) {
                root = n;
            } else if (ynode_append(c, stack[depth - 1], n) != 0) {
                cl_ynode_free(n);
                goto out;
            }
            if (push) {
                if (depth == CFG_MAX_DEPTH) {
                    cl_err(c, line, col, "nesting deeper than %d levels", CFG_MAX_DEPTH);
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
    cl_ynode_free(root);
    yaml_parser_delete(&p);
    return rc;
}
