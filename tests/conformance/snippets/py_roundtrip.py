"""Test driver for fastapi_identity.py without FastAPI or propelauth-py
installed (neither is on this machine): both are stubbed, and the pure part,
x_user_to_claims, is run on X-User JSON lines from stdin; the claims go to
stdout, one JSON line each. conformance.js mints them again and requires
authgate to produce the same X-User."""
import json
import os
import sys
import types

fastapi = types.ModuleType("fastapi")
fastapi.HTTPException = type("HTTPException", (Exception,), {})
fastapi.Request = object
pu = types.ModuleType("propelauth_py.user")
pu.OrgMemberInfo = pu.User = object
pu._to_user = lambda claims: claims
sys.modules.update({"fastapi": fastapi, "propelauth_py": types.ModuleType("propelauth_py"),
                    "propelauth_py.user": pu})
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastapi_identity  # noqa: E402

for line in sys.stdin:
    if line.strip():
        print(json.dumps(fastapi_identity.x_user_to_claims(json.loads(line))))
