"""The demo's authenticated routes (included by demo/api.py under /api/secure
and /api/auth): a token endpoint that gives the demo admin a JWT, a route
that needs one (checked in C before Python runs), a staff-only route (the
user from the token's sub, checked in Python) and an API-key route.

    curl -s -X POST localhost:8000/api/auth/token \\
         -H 'Content-Type: application/json' \\
         -d '{"username": "admin", "password": "meltemi-demo"}'
    curl -s localhost:8000/api/secure/whoami -H "Authorization: Bearer $TOKEN"
    curl -s localhost:8000/api/secure/service -H "X-API-Key: demo-api-key"

The JWT is signed with HS256 and Django's SECRET_KEY; the API key is
DEMO_API_KEY (default demo-api-key), kept only as its SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import os

import msgspec
from django.contrib.auth import authenticate

from meltemi import HTTPException, Request, Router
from meltemi.api.auth import APIKeyAuth, HasClaim, IsStaff, JWTAuth

TOKEN_LIFETIME = 3600

jwt = JWTAuth(issuer="meltemi-demo", leeway=5)  # the secret: settings.SECRET_KEY
api_key = APIKeyAuth(
    hashes={"demo-service": hashlib.sha256(os.environ.get("DEMO_API_KEY", "demo-api-key").encode()).hexdigest()}
)


class Credentials(msgspec.Struct):
    username: str
    password: str


class Token(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int


auth = Router(prefix="/auth", tags=["auth"])


@auth.post("/token", auth=None)
def token(credentials: Credentials) -> Token:
    """A JWT for a user of the site (the demo admin: admin / meltemi-demo)."""
    user = authenticate(username=credentials.username, password=credentials.password)
    if user is None or not user.is_active:
        raise HTTPException(401, "Invalid username or password")
    scope = "admin" if user.is_superuser else "user"
    access = jwt.encode({"sub": str(user.pk), "name": user.get_username(), "scope": scope}, expires_in=TOKEN_LIFETIME)
    return Token(access_token=access, token_type="bearer", expires_in=TOKEN_LIFETIME)


secure = Router(prefix="/secure", tags=["secure"], auth=jwt)


@secure.get("/whoami")
def whoami(request: Request) -> dict:
    """The token's claims and its user (a bearer JWT from /api/auth/token)."""
    return {"claims": request.auth, "username": request.user.get_username()}


@secure.get("/admin-scope", guards=[HasClaim("scope", "admin")])
def admin_scope(request: Request) -> dict:
    """Needs the token's scope to hold "admin": decided in C, from the claims alone."""
    return {"scope": request.auth["scope"]}


@secure.get("/staff", guards=[IsStaff()])
def staff(request: Request) -> dict:
    """Needs a staff user (looked up from the token's sub, in Python)."""
    return {"staff": request.user.get_username()}


@secure.get("/service", auth=api_key)
def service(request: Request) -> dict:
    """Needs an API key in X-API-Key (DEMO_API_KEY, default demo-api-key)."""
    return {"key": request.auth}
