"use strict";
// The only differences between authgate and @propelauth/node that the run
// accepts, each named, each listed in docs/compatibility.md
// (Python is the reference where the libraries disagree; "stricter" choices
// are authgate's own). Every other disagreement fails the run.
//
// Three shapes:
//  - reject: the Python reference (or a documented stricter rule) refuses the
//    token. authgate must treat the token as invalid (401, or anonymous on
//    optional_user); the Node library may say anything. Checked on every
//    case, not only on disagreements: authgate accepting such a token fails.
//  - neutralize: a Node-only rule. The case is rewritten so the rule cannot
//    fire (e.g. exp moved out of the leeway window), the library is asked
//    again, and authgate's answer on the ORIGINAL case must equal the
//    library's answer on the rewritten one, identity included.
//  - identity: Node builds a different user object for a valid token;
//    a stated rewrite of the library object must make the two equal.

const { NOW } = require("./gen");

const LEEWAY = 60;
const REQUIRED_ORG_FIELDS = ["org_id", "org_name", "url_safe_org_name", "org_metadata",
    "user_role", "inherited_user_roles_plus_current_role", "user_permissions"];

function claimsOf(c) {
    const cl = c.recipe.claims;
    return cl && typeof cl === "object" && !Array.isArray(cl) ? cl : {};
}

// The org entries the token is judged by: the active org when present
// (it replaces the map), else the map.
function orgsInUse(cl) {
    if (cl.org_member_info) return { active: true, entries: [[cl.org_member_info.org_id, cl.org_member_info]] };
    const m = cl.org_id_to_org_member_info;
    if (m && typeof m === "object") return { active: false, entries: Object.entries(m) };
    return { active: false, entries: [] };
}

function wellSigned(c) {
    return c.recipe.signing === "main" && !c.recipe.corrupt;
}

function authHeaders(c) {
    return c.headers.filter(([n]) => n.toLowerCase() === "authorization");
}

const isNum = (v) => typeof v === "number";

const REJECT = [
    { name: "exp_missing", doc: "semantics §2 / libraries §1.4: exp required (Python 401, Node accepts)",
        applies: (c) => claimsOf(c).exp === undefined },
    { name: "iat_missing", doc: "semantics §2 / libraries §1.4: iat required (Python 401, Node accepts)",
        applies: (c) => claimsOf(c).iat === undefined },
    { name: "iat_in_future", doc: "semantics §2: iat > now+leeway rejected (Node only type-checks iat)",
        applies: (c) => isNum(claimsOf(c).iat) && Math.trunc(claimsOf(c).iat) > NOW + LEEWAY },
    { name: "numeric_string_time", doc: "semantics §2 stricter: numeric strings for exp/iat/nbf -> 401",
        applies: (c) => ["exp", "iat", "nbf"].some((k) => typeof claimsOf(c)[k] === "string") },
    { name: "user_id_not_string", doc: "semantics §2: user_id required, a string (Node accepts any)",
        applies: (c) => typeof claimsOf(c).user_id !== "string" },
    { name: "sub_jti_not_string", doc: "semantics §2: sub/jti, if present, strings (PyJWT; jose ignores)",
        applies: (c) => ["sub", "jti"].some((k) => k in claimsOf(c) && typeof claimsOf(c)[k] !== "string") },
    { name: "kid_not_string", doc: "semantics §2: header kid, if present, a string (PyJWT; jose ignores)",
        applies: (c) => c.recipe.header && "kid" in c.recipe.header && typeof c.recipe.header.kid !== "string" },
    { name: "org_entry_missing_field", doc: "semantics §2: org entry without a required field -> 401 (Python KeyError; Node keeps undefined)",
        applies: (c) => orgsInUse(claimsOf(c)).entries.some(([, e]) => e && typeof e === "object" &&
            REQUIRED_ORG_FIELDS.some((f) => !(f in e))) },
    { name: "org_id_not_map_key", doc: "semantics §2 stricter: entry org_id differs from its map key -> 401",
        applies: (c) => { const u = orgsInUse(claimsOf(c));
            return !u.active && u.entries.some(([k, e]) => e && "org_id" in e && e.org_id !== k); } },
    { name: "strict_base64url", doc: "docs/security.md case 14 stricter: only canonical unpadded base64url segments (jose, PyJWT decode `+/=` too)",
        applies: (c) => typeof c.token === "string" && !/^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(c.token) },
    { name: "nul_in_claims", doc: "docs/security.md case 56 stricter: a \\u0000 anywhere in the payload -> 401 (jansson refuses it)",
        applies: (c) => JSON.stringify(c.recipe.claims).includes("\\u0000") },
    { name: "duplicate_authorization", doc: "semantics §2 stricter: more than one Authorization header -> 401 (Node takes the first)",
        applies: (c) => authHeaders(c).length > 1 },
];

function clone(x) {
    return JSON.parse(JSON.stringify(x));
}

// Org keys that collide with Object.prototype members in Node's plain-object
// map: `__proto__` is assigned as the prototype (never found), an own
// `hasOwnProperty` shadows the method the lookup calls (TypeError).
// (A Map: in an object literal `"__proto__": v` would itself set the prototype.)
const PROTO_NAMES = new Map([["__proto__", "__proto__renamed"], ["hasOwnProperty", "hasOwnProperty_renamed"]]);
const UNRENAME = new Map([...PROTO_NAMES].map(([a, b]) => [b, a]));

const NEUTRALIZE = [
    { name: "exp_leeway", doc: "semantics §2: exp accepted until now-60 (Python leeway); jose has none",
        // PyJWT compares int(exp): the fraction is dropped before the leeway test
        applies: (c) => isNum(claimsOf(c).exp) && Math.trunc(claimsOf(c).exp) > NOW - LEEWAY && claimsOf(c).exp <= NOW,
        rewrite: (c) => { c.recipe.claims.exp = NOW + 1800; } },
    { name: "nbf_leeway", doc: "semantics §2: nbf accepted up to now+60 (Python leeway); jose has none",
        applies: (c) => isNum(claimsOf(c).nbf) && claimsOf(c).nbf > NOW && Math.trunc(claimsOf(c).nbf) <= NOW + LEEWAY,
        rewrite: (c) => { delete c.recipe.claims.nbf; } },
    { name: "orgs_null", doc: "semantics §2: org_id_to_org_member_info null = no orgs (Node: TypeError -> 401)",
        applies: (c) => claimsOf(c).org_id_to_org_member_info === null && !claimsOf(c).org_member_info,
        rewrite: (c) => { delete c.recipe.claims.org_id_to_org_member_info; } },
    { name: "user_role_null_entry", doc: "semantics §2: an entry whose user_role is null is dropped (Node keeps it as a member)",
        applies: (c) => orgsInUse(claimsOf(c)).entries.some(([, e]) => e && e.user_role === null),
        rewrite: (c) => { const m = c.recipe.claims.org_id_to_org_member_info;
            for (const k of Object.keys(m)) if (m[k] && m[k].user_role === null) delete m[k]; } },
    { name: "node_proto_org_key", doc: "semantics §3: org keys `__proto__` / `hasOwnProperty` are just strings (Node: prototype assignment / shadowed method)",
        applies: (c) => orgsInUse(claimsOf(c)).entries.some(([k]) => PROTO_NAMES.has(k)),
        rewrite: (c) => {
            const cl = c.recipe.claims;
            const ren = (k) => (PROTO_NAMES.has(k) ? PROTO_NAMES.get(k) : k);
            if (cl.org_member_info) cl.org_member_info.org_id = ren(cl.org_member_info.org_id);
            const m = cl.org_id_to_org_member_info;
            if (!cl.org_member_info && m && typeof m === "object") {
                const fresh = {};
                for (const k of Object.keys(m)) {
                    const e = m[k];
                    if (e && e.org_id === k) e.org_id = ren(k);
                    Object.defineProperty(fresh, ren(k), { value: e, enumerable: true,
                        writable: true, configurable: true });
                }
                cl.org_id_to_org_member_info = fresh;
            }
            if (c.orgId !== null) c.orgId = ren(c.orgId);
        },
        // authgate's identity on the original case names the org by its real key
        identityKey: (k) => (UNRENAME.has(k) ? UNRENAME.get(k) : k) },
    { name: "bearer_extra_whitespace", doc: "semantics §2 / libraries §4.1: `Bearer` then one or more spaces (FastAPI strips); Node splits on one space",
        applies: (c) => authHeaders(c).length === 1 && /^bearer {2,}\S+$/i.test(authHeaders(c)[0][1]),
        rewrite: (c) => { c.headerForm = "bearer"; } },
];

// Rebuilds the library's user object in the X-User (Python asdict) shape.
const USER_FIELDS = ["user_id", "org_id_to_org_member_info", "email", "login_method", "first_name",
    "last_name", "username", "properties", "legacy_user_id", "impersonator_user_id", "active_org_id"];
const ORG_FIELDS = ["org_id", "org_name", "org_metadata", "user_assigned_role",
    "user_inherited_roles_plus_current_role", "user_permissions", "org_role_structure",
    "assigned_additional_roles", "url_safe_org_name", "legacy_org_id"];

const nz = (v) => (v === undefined ? null : v);

function orgToSnake(o) {
    return {
        org_id: nz(o.orgId), org_name: nz(o.orgName), org_metadata: nz(o.orgMetadata),
        user_assigned_role: nz(o.userAssignedRole),
        user_inherited_roles_plus_current_role: nz(o.userInheritedRolesPlusCurrentRole),
        user_permissions: nz(o.userPermissions), org_role_structure: nz(o.orgRoleStructure),
        assigned_additional_roles: nz(o.userAssignedAdditionalRoles),
        url_safe_org_name: nz(o.urlSafeOrgName), legacy_org_id: nz(o.legacyOrgId),
    };
}

function loginToSnake(lm) {
    if (!lm) return { login_method: "unknown" };
    const o = {};
    if (lm.provider !== undefined) o.provider = lm.provider;
    if (lm.orgId !== undefined) o.org_id = lm.orgId;
    o.login_method = lm.loginMethod;
    return o;
}

// Node's own normalisation of a token login_method, in snake form.
function canonicalLogin(raw) {
    if (!raw) return { login_method: "unknown" };
    switch (raw.login_method) {
    case "password": case "magic_link": case "email_confirmation_link": case "impersonation":
    case "generated_from_backend_api":
        return { login_method: raw.login_method };
    case "social_sso": return { provider: raw.provider, login_method: "social_sso" };
    case "saml_sso": return { provider: raw.provider, org_id: raw.org_id, login_method: "saml_sso" };
    default: return { login_method: "unknown" };
    }
}

function deepEqual(a, b) {
    if (a === b) return true;
    if (typeof a !== typeof b || a === null || b === null) return false;
    if (typeof a !== "object") return Number.isNaN(a) && Number.isNaN(b);
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

// Library user -> expected X-User. `notes` collects the identity-level
// allowed differences that had to be applied.
function expectedUser(c, user, notes, keyMap) {
    const cl = claimsOf(c);
    let map = null;
    const m = user.orgIdToOrgMemberInfo;
    if (m !== undefined && m !== null) {
        map = {};
        const proto = Object.getPrototypeOf(m);
        if (proto !== Object.prototype && proto !== null) {
            // node_proto_org_key: the `__proto__` entry became the prototype
            map["__proto__"] = orgToSnake(proto);
            notes.add("node_proto_org_key");
        }
        for (const k of Object.keys(m)) {
            const o = orgToSnake(m[k]);
            if (o.user_assigned_role === null) {
                notes.add("user_role_null_entry");
                continue;
            }
            Object.defineProperty(map, keyMap ? keyMap(k) : k, { value: o, enumerable: true,
                writable: true, configurable: true });
        }
        for (const o of Object.values(map)) if (keyMap) o.org_id = keyMap(o.org_id);
    }
    let login = loginToSnake(user.loginMethod);
    const raw = cl.login_method;
    if (raw !== undefined && raw !== null && !deepEqual(raw, canonicalLogin(raw))) {
        // login_method_passthrough: authgate forwards the token's object as is
        notes.add("login_method_passthrough");
        login = raw;
    }
    let active = nz(user.activeOrgId);
    if (keyMap && active !== null) active = keyMap(active);
    return {
        user_id: nz(user.userId), org_id_to_org_member_info: map, email: nz(user.email),
        login_method: login, first_name: nz(user.firstName), last_name: nz(user.lastName),
        username: nz(user.username), properties: nz(user.properties),
        legacy_user_id: nz(user.legacyUserId), impersonator_user_id: nz(user.impersonatorUserId),
        active_org_id: active,
    };
}

function verdictOf(a, user) {
    if (a.decision === "allow") return user ? "allow:user" : "allow:anon";
    return String(a.status);
}

module.exports = { REJECT, NEUTRALIZE, USER_FIELDS, ORG_FIELDS, expectedUser, orgToSnake,
    deepEqual, verdictOf, clone, claimsOf, authHeaders, wellSigned };
