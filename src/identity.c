/* identity: the verified user and the X-User / X-Org headers
 * (docs/semantics.md sections 2 to 4).
 *
 * A user is built once per verified token and then only read, possibly by many
 * threads (through the token cache), so everything a request needs is computed
 * here: the org lookup index and the header strings. Header JSON is written by
 * our own serializer on top of ag_buf_json_str, which escapes every control
 * and non-ASCII byte: whatever a claim holds, a header value is printable ASCII
 * and can never carry CR, LF or NUL. */
#include "identity.h"

#include <stdlib.h>
#include <string.h>

#include "jnum.h"

/* Deeper JSON than this inside metadata/properties is refused; the verifier
 * already caps the whole payload at the same depth. */
#define ID_MAX_DEPTH 64

typedef struct id_str {
    char *s;
    size_t len;
} id_str;

typedef struct id_strs {
    id_str *v;
    size_t n;
} id_strs;

struct id_org {
    id_str key; /* the map key, equal to the entry's org_id */
    char *name;
    id_str role;
    bool multi;
    id_strs inherited;
    id_strs perms;
    id_strs additional;
    char *key_json; /* the key as a JSON string literal */
    char *xorg;     /* X-Org value */
};

struct id_user {
    int refs;
    char *user_id;
    char *email;
    char *active_org_id;
    int64_t exp;
    id_org *orgs; /* token order */
    size_t norgs;
    id_org **by_key; /* sorted by key bytes, for lookup */
    bool orgs_null;  /* the token had no org map at all */
    char *head;      /* X-User up to the org map value */
    char *tail;      /* X-User after the org map value */
    char *all;       /* X-User with every org (ID_ORGS_ALL) */
};

/* ---------------------------------------------------------------- JSON out */

static int put_json(ag_buf *b, const json_t *v, int depth)
{
    if (depth > ID_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (ag_buf_append(b, "{", 1) != 0)
            return -1;
        bool first = true;
        for (void *it = json_object_iter(ag_unconst(v)); it;
             it = json_object_iter_next(ag_unconst(v), it)) {
            if (!first && ag_buf_append(b, ",", 1) != 0)
                return -1;
            first = false;
            if (ag_buf_json_str(b, json_object_iter_key(it), json_object_iter_key_len(it)) != 0 ||
                ag_buf_append(b, ":", 1) != 0 ||
                put_json(b, json_object_iter_value(it), depth + 1) != 0)
                return -1;
        }
        return ag_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        if (ag_buf_append(b, "[", 1) != 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((i && ag_buf_append(b, ",", 1) != 0) ||
                put_json(b, json_array_get(v, i), depth + 1) != 0)
                return -1;
        }
        return ag_buf_append(b, "]", 1);
    }
    case JSON_STRING: {
        /* An integer beyond 64 bits goes out digit for digit as it came. */
        size_t blen;
        const char *big = jnum_big_text(v, &blen);
        if (big)
            return ag_buf_append(b, big, blen);
        return ag_buf_json_str(b, json_string_value(v), json_string_length(v));
    }
    case JSON_INTEGER:
        return ag_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: {
        /* jansson's own shortest round-trip formatting; pure ASCII. */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        int rc = s ? ag_buf_puts(b, s) : -1;
        free(s);
        return rc;
    }
    case JSON_TRUE:
        return ag_buf_puts(b, "true");
    case JSON_FALSE:
        return ag_buf_puts(b, "false");
    case JSON_NULL:
        return ag_buf_puts(b, "null");
    }
    return -1;
}

/* A value that may be absent: absent is written as null. */
static int put_opt(ag_buf *b, const json_t *v)
{
    return v ? put_json(b, v, 0) : ag_buf_puts(b, "null");
}

static int put_key(ag_buf *b, bool comma, const char *name)
{
    return ag_buf_printf(b, "%s\"%s\":", comma ? "," : "", name);
}

/* ---------------------------------------------------------------- parsing */

static int str_dup(const json_t *v, id_str *out)
{
    out->len = json_string_length(v);
    out->s = ag_strndup(json_string_value(v), out->len);
    return out->s ? 0 : -1;
}

static void strs_free(id_strs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].s);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

/* An array of strings (anything else, including a lone string, fails: a
 * string must never be searched as if it were a list). NULL v = empty. */
static int strs_from(const json_t *v, id_strs *out)
{
    out->v = NULL;
    out->n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return -1;
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++)
        if (!jnum_is_string(json_array_get(v, i)))
            return -1;
    if (n == 0)
        return 0;
    out->v = calloc(n, sizeof(*out->v));
    if (!out->v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (str_dup(json_array_get(v, i), &out->v[i]) != 0) {
            out->n = i;
            strs_free(out);
            return -1;
        }
    }
    out->n = n;
    return 0;
}

static bool strs_has(const id_strs *a, const char *s, size_t len)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].len == len && memcmp(a->v[i].s, s, len) == 0)
            return true;
    return false;
}

static void org_clear(id_org *o)
{
    free(o->key.s);
    free(o->name);
    free(o->role.s);
    strs_free(&o->inherited);
    strs_free(&o->perms);
    strs_free(&o->additional);
    free(o->key_json);
    free(o->xorg);
    memset(o, 0, sizeof(*o));
}

static int org_header(id_org *o, const json_t *e, const json_t *structure, const json_t *addl)
{
    int rc = -1;
    ag_buf b;
    ag_buf_init(&b);
    if (ag_buf_append(&b, "{", 1) != 0 || put_key(&b, false, "org_id") != 0 ||
        put_json(&b, json_object_get(e, "org_id"), 0) != 0 || put_key(&b, true, "org_name") != 0 ||
        put_json(&b, json_object_get(e, "org_name"), 0) != 0 ||
        put_key(&b, true, "org_metadata") != 0 ||
        put_json(&b, json_object_get(e, "org_metadata"), 0) != 0 ||
        put_key(&b, true, "user_assigned_role") != 0 ||
        put_json(&b, json_object_get(e, "user_role"), 0) != 0 ||
        put_key(&b, true, "user_inherited_roles_plus_current_role") != 0 ||
        put_json(&b, json_object_get(e, "inherited_user_roles_plus_current_role"), 0) != 0 ||
        put_key(&b, true, "user_permissions") != 0 ||
        put_json(&b, json_object_get(e, "user_permissions"), 0) != 0 ||
        put_key(&b, true, "org_role_structure") != 0 ||
        (structure ? put_json(&b, structure, 0)
                   : ag_buf_puts(&b, "\"single_role_in_hierarchy\"")) != 0 ||
        put_key(&b, true, "assigned_additional_roles") != 0 ||
        (addl ? put_json(&b, addl, 0) : ag_buf_puts(&b, "[]")) != 0 ||
        put_key(&b, true, "url_safe_org_name") != 0 ||
        put_json(&b, json_object_get(e, "url_safe_org_name"), 0) != 0 ||
        put_key(&b, true, "legacy_org_id") != 0 ||
        put_opt(&b, json_object_get(e, "legacy_org_id")) != 0 || ag_buf_append(&b, "}", 1) != 0)
        goto out;
    o->xorg = ag_buf_steal(&b);
    if (ag_buf_json_str(&b, o->key.s, o->key.len) != 0)
        goto out;
    o->key_json = ag_buf_steal(&b);
    rc = 0;
out:
    ag_buf_free(&b);
    return rc;
}

static const char *const org_required[] = {
    "org_id",           "org_name",  "url_safe_org_name",
    "org_metadata",     "user_role", "inherited_user_roles_plus_current_role",
    "user_permissions",
};

/* Parse one org entry filed under <key>. Returns 0 and fills o, 1 when the
 * entry is dropped (user_role null: not a member), -1 when invalid. */
static int org_parse(const char *key, size_t keylen, const json_t *e, id_org *o)
{
    int rc = -1;
    memset(o, 0, sizeof(*o));
    if (!json_is_object(e))
        goto out;
    for (size_t i = 0; i < AG_ARRAY_LEN(org_required); i++)
        if (!json_object_get(e, org_required[i]))
            goto out;
    const json_t *id = json_object_get(e, "org_id");
    const json_t *name = json_object_get(e, "org_name");
    const json_t *url = json_object_get(e, "url_safe_org_name");
    const json_t *meta = json_object_get(e, "org_metadata");
    const json_t *role = json_object_get(e, "user_role");
    const json_t *inh = json_object_get(e, "inherited_user_roles_plus_current_role");
    const json_t *perms = json_object_get(e, "user_permissions");
    const json_t *structure = json_object_get(e, "org_role_structure");
    const json_t *addl = json_object_get(e, "additional_roles");
    const json_t *legacy = json_object_get(e, "legacy_org_id");

    /* Stricter than the libraries: the entry must be filed under its own id. */
    if (!jnum_is_string(id) || json_string_length(id) != keylen ||
        memcmp(json_string_value(id), key, keylen) != 0)
        goto out;
    if (json_is_null(role)) {
        rc = 1;
        goto out;
    }
    if (!jnum_is_string(role) || !jnum_is_string(name) || !jnum_is_string(url) ||
        !(json_is_object(meta) || json_is_null(meta)))
        goto out;
    if (json_is_null(structure))
        structure = NULL;
    if (json_is_null(addl))
        addl = NULL;
    if ((structure && !jnum_is_string(structure)) ||
        (legacy && !jnum_is_string(legacy) && !json_is_null(legacy)))
        goto out;
    if (strs_from(inh, &o->inherited) != 0 || strs_from(perms, &o->perms) != 0 ||
        strs_from(addl, &o->additional) != 0)
        goto out;
    o->multi = structure && strcmp(json_string_value(structure), "multi_role") == 0 &&
               json_string_length(structure) == 10;
    o->key.len = keylen;
    o->key.s = ag_strndup(key, keylen);
    o->name = ag_strndup(json_string_value(name), json_string_length(name));
    if (!o->key.s || !o->name || str_dup(role, &o->role) != 0)
        goto out;
    if (org_header(o, e, structure, addl) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        org_clear(o);
    return rc;
}

static int key_cmp(const id_str *a, const char *b, size_t blen)
{
    size_t n = a->len < blen ? a->len : blen;
    int c = memcmp(a->s, b, n);
    if (c != 0)
        return c;
    return a->len < blen ? -1 : a->len > blen ? 1 : 0;
}

static int org_ptr_cmp(const void *x, const void *y)
{
    const id_org *a = *(id_org *const *)x, *b = *(id_org *const *)y;
    return key_cmp(&a->key, b->key.s, b->key.len);
}

static void user_free(id_user *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->norgs; i++)
        org_clear(&u->orgs[i]);
    free(u->orgs);
    free(u->by_key);
    free(u->user_id);
    free(u->email);
    free(u->active_org_id);
    free(u->head);
    free(u->tail);
    free(u->all);
    free(u);
}

/* Parse the org map (or the active org) into u->orgs. */
static int user_orgs(id_user *u, const json_t *claims)
{
    const json_t *active = json_object_get(claims, "org_member_info");
    const json_t *map = json_object_get(claims, "org_id_to_org_member_info");

    /* Python takes the active-org branch when org_member_info is truthy; an
     * empty object is falsy there. Any non-object value is refused. */
    if (active && !json_is_null(active)) {
        if (!json_is_object(active))
            return -1;
        if (json_object_size(active) > 0) {
            const json_t *id = json_object_get(active, "org_id");
            if (!jnum_is_string(id))
                return -1;
            u->orgs = calloc(1, sizeof(*u->orgs));
            u->active_org_id = ag_strndup(json_string_value(id), json_string_length(id));
            if (!u->orgs || !u->active_org_id)
                return -1;
            int rc = org_parse(json_string_value(id), json_string_length(id), active, &u->orgs[0]);
            if (rc < 0)
                return -1;
            u->norgs = rc == 0 ? 1 : 0;
            return 0;
        }
    }
    if (!map || json_is_null(map)) {
        u->orgs_null = true;
        return 0;
    }
    if (!json_is_object(map))
        return -1;
    size_t n = json_object_size(map);
    if (n == 0)
        return 0;
    u->orgs = calloc(n, sizeof(*u->orgs));
    if (!u->orgs)
        return -1;
    for (void *it = json_object_iter(ag_unconst(map)); it;
         it = json_object_iter_next(ag_unconst(map), it)) {
        int rc = org_parse(json_object_iter_key(it), json_object_iter_key_len(it),
                           json_object_iter_value(it), &u->orgs[u->norgs]);
        if (rc < 0)
            return -1;
        if (rc == 0)
            u->norgs++;
    }
    return 0;
}

static int user_headers(id_user *u, const json_t *claims)
{
    int rc = -1;
    ag_buf b;
    ag_buf_init(&b);

    if (ag_buf_puts(&b, "{\"user_id\":") != 0 ||
        ag_buf_json_str(&b, u->user_id, strlen(u->user_id)) != 0 ||
        ag_buf_puts(&b, ",\"org_id_to_org_member_info\":") != 0)
        goto out;
    u->head = ag_buf_steal(&b);

    const json_t *lm = json_object_get(claims, "login_method");
    if (put_key(&b, true, "email") != 0 || put_opt(&b, json_object_get(claims, "email")) != 0 ||
        put_key(&b, true, "login_method") != 0 ||
        (lm && !json_is_null(lm) ? put_json(&b, lm, 0)
                                 : ag_buf_puts(&b, "{\"login_method\":\"unknown\"}")) != 0)
        goto out;
    static const char *const passthrough[] = {"first_name",     "last_name",
                                              "username",       "properties",
                                              "legacy_user_id", "impersonator_user_id"};
    for (size_t i = 0; i < AG_ARRAY_LEN(passthrough); i++)
        if (put_key(&b, true, passthrough[i]) != 0 ||
            put_opt(&b, json_object_get(claims, passthrough[i])) != 0)
            goto out;
    if (put_key(&b, true, "active_org_id") != 0 ||
        (u->active_org_id ? ag_buf_json_str(&b, u->active_org_id, strlen(u->active_org_id))
                          : ag_buf_puts(&b, "null")) != 0 ||
        ag_buf_append(&b, "}", 1) != 0)
        goto out;
    u->tail = ag_buf_steal(&b);

    if (ag_buf_puts(&b, u->head) != 0)
        goto out;
    if (u->orgs_null) {
        if (ag_buf_puts(&b, "null") != 0)
            goto out;
    } else {
        if (ag_buf_append(&b, "{", 1) != 0)
            goto out;
        for (size_t i = 0; i < u->norgs; i++)
            if ((i && ag_buf_append(&b, ",", 1) != 0) ||
                ag_buf_puts(&b, u->orgs[i].key_json) != 0 || ag_buf_append(&b, ":", 1) != 0 ||
                ag_buf_puts(&b, u->orgs[i].xorg) != 0)
                goto out;
        if (ag_buf_append(&b, "}", 1) != 0)
            goto out;
    }
    if (ag_buf_puts(&b, u->tail) != 0)
        goto out;
    u->all = ag_buf_steal(&b);
    rc = 0;
out:
    ag_buf_free(&b);
    return rc;
}

int id_user_from_claims(const json_t *claims, id_user **out, ag_reason *reason)
{
    int rc = -1;
    id_user *u = NULL;

    if (out)
        *out = NULL;
    /* Every refusal is the one code for a signed but unusable payload. */
    if (reason)
        *reason = AR_TOKEN_CLAIMS;
    if (!out || !json_is_object(claims))
        goto out;
    u = calloc(1, sizeof(*u));
    if (!u)
        goto out;
    u->refs = 1;
    const json_t *uid = json_object_get(claims, "user_id");
    if (!jnum_is_string(uid) || json_string_length(uid) == 0)
        goto out;
    if (jnum_seconds(json_object_get(claims, "exp"), &u->exp) != 0)
        goto out;
    u->user_id = ag_strndup(json_string_value(uid), json_string_length(uid));
    if (!u->user_id)
        goto out;
    const json_t *email = json_object_get(claims, "email");
    if (jnum_is_string(email) &&
        !(u->email = ag_strndup(json_string_value(email), json_string_length(email))))
        goto out;
    if (user_orgs(u, claims) != 0)
        goto out;
    if (u->norgs) {
        u->by_key = calloc(u->norgs, sizeof(*u->by_key));
        if (!u->by_key)
            goto out;
        for (size_t i = 0; i < u->norgs; i++)
            u->by_key[i] = &u->orgs[i];
        qsort(u->by_key, u->norgs, sizeof(*u->by_key), org_ptr_cmp);
    }
    if (user_headers(u, claims) != 0)
        goto out;
    *out = u;
    u = NULL;
    if (reason)
        *reason = AR_OK;
    rc = 0;
out:
    user_free(u);
    return rc;
}

id_user *id_user_ref(id_user *u)
{
    if (u)
        __atomic_add_fetch(&u->refs, 1, __ATOMIC_RELAXED);
    return u;
}

void id_user_unref(id_user *u)
{
    if (u && __atomic_sub_fetch(&u->refs, 1, __ATOMIC_ACQ_REL) == 0)
        user_free(u);
}

const char *id_user_id(const id_user *u)
{
    return u ? u->user_id : NULL;
}

const char *id_user_email(const id_user *u)
{
    return u ? u->email : NULL;
}

const char *id_user_active_org_id(const id_user *u)
{
    return u ? u->active_org_id : NULL;
}

int64_t id_user_exp(const id_user *u)
{
    return u ? u->exp : 0;
}

size_t id_user_org_count(const id_user *u)
{
    return u ? u->norgs : 0;
}

const id_org *id_user_org_at(const id_user *u, size_t i)
{
    return u && i < u->norgs ? &u->orgs[i] : NULL;
}

const id_org *id_user_get_org(const id_user *u, const char *org_id, size_t len)
{
    if (!u || !org_id)
        return NULL;
    size_t lo = 0, hi = u->norgs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(&u->by_key[mid]->key, org_id, len);
        if (c == 0)
            return u->by_key[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *id_org_id(const id_org *o)
{
    return o ? o->key.s : NULL;
}

const char *id_org_name(const id_org *o)
{
    return o ? o->name : NULL;
}

const char *id_org_role(const id_org *o)
{
    return o ? o->role.s : NULL;
}

bool id_org_is_multi_role(const id_org *o)
{
    return o && o->multi;
}

static bool role_eq(const id_org *o, const char *r, size_t len)
{
    return o->role.len == len && memcmp(o->role.s, r, len) == 0;
}

bool id_org_is_role(const id_org *o, const char *role)
{
    if (!o || !role)
        return false;
    size_t len = strlen(role);
    if (o->multi)
        return role_eq(o, role, len) || strs_has(&o->additional, role, len);
    return role_eq(o, role, len);
}

bool id_org_is_at_least_role(const id_org *o, const char *role)
{
    if (!o || !role)
        return false;
    size_t len = strlen(role);
    /* No local ordering: the hierarchy is the token's inherited list. */
    if (o->multi)
        return role_eq(o, role, len) || strs_has(&o->additional, role, len);
    return strs_has(&o->inherited, role, len);
}

bool id_org_has_permission(const id_org *o, const char *perm)
{
    return o && perm && strs_has(&o->perms, perm, strlen(perm));
}

bool id_org_has_all_permissions(const id_org *o, char *const *perms, size_t n)
{
    if (!o)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_org_has_permission(o, perms[i]))
            return false;
    return true;
}

const char *id_user_header(const id_user *u, id_orgs_mode mode, const id_org *requested,
                           ag_buf *scratch)
{
    if (!u)
        return NULL;
    if (mode == ID_ORGS_ALL)
        return u->all;
    if (!scratch)
        return NULL;
    ag_buf_reset(scratch);
    int rc = ag_buf_puts(scratch, u->head);
    if (mode == ID_ORGS_NONE) {
        rc = rc ? rc : ag_buf_puts(scratch, "null");
    } else {
        rc = rc ? rc : ag_buf_append(scratch, "{", 1);
        if (requested) {
            rc = rc ? rc : ag_buf_puts(scratch, requested->key_json);
            rc = rc ? rc : ag_buf_append(scratch, ":", 1);
            rc = rc ? rc : ag_buf_puts(scratch, requested->xorg);
        }
        rc = rc ? rc : ag_buf_append(scratch, "}", 1);
    }
    rc = rc ? rc : ag_buf_puts(scratch, u->tail);
    return rc == 0 ? scratch->p : NULL;
}

const char *id_org_header(const id_org *o)
{
    return o ? o->xorg : NULL;
}

static const char *strs_at(const id_strs *a, size_t i)
{
    return i < a->n ? a->v[i].s : NULL;
}

size_t id_org_inherited_count(const id_org *o)
{
    return o ? o->inherited.n : 0;
}

const char *id_org_inherited_at(const id_org *o, size_t i)
{
    return o ? strs_at(&o->inherited, i) : NULL;
}

size_t id_org_permission_count(const id_org *o)
{
    return o ? o->perms.n : 0;
}

const char *id_org_permission_at(const id_org *o, size_t i)
{
    return o ? strs_at(&o->perms, i) : NULL;
}

size_t id_org_additional_count(const id_org *o)
{
    return o ? o->additional.n : 0;
}

const char *id_org_additional_at(const id_org *o, size_t i)
{
    return o ? strs_at(&o->additional, i) : NULL;
}
