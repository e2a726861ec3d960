"use strict";
// The library side: @propelauth/node run offline with manual token
// verification metadata, asked the way @propelauth/express asks it for each
// policy. Answers are {decision, status, user, org} with the library objects.

const { NOW, ISSUER } = require("./gen");

// jose takes `now` from `new Date()`; pin it so both sides see the same
// second. Only the zero-argument constructor and Date.now() are affected.
const RealDate = Date;
class PinnedDate extends RealDate {
    constructor(...args) {
        if (args.length === 0) super(NOW * 1000);
        else super(...args);
    }
    static now() {
        return NOW * 1000;
    }
}
globalThis.Date = PinnedDate;

// Nothing may leave the machine: manual metadata must mean no fetch at all.
let fetchCalls = 0;
globalThis.fetch = async () => {
    fetchCalls++;
    throw new Error("conformance: the library tried to fetch");
};

const lib = require("@propelauth/node");

function makeOracle(pubPem) {
    const auth = lib.initBaseAuth({
        authUrl: ISSUER,
        apiKey: "unused-offline",
        manualTokenVerificationMetadata: { verifierKey: pubPem, issuer: ISSUER },
    });

    function call(policy, header, orgId) {
        // Express passes { orgId } from the request; an absent id is undefined.
        const org = orgId === null ? {} : { orgId };
        switch (policy.kind) {
        case "optional_user":
        case "require_user":
            return auth.validateAccessTokenAndGetUser(header).then((user) => ({ user, org: null }));
        case "require_org_member":
            return auth.validateAccessTokenAndGetUserWithOrgInfo(header, org)
                .then((r) => ({ user: r.user, org: r.orgMemberInfo }));
        case "require_org_member_with_minimum_role":
            return auth.validateAccessTokenAndGetUserWithOrgInfoWithMinimumRole(header, org, policy.role)
                .then((r) => ({ user: r.user, org: r.orgMemberInfo }));
        case "require_org_member_with_exact_role":
            return auth.validateAccessTokenAndGetUserWithOrgInfoWithExactRole(header, org, policy.role)
                .then((r) => ({ user: r.user, org: r.orgMemberInfo }));
        case "require_org_member_with_permission":
            return auth.validateAccessTokenAndGetUserWithOrgInfoWithPermission(header, org,
                policy.permission).then((r) => ({ user: r.user, org: r.orgMemberInfo }));
        case "require_org_member_with_all_permissions":
            return auth.validateAccessTokenAndGetUserWithOrgInfoWithAllPermissions(header, org,
                policy.permissions).then((r) => ({ user: r.user, org: r.orgMemberInfo }));
        default:
            return Promise.reject(new Error("unknown policy " + policy.kind));
        }
    }

    // Unauthorized -> 401, Forbidden -> 403; anything else the library throws
    // (a TypeError inside an org check) is what Express answers 503 for.
    async function ask(policy, header, orgId) {
        if (policy.kind === "public") return { decision: "allow", status: 0, user: null, org: null };
        try {
            const r = await call(policy, header, orgId);
            return { decision: "allow", status: 0, user: r.user, org: r.org };
        } catch (e) {
            let status = 503;
            let detail = e && e.message ? String(e.message) : String(e);
            if (e instanceof lib.UnauthorizedException) status = 401;
            else if (e instanceof lib.ForbiddenException) status = 403;
            else detail = (e && e.constructor ? e.constructor.name : "Error") + ": " + detail;
            if (policy.kind === "optional_user" && status === 401)
                return { decision: "allow", status: 0, user: null, org: null, detail };
            return { decision: "deny", status, user: null, org: null, detail };
        }
    }

    return { ask, fetchCalls: () => fetchCalls };
}

module.exports = { makeOracle };
