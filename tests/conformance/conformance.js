"use strict";
// Differential conformance run: the same generated requests go to
// `authgate explain --batch` and to @propelauth/node (offline); decisions and,
// on allow, X-User / X-Org against the library's user object are compared.
//
//   node conformance.js AUTHGATE_BINARY
//   env: SEED (1), CASES (10000), ONLY=i (replay one case, verbose),
//        MAX_PRINT (10 unexplained cases printed in full), KEEP=1 (keep tmp dir)

const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");

const G = require("./gen");
const T = require("./tokens");
const D = require("./differences");
const { makeOracle } = require("./oracle");
const snippet = require("./snippets/express-identity");

const SEED = parseInt(process.env.SEED || "1", 10);
const CASES = parseInt(process.env.CASES || "10000", 10);
const ONLY = process.env.ONLY !== undefined && process.env.ONLY !== "" ? parseInt(process.env.ONLY, 10) : null;
const MAX_PRINT = parseInt(process.env.MAX_PRINT || "10", 10);

function die(msg) {
    console.error("conformance: " + msg);
    process.exit(2);
}

const agBin = process.argv[2];
if (!agBin || !fs.existsSync(agBin)) die("usage: node conformance.js PATH/TO/authgate");
if (!Number.isInteger(SEED) || !Number.isInteger(CASES) || CASES < 1) die("SEED and CASES must be integers");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ag-conformance-"));
const keys = T.makeKeys();
const pubFile = path.join(tmp, "verifier.pem");
fs.writeFileSync(pubFile, keys.mainPub);
const variants = G.policyVariants();
const cfgFile = path.join(tmp, "authgate.yaml");
fs.writeFileSync(cfgFile, G.configYaml(variants, pubFile));
const oracle = makeOracle(keys.mainPub);

// Token and headers for a case (also after a rewrite).
function materialize(c) {
    c.token = T.buildToken(c.recipe, keys);
    c.headers = T.buildHeaders(c.headerForm, c.token);
    c.target = targetFor(c);
    return c;
}

function targetFor(c) {
    const p = c.policy;
    if (!G.ORG_KINDS.includes(p.kind)) return c.target;
    if (c.orgSource === "path") return "/q/" + p.id + "/" + encodeURIComponent(c.orgId);
    let t = "/p/" + p.id;
    if (c.orgId !== null) t += "?org_id=" + encodeURIComponent(c.orgId);
    if (c.target.endsWith("x=1")) t += (t.includes("?") ? "&" : "?") + "x=1";
    return t;
}

function agLine(c) {
    return JSON.stringify({ method: "GET", target: c.target, headers: c.headers, now: G.NOW });
}

function runAuthgate(cases) {
    const input = cases.map(agLine).join("\n") + "\n";
    const r = spawnSync(agBin, ["explain", "-c", cfgFile, "--batch"], {
        input, maxBuffer: 1 << 30, encoding: "utf8",
    });
    if (r.error) die("cannot run " + agBin + ": " + r.error.message);
    const lines = r.stdout.split("\n").filter((l) => l.length);
    if (lines.length !== cases.length)
        die(`authgate explain answered ${lines.length} lines for ${cases.length} requests ` +
            `(exit ${r.status}); stderr: ${r.stderr.slice(0, 2000)}`);
    return lines.map((l, i) => {
        const o = JSON.parse(l);
        // A line explain could not read is {"error": ...} without a decision; a
        // decision carries its own "error" class (forbidden, unauthorized, ...).
        if (o.error && o.decision === undefined)
            die("authgate explain refused request " + i + ": " + l + "\n" + agLine(cases[i]));
        return o;
    });
}

// authgate-only properties of an allowed answer: header safety, field order,
// X-Org consistent with the user's map.
function headerChecks(c, ag) {
    const errs = [];
    if (ag.decision !== "allow" || !ag.x_user_raw) return errs;
    if (!/^[\x20-\x7e]*$/.test(ag.x_user_raw)) errs.push("X-User holds a byte outside printable ASCII");
    const u = JSON.parse(ag.x_user_raw);
    if (Object.keys(u).join(",") !== D.USER_FIELDS.join(","))
        errs.push("X-User fields/order: " + Object.keys(u).join(","));
    if (u.org_id_to_org_member_info)
        for (const [k, o] of Object.entries(u.org_id_to_org_member_info))
            if (Object.keys(o).join(",") !== D.ORG_FIELDS.join(","))
                errs.push("X-User org " + k + " fields/order: " + Object.keys(o).join(","));
    if (ag.x_org) {
        if (Object.keys(ag.x_org).join(",") !== D.ORG_FIELDS.join(","))
            errs.push("X-Org fields/order: " + Object.keys(ag.x_org).join(","));
        const m = u.org_id_to_org_member_info;
        if (!m || !Object.prototype.hasOwnProperty.call(m, ag.org_id) || !D.deepEqual(m[ag.org_id], ag.x_org))
            errs.push("X-Org is not the X-User map entry of org " + JSON.stringify(ag.org_id));
    }
    return errs;
}

// Compare authgate's answer with a library answer; returns a list of
// differences (empty = agree). `notes` gathers identity-level allowances.
function compare(c, ag, lib, notes, keyMap) {
    const diffs = [];
    const agUser = ag.x_user_raw ? JSON.parse(ag.x_user_raw) : null;
    const va = D.verdictOf(ag, agUser), vl = D.verdictOf(lib, lib.user);
    if (va !== vl) {
        diffs.push(`decision: authgate ${va} vs library ${vl}`);
        return diffs;
    }
    if (va !== "allow:user") return diffs;
    const exp = D.expectedUser(c, lib.user, notes, keyMap);
    for (const f of D.USER_FIELDS) {
        if (f === "org_id_to_org_member_info") {
            const a = agUser[f], b = exp[f];
            if ((a === null) !== (b === null)) {
                diffs.push(`X-User.${f}: authgate ${JSON.stringify(a)} vs library ${JSON.stringify(b)}`);
                continue;
            }
            if (a === null) continue;
            const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
            if (ka.join("\0") !== kb.join("\0"))
                diffs.push(`X-User.${f} keys: authgate ${JSON.stringify(ka)} vs library ${JSON.stringify(kb)}`);
            for (const k of ka) {
                if (!Object.prototype.hasOwnProperty.call(b, k)) continue;
                for (const g of D.ORG_FIELDS)
                    if (!D.deepEqual(a[k][g], b[k][g]))
                        diffs.push(`X-User.${f}[${JSON.stringify(k)}].${g}: authgate ` +
                            `${JSON.stringify(a[k][g])} vs library ${JSON.stringify(b[k][g])}`);
            }
            continue;
        }
        if (!D.deepEqual(agUser[f], exp[f]))
            diffs.push(`X-User.${f}: authgate ${JSON.stringify(agUser[f])} vs library ${JSON.stringify(exp[f])}`);
    }
    if (G.ORG_KINDS.includes(c.policy.kind)) {
        if (!ag.x_org || !lib.org) diffs.push("X-Org missing on one side");
        else {
            const lo = D.orgToSnake(lib.org);
            if (keyMap) lo.org_id = keyMap(lo.org_id);
            for (const g of D.ORG_FIELDS)
                if (!D.deepEqual(ag.x_org[g], lo[g]))
                    diffs.push(`X-Org.${g}: authgate ${JSON.stringify(ag.x_org[g])} vs library ${JSON.stringify(lo[g])}`);
        }
    } else if (ag.x_org) diffs.push("X-Org sent on a non-org route");
    if (!diffs.length && !keyMap && notes.size === 0) diffs.push(...snippetCheck(c, ag, lib));
    return diffs;
}

// The Express snippet of docs/compatibility.md, run on authgate's headers,
// must rebuild the library's own user and org objects (an absent field and
// null count as equal; `metadata` is a Node-only claim X-User does not carry).
function snippetCheck(c, ag, lib) {
    const out = [];
    const headers = { "x-user": ag.x_user_raw, "x-org": ag.x_org ? JSON.stringify(ag.x_org) : undefined };
    const req = { get: (n) => headers[n.toLowerCase()] };
    let called = false;
    try {
        snippet.propelauthFromAuthgate(req, null, () => { called = true; });
    } catch (e) {
        return ["express snippet threw: " + e.message];
    }
    if (!called) out.push("express snippet did not call next()");
    const norm = (x) => JSON.parse(JSON.stringify(x, (k, v) => (v === undefined ? null : v)));
    const a = Object.assign({}, norm(req.user)), b = Object.assign({}, norm(lib.user));
    delete a.metadata;
    delete b.metadata;
    if (!D.deepEqual(a, b)) out.push("express snippet user differs from the library's: " +
        JSON.stringify(a).slice(0, 300) + " vs " + JSON.stringify(b).slice(0, 300));
    if (lib.org) {
        if (!(req.org instanceof require("@propelauth/node").OrgMemberInfo)) out.push("express snippet req.org is not an OrgMemberInfo");
        else if (!D.deepEqual(norm(req.org), norm(lib.org))) out.push("express snippet org differs from the library's");
    }
    return out;
}

function agRejectedToken(c, ag) {
    if (c.policy.kind === "optional_user") return ag.decision === "allow" && !ag.x_user_raw;
    return ag.status === 401;
}

// Classify one case. Returns {cls: "agree"|"allowed"|"unexplained", kinds, diffs, lib2}
async function classify(c, ag, lib) {
    const notes = new Set();
    const hdr = headerChecks(c, ag);
    if (hdr.length) return { cls: "unexplained", kinds: [], diffs: hdr };
    if (c.policy.kind === "public") {
        const d = compare(c, ag, lib, notes);
        if (ag.x_user_raw || ag.x_org) d.push("identity headers on a public route");
        return d.length ? { cls: "unexplained", kinds: [], diffs: d } : { cls: "agree", kinds: [] };
    }
    const rej = D.REJECT.filter((k) => k.applies(c)).map((k) => k.name);
    if (rej.length) {
        if (!agRejectedToken(c, ag))
            return { cls: "unexplained", kinds: rej, diffs: [`authgate accepted a token the reference ` +
                `rejects (${rej.join(", ")}): authgate ${D.verdictOf(ag, ag.x_user_raw)}`] };
        const d = compare(c, ag, lib, notes);
        return d.length ? { cls: "allowed", kinds: [rej[0]], diffs: d } : { cls: "agree", kinds: [] };
    }
    const neut = D.wellSigned(c) ? D.NEUTRALIZE.filter((k) => k.applies(c)) : [];
    if (neut.length) {
        const c2 = Object.assign({}, c, { recipe: D.clone(c.recipe) });
        for (const k of neut) k.rewrite(c2);
        materialize(c2);
        const lib2 = await oracle.ask(c2.policy, T.libraryHeader(c2.headers), c2.orgId);
        const keyMap = neut.find((k) => k.identityKey);
        const d2 = compare(c, ag, lib2, notes, keyMap ? keyMap.identityKey : null);
        const d = compare(c, ag, lib, new Set());
        if (d2.length)
            return { cls: "unexplained", kinds: neut.map((k) => k.name), diffs: d.length ? d : d2,
                lib2, c2, note: "still differs after rewriting away " + neut.map((k) => k.name).join(", ") +
                    ": " + d2.join("; ") };
        if (!d.length) return { cls: "agree", kinds: [] };
        const used = neut.map((k) => k.name);
        for (const n of notes) if (!used.includes(n)) used.push(n);
        return { cls: "allowed", kinds: used, diffs: d };
    }
    const d = compare(c, ag, lib, notes);
    if (d.length) return { cls: "unexplained", kinds: [], diffs: d };
    if (notes.size) return { cls: "allowed", kinds: [...notes], diffs: ["identity only"] };
    return { cls: "agree", kinds: [] };
}

// Greedy shrinking of an unexplained case: drop claims, org entries and
// optional entry fields one at a time while the case stays unexplained with
// the same pair of verdicts. Bounded, and only run for printed cases.
async function shrink(c, ag, lib) {
    const key = (a, l) => D.verdictOf(a, a.x_user_raw) + "|" + D.verdictOf(l, l.user);
    const want = key(ag, lib);
    let cur = c, curAg = ag, curLib = lib, tries = 0;
    const keep = new Set(["iss", "exp", "iat", "user_id"]);
    for (let progress = true; progress && tries < 150;) {
        progress = false;
        const cl = cur.recipe.claims;
        if (!cl || typeof cl !== "object" || Array.isArray(cl)) break;
        const muts = [];
        for (const k of Object.keys(cl)) if (!keep.has(k)) muts.push((x) => { delete x.recipe.claims[k]; });
        const m = cl.org_id_to_org_member_info;
        if (m && typeof m === "object")
            for (const k of Object.keys(m)) {
                if (k !== cur.orgId) muts.push((x) => { delete x.recipe.claims.org_id_to_org_member_info[k]; });
                const e = m[k];
                if (e && typeof e === "object")
                    for (const f of ["org_metadata", "legacy_org_id", "additional_roles", "org_role_structure"])
                        if (f in e && !(f === "org_metadata" && e[f] === null))
                            muts.push((x) => { const ee = x.recipe.claims.org_id_to_org_member_info[k];
                                if (f === "org_metadata") ee[f] = null; else delete ee[f]; });
            }
        for (const mu of muts) {
            if (tries++ >= 150) break;
            const c2 = Object.assign({}, cur, { recipe: D.clone(cur.recipe) });
            mu(c2);
            materialize(c2);
            const a2 = runAuthgate([c2])[0];
            const l2 = await oracle.ask(c2.policy, T.libraryHeader(c2.headers), c2.orgId);
            const r2 = await classify(c2, a2, l2);
            if (r2.cls === "unexplained" && key(a2, l2) === want) {
                cur = c2; curAg = a2; curLib = l2; progress = true;
                break;
            }
        }
    }
    return { c: cur, ag: curAg, lib: curLib, res: await classify(cur, curAg, curLib) };
}

// MUTATE=1: corrupt some of authgate's answers on purpose; every corrupted
// case must come out unexplained, or the comparison is not looking.
function mutate(cases, ags) {
    const injected = new Map();
    for (let i = 0; i < ags.length; i++) {
        const a = ags[i], c = cases[i];
        if (i % 7 !== 3) continue;
        if (a.decision === "allow" && a.x_user_raw) {
            const u = JSON.parse(a.x_user_raw);
            const how = i % 3;
            if (how === 0) { a.decision = "deny"; a.status = 403; a.x_user_raw = null; a.x_user = null; a.x_org = null; injected.set(i, "allow->403"); }
            else if (how === 1) { u.email = (u.email || "") + "x"; a.x_user_raw = JSON.stringify(u); injected.set(i, "X-User.email changed"); }
            else if (a.x_org) { a.x_org = Object.assign({}, a.x_org, { user_permissions: [] });
                const m = u.org_id_to_org_member_info; if (m) m[a.org_id] = a.x_org; a.x_user_raw = JSON.stringify(u); injected.set(i, "X-Org.user_permissions emptied"); }
            else { u.active_org_id = "forged"; a.x_user_raw = JSON.stringify(u); injected.set(i, "X-User.active_org_id changed"); }
        } else if (a.status === 401 && c.policy.kind === "require_user" && c.recipe.signing === "main") {
            a.decision = "allow"; a.status = 0;
            a.x_user_raw = JSON.stringify({ user_id: "forged" }); injected.set(i, "401->allow");
        } else if (a.status === 403) {
            a.status = 401; injected.set(i, "403->401");
        }
    }
    return injected;
}

// The FastAPI snippet of docs/compatibility.md turns X-User back into token
// claims for propelauth-py's converter; minting those claims again must give
// the same X-User (nothing lost, nothing renamed wrongly).
function pythonRoundTrip(cases, ags) {
    const idx = [];
    for (let i = 0; i < ags.length && idx.length < 3000; i++) if (ags[i].x_user_raw) idx.push(i);
    if (!idx.length) return null;
    const r = spawnSync("python3", [path.join(__dirname, "snippets", "py_roundtrip.py")], {
        input: idx.map((i) => ags[i].x_user_raw).join("\n") + "\n", encoding: "utf8", maxBuffer: 1 << 30 });
    if (r.error || r.status !== 0) {
        console.log("python snippet: not checked (python3: " + (r.error ? r.error.message : r.stderr.slice(0, 300)) + ")");
        return null;
    }
    const out = r.stdout.split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
    const requireUser = variants.find((v) => v.kind === "require_user");
    const again = out.map((cl, j) => {
        const claims = Object.assign(cl, { iat: G.NOW - 10, exp: G.NOW + 600, iss: G.ISSUER });
        const c = { policy: requireUser, orgId: null, target: "/p/" + requireUser.id, headerForm: "bearer",
            recipe: { header: { alg: "RS256", typ: "JWT" }, claims, signing: "main", corrupt: null }, index: idx[j] };
        return materialize(c);
    });
    const ags2 = runAuthgate(again);
    let bad = 0;
    for (let j = 0; j < again.length; j++) {
        const a = JSON.parse(ags[idx[j]].x_user_raw);
        const b = ags2[j].x_user_raw ? JSON.parse(ags2[j].x_user_raw) : null;
        if (!D.deepEqual(a, b)) {
            if (bad++ < MAX_PRINT)
                console.log(`python snippet round trip differs for case ${idx[j]}: ${ags[idx[j]].x_user_raw} -> ` +
                    `${JSON.stringify(out[j])} -> ${ags2[j].x_user_raw} (${ags2[j].reason})`);
        }
    }
    return { n: again.length, bad };
}

function agSummary(ag) {
    return { verdict: D.verdictOf(ag, ag.x_user_raw), status: ag.status, reason: ag.reason,
        token_reason: ag.token_reason, org_id: ag.org_id, x_user: ag.x_user_raw ? JSON.parse(ag.x_user_raw) : null,
        x_org: ag.x_org };
}

function libSummary(c, lib) {
    const notes = new Set();
    return { verdict: D.verdictOf(lib, lib.user), status: lib.status, detail: lib.detail,
        user_as_x_user: lib.user ? D.expectedUser(c, lib.user, notes) : null,
        org_as_x_org: lib.org ? D.orgToSnake(lib.org) : null };
}

function report(c, ag, lib, res) {
    const out = {
        replay: `SEED=${c.seed} ONLY=${c.index} make conformance`,
        policy: c.policy, request: { method: "GET", target: c.target, org_id: c.orgId,
            org_id_from: c.orgSource, headers: c.headers.map(([n, v]) =>
                [n, v.length > 60 ? v.slice(0, 40) + "…(token below)" : v]) },
        token: { fault: c.fault, header_form: c.headerForm, jws_header: c.recipe.header,
            signing: c.recipe.signing, corrupt: c.recipe.corrupt, claims: c.recipe.claims, now: G.NOW },
        authgate: agSummary(ag), library: libSummary(c, lib), differences: res.diffs,
    };
    if (res.note) out.note = res.note;
    if (res.lib2) out.library_after_rewrite = libSummary(res.c2 || c, res.lib2);
    if (res.kinds && res.kinds.length) out.documented_rules_tried = res.kinds;
    console.log("---- UNEXPLAINED case " + c.index + " ----");
    console.log(JSON.stringify(out, null, 2));
    console.log("token: " + c.token);
    console.log(`reproduce: authgate explain -c CONFIG --now ${G.NOW} --token-file TOKEN GET '${c.target}'` +
        "   (config kept with KEEP=1: " + cfgFile + ")");
}

async function main() {
    const t0 = process.hrtime.bigint();
    const indices = ONLY !== null ? [ONLY] : Array.from({ length: CASES }, (_, i) => i);
    const cases = indices.map((i) => materialize(G.genCase(SEED, i, variants)));
    const t1 = process.hrtime.bigint();
    const ags = runAuthgate(cases);
    const injected = process.env.MUTATE === "1" ? mutate(cases, ags) : null;
    const t2 = process.hrtime.bigint();
    const libs = [];
    for (const c of cases) libs.push(await oracle.ask(c.policy, T.libraryHeader(c.headers), c.orgId));
    const t3 = process.hrtime.bigint();

    let agree = 0, allowed = 0, unexplained = 0, printed = 0, caught = 0;
    const byKind = {};
    const verdicts = {};
    for (let i = 0; i < cases.length; i++) {
        const c = cases[i], ag = ags[i], lib = libs[i];
        const res = await classify(c, ag, lib);
        const v = D.verdictOf(ag, ag.x_user_raw);
        verdicts[v] = (verdicts[v] || 0) + 1;
        if (injected && injected.has(i)) {
            if (res.cls === "unexplained") caught++;
            else console.log(`self-test: injected fault "${injected.get(i)}" in case ${i} was classified ${res.cls}`);
        }
        if (res.cls === "agree") agree++;
        else if (res.cls === "allowed") {
            allowed++;
            const k = res.kinds.join("+");
            byKind[k] = (byKind[k] || 0) + 1;
        } else {
            unexplained++;
            if (process.env.BRIEF === "1")
                console.log(`U ${c.index} ${c.policy.kind} fault=${c.fault} hdr=${c.headerForm} ` +
                    `org=${JSON.stringify(c.orgId)} ag=${D.verdictOf(ag, ag.x_user_raw)}/${ag.reason}/${ag.token_reason} ` +
                    `lib=${D.verdictOf(lib, lib.user)} :: ${(res.diffs || []).join(" | ").slice(0, 300)}`);
            else if (injected) { /* self-test: counted below */ }
            else if (printed++ < MAX_PRINT || ONLY !== null) {
                const s = await shrink(c, ag, lib);
                if (s.c !== c) console.log(`(case ${c.index} shrunk: claims below are a smaller case that still disagrees the same way)`);
                report(s.c, s.ag, s.lib, s.res);
            }
        }
        if (ONLY !== null) {
            console.log(JSON.stringify({ classification: res.cls, kinds: res.kinds, diffs: res.diffs,
                authgate: agSummary(ag), library: libSummary(c, lib), claims: c.recipe.claims,
                headers: c.headers, target: c.target }, null, 2));
        }
    }
    const rt = injected ? null : pythonRoundTrip(cases, ags);
    if (rt) {
        console.log(`python snippet: ${rt.n} X-User values rebuilt into claims, re-minted, ${rt.bad} differ`);
        unexplained += rt.bad;
    }
    const t4 = process.hrtime.bigint();
    if (oracle.fetchCalls() !== 0) {
        console.log(`conformance: the library made ${oracle.fetchCalls()} network calls (must be 0)`);
        unexplained++;
    }
    const ms = (a, b) => Number((b - a) / 1000000n);
    console.log(`authgate verdicts: ${Object.entries(verdicts).sort().map(([k, n]) => k + "=" + n).join(" ")}`);
    console.log(`timing: generate+sign ${ms(t0, t1)} ms, authgate ${ms(t1, t2)} ms, ` +
        `library ${ms(t2, t3)} ms, compare ${ms(t3, t4)} ms`);
    console.log("allowed differences covered (documented in docs/compatibility.md):");
    for (const k of D.REJECT.concat(D.NEUTRALIZE)) {
        const n = Object.entries(byKind).filter(([kk]) => kk.split("+").includes(k.name))
            .reduce((s, [, v]) => s + v, 0);
        console.log(`  ${k.name.padEnd(26)} ${String(n).padStart(6)}  ${k.doc}`);
    }
    for (const k of ["login_method_passthrough"]) {
        const n = Object.entries(byKind).filter(([kk]) => kk.split("+").includes(k)).reduce((s, [, v]) => s + v, 0);
        console.log(`  ${k.padEnd(26)} ${String(n).padStart(6)}  semantics §2: login_method passed through as given (Node normalises it)`);
    }
    if (unexplained > MAX_PRINT && ONLY === null && !injected)
        console.log(`(${unexplained - MAX_PRINT} more unexplained cases not printed; raise MAX_PRINT)`);
    if (process.env.KEEP !== "1") fs.rmSync(tmp, { recursive: true, force: true });
    else console.log("kept " + tmp);
    if (injected) {
        const ok = caught === injected.size && unexplained === injected.size && injected.size > 0;
        console.log(`self-test: ${injected.size} faults injected into authgate's answers, ${caught} caught, ` +
            `${unexplained - caught} other unexplained: ${ok ? "ok" : "FAILED"}`);
        process.exit(ok ? 0 : 1);
    }
    const kinds = Object.entries(byKind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
    console.log(`${agree + allowed + (rt ? rt.n - rt.bad : 0)} passed, ${unexplained} failed`);
    console.log(`conformance: ${cases.length} cases (seed ${SEED}), ${agree} agree, ${allowed} allowed differences ` +
        `(by kind: ${kinds || "none"}), ${unexplained} unexplained`);
    process.exit(unexplained ? 1 : 0);
}

main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(2);
});
