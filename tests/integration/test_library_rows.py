"""The PropelAuth libraries' own test rows, ported as acceptance cases through
the real daemon (docs/compatibility.md, docs/semantics.md
section 5), plus the gaps that section lists. One generated test per row, named
after its source: lib6_<suite>_<row>.

Org routes take the org from the query (?org_id=), as the FastAPI tests do."""

import time

import harness as H

ORG = "9f3c2b1a-0000-4000-8000-000000000001"
ORG_WRONG = "9f3c2b1a-0000-4000-8000-0000000000ff"

ROLES = {"owner": "Owner", "admin": "Admin", "member": "Member", "other": "other",
         "js-problems": "js problems", "role-a": "Role A", "role-b": "Role B",
         "role-c": "Role C", "role-d": "Role D", "admin-lower": "admin"}
PERMS = ["permA", "permB", "permC", "permD", "read", "write", "delete"]
ALL_SETS = {"a-c": ["permA", "permC"], "a-b": ["permA", "permB"], "a": ["permA"],
            "b": ["permB"], "c": ["permC"], "b-c": ["permB", "permC"],
            "a-b-c": ["permA", "permB", "permC"], "a-missing": ["permA", "missingPerm"],
            "read": ["read"], "write": ["write"], "read-write": ["read", "write"],
            "read-write-delete": ["read", "write", "delete"], "delete": ["delete"]}


def routes(include_empty):
    rs = [{"path": "/require_user", "policy": "require_user"},
          {"path": "/optional_user", "policy": "optional_user"},
          {"path": "/org/member", "org_id_from": "query", "policy": "require_org_member"}]
    for slug, role in ROLES.items():
        rs.append({"path": "/org/min/" + slug, "org_id_from": "query",
                   "policy": "require_org_member_with_minimum_role", "role": role})
        rs.append({"path": "/org/exact/" + slug, "org_id_from": "query",
                   "policy": "require_org_member_with_exact_role", "role": role})
    for p in PERMS:
        rs.append({"path": "/org/perm/" + p.lower(), "org_id_from": "query",
                   "policy": "require_org_member_with_permission", "permission": p})
    for slug, ps in ALL_SETS.items():
        rs.append({"path": "/org/all/" + slug, "org_id_from": "query",
                   "policy": "require_org_member_with_all_permissions", "permissions": ps})
    if include_empty:
        rs.append({"path": "/org/all/empty", "org_id_from": "query",
                   "policy": "require_org_member_with_all_permissions", "permissions": []})
    return rs


# -- token fixtures ---------------------------------------------------------

def py_valid():
    """propelauth-py fixture: only user_id (plus iat=now, exp=now+30min, iss)."""
    return H.token(user_id="u-py", email=None)


def py_org_tok(role, perms=(), org_id=ORG):
    return H.token(user_id="u-py", email=None,
                   orgs=[H.org_entry(org_id, role, inherited=[role], perms=perms)])


def node_org_tok():
    """Node/Express fixture: Admin, inherited [Admin, Member], permissions [read, write]."""
    return H.token(user_id="u-node", email="node@example.com",
                   orgs=[H.org_entry(ORG, "Admin", inherited=["Admin", "Member"],
                                     perms=["read", "write"])])


def admin_inherited_tok():
    """propelauth-py test_auth_fns fixture: Admin with inherited [Admin, Member]."""
    return H.token(user_id="u-fns", email=None,
                   orgs=[H.org_entry(ORG, "Admin", inherited=["Admin", "Member"],
                                     perms=["read", "write"])])


def multi_tok():
    return H.token(user_id="u-mr", orgs=[H.org_entry(
        ORG, "Role A", multi=True, additional=["Role B", "Role C"],
        inherited=["Owner", "Admin", "Member", "Role D"])])


def expired_tok():
    return H.token(user_id="u-py", email=None, iat=H.now() - 3600, exp=H.now() - 300)


def bad_issuer_tok(iss):
    return H.token(user_id="u-py", email=None, issuer=iss)


def other_key_tok():
    return H.token(user_id="u-py", email=None, key=H.keys("other"))


def clock_tok(**fields):
    """Claims at `now` with offsets; None drops the claim."""
    t = H.now()
    c = H.claims_for(user_id="u-clock", email=None)
    for k, off in fields.items():
        if off is None:
            c.pop(k, None)
        else:
            c[k] = t + off
    return H.craft(c)


def drop_tok(*names):
    return H.craft(H.claims_for(user_id="u-drop", email=None, drop=names))


# A row: (name, method-path, auth, status, kind)
#   auth: None (no header) | ("bearer", factory) | ("raw", header value or factory)
#   kind: "user" (identity expected on allow), "org" (X-Org too), "anon" (forwarded, no identity)

def bearer(f):
    return ("bearer", f)


def raw(v):
    return ("raw", v)


def q(path, org=ORG):
    return "%s?org_id=%s" % (path, org)


SIX = [("no_header", None, False),
       ("valid", bearer(py_valid), True),
       ("token_scheme", raw(lambda: "token " + py_valid()), False),
       ("bearer_whatisthis", raw("Bearer whatisthis"), False),
       ("expired", bearer(expired_tok), False),
       ("http_issuer", bearer(lambda: bad_issuer_tok("http://auth.test.local")), False)]

ROWS = []

# propelauth-py tests/test_require_user.py
ROWS += [
    ("py_require_user_1_header_none", "/require_user", None, 401, None),
    ("py_require_user_2_valid_only_user_id", "/require_user", bearer(py_valid), 200, "user"),
    ("py_require_user_3_token_scheme", "/require_user", raw(lambda: "token " + py_valid()), 401,
     None),
    ("py_require_user_4_bearer_whatisthis", "/require_user", raw("Bearer whatisthis"), 401, None),
    ("py_require_user_5_expired_5min", "/require_user", bearer(expired_tok), 401, None),
    ("py_require_user_6_wrong_issuer", "/require_user",
     bearer(lambda: bad_issuer_tok("https://wrong.propelauth.com")), 401, None),
    ("py_require_user_7_other_key", "/require_user", bearer(other_key_tok), 401, None),
]
# propelauth-fastapi tests/test_require_user.py and tests/test_optional_user.py
for n, auth, ok in SIX:
    ROWS.append(("fastapi_require_user_" + n, "/require_user", auth, 200 if ok else 401,
                 "user" if ok else None))
    ROWS.append(("fastapi_optional_user_" + n, "/optional_user", auth, 200,
                 "user" if ok else "anon"))
ROWS.append(("fastapi_optional_user_other_key", "/optional_user", bearer(other_key_tok), 200,
             "anon"))

# propelauth-fastapi tests/test_require_org_member.py (route ?org_id=)
ROWS += [
    ("fastapi_org_no_header", q("/org/member"), None, 401, None),
    ("fastapi_org_token_without_orgs", q("/org/member"), bearer(py_valid), 403, None),
    ("fastapi_org_owner_min_owner", q("/org/min/owner"), bearer(lambda: py_org_tok("Owner")),
     200, "org"),
    ("fastapi_org_owner_exact_owner", q("/org/exact/owner"),
     bearer(lambda: py_org_tok("Owner")), 200, "org"),
    ("fastapi_org_wrong_org_id", q("/org/member", ORG_WRONG),
     bearer(lambda: py_org_tok("Owner")), 403, None),
    ("fastapi_org_member_min_admin", q("/org/min/admin"), bearer(lambda: py_org_tok("Member")),
     403, None),
    ("fastapi_org_admin_min_admin", q("/org/min/admin"), bearer(lambda: py_org_tok("Admin")),
     200, "org"),
    ("fastapi_org_permA_held", q("/org/perm/perma"),
     bearer(lambda: py_org_tok("Member", ["permA"])), 200, "org"),
    ("fastapi_org_permB_missing", q("/org/perm/permb"),
     bearer(lambda: py_org_tok("Member", ["permA"])), 403, None),
    ("fastapi_org_all_AC_of_ABC", q("/org/all/a-c"),
     bearer(lambda: py_org_tok("Member", ["permA", "permB", "permC"])), 200, "org"),
    ("fastapi_org_all_AB_of_A", q("/org/all/a-b"), bearer(lambda: py_org_tok("Member", ["permA"])),
     403, None),
    ("fastapi_org_token_scheme", q("/org/member"),
     raw(lambda: "token " + py_org_tok("Owner")), 401, None),
    ("fastapi_org_bearer_whatisthis", q("/org/member"), raw("Bearer whatisthis"), 401, None),
    ("fastapi_org_expired", q("/org/member"), bearer(expired_tok), 401, None),
    ("fastapi_org_http_issuer", q("/org/member"),
     bearer(lambda: bad_issuer_tok("http://auth.test.local")), 401, None),
]
# propelauth-py tests/test_require_org_member.py
ROWS += [
    ("py_org_header_empty", q("/org/member"), raw(""), 401, None),
    ("py_org_member_of_org", q("/org/member"), bearer(lambda: py_org_tok("Owner")), 200, "org"),
    ("py_org_all_A", q("/org/all/a"), bearer(lambda: py_org_tok("Owner", ["permA", "permB"])),
     200, "org"),
    ("py_org_all_AB", q("/org/all/a-b"), bearer(lambda: py_org_tok("Owner", ["permA", "permB"])),
     200, "org"),
    ("py_org_all_A_missing", q("/org/all/a-missing"),
     bearer(lambda: py_org_tok("Owner", ["permA", "permB"])), 403, None),
    ("py_org_other_key", q("/org/member"), bearer(other_key_tok), 401, None),
]
# propelauth-py tests/test_auth_fns.py (Admin, inherited [Admin, Member], perms [read, write])
ROWS += [
    ("py_fns_min_admin", q("/org/min/admin"), bearer(admin_inherited_tok), 200, "org"),
    ("py_fns_min_member", q("/org/min/member"), bearer(admin_inherited_tok), 200, "org"),
    ("py_fns_exact_admin", q("/org/exact/admin"), bearer(admin_inherited_tok), 200, "org"),
    ("py_fns_exact_member", q("/org/exact/member"), bearer(admin_inherited_tok), 403, None),
    ("py_fns_perm_read", q("/org/perm/read"), bearer(admin_inherited_tok), 200, "org"),
    ("py_fns_perm_delete", q("/org/perm/delete"), bearer(admin_inherited_tok), 403, None),
    ("py_fns_all_read_write", q("/org/all/read-write"), bearer(admin_inherited_tok), 200, "org"),
    ("py_fns_all_read_write_delete", q("/org/all/read-write-delete"),
     bearer(admin_inherited_tok), 403, None),
]
# @propelauth/node test/middleware.ts (Admin, inherited [Admin, Member], [read, write])
ROWS += [
    ("node_unknown_org", q("/org/member", ORG_WRONG), bearer(node_org_tok), 403, None),
    ("node_no_header_with_org", q("/org/member"), None, 401, None),
    ("node_bearer_invalid", q("/org/member"), raw("Bearer invalid"), 401, None),
    ("node_bad_issuer", "/require_user", bearer(lambda: bad_issuer_tok("bad")), 401, None),
    ("node_min_admin", q("/org/min/admin"), bearer(node_org_tok), 200, "org"),
    ("node_min_member", q("/org/min/member"), bearer(node_org_tok), 200, "org"),
    ("node_min_owner", q("/org/min/owner"), bearer(node_org_tok), 403, None),
    ("node_exact_admin", q("/org/exact/admin"), bearer(node_org_tok), 200, "org"),
    ("node_exact_owner", q("/org/exact/owner"), bearer(node_org_tok), 403, None),
    ("node_exact_member", q("/org/exact/member"), bearer(node_org_tok), 403, None),
    ("node_perm_read", q("/org/perm/read"), bearer(node_org_tok), 200, "org"),
    ("node_perm_write", q("/org/perm/write"), bearer(node_org_tok), 200, "org"),
    ("node_perm_delete", q("/org/perm/delete"), bearer(node_org_tok), 403, None),
    ("node_all_read", q("/org/all/read"), bearer(node_org_tok), 200, "org"),
    ("node_all_write", q("/org/all/write"), bearer(node_org_tok), 200, "org"),
    ("node_all_read_write", q("/org/all/read-write"), bearer(node_org_tok), 200, "org"),
    ("node_all_read_write_delete", q("/org/all/read-write-delete"), bearer(node_org_tok), 403,
     None),
    ("node_all_delete", q("/org/all/delete"), bearer(node_org_tok), 403, None),
]
# @propelauth/express test/middleware.ts (permissions [permA, permB])
ROWS += [
    ("express_exact_other", q("/org/exact/other"), bearer(node_org_tok), 403, None),
    ("express_min_js_problems", q("/org/min/js-problems"), bearer(node_org_tok), 403, None),
]
for p, ok in (("perma", True), ("permb", True), ("permc", False), ("permd", False)):
    ROWS.append(("express_perm_" + p, q("/org/perm/" + p),
                 bearer(lambda: py_org_tok("Admin", ["permA", "permB"])), 200 if ok else 403,
                 "org" if ok else None))
for s, ok in (("a-b", True), ("a", True), ("b", True), ("a-b-c", False), ("c", False),
              ("b-c", False)):
    ROWS.append(("express_all_" + s.replace("-", "_"), q("/org/all/" + s),
                 bearer(lambda: py_org_tok("Admin", ["permA", "permB"])), 200 if ok else 403,
                 "org" if ok else None))
# multi-role org (semantics 5): A, B, C pass for both; anything else fails
for slug in ("role-a", "role-b", "role-c", "role-d", "owner", "admin", "member"):
    ok = slug in ("role-a", "role-b", "role-c")
    for kind in ("min", "exact"):
        ROWS.append(("multi_role_%s_%s" % (kind, slug.replace("-", "_")),
                     q("/org/%s/%s" % (kind, slug)), bearer(multi_tok), 200 if ok else 403,
                     "org" if ok else None))
# clock edges (semantics 5; leeway 60)
ROWS += [
    ("clock_exp_now_minus_59_ok", "/require_user", bearer(lambda: clock_tok(exp=-59)), 200,
     "user"),
    ("clock_exp_now_minus_61_401", "/require_user", bearer(lambda: clock_tok(exp=-61)), 401, None),
    ("clock_iat_now_plus_59_ok", "/require_user", bearer(lambda: clock_tok(iat=59)), 200, "user"),
    ("clock_iat_now_plus_61_401", "/require_user", bearer(lambda: clock_tok(iat=61)), 401, None),
    ("clock_nbf_now_plus_59_ok", "/require_user", bearer(lambda: clock_tok(nbf=59)), 200, "user"),
    ("clock_nbf_now_plus_61_401", "/require_user", bearer(lambda: clock_tok(nbf=61)), 401, None),
    ("clock_missing_exp_401", "/require_user", bearer(lambda: drop_tok("exp")), 401, None),
    ("clock_missing_iat_401", "/require_user", bearer(lambda: drop_tok("iat")), 401, None),
    ("clock_missing_iss_401", "/require_user", bearer(lambda: drop_tok("iss")), 401, None),
]
# gaps listed at the end of section 6
ROWS += [
    ("gap_aud_present_ignored", "/require_user",
     bearer(lambda: H.token(user_id="u-aud", extra={"aud": ["someone-else"]})), 200, "user"),
    ("gap_role_case_admin_lower_is_not_Admin", q("/org/exact/admin-lower"),
     bearer(lambda: py_org_tok("Admin")), 403, None),
    ("gap_role_case_Admin_is_not_admin_min", q("/org/min/admin-lower"),
     bearer(lambda: py_org_tok("Admin")), 403, None),
    ("gap_org_key_proto", q("/org/member", "__proto__"),
     bearer(lambda: py_org_tok("Member", org_id="__proto__")), 200, "org"),
    ("gap_org_key_constructor_not_member", q("/org/member", "constructor"),
     bearer(lambda: py_org_tok("Member", org_id="__proto__")), 403, None),
    ("gap_duplicate_authorization_401", "/require_user",
     ("dup", lambda: ["Bearer " + py_valid(), "Bearer " + py_valid()]), 401, None),
    ("gap_missing_user_id_401", "/require_user",
     bearer(lambda: H.craft({k: v for k, v in H.claims_for().items() if k != "user_id"})), 401,
     None),
]


def _org_from_path(path):
    return path.split("org_id=")[1] if "org_id=" in path else None


class LibraryRows(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER,
                     "leeway_seconds": 60},
            "upstreams": {"app": {"url": echo.url}},
            "routes": routes(include_empty=False),
        }

    def run_row(self, path, auth, status, kind):
        if "clock" not in self.id():
            self._run_row(path, auth, status, kind)
            return
        # clock-edge rows only mean something if the token's `now` and the
        # gateway's `now` are the same second; retry if a boundary slipped in
        for attempt in range(3):
            H.align_to_second_start()
            sec = int(time.time())
            self._run_row(path, auth, status, kind)
            if int(time.time()) == sec:
                return
        self.fail("could not run the clock row inside one wall-clock second")

    def _run_row(self, path, auth, status, kind):
        headers = []
        tok = None
        if auth is not None:
            how, v = auth
            val = v() if callable(v) else v
            if how == "bearer":
                tok = val
                headers.append(("Authorization", "Bearer " + val))
            elif how == "raw":
                headers.append(("Authorization", val))
            elif how == "dup":
                headers += [("Authorization", x) for x in val]
        if status == 200:
            _, rec = self.expect_allow("GET", path, headers=headers)
            self.assertEqual(rec["path"], path.split("?")[0])
            if kind == "anon":
                self.assert_anonymous(rec)
            else:
                org = _org_from_path(path) if kind == "org" else None
                self.assert_identity(rec, H.decode_claims(tok), org)
        else:
            self.expect_deny("GET", path, status, headers=headers)


def _make(path, auth, status, kind):
    def t(self):
        self.run_row(path, auth, status, kind)
    return t


for _name, _path, _auth, _status, _kind in ROWS:
    _m = _make(_path, _auth, _status, _kind)
    _m.__doc__ = "%s -> %d" % (_path, _status)
    setattr(LibraryRows, "test_lib6_" + _name, _m)


class LibraryRowsEmptyPermissionList(H.GatewayCase):
    """`permissions: []` allows any member (both libraries agree); kept apart so
    that a daemon refusing the file fails only these rows."""

    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": echo.url}},
            "routes": routes(include_empty=True),
        }

    def test_lib6_node_all_empty_list_member_ok(self):
        tok = node_org_tok()
        _, rec = self.expect_allow("GET", q("/org/all/empty"), token=tok)
        self.assert_identity(rec, H.decode_claims(tok), ORG)

    def test_lib6_express_all_empty_list_non_member_403(self):
        self.expect_deny("GET", q("/org/all/empty", ORG_WRONG), 403, token=node_org_tok())

    def test_lib6_all_empty_list_no_token_401(self):
        self.expect_deny("GET", q("/org/all/empty"), 401)
