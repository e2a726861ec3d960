"""FastAPI dependencies for a backend behind authgate: rebuild the propelauth-py
User / OrgMemberInfo that propelauth_fastapi would have handed the route, from
the X-User / X-Org headers. Only use it in an app reachable solely through
authgate: the headers are trusted as is."""
import json
from typing import Optional

from fastapi import HTTPException, Request
from propelauth_py.user import OrgMemberInfo, User, _to_user

# X-User / X-Org use the dataclass field names; three differ from the token's.
_TOKEN_NAMES = {
    "user_assigned_role": "user_role",
    "user_inherited_roles_plus_current_role": "inherited_user_roles_plus_current_role",
    "assigned_additional_roles": "additional_roles",
}


def _org_to_token_form(org: dict) -> dict:
    return {_TOKEN_NAMES.get(k, k): v for k, v in org.items()}


def x_user_to_claims(x_user: dict) -> dict:
    """X-User back to the token's claim layout, which propelauth-py's own
    converter (_to_user, the one it runs on a verified token) reads."""
    claims = {k: v for k, v in x_user.items()
              if v is not None and k not in ("org_id_to_org_member_info", "active_org_id")}
    orgs = x_user["org_id_to_org_member_info"]
    active = x_user["active_org_id"]
    if active is not None and orgs and active in orgs:
        claims["org_member_info"] = _org_to_token_form(orgs[active])
    elif orgs is not None:
        claims["org_id_to_org_member_info"] = {k: _org_to_token_form(v) for k, v in orgs.items()}
    return claims


def _user(request: Request) -> Optional[User]:
    raw = request.headers.get("x-user")
    return _to_user(x_user_to_claims(json.loads(raw))) if raw else None


def require_user(request: Request) -> User:
    user = _user(request)
    if user is None:  # authgate never forwards such a request to a require_user route
        raise HTTPException(status_code=401)
    return user


def optional_user(request: Request) -> Optional[User]:
    return _user(request)


def require_org_member(request: Request) -> OrgMemberInfo:
    user = require_user(request)
    raw = request.headers.get("x-org")
    if raw is None:
        raise HTTPException(status_code=403)
    return user.get_org(json.loads(raw)["org_id"])

# usage:  @app.get("/api/org/{org_id}/x")
#         def x(org: OrgMemberInfo = Depends(require_org_member)): ...
