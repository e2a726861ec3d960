/* `authgate mint`: print an RS256 access token in PropelAuth's claim layout
 * (docs/semantics.md section 6), signed with a PEM private key. For demos and
 * tests only; the options that craft odd tokens (--claims-json, --unset,
 * --header-json, offsets) exist so tests can produce what PropelAuth never would. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "jwt.h"
#include "util.h"

#define MINT_MAX_FILE (1u << 20)

enum {
    OPT_KEY = 256,
    OPT_ISSUER,
    OPT_USER_ID,
    OPT_EMAIL,
    OPT_ORG,
    OPT_INHERITED,
    OPT_MULTI_ROLE,
    OPT_TTL,
    OPT_IAT_OFFSET,
    OPT_EXP_OFFSET,
    OPT_CLAIMS_JSON,
    OPT_HEADER_JSON,
    OPT_UNSET,
    OPT_ACTIVE_ORG,
    OPT_NOW,
    OPT_HELP,
};

static void mint_usage(FILE *f)
{
    fputs("usage: authgate mint --key PRIVATE.pem --issuer URL --user-id ID [options]\n"
          "  --email E                 email claim\n"
          "  --org ID:NAME:ROLE[:PERM,PERM...]\n"
          "                            org membership (repeatable); inherited roles are ROLE and\n"
          "                            the roles below it in Owner > Admin > Member\n"
          "  --inherited R,R,...       inherited roles of the preceding --org\n"
          "  --multi-role R,R,...      make the preceding --org multi_role with these\n"
          "                            additional roles (may be empty)\n"
          "  --active-org ID           active-org token: org_member_info = that --org\n"
          "  --ttl SECONDS             exp = now + SECONDS (default 1800)\n"
          "  --exp-offset SECONDS      exp = now + SECONDS (overrides --ttl; may be negative)\n"
          "  --iat-offset SECONDS      iat = now + SECONDS (default 0)\n"
          "  --now EPOCH               use this clock instead of the system's\n"
          "  --claims-json JSON|FILE   merge these top-level claims over the generated ones\n"
          "  --unset CLAIM             remove a claim after merging (repeatable)\n"
          "  --header-json JSON|FILE   merge these fields into the JWS header\n"
          "The token is printed on stdout followed by a newline. DEMO/TEST TOOL: anyone with\n"
          "the private key can mint any identity.\n",
          f);
}

/* Prints "authgate mint: <before><arg><after>" and returns the usage exit code. */
static int usage_err(const char *before, const char *arg, const char *after)
{
    fprintf(stderr, "authgate mint: %s%s%s\n(see authgate mint --help)\n", before, arg ? arg : "",
            after ? after : "");
    return 2;
}

static int parse_i64(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Reads a whole file of at most MINT_MAX_FILE bytes; NULL on any error. */
static char *read_file(const char *path, size_t *len)
{
    char *ret = NULL;
    ag_buf b;
    ag_buf_init(&b);
    FILE *f = fopen(path, "rb");
    if (!f)
        goto out;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > MINT_MAX_FILE || ag_buf_append(&b, chunk, n) != 0)
            goto out;
    }
    if (ferror(f))
        goto out;
    *len = b.len;
    ret = ag_buf_steal(&b);
out:
    if (f)
        fclose(f);
    ag_buf_free(&b);
    return ret;
}

/* Inline JSON when the argument starts with '{', otherwise a file name. */
static json_t *json_arg(const char *arg, const char *what)
{
    json_error_t e;
    json_t *j = NULL;
    if (arg[0] == '{') {
        j = json_loads(arg, JSON_REJECT_DUPLICATES, &e);
    } else {
        size_t len = 0;
        char *text = read_file(arg, &len);
        if (!text) {
            fprintf(stderr, "authgate mint: %s: cannot read %s\n", what, arg);
            return NULL;
        }
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        free(text);
    }
    if (!j) {
        fprintf(stderr, "authgate mint: %s: invalid JSON: %s (line %d)\n", what, e.text, e.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "authgate mint: %s: must be a JSON object\n", what);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* "a,b,c" -> ["a","b","c"]; "" -> []. */
static json_t *csv_array(const char *s)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n > 0 && json_array_append_new(a, json_stringn(s, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return a;
}

static json_t *inherited_for(const char *role)
{
    static const char *const hierarchy[] = {"Owner", "Admin", "Member"};
    json_t *a = json_array();
    if (!a)
        return NULL;
    size_t i = 0;
    while (i < AG_ARRAY_LEN(hierarchy) && strcmp(hierarchy[i], role) != 0)
        i++;
    if (i == AG_ARRAY_LEN(hierarchy)) {
        json_array_append_new(a, json_string(role));
    } else {
        for (; i < AG_ARRAY_LEN(hierarchy); i++)
            json_array_append_new(a, json_string(hierarchy[i]));
    }
    return a;
}

/* PropelAuth's url-safe names are the lower-cased name with non-alphanumerics
 * turned into '-'. */
static char *url_safe(const char *name)
{
    char *s = ag_strdup(name);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 'A' && c <= 'Z')
            *p = (char)(c + 32);
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            *p = '-';
    }
    return s;
}

/* "ID:NAME:ROLE[:PERM,PERM...]" -> org entry (token form). Everything after
 * the third ':' is the permission list, so permission names may contain ':'
 * (PropelAuth's own are "propelauth::can_invite"). */
static json_t *org_from_spec(const char *spec)
{
    json_t *e = NULL;
    char *copy = ag_strdup(spec);
    char *slug = NULL;
    if (!copy)
        goto out;
    char *id = copy;
    char *name = strchr(id, ':');
    if (!name)
        goto out;
    *name++ = '\0';
    char *role = strchr(name, ':');
    if (!role)
        goto out;
    *role++ = '\0';
    char *perms = strchr(role, ':');
    if (perms)
        *perms++ = '\0';
    if (!*id || !*role)
        goto out;
    slug = url_safe(name);
    if (!slug)
        goto out;
    e = json_pack("{s:s, s:s, s:s, s:{}, s:s, s:o, s:o, s:s, s:[]}", "org_id", id, "org_name", name,
                  "url_safe_org_name", slug, "org_metadata", "user_role", role,
                  "inherited_user_roles_plus_current_role", inherited_for(role), "user_permissions",
                  csv_array(perms ? perms : ""), "org_role_structure", "single_role_in_hierarchy",
                  "additional_roles");
out:
    free(slug);
    free(copy);
    return e;
}

int cmd_mint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"issuer", required_argument, NULL, OPT_ISSUER},
        {"user-id", required_argument, NULL, OPT_USER_ID},
        {"email", required_argument, NULL, OPT_EMAIL},
        {"org", required_argument, NULL, OPT_ORG},
        {"inherited", required_argument, NULL, OPT_INHERITED},
        {"multi-role", required_argument, NULL, OPT_MULTI_ROLE},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"iat-offset", required_argument, NULL, OPT_IAT_OFFSET},
        {"exp-offset", required_argument, NULL, OPT_EXP_OFFSET},
        {"claims-json", required_argument, NULL, OPT_CLAIMS_JSON},
        {"header-json", required_argument, NULL, OPT_HEADER_JSON},
        {"unset", required_argument, NULL, OPT_UNSET},
        {"active-org", required_argument, NULL, OPT_ACTIVE_ORG},
        {"now", required_argument, NULL, OPT_NOW},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int rc = 2;
    const char *key = NULL, *issuer = NULL, *user_id = NULL, *email = NULL, *active = NULL;
    long long ttl = 1800, iat_off = 0, exp_off = 0, now = 0;
    bool have_exp_off = false, have_now = false;
    json_t *orgs = json_array(); /* entries in command-line order */
    json_t *extra = NULL, *hdr = NULL, *claims = NULL, *unset = json_array();
    char *pem = NULL, *tok = NULL;
    size_t pemlen = 0;
    char err[256];

    if (!orgs || !unset) {
        fputs("authgate mint: out of memory\n", stderr);
        rc = 1;
        goto out;
    }
    optind = 0; /* GNU: full re-initialisation, so the command can run twice */
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        json_t *last =
            json_array_size(orgs) ? json_array_get(orgs, json_array_size(orgs) - 1) : NULL;
        switch (ch) {
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_ISSUER:
            issuer = optarg;
            break;
        case OPT_USER_ID:
            user_id = optarg;
            break;
        case OPT_EMAIL:
            email = optarg;
            break;
        case OPT_ACTIVE_ORG:
            active = optarg;
            break;
        case OPT_ORG: {
            json_t *e = org_from_spec(optarg);
            if (!e) {
                rc = usage_err("--org '", optarg,
                               "': expected ID:NAME:ROLE[:PERM,PERM...] with a non-empty ID "
                               "and ROLE");
                goto out;
            }
            json_array_append_new(orgs, e);
            break;
        }
        case OPT_INHERITED:
        case OPT_MULTI_ROLE: {
            const char *name = ch == OPT_INHERITED ? "--inherited" : "--multi-role";
            if (!last) {
                rc = usage_err(name, NULL, " must follow the --org it applies to");
                goto out;
            }
            json_t *list = csv_array(optarg);
            if (!list) {
                rc = 1;
                goto out;
            }
            if (ch == OPT_INHERITED) {
                json_object_set_new(last, "inherited_user_roles_plus_current_role", list);
            } else {
                json_object_set_new(last, "org_role_structure", json_string("multi_role"));
                json_object_set_new(last, "additional_roles", list);
            }
            break;
        }
        case OPT_TTL:
        case OPT_IAT_OFFSET:
        case OPT_EXP_OFFSET:
        case OPT_NOW: {
            long long v;
            if (parse_i64(optarg, &v) != 0) {
                rc = usage_err("'", optarg, "' is not an integer");
                goto out;
            }
            if (ch == OPT_TTL)
                ttl = v;
            else if (ch == OPT_IAT_OFFSET)
                iat_off = v;
            else if (ch == OPT_EXP_OFFSET)
                exp_off = v, have_exp_off = true;
            else
                now = v, have_now = true;
            break;
        }
        case OPT_CLAIMS_JSON:
        case OPT_HEADER_JSON: {
            json_t **dst = ch == OPT_CLAIMS_JSON ? &extra : &hdr;
            json_t *j = json_arg(optarg, ch == OPT_CLAIMS_JSON ? "--claims-json" : "--header-json");
            if (!j)
                goto out;
            if (*dst) {
                json_object_update(*dst, j);
                json_decref(j);
            } else {
                *dst = j;
            }
            break;
        }
        case OPT_UNSET:
            json_array_append_new(unset, json_string(optarg));
            break;
        case 'h':
        case OPT_HELP:
            mint_usage(stdout);
            rc = 0;
            goto out;
        default:
            rc = usage_err("bad option", NULL, NULL);
            goto out;
        }
    }
    if (optind != argc) {
        rc = usage_err("unexpected argument '", argv[optind], "'");
        goto out;
    }
    if (!key || !issuer || !user_id) {
        rc = usage_err("--key, --issuer and --user-id are required", NULL, NULL);
        goto out;
    }
    if (!have_now)
        now = ag_now_wall();

    claims = json_object();
    if (!claims)
        goto oom;
    json_object_set_new(claims, "user_id", json_string(user_id));
    if (email)
        json_object_set_new(claims, "email", json_string(email));
    if (active) {
        json_t *hit = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(orgs, i, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "org_id")), active) == 0)
                hit = e;
        }
        if (!hit) {
            rc = usage_err("--active-org '", active, "' does not name one of the --org ids");
            goto out;
        }
        json_object_set(claims, "org_member_info", hit);
    } else {
        json_t *map = json_object();
        if (!map)
            goto oom;
        size_t i;
        json_t *e;
        json_array_foreach(orgs, i, e)
        {
            json_object_set(map, json_string_value(json_object_get(e, "org_id")), e);
        }
        json_object_set_new(claims, "org_id_to_org_member_info", map);
    }
    json_object_set_new(claims, "login_method", json_pack("{s:s}", "login_method", "password"));
    json_object_set_new(claims, "iat", json_integer(now + iat_off));
    json_object_set_new(claims, "exp", json_integer(now + (have_exp_off ? exp_off : ttl)));
    json_object_set_new(claims, "iss", json_string(issuer));
    if (extra && json_object_update(claims, extra) != 0)
        goto oom;
    size_t i;
    json_t *u;
    json_array_foreach(unset, i, u)
    {
        json_object_del(claims, json_string_value(u));
    }

    pem = read_file(key, &pemlen);
    if (!pem) {
        fprintf(stderr, "authgate mint: cannot read key file %s\n", key);
        rc = 1;
        goto out;
    }
    tok = jwt_sign_rs256(pem, pemlen, hdr, claims, err, sizeof(err));
    if (!tok) {
        fprintf(stderr, "authgate mint: %s: %s\n", key, err);
        rc = 1;
        goto out;
    }
    if (printf("%s\n", tok) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "authgate mint: cannot write the token\n");
        rc = 1;
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fputs("authgate mint: out of memory\n", stderr);
    rc = 1;
out:
    free(tok);
    free(pem);
    json_decref(claims);
    json_decref(extra);
    json_decref(hdr);
    json_decref(orgs);
    json_decref(unset);
    return rc;
}
