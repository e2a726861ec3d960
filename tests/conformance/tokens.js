"use strict";
// Builds the token and the Authorization header(s) of a case from its
// recipe. Signing uses Node's crypto directly: RS256 is PKCS#1 v1.5 over
// base64url(header) "." base64url(payload).
const crypto = require("crypto");

function b64u(buf) {
    return Buffer.from(buf).toString("base64url");
}

function makeKeys() {
    const gen = () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const main = gen();
    const other = gen();
    return {
        mainPriv: main.privateKey,
        mainPub: main.publicKey.export({ type: "spki", format: "pem" }),
        otherPriv: other.privateKey,
    };
}

function buildToken(recipe, keys) {
    const h = b64u(JSON.stringify(recipe.header));
    let p;
    if (recipe.signing === "main_raw_payload") p = b64u("{\"user_id\": \"u1\", not json");
    else if (recipe.signing === "main_array_payload") p = b64u(JSON.stringify([recipe.claims]));
    else p = b64u(JSON.stringify(recipe.claims));
    const input = h + "." + p;
    let sig;
    switch (recipe.signing) {
    case "none": sig = ""; break;
    case "other": sig = crypto.sign("sha256", Buffer.from(input), keys.otherPriv); break;
    case "hs256":
        sig = crypto.createHmac("sha256", keys.mainPub).update(input).digest();
        break;
    case "rs384": sig = crypto.sign("sha384", Buffer.from(input), keys.mainPriv); break;
    case "ps256":
        sig = crypto.sign("sha256", Buffer.from(input), {
            key: keys.mainPriv, padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
            saltLength: 32,
        });
        break;
    default: sig = crypto.sign("sha256", Buffer.from(input), keys.mainPriv);
    }
    let tok = input + "." + b64u(sig);
    switch (recipe.corrupt) {
    case "flip_signature": {
        const s = Buffer.from(sig);
        s[s.length >> 1] ^= 0x01;
        tok = input + "." + b64u(s);
        break;
    }
    case "swap_payload": {
        const c = Object.assign({}, recipe.claims, { user_id: "attacker" });
        tok = h + "." + b64u(JSON.stringify(c)) + "." + b64u(sig);
        break;
    }
    case "two_parts": tok = input; break;
    case "garbage": tok = "whatisthis"; break;
    case "padding": tok = input + "." + Buffer.from(sig).toString("base64"); break;
    }
    return tok;
}

// The Authorization header(s) sent, as [name, value] pairs.
function buildHeaders(form, tok) {
    switch (form) {
    case "none": return [];
    case "empty": return [["Authorization", ""]];
    case "lower_bearer": return [["Authorization", "bearer " + tok]];
    case "upper_bearer": return [["Authorization", "BEARER " + tok]];
    case "two_spaces": return [["Authorization", "Bearer  " + tok]];
    case "tab": return [["Authorization", "Bearer\t" + tok]];
    case "token_scheme": return [["Authorization", "token " + tok]];
    case "bearer_only": return [["Authorization", "Bearer"]];
    case "trailing_word": return [["Authorization", "Bearer " + tok + " extra"]];
    case "whatisthis": return [["Authorization", "Bearer whatisthis"]];
    case "duplicate": return [["Authorization", "Bearer " + tok], ["Authorization", "Bearer " + tok]];
    case "lower_name": return [["authorization", "Bearer " + tok]];
    case "bare_token": return [["Authorization", tok]];
    default: return [["Authorization", "Bearer " + tok]];
    }
}

// What an Express app hands the library: Node's http parser keeps only the
// first Authorization header (duplicates of it are discarded).
function libraryHeader(headers) {
    const a = headers.find(([n]) => n.toLowerCase() === "authorization");
    return a ? a[1] : undefined;
}

module.exports = { makeKeys, buildToken, buildHeaders, libraryHeader };
