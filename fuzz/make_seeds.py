#!/usr/bin/env python3
"""Write the seed corpora in fuzz/corpus/<target>/ from the cases of docs/security.md section 9.

One file per payload, named after the case and the attack (as Envoy names its
corpus files), so a crash on a seed points back at the catalog. Token seeds
that carry a real signature use fuzz/keys/test-private.pem (a test-only key;
fuzz_jwt trusts its public half) and always fail a post-signature check, so
the "never JWT_OK" property holds on the seeds themselves.

Run from the repository root: python3 fuzz/make_seeds.py
"""
import base64
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
KEY = os.path.join(ROOT, "fuzz", "keys", "test-private.pem")
NOW = 1700000000  # fuzz_jwt's fixed clock
ISS = "https://auth.example.test"

A = "0b5f6e1c-6a7d-4c8e-9f10-1a2b3c4d5e6f"
B = "7d0e2b44-3f1a-4e55-8c21-9a8b7c6d5e4f"
X = "e3c1a9b2-5d4f-4a6b-8e7c-0f1e2d3c4b5a"


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def canon_seeds():
    rows = {
        "C25_dot_segments": "/public/../api/org/%s/settings" % X,
        "C25_dot_then_dotdot": "/public/./../api/org/%s/settings" % X,
        "C25_climb_two": "/api/org/%s/billing/../../%s/billing" % (A, X),
        "C25_root_underflow": "/..",
        "C25_etc_passwd": "/public/../../etc/passwd",
        "C26_pct_2e2e": "/public/%%2e%%2e/api/org/%s/settings" % X,
        "C26_pct_2E2E": "/public/%%2E%%2E/api/org/%s/settings" % X,
        "C26_dot_pct": "/public/.%%2e/api/org/%s/settings" % X,
        "C26_pct_dot": "/public/%%2e./api/org/%s/settings" % X,
        "C26_single": "/public/%2e/x",
        "C27_percent_2f": "/api/org/%s%%2Fbilling" % B,
        "C27_relative_with_percent_2f": "/public/..%%2Fapi%%2Forg%%2F%s%%2Fsettings" % X,
        "C27_prefix_2f": "/public%2F..%2Fapi/me",
        "C27_lower_2f": "/a%2fb",
        "C27_5C": "/public%5C..%5Capi",
        "C27_backslash": "/public\\..\\api\\me",
        "C28_double_dot": "/public/%252e%252e/api/me",
        "C28_double_slash": "/api/org/%s%%252Fbilling" % B,
        "C28_pct25": "/x%25",
        "C28_pct2525": "/x%2525",
        "C29_nul": "/public%%00/../api/org/%s/settings" % X,
        "C29_nul_in_param": "/api/org/%s%%00%s/billing" % (B, X),
        "C29_crlf": '/api/me%0d%0aX-User:%20{"user_id":"admin"}',
        "C29_raw_01": "/api/me\x01",
        "C29_raw_7f": "/api/me\x7f",
        "C29_raw_0b": "/api/me\x0b",
        "C30_leading_double": "//api/org/%s/settings" % X,
        "C30_inner_double": "/api//org/%s/settings" % X,
        "C30_empty_param": "/api/org//billing",
        "C30_double_then_dots": "/public//../api/me",
        "C30_triple": "///",
        "C32_fragment": "/public/x#/../../api/me",
        "C32_fragment_end": "/api/org/%s/settings#x" % X,
        "C32_encoded_delims": "/a%23b/c%3Fd",
        "C32_query_and_fragment": "/api/me?x=1#frag",
        "C34_trailing_slash": "/api/me/",
        "C34_trailing_dot": "/api/org/%s/settings." % X,
        "C34_suffix": "/api/org/%s/settings.json" % X,
        "C34_space": "/api/org/%s/settings%%20" % X,
        "C34_slash_dot": "/api/org/%s/settings/." % X,
        "C36_pct": "/foo%",
        "C36_pct1": "/foo%1",
        "C36_pctzz": "/foo%zz",
        "C36_space": "/public /../api/me",
        "C37_absolute": "http://admin.internal/api/org/%s/settings" % X,
        "C37_userinfo": "http://u@evil/",
        "C37_asterisk": "*",
        "C37_authority": "app:80",
        "C37_relative": "api/me",
        "C40_param_dots": "/api/org/%2e%2e/billing",
        "C40_param_space": "/api/org/%s%%20/billing" % B,
        "C40_proto": "/api/org/__proto__/billing",
        "C40_upper": "/api/org/%s/billing" % B.upper(),
        "C45_query_path": "/public/x?/../../api/org/%s/settings" % X,
        "C47_raw_query": "/api/reports?org_id=%s&q=a+b%%20c%%2B&x=%%E2%%82%%AC" % B,
        "norm_unreserved": "/%7e%41%2d%5f%2E%30x",
        "norm_utf8": "/caf%c3%a9/\xc3\xa9",
        "norm_overlong": "/\xc0\xae\xc0\xae/x",
        "norm_semicolon": "/public/..;/api/me",
        "norm_semicolon_enc": "/public/..%3b/api/me",
    }
    for name, path in rows.items():
        put("canon", name + "_strict", b"\x00" + path.encode("latin-1"))
        put("canon", name + "_lenient", b"\x03" + path.encode("latin-1"))


def query_seeds():
    rows = {
        "D41_repeat": "org_id=%s&org_id=%s" % (B, X),
        "D41_repeat_rev": "org_id=%s&org_id=%s" % (X, B),
        "D41_semicolon": "a=1;org_id=%s&org_id=%s" % (X, B),
        "D42_case_pair": "ORG_ID=%s&org_id=%s" % (B, X),
        "D42_case_alone": "Org_Id=%s" % B,
        "D42_php_array": "org_id[]=%s&org_id=%s" % (X, B),
        "D43_encoded_key": "org%%5Fid=%s" % X,
        "D43_encoded_amp": "org_id=%s%%26org_id%%3D%s" % (B, X),
        "D43_plus": "org_id=+%s" % B,
        "D43_nul": "org_id=%s%%00" % B,
        "D43_bare": "org_id",
        "D43_empty": "org_id=",
        "D43_value_then_bare": "org_id=%s&org_id" % B,
        "D43_leading_amps": "&&&org_id=%s" % B,
        "D43_bad_escape": "org_id=%zz",
        "D47_forwarded": "org_id=%s&q=a+b%%20c%%2B&x=%%E2%%82%%AC" % B,
        "ctl": "org_id=%s&q=\x01" % B,
    }
    for name, q in rows.items():
        put("query", name, b"\x00" + q.encode("latin-1"))


def bearer_seeds():
    tok = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoidTEifQ.c2ln"
    rows = {
        "B22_Bearer": "Bearer " + tok,
        "B22_lower": "bearer " + tok,
        "B22_upper": "BEARER " + tok,
        "B22_spaces": "Bearer   " + tok,
        "B22_trailing": "Bearer %s " % tok,
        "B22_tab": "Bearer\t" + tok,
        "B22_bare_scheme": "Bearer",
        "B22_scheme_space": "Bearer ",
        "B22_two_words": "Bearer a b",
        "B22_token_scheme": "Token " + tok,
        "B22_basic": "Basic dXNlcjpw",
        "B22_token_only": tok,
        "B22_empty": "",
        "B23_comma": "Bearer %s, Bearer other.token.sig" % tok,
        "F52_name_variant": "X_User ",
        "F54_hop": "Transfer_Encoding",
        "F58_cr": "a\rTransfer-Encoding: chunked",
        "C39_method": "GET",
    }
    for name, v in rows.items():
        put("bearer", name, v)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(header, payload, sign=True, sig=None):
    h = b64u(json.dumps(header, separators=(",", ":")).encode()) if not isinstance(header, bytes) else b64u(header)
    p = b64u(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = (h + "." + p).encode()
    if sig is None and sign:
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing_input,
                             check=True, capture_output=True).stdout
    return signing_input.decode() + "." + (b64u(sig) if sig is not None else "")


def jwt_seeds():
    base = {"sub": "u1", "user_id": "u1", "iss": ISS, "iat": NOW - 10, "exp": NOW + 1800,
            "org_id_to_org_member_info": {B: {
                "org_id": B, "org_name": "B", "url_safe_org_name": "b", "org_metadata": {},
                "user_role": "Admin", "inherited_user_roles_plus_current_role": ["Admin", "Member"],
                "user_permissions": ["can_view_billing"]}}}
    rs = {"alg": "RS256", "typ": "JWT"}

    def claims(**kw):
        c = dict(base)
        for k, v in kw.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    # good signatures, each failing one post-signature check
    put("jwt", "A12_signed_wrong_issuer", jws(rs, claims(iss=ISS + "/")))
    put("jwt", "A11_signed_expired", jws(rs, claims(exp=NOW - 61)))
    put("jwt", "A11_signed_iat_future", jws(rs, claims(iat=NOW + 61)))
    put("jwt", "A11_signed_nbf_future", jws(rs, claims(nbf=NOW + 3600)))
    put("jwt", "A9_signed_exp_string", jws(rs, claims(exp=str(NOW + 1800))))
    put("jwt", "A9_signed_no_user_id", jws(rs, claims(user_id=None)))
    put("jwt", "A9_signed_sub_number", jws(rs, claims(sub=5)))
    put("jwt", "A18_signed_org_map_array", jws(rs, claims(org_id_to_org_member_info=[], iss="x")))
    # header attacks (case 1-7)
    for alg in ["none", "None", "NONE", "nOnE"]:
        put("jwt", "A1_alg_" + alg, jws({"alg": alg, "typ": "JWT"}, base, sign=False))
    put("jwt", "A1_alg_none_junk_sig", jws({"alg": "none"}, base, sig=b"junk"))
    put("jwt", "A2_hs256", jws({"alg": "HS256"}, base, sig=b"\x01" * 32))
    for i, alg in enumerate(["rs256", "RS256 ", "RS384", "PS256", "ES256"]):
        put("jwt", "A3_alg_%d" % i, jws({"alg": alg}, base, sig=b"\x02" * 256))
    put("jwt", "A3_alg_array", jws({"alg": ["RS256"]}, base, sig=b"\x02" * 256))
    put("jwt", "A3_alg_null", jws({"alg": None}, base, sig=b"\x02" * 256))
    put("jwt", "A3_alg_absent", jws({"typ": "JWT"}, base, sig=b"\x02" * 256))
    # Keys named by the token are ignored (only configured keys verify), so a
    # trusted signature over these headers would verify; the payload carries
    # a wrong issuer to keep every seed a reject.
    bad_iss = claims(iss=ISS + "/x")
    put("jwt", "A4_jku", jws({"alg": "RS256", "jku": "http://127.0.0.1:1/keys"}, bad_iss))
    put("jwt", "A4_jwk", jws({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
                             bad_iss))
    put("jwt", "A4_jwk_junk_sig", jws({"alg": "RS256", "jwk": {"kty": "RSA"}}, base,
                                      sig=b"\x03" * 256))
    put("jwt", "A5_kid_path", jws({"alg": "RS256", "kid": "../../../../dev/null"}, bad_iss))
    put("jwt", "A5_kid_sql", jws({"alg": "RS256", "kid": "' OR '1'='1"}, base, sig=b"\x04" * 256))
    put("jwt", "A5_kid_object", jws({"alg": "RS256", "kid": {"a": 1}}, base))
    put("jwt", "A5_kid_long", jws({"alg": "RS256", "kid": "k" * 2048}, base))
    put("jwt", "A7_crit", jws({"alg": "RS256", "crit": ["exp"]}, base))
    put("jwt", "A7_crit_empty", jws({"alg": "RS256", "crit": []}, base))
    # structure (13-17)
    for name, t in {"A13_two_parts": "a.b", "A13_four_parts": "a.b.c.d",
                    "A13_five_parts": "a.b.c.d.e", "A13_dots": "..", "A13_dot": ".",
                    "A13_many_dots": "." * 2000, "A13_high_bytes": "\x80\xff.\x80.\xfe"}.items():
        put("jwt", name, t)
    good = jws(rs, claims(iss="https://other.example.test"))
    h, p, s = good.split(".")
    put("jwt", "A14_padding", h + "=." + p + "." + s)
    put("jwt", "A14_plus_slash", h.replace("-", "+").replace("_", "/") + "." + p + "." + s)
    put("jwt", "A14_newline", h + "\n." + p + "." + s)
    put("jwt", "A14_pct2B", h + "%2B." + p + "." + s)
    put("jwt", "A14_trailing_bits", h + "." + p + "." + s[:-1] + chr(ord(s[-1]) ^ 1))
    for n in [0, 3, 255, 257, 512]:
        put("jwt", "A15_sig_len_%d" % n, h + "." + p + "." + b64u(b"\x00" * n))
    put("jwt", "A17_nested_header", b64u(b'{"a":' * 400 + b"1" + b"}" * 400) + "." + p + "." + s)
    # bare base64url, for the strict decoder property
    put("jwt", "b64_canonical", b64u(b"\x00\x01\xfe\xff"))
    put("jwt", "b64_noncanonical_bits", "AB")


def config_seeds():
    put("config", "demo_sidecar", open(os.path.join(ROOT, "docker", "authgate.yaml"), "rb").read())
    minimal = ("listen: 127.0.0.1:8080\nauth:\n  verifier_key_file: /dev/null\n"
               "  issuer: https://auth.example.test\nupstreams:\n  app: { url: \"http://127.0.0.1:9000\" }\n"
               "routes:\n  - path: /api/reports\n    policy: require_org_member\n    org_id: { query: org_id }\n"
               "    upstream: app\n")
    put("config", "minimal", minimal)
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n"
    prev = "a"
    for i in range(1, 9):
        cur = "l%d" % i
        bomb += "%s: &%s [%s]\n" % (cur, cur, ",".join(["*" + prev] * 9))
        prev = cur
    put("config", "J89_alias_bomb", bomb)
    put("config", "J89_huge_scalar", "listen: \"" + "x" * 12000 + "\"\n")
    put("config", "J89_duplicate_routes", minimal + "routes: []\n")
    put("config", "J89_merge_key", "base: &b { policy: public }\nroutes:\n  - <<: *b\n    path: /x\n")
    put("config", "J89_python_tag", "routes: !!python/object:os.system [\"id\"]\n")
    put("config", "J89_same_path_twice",
        "routes:\n  - {path: /x, policy: public}\n  - {path: /x, policy: require_user}\n")
    put("config", "J50_vacuous_role",
        "routes:\n  - {path: \"/api/org/{org_id}/x\", policy: require_org_member_with_minimum_role, role: \"\"}\n")
    put("config", "J90_shadowing",
        "routes:\n  - {path: \"/api/org/{org_id}/settings\", policy: public}\n"
        "  - {path: \"/api/org/{org_id}/{page}\", policy: require_user}\n")
    put("config", "empty", "")
    put("config", "tab_indent", "routes:\n\t- path: /x\n")
    put("config", "unknown_key", "listen: 127.0.0.1:1\nbogus: 1\n")
    put("config", "nul_byte", "listen: \"a\x00b\"\n")


def admit_seeds():
    # byte 0: bit 0 = HTTP/1.0, bits 1-2 = limits profile (see fuzz_admit.c)
    v11, v10 = b"\x00", b"\x01"
    small = b"\x02"  # HTTP/1.1, max_headers 4, max_header_bytes 256, max_body_bytes 10
    rows = {
        "plain": v11 + b"Host: gw\nUser-Agent: x\n",
        "cl": v11 + b"Host: gw\nContent-Length: 5\n",
        "cl_zero": v11 + b"Host: gw\nContent-Length: 0\n",
        "chunked": v11 + b"Host: gw\nTransfer-Encoding: chunked\n",
        "G60_te_and_cl": v11 + b"Host: gw\nTransfer-Encoding: chunked\nContent-Length: 5\n",
        "G60_cl_dup": v11 + b"Host: gw\nContent-Length: 5\nContent-Length: 5\n",
        "G60_cl_sign": v11 + b"Host: gw\nContent-Length: +5\n",
        "G60_cl_overflow": v11 + b"Host: gw\nContent-Length: 99999999999999999999999\n",
        "G61_gzip_chunked": v11 + b"Host: gw\nTransfer-Encoding: gzip, chunked\n",
        "G61_chunked_chunked": v11 + b"Host: gw\nTransfer-Encoding: chunked, chunked\n",
        "G61_te_twice": v11 + b"Host: gw\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n",
        "G61_http10_te": v10 + b"Transfer-Encoding: chunked\n",
        "G65_name_space": v11 + b"Host: gw\nContent Length: 5\n",
        "G65_no_colon": v11 + b"Host: gw\nno colon here\n",
        "F58_value_ctl": v11 + b"Host: gw\nX-T: a\x01b\n",
        "F59_no_host": v11 + b"X-A: 1\n",
        "F59_host_at": v11 + b"Host: u@evil\n",
        "F59_host_v6": v11 + b"Host: [::1]:8080\n",
        "F59_host_port_long": v11 + b"Host: gw:123456\n",
        "F59_http10_no_host": v10 + b"X-A: 1\n",
        "limit_headers": small + b"Host: gw\nA: 1\nB: 2\nC: 3\nD: 4\n",
        "limit_bytes": small + b"Host: gw\nX-Pad: " + b"a" * 300 + b"\n",
        "limit_body": small + b"Host: gw\nContent-Length: 11\n",
    }
    for name, data in rows.items():
        put("admit", name, data)


def wsframe_seeds():
    # Three bytes choose the read splits and the close frame; then a stream.
    k = b"\x01\x02\x03\x04"
    rows = {
        "text-masked-then-close": b"\x00\x10\x05" + b"\x81\x85" + k + b"hello" +
                                  b"\x88\x82" + k + b"\x03\xe8",
        "len16-unmasked": b"\x00\x03\x80" + b"\x82\x7e\x00\x80" + b"x" * 128 + b"\x8a\x00",
        "len64-partial": b"\x00\x20\x00" + b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" +
                         b"y" * 64,
        "fragments-with-ping": b"\x00\x07\x41" + b"\x01\x83" + k + b"abc" + b"\x89\x80" + k +
                               b"\x80\x82" + k + b"de",
        "len64-top-bit": b"\x00\x01\x00" + b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00\x81\x00",
    }
    for name, data in rows.items():
        put("wsframe", name, data)


def rqhead_seeds():
    # byte 0: header cap (low 4 bits); bytes 1-2: where the bytes are split
    def seed(cap, s1, s2, head):
        return bytes([cap, s1, s2]) + head

    rows = {
        "plain": seed(8, 10, 5, b"GET /a?b=c HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\r\n"),
        "split_in_end": seed(8, 38, 1, b"GET / HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\n\r\n"),
        "pipelined": seed(8, 20, 20, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
        "empty_lines": seed(8, 3, 3, b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
        "http10_keepalive": seed(8, 0, 0, b"GET / HTTP/1.0\r\nConnection: te, Keep-Alive\r\n\r\n"),
        "connection_close": seed(8, 0, 0, b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"),
        "cl_body": seed(8, 50, 2, b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
        "cl_dup": seed(8, 0, 0, b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"),
        "cl_overflow": seed(8, 0, 0, b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"),
        "chunked": seed(8, 0, 0, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "expect": seed(8, 0, 0, b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
        "ows": seed(8, 0, 0, b"GET / HTTP/1.1\r\nX-A: \t a b \t \r\nX-B:\r\n\r\n"),
        "version_2": seed(8, 0, 0, b"GET / HTTP/2.0\r\n\r\n"),
        "version_12": seed(8, 0, 0, b"GET / HTTP/1.2\r\n\r\n"),
        "version_garbage": seed(8, 0, 0, b"GET / HTTP/1.x\r\n\r\n"),
        "target_space": seed(8, 0, 0, b"GET /a b HTTP/1.1\r\n\r\n"),
        "target_ctl": seed(8, 0, 0, b"GET /a\x01 HTTP/1.1\r\n\r\n"),
        "no_colon": seed(8, 0, 0, b"GET / HTTP/1.1\r\nHost gw\r\n\r\n"),
        "space_before_colon": seed(8, 0, 0, b"GET / HTTP/1.1\r\nHost : gw\r\n\r\n"),
        "obs_fold": seed(8, 0, 0, b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
        "bare_cr": seed(8, 0, 0, b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
        "bare_lf": seed(8, 0, 0, b"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n"),
        "nul": seed(8, 0, 0, b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"),
        "cap": seed(2, 0, 0, b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
        "partial": seed(8, 7, 7, b"GET / HTTP/1.1\r\nHost: gw\r\n\r"),
    }
    for name, data in rows.items():
        put("rqhead", name, data)


# Keys other than the test key, fixed so that the seeds do not change from run
# to run: an EC P-256 key, an Ed25519 key and a 1024-bit RSA key (all refused).
EC_PUB = ("-----BEGIN PUBLIC KEY-----\n"
          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzVLWKhBP64cd5h2416F7ItEH/Flz\n"
          "UB8Yq/O2tpVfgyK0ujRezi1zwsfVEO4yY4IVF2SNPIzi1wguCWQTwvqEFg==\n"
          "-----END PUBLIC KEY-----\n")
ED25519_PUB = ("-----BEGIN PUBLIC KEY-----\n"
               "MCowBQYDK2VwAyEAocD+5PfpK3A6SXpLU689lLXRPMTVbg1r9tygdGhp4zc=\n"
               "-----END PUBLIC KEY-----\n")
RSA1024_PUB = ("-----BEGIN PUBLIC KEY-----\n"
               "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC4ahkvg6KxkM0fA0Zo1KcEM0uv\n"
               "afwMOSL3uZUUGwOq4JDo5ARr3dHQNKWLLwrImsBYaDsveKA1rJBaCeQs39z3HMx1\n"
               "v48Z79F7czcTwVb7WbaUZFwpu7AIbz9YemA6zOaAf0auAVL1H+ieE4dSNcJc4fM/\n"
               "Pb4LNa9AxzHhAVJ2jwIDAQAB\n"
               "-----END PUBLIC KEY-----\n")


def kmeta_seeds():
    # byte 0 (mod 5) picks the function: 0 body, 1 PEM wrapped in a body,
    # 2 auth_url NUL api_key, 3 api_base_url, 4 status(8) attempt(4) jitter(4)
    with open(os.path.join(ROOT, "fuzz", "keys", "test-public.pem")) as f:
        pub = f.read()
    with open(KEY) as f:
        priv = f.read()
    pkcs1 = subprocess.run(["openssl", "rsa", "-pubin", "-RSAPublicKey_out"], input=pub.encode(),
                           check=True, capture_output=True).stdout.decode()

    def body(obj):
        return b"\x00" + json.dumps(obj).encode()

    rows = {
        "A19_ok_spki": body({"verifier_key_pem": pub}),
        "A19_ok_pkcs1": body({"verifier_key_pem": pkcs1}),
        "A19_ok_extra_fields": body({"verifier_key_pem": pub, "issuer": ISS, "x": [1, None]}),
        "A19_truncated": body({"verifier_key_pem": pub})[:60],
        "A19_truncated_pem": body({"verifier_key_pem": pub[:200]}),
        "A19_html": b"\x00<html>maintenance</html>",
        "A19_wrong_name": body({"verifier_key": pub}),
        "A19_pem_number": body({"verifier_key_pem": 5}),
        "A19_pem_null": body({"verifier_key_pem": None}),
        "A19_pem_array": body({"verifier_key_pem": [pub]}),
        "A19_array_root": body([{"verifier_key_pem": pub}]),
        "A19_string_root": body(pub),
        "A19_duplicate_key": b"\x00" + ('{"verifier_key_pem": %s, "verifier_key_pem": %s}' %
                                        (json.dumps(pub), json.dumps(EC_PUB))).encode(),
        "A19_private_key": body({"verifier_key_pem": priv}),
        "A19_ec_key": body({"verifier_key_pem": EC_PUB}),
        "A19_ed25519_key": body({"verifier_key_pem": ED25519_PUB}),
        "A19_rsa1024": body({"verifier_key_pem": RSA1024_PUB}),
        "A19_two_blocks": body({"verifier_key_pem": pub + EC_PUB}),
        "A19_nul_in_pem": body({"verifier_key_pem": pub[:100] + "\u0000" + pub[100:]}),
        "A19_huge_string": body({"verifier_key_pem": "A" * 7000}),
        "A19_deep": b"\x00" + b"[" * 4000 + b"]" * 4000,
        "pem_spki": b"\x01" + pub.encode(),
        "pem_pkcs1": b"\x01" + pkcs1.encode(),
        "pem_private": b"\x01" + priv.encode(),
        "pem_ec": b"\x01" + EC_PUB.encode(),
        "pem_not_base64": b"\x01-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        "pem_crlf": b"\x01" + pub.replace("\n", "\r\n").encode(),
        "pem_leading_text": b"\x01junk\n" + pub.encode(),
    }
    urls = {
        "auth_https": b"https://auth.example.test",
        "auth_slash_path_query": b"https://auth.example.test/x/y?q=1#f",
        "auth_port": b"https://auth.example.test:8443/",
        "auth_http_loopback": b"http://127.0.0.1:8080",
        "auth_http_remote": b"http://auth.example.test",
        "auth_userinfo": b"https://user:pw@auth.example.test",
        "auth_ipv6": b"https://[2001:db8::1]:443/",
        "auth_no_scheme": b"auth.example.test",
        "auth_empty_host": b"https:///path",
        "auth_space": b"https://auth example.test",
        "auth_crlf": b"https://auth.example.test\r\nX-Evil: 1",
        "auth_huge_host": b"https://" + b"a" * 400,
    }
    for name, u in urls.items():
        rows[name] = b"\x02" + u + b"\x00" + b"0123456789abcdef-api-key"
    rows["auth_key_with_space"] = b"\x02https://auth.example.test\x00bad key"
    rows["auth_key_huge"] = b"\x02https://auth.example.test\x00" + b"k" * 5000
    bases = {
        "base_https": b"https://api.example.test",
        "base_https_path_slashes": b"https://api.example.test/prefix///",
        "base_https_port": b"https://api.example.test:8443",
        "base_http_loopback": b"http://127.0.0.1:9000",
        "base_http_loopback_net": b"http://127.8.9.10",
        "base_http_localhost": b"http://LocalHost:80/",
        "base_http_ipv6_loopback": b"http://[::1]:9000/",
        "base_http_ipv6_remote": b"http://[2001:db8::1]/",
        # found by fuzz_kmeta: junk after a loopback host passed the plain-http rule
        "base_http_ipv6_junk_port": b"http://[::1]:90https00/",
        "base_http_ipv6_junk_after": b"http://[::1]evil.example",
        "base_http_empty_port": b"http://127.0.0.1:/",
        "base_http_remote": b"http://api.example.test",
        "base_http_loopback_lookalike": b"http://127.0.0.1.example.test",
        "base_http_localhost_lookalike": b"http://localhost.example.test",
        "base_userinfo": b"http://127.0.0.1@api.example.test",
        "base_query": b"https://api.example.test/?x=1",
        "base_fragment": b"https://api.example.test#f",
        "base_ftp": b"ftp://api.example.test",
        "base_space": b"https://api.example.test/a b",
        "base_huge": b"https://api.example.test/" + b"p" * 2100,
    }
    for name, u in bases.items():
        rows[name] = b"\x03" + u
    # status (8 bytes, big-endian; top bits of byte 0 narrow it), attempt (4), jitter (4)
    for st in (200, 400, 401, 403, 404, 429, 500, 503, 599, 600, 0, -1):
        rows["status_%d" % st] = (b"\x04" + bytes([0x80, 0, 0, 0, 0, 0]) +
                                  (st & 0xffff).to_bytes(2, "big") + bytes([0x80, 0, 0, st & 7]) +
                                  b"\xff\xff\xff\xff")
    rows["status_huge"] = b"\x04\x7f\xff\xff\xff\xff\xff\xff\xff\x00\x00\x10\x00\x00\x00\x00\x01"
    rows["backoff_cap"] = b"\x04\x80\x00\x00\x00\x00\x00\x01\xf4\xff\xff\xff\xff\x12\x34\x56\x78"
    for name, data in rows.items():
        put("kmeta", name, data)


def main():
    # Seeds are (re)written by name and nothing is deleted: the corpus also
    # holds seeds kept by hand (cors, regressions such as canon's C34_raw_*,
    # config's regress-empty-route-path.yaml, jwt's A9_big_integers).
    canon_seeds()
    query_seeds()
    bearer_seeds()
    jwt_seeds()
    config_seeds()
    admit_seeds()
    wsframe_seeds()
    rqhead_seeds()
    kmeta_seeds()
    for t in sorted(os.listdir(CORPUS)):
        print("%-8s %d seeds" % (t, len(os.listdir(os.path.join(CORPUS, t)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
