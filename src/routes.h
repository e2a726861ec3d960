/* routes: route templates and the matcher (a segment trie, so 10,000 routes cost
 * about what 10 do). Pure. Templates: literal segments, {name} (exactly one
 * non-empty segment), and a final ** (zero or more segments). The most specific
 * route wins segment by segment from the left: literal > {param} > **. */
#ifndef AG_ROUTES_H
#define AG_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rt_table rt_table;

#define RT_MAX_PARAMS 8

rt_table *rt_new(void);
void rt_free(rt_table *t);

/* Validate a template (syntax only). 0 or -1 with a message in err. */
int rt_template_check(const char *tmpl, char *err, size_t errlen);

/* Add a route. methods is an HX_M_* mask. data is returned on match. Returns 0,
 * -1 on a bad template (err filled) and -2 if a route with the same shape and an
 * overlapping method already exists (err names it via *dup_data). */
int rt_add(rt_table *t, const char *tmpl, unsigned methods, void *data, void **dup_data, char *err,
           size_t errlen);

typedef struct rt_param {
    const char *name;  /* owned by the table */
    const char *value; /* points into the matched path (still percent-encoded) */
    size_t value_len;
} rt_param;

typedef struct rt_match {
    void *data;     /* the route matched, or NULL */
    unsigned allow; /* when data == NULL: methods of routes matching the path (405), 0 = 404 */
    rt_param params[RT_MAX_PARAMS];
    size_t nparams;
} rt_match;

/* Match a canonical path (starting with '/') and a method bit. */
void rt_match_path(const rt_table *t, const char *path, size_t len, unsigned method, rt_match *m);

/* Every route whose template matches the path (any method), most specific first;
 * for `authgate explain`. Returns how many were written. */
size_t rt_candidates(const rt_table *t, const char *path, size_t len, void **out, size_t max);

#endif
