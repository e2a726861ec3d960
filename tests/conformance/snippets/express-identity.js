// Express middleware for a backend behind authgate: rebuilds the objects
// @propelauth/express would have put on the request (req.user, req.org) from
// the X-User / X-Org headers. Only mount it on an app that is reachable
// solely through authgate: the headers are trusted as is.
const { toUser } = require("@propelauth/node");

// X-User / X-Org use the Python field names; three differ from the token's.
const TOKEN_NAMES = {
    user_assigned_role: "user_role",
    user_inherited_roles_plus_current_role: "inherited_user_roles_plus_current_role",
    assigned_additional_roles: "additional_roles",
};

function orgToTokenForm(org) {
    const out = {};
    for (const [k, v] of Object.entries(org)) out[TOKEN_NAMES[k] || k] = v;
    return out;
}

// X-User back to the token's claim layout, which the library's own toUser() reads.
function xUserToClaims(xUser) {
    const claims = {};
    for (const [k, v] of Object.entries(xUser))
        if (v !== null && k !== "org_id_to_org_member_info" && k !== "active_org_id") claims[k] = v;
    const orgs = xUser.org_id_to_org_member_info;
    if (xUser.active_org_id !== null && orgs && Object.prototype.hasOwnProperty.call(orgs, xUser.active_org_id)) {
        claims.org_member_info = orgToTokenForm(orgs[xUser.active_org_id]);
    } else if (orgs) {
        claims.org_id_to_org_member_info = {};
        for (const [id, org] of Object.entries(orgs)) claims.org_id_to_org_member_info[id] = orgToTokenForm(org);
    }
    return claims;
}

function propelauthFromAuthgate(req, res, next) {
    const xUser = req.get("x-user");
    if (xUser) {
        req.user = toUser(xUserToClaims(JSON.parse(xUser)));
        const xOrg = req.get("x-org");
        if (xOrg) req.org = req.user.orgIdToOrgMemberInfo[JSON.parse(xOrg).org_id];
    }
    next();
}

module.exports = { propelauthFromAuthgate, xUserToClaims };
