/* identity: the verified user, built from token claims, and the X-User / X-Org
 * JSON the upstream trusts (docs/semantics.md sections 2 and 4).
 * Pure: no I/O. An id_user is immutable after construction and reference
 * counted (atomically), so one verified token can be shared by the token cache
 * and any number of requests in flight. */
#ifndef AG_IDENTITY_H
#define AG_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reason.h"
#include "util.h"

typedef struct id_user id_user;
typedef struct id_org id_org;

/* Which orgs X-User's org_id_to_org_member_info carries (config identity.user_orgs). */
typedef enum id_orgs_mode {
    ID_ORGS_ALL = 0,   /* every org in the token (the library's User) */
    ID_ORGS_REQUESTED, /* only the org the route authorized ({} when none) */
    ID_ORGS_NONE,      /* null */
} id_orgs_mode;

/* Build a user from a verified payload (parsed by jnum_loadb). Returns 0 with
 * *reason = AR_OK, or -1 with *reason = AR_TOKEN_CLAIMS (reason may be NULL). The
 * claims object is not kept (everything needed is copied). exp is taken from
 * claims. */
int id_user_from_claims(const json_t *claims, id_user **out, ag_reason *reason);

id_user *id_user_ref(id_user *u);
void id_user_unref(id_user *u); /* NULL ok */

const char *id_user_id(const id_user *u);
const char *id_user_email(const id_user *u);         /* NULL if absent */
const char *id_user_active_org_id(const id_user *u); /* NULL if none */
int64_t id_user_exp(const id_user *u);
size_t id_user_org_count(const id_user *u);
const id_org *id_user_org_at(const id_user *u, size_t i);

/* Exact, case-sensitive, length-delimited lookup by map key. */
const id_org *id_user_get_org(const id_user *u, const char *org_id, size_t len);

const char *id_org_id(const id_org *o);
const char *id_org_name(const id_org *o);
const char *id_org_role(const id_org *o); /* user_role */
bool id_org_is_multi_role(const id_org *o);
bool id_org_is_role(const id_org *o, const char *role);
bool id_org_is_at_least_role(const id_org *o, const char *role);
bool id_org_has_permission(const id_org *o, const char *perm);
bool id_org_has_all_permissions(const id_org *o, char *const *perms, size_t n);
/* The lists the checks read, in token order (for `authgate explain`):
 * inherited_user_roles_plus_current_role, user_permissions, additional_roles. */
size_t id_org_inherited_count(const id_org *o);
const char *id_org_inherited_at(const id_org *o, size_t i);
size_t id_org_permission_count(const id_org *o);
const char *id_org_permission_at(const id_org *o, size_t i);
size_t id_org_additional_count(const id_org *o);
const char *id_org_additional_at(const id_org *o, size_t i);

/* X-User JSON (compact, printable ASCII only). For ID_ORGS_ALL the string is
 * precomputed and owned by the user; otherwise it is written into *scratch and
 * the returned pointer points into it. NULL on allocation failure. */
const char *id_user_header(const id_user *u, id_orgs_mode mode, const id_org *requested,
                           ag_buf *scratch);
/* X-Org JSON for one org (precomputed, owned by the user). */
const char *id_org_header(const id_org *o);

#endif
