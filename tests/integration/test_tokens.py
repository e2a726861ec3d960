"""Structurally hostile tokens and credential transport through the real daemon
(docs/security.md groups A and B). Tokens are crafted here; where a real signature
over odd content matters, it is made with the trusted key, so only the check
under test can reject it. R2 = require_user, R3 = optional_user."""

import hashlib
import hmac
import json

import harness as H
from test_policies import ORG_B

R2 = "/api/me"
R3 = "/api/feed"


class HostileTokens(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": echo.url}},
            "routes": [
                {"path": R2, "policy": "require_user"},
                {"path": R3, "policy": "optional_user"},
            ],
            # Room for the oversized shapes below (default head limit: 16 KiB),
            # so they reach the token parser rather than the head limit.
            "limits": {"max_header_bytes": 65536},
        }

    def rejected(self, tok, what=""):
        """401 on R2 with nothing upstream; anonymous forward on R3."""
        with self.subTest(case=what or tok[:40]):
            self.expect_deny("GET", R2, 401, token=tok)
            _, rec = self.expect_allow("GET", R3, token=tok)
            self.assert_anonymous(rec)

    def accepted(self, tok, what=""):
        with self.subTest(case=what or tok[:40]):
            _, rec = self.expect_allow("GET", R2, token=tok)
            self.assert_identity(rec, H.decode_claims(tok))

    def good_claims(self):
        return H.claims_for(user_id="u1", orgs=[H.org_entry(ORG_B, "Owner")])

    # -- A: token structure, signature and keys ---------------------------------

    def test_A0_control_good_token_accepted(self):
        self.accepted(H.craft(self.good_claims()))

    def test_A1_alg_none(self):
        c = self.good_claims()
        for alg in ("none", "None", "NONE", "nOnE"):
            self.rejected(H.craft(c, header={"alg": alg, "typ": "JWT"}, signature=""), alg)
            self.rejected(H.craft(c, header={"alg": alg}, signature="AAAA"), alg + "+junk")

    def test_A2_hs256_keyed_with_public_key(self):
        pem = open(H.keys("main").public, "rb").read()
        der = H.run_ok(["openssl", "pkey", "-pubin", "-in", H.keys("main").public,
                        "-outform", "DER"])
        c = self.good_claims()
        for label, key in (("pem", pem), ("pem-no-nl", pem.rstrip(b"\n")),
                           ("pem-ws", b" " + pem), ("spki-der", der)):
            hdr = H.b64url(json.dumps({"alg": "HS256", "typ": "JWT"}))
            pay = H.b64url(json.dumps(c))
            mac = hmac.new(key, (hdr + "." + pay).encode(), hashlib.sha256).digest()
            self.rejected(hdr + "." + pay + "." + H.b64url(mac), "HS256/" + label)

    def test_A3_near_miss_alg_values(self):
        c = self.good_claims()
        for alg in ("rs256", "RS256 ", "RS384", "PS256", "ES256", ["RS256"], None):
            self.rejected(H.craft(c, header={"alg": alg, "typ": "JWT"}), repr(alg))
        self.rejected(H.craft(c, header={"typ": "JWT"}), "alg absent")
        self.rejected(H.craft(c, raw_header='{"alg":"RS256\\u0000","typ":"JWT"}'), "alg NUL")

    def test_A4_embedded_keys_ignored(self):
        c = self.good_claims()
        for extra in ({"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
                      {"jku": "http://127.0.0.1:9/keys"}, {"x5u": "http://127.0.0.1:9/x"},
                      {"x5c": ["AAAA"]}):
            hdr = {"alg": "RS256"}
            hdr.update(extra)
            self.rejected(H.craft(c, header=hdr, key=H.keys("other")), list(extra)[0])

    def test_A5_non_string_kid(self):
        c = self.good_claims()
        for kid in (123, {"a": 1}, ["k"]):
            self.rejected(H.craft(c, header={"alg": "RS256", "kid": kid}), "kid=%r" % (kid,))

    def test_A7_crit_header(self):
        c = self.good_claims()
        for crit in (["exp"], ["https://example.test/x"], [], "b64"):
            self.rejected(H.craft(c, header={"alg": "RS256", "crit": crit}), "crit=%r" % (crit,))

    def test_A9_claim_types(self):
        base = self.good_claims()
        cases = {"exp string": {"exp": "9999999999"}, "exp true": {"exp": True},
                 "exp null": {"exp": None}, "exp list": {"exp": [1]}, "iat string": {"iat": "x"},
                 "sub number": {"sub": 5}, "jti number": {"jti": 5},
                 "user_id number": {"user_id": 5}}
        for what, patch in cases.items():
            c = dict(base)
            c.update(patch)
            self.rejected(H.craft(c), what)
        for k in ("exp", "iat", "iss", "user_id"):
            c = dict(base)
            del c[k]
            self.rejected(H.craft(c), "%s absent" % k)

    def test_A11_time_windows(self):
        H.align_to_second_start()
        t = H.now()
        ok = [("nbf now+30", {"nbf": t + 30})]
        bad = [("nbf now+3600", {"nbf": t + 3600}), ("exp now-61", {"exp": t - 61}),
               ("iat now+61", {"iat": t + 61})]
        for what, patch in ok:
            c = self.good_claims()
            c.update(patch)
            self.accepted(H.craft(c), what)
        for what, patch in bad:
            c = self.good_claims()
            c.update(patch)
            self.rejected(H.craft(c), what)

    def test_A12_issuer_exact(self):
        for iss in (H.ISSUER + "/", H.ISSUER.replace("https", "http"),
                    H.ISSUER.replace("auth.test.local", "AUTH.test.local"),
                    "https://other.test.local", [H.ISSUER]):
            c = self.good_claims()
            c["iss"] = iss
            self.rejected(H.craft(c), "iss=%r" % (iss,))

    def test_A13_compact_shapes(self):
        good = H.craft(self.good_claims())
        h, p, s = good.split(".")
        for tok in ("a.b", "a.b.c.d", "..", ".", h + "." + p, good + "." + s,
                    h + "." + p + "." + s + ".x.y", "." * 20000, h + ".." + s):
            self.rejected(tok, "shape %r" % tok[:30])

    def test_A14_strict_base64url(self):
        good = H.craft(self.good_claims())
        h, p, s = good.split(".")
        variants = {"padding": h + "." + p + "==." + s,
                    "std alphabet": h + "." + p + "." + s.replace("-", "+").replace("_", "/"),
                    "interior =": h + "." + p[:4] + "=" + p[4:] + "." + s,
                    "percent": h + "." + p + "." + s[:-2] + "%2B"}
        # a signature whose last char carries non-zero unused bits decodes to
        # the same bytes as the canonical one
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        idx = alphabet.index(s[-1])
        unused = 6 - (len(H.b64url_decode(s)) * 8) % 6
        if unused and unused < 6:
            alt = alphabet[idx | ((1 << unused) - 1)] if idx | ((1 << unused) - 1) != idx \
                else alphabet[idx & ~((1 << unused) - 1)]
            variants["non-canonical bits"] = h + "." + p + "." + s[:-1] + alt
            self.assertEqual(H.b64url_decode(s[:-1] + alt), H.b64url_decode(s))
        if variants["std alphabet"] == good:  # signature had no '-' or '_'
            del variants["std alphabet"]
        for what, tok in variants.items():
            self.rejected(tok, what)

    def test_A15_signature_length(self):
        good = H.craft(self.good_claims())
        h, p, s = good.split(".")
        sig = H.b64url_decode(s)
        for n in (0, 3, 255, 257, 512):
            body = (sig * 2)[:n]
            self.rejected(h + "." + p + "." + H.b64url(body), "sig %d bytes" % n)

    def test_A18_good_signature_malformed_org_claims(self):
        base = H.claims_for(user_id="u1")
        entry = H.org_entry(ORG_B, "Admin", perms=["can_view_billing"])
        bad_maps = {
            "map as array": [entry],
            "map as string": "x",
            "entry a string": {ORG_B: "Admin"},
            "org_id differs from key": {ORG_B: dict(entry, org_id="someone-else")},
            "inherited missing": {ORG_B: {k: v for k, v in entry.items()
                                          if k != "inherited_user_roles_plus_current_role"}},
            "permissions a string": {ORG_B: dict(entry, user_permissions="can_view_billing")},
            "org_name missing": {ORG_B: {k: v for k, v in entry.items() if k != "org_name"}},
        }
        for what, m in bad_maps.items():
            c = dict(base)
            c["org_id_to_org_member_info"] = m
            tok = H.craft(c)
            with self.subTest(case=what):
                self.expect_deny("GET", R2, 401, token=tok)

    # -- B: credential transport ------------------------------------------------

    def test_B22_authorization_grammar_accepted(self):
        tok = H.craft(self.good_claims())
        for value in ("Bearer " + tok, "bearer " + tok, "BEARER " + tok, "Bearer   " + tok,
                      "Bearer " + tok + " "):
            with self.subTest(value=value[:10] + "..." + repr(value[-2:])):
                _, rec = self.expect_allow("GET", R2, headers={"Authorization": value})
                self.assert_identity(rec, H.decode_claims(tok))

    def test_B22_authorization_grammar_rejected(self):
        tok = H.craft(self.good_claims())
        for value in ("Bearer\t" + tok, "Bearer \t" + tok, "Bearer  \t " + tok, "Bearer",
                      "Bearer ", "Bearer a b", "Token " + tok,
                      "Basic dXNlcjpw", tok, "", "Bearer " + tok + " x"):
            with self.subTest(value=repr(value[:12])):
                self.expect_deny("GET", R2, 401, headers={"Authorization": value})
                _, rec = self.expect_allow("GET", R3, headers={"Authorization": value})
                self.assert_anonymous(rec)

    def test_conformance_integers_beyond_64_bits(self):
        """Both libraries accept integers past 64 bits: a far-future exp is not
        expired, and X-User carries a custom property's digits exactly."""
        c = self.good_claims()
        c["exp"] = 99999999999999999999
        c["properties"] = {"n": 12345678901234567890, "m": [-123456789012345678901234567890]}
        tok = H.craft(c)
        _, rec = self.expect_allow("GET", R2, token=tok)
        raw = rec["headers"]["x-user"]
        self.assertIn('"properties":{"n":12345678901234567890,'
                      '"m":[-123456789012345678901234567890]}', raw)
        self.assertEqual(json.loads(raw)["properties"]["n"], 12345678901234567890)
        # A far-past exp is expired; a big user_id is not a string.
        c["exp"] = -99999999999999999999
        self.expect_deny("GET", R2, 401, token=H.craft(c), reason="token_expired")
        c = self.good_claims()
        c["user_id"] = 12345678901234567890
        self.expect_deny("GET", R2, 401, token=H.craft(c))

    def test_B23_two_credentials(self):
        tok = H.craft(self.good_claims())
        other = H.token(user_id="u2")
        self.expect_deny("GET", R2, 401, headers=[("Authorization", "Bearer " + tok),
                                                  ("Authorization", "Bearer " + other)],
                         reason="auth_header_duplicate")
        self.expect_deny("GET", R2, 401,
                         headers={"Authorization": "Bearer %s, Bearer %s" % (tok, other)})
        self.expect_deny("GET", R2 + "?access_token=" + tok, 401)
        self.expect_deny("GET", R2, 401, headers={"Cookie": "access_token=" + tok})
