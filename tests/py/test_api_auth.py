"""Authentication and guards of the typed API (meltemi.api.auth, checked in
src/python/auth.c and src/core/api/jwt.c): through a real server, with
tokens signed by PyJWT (the differential oracle) under keys generated here
with `cryptography`; rejections answered in C without reaching Python; and
through TestClient in Django's TestCase, with users and permissions."""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import time

import jwt as pyjwt
import pytest
import requests
from apiclient import django_ready
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

django_ready()

import authapi  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test import TestCase  # noqa: E402

from meltemi._core import JWTVerifier  # noqa: E402
from meltemi.api.auth import AuthScheme, HasClaim, IsStaff, JWTAuth  # noqa: E402
from meltemi.testing import TestClient  # noqa: E402

APP = "apiproject.wsgi:application"


def b64(n: int, length: int | None = None) -> str:
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Keys:
    """Keys of every kind, generated once, with their public JWKs."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.p256 = ec.generate_private_key(ec.SECP256R1())
        self.p384 = ec.generate_private_key(ec.SECP384R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.hs384 = b"h" * 48
        self.hs512 = b"H" * 64

    def jwks(self) -> dict:
        rn = self.rsa.public_key().public_numbers()
        p2 = self.p256.public_key().public_numbers()
        p3 = self.p384.public_key().public_numbers()
        ed_raw = self.ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "keys": [
                {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(rn.n), "e": b64(rn.e)},
                {"kty": "RSA", "kid": "rs512", "alg": "RS512", "n": b64(rn.n), "e": b64(rn.e)},
                {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": b64(rn.n), "e": b64(rn.e)},
                {"kty": "EC", "kid": "es256", "crv": "P-256", "x": b64(p2.x, 32), "y": b64(p2.y, 32)},
                {"kty": "EC", "kid": "es384", "crv": "P-384", "x": b64(p3.x, 48), "y": b64(p3.y, 48)},
                {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": raw_b64(ed_raw)},
                {"kty": "oct", "kid": "hs384", "alg": "HS384", "k": raw_b64(self.hs384)},
                {"kty": "oct", "kid": "hs512", "alg": "HS512", "k": raw_b64(self.hs512)},
                {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": b64(p2.x, 32), "y": b64(p2.y, 32)},
            ]
        }

    def signed(self, alg: str, claims: dict) -> str:
        key, kid = {
            "RS256": (self.rsa, "rs"),
            "RS512": (self.rsa, "rs512"),
            "PS256": (self.rsa, "ps"),
            "ES256": (self.p256, "es256"),
            "ES384": (self.p384, "es384"),
            "EdDSA": (self.ed, "ed"),
            "HS384": (self.hs384, "hs384"),
            "HS512": (self.hs512, "hs512"),
        }[alg]
        return pyjwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def keys():
    return Keys()


class JWKSServer:
    """A JWK Set over HTTP, whose content the test changes (key rotation)."""

    def __init__(self, jwks: dict):
        self.jwks = jwks
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def auth_env(tmp_path_factory, keys):
    import subprocess
    import sys

    from conftest import ROOT, TESTS

    d = tmp_path_factory.mktemp("authapi")
    db = d / "db.sqlite3"
    jwks_file = d / "jwks.json"
    jwks_file.write_text(json.dumps(keys.jwks()))
    env = {"DJANGO_SETTINGS_MODULE": "apiproject.settings", "APIPROJECT_DB": str(db)}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])},
        check=True,
        timeout=120,
    )
    remote_key = ec.generate_private_key(ec.SECP256R1())
    n = remote_key.public_key().public_numbers()
    jwks_server = JWKSServer(
        {"keys": [{"kty": "EC", "kid": "r1", "crv": "P-256", "x": b64(n.x, 32), "y": b64(n.y, 32)}]}
    )
    env.update(AUTHAPI_JWKS=str(jwks_file), AUTHAPI_JWKS_URL=jwks_server.url, AUTHAPI_JWKS_REFRESH="0.5")
    yield env, jwks_server, remote_key
    jwks_server.close()


@pytest.fixture(scope="module")
def server(auth_env):
    from conftest import Server

    env, _, _ = auth_env
    s = Server([APP, "--bind", "127.0.0.1:0", "--workers", "1", "--threads", "2", "--api", "authapi:api"], env=env)
    s.wait_answering("/api/health")
    yield s
    code = s.stop()
    assert code == 0, s.output
    s.assert_balanced()


def hs_token(**claims) -> str:
    claims.setdefault("iss", authapi.ISSUER)
    claims.setdefault("aud", authapi.AUDIENCE)
    return pyjwt.encode(claims, authapi.SECRET, algorithm="HS256")


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def calls(server) -> int:
    return requests.get(server.url + "/api/calls", timeout=10).json()["me"]


# ---- through the real server ----


def test_pyjwt_token_verified_in_c_and_claims_reach_python(server):
    token = hs_token(sub="42", exp=int(time.time()) + 60, scope="read", nested={"a": [1, "é"]})
    r = requests.get(server.url + "/api/me", headers=bearer(token), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == "42"
    assert r.json()["claims"] == pyjwt.decode(token, authapi.SECRET, algorithms=["HS256"], audience=authapi.AUDIENCE)


@pytest.mark.parametrize("alg", ["RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS384", "HS512"])
def test_every_algorithm_signed_by_pyjwt_verifies_in_c(server, keys, alg):
    claims = {"sub": f"user-{alg}", "exp": int(time.time()) + 60, "n": 7}
    r = requests.get(server.url + "/api/jwks", headers=bearer(keys.signed(alg, claims)), timeout=10)
    assert r.status_code == 200, (alg, r.text)
    assert r.json()["claims"] == claims


def test_refusals_are_401_from_c_and_never_reach_python(server, keys):
    before = calls(server)
    now = int(time.time())
    secret = authapi.SECRET
    pem = keys.public_pem()
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=").decode()
    good = hs_token(sub="1")
    cases = {
        "none": header + "." + payload + ".",
        "expired": hs_token(sub="1", exp=now - 10),
        "immature": hs_token(sub="1", nbf=now + 60),
        "bad signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "wrong issuer": hs_token(sub="1", iss="https://evil.test"),
        "wrong audience": hs_token(sub="1", aud="someone-else"),
        "wrong secret": pyjwt.encode({"sub": "1", "iss": authapi.ISSUER, "aud": authapi.AUDIENCE}, "x" * 32),
        "two segments": good.rsplit(".", 1)[0],
        "four segments": good + ".e30",
        "padding": good + "=",
        "oversized": hs_token(sub="1", pad="x" * 9000),
        "HS384 on an HS256 key": pyjwt.encode(
            {"iss": authapi.ISSUER, "aud": authapi.AUDIENCE}, secret + "0" * 16, algorithm="HS384"
        ),
    }
    for name, token in cases.items():
        r = requests.get(server.url + "/api/me", headers=bearer(token), timeout=10)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json() == {"detail": "Invalid token"}, name
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), name
    r = requests.get(server.url + "/api/me", timeout=10)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = requests.get(server.url + "/api/me", headers={"Authorization": "Basic dTpw"}, timeout=10)
    assert r.status_code == 401
    assert calls(server) == before, "a refused request reached Python"
    # The RS256 -> HS256 swap: the RSA public key (PEM) as the HMAC secret of
    # a token for the JWKS route, whose RSA keys are pinned to RS/PS.
    swapped = _hs256(b'{"alg":"HS256","kid":"rs"}', b'{"sub":"admin"}', pem)
    r = requests.get(server.url + "/api/jwks", headers=bearer(swapped), timeout=10)
    assert r.status_code == 401 and "not accepted" in r.headers["WWW-Authenticate"]
    ok = requests.get(server.url + "/api/me", headers=bearer(good), timeout=10)
    assert ok.status_code == 200 and calls(server) == before + 1


def _hs256(header: bytes, payload: bytes, secret: bytes) -> str:
    import hashlib
    import hmac

    signing = raw_b64(header) + "." + raw_b64(payload)
    return signing + "." + raw_b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def test_leeway(server):
    now = int(time.time())
    assert requests.get(server.url + "/api/me", headers=bearer(hs_token(exp=now)), timeout=10).status_code == 200
    assert requests.get(server.url + "/api/me", headers=bearer(hs_token(exp=now - 5)), timeout=10).status_code == 401


def test_claim_guards_decided_in_c(server):
    before = calls(server)
    r = requests.get(server.url + "/api/scoped", headers=bearer(hs_token(scope="read write")), timeout=10)
    assert r.status_code == 403 and r.json() == {"detail": "Permission denied"}
    r = requests.get(server.url + "/api/scoped", headers=bearer(hs_token(scope="read admin")), timeout=10)
    assert r.status_code == 200 and r.json() == {"scope": "read admin"}
    ok = bearer(hs_token(roles=["viewer", "editor"], email_verified=True))
    assert requests.get(server.url + "/api/roles", headers=ok, timeout=10).status_code == 200
    no = bearer(hs_token(roles=["viewer"], email_verified=True))
    assert requests.get(server.url + "/api/roles", headers=no, timeout=10).status_code == 403
    unverified = bearer(hs_token(roles=["editor"], email_verified=False))
    assert requests.get(server.url + "/api/roles", headers=unverified, timeout=10).status_code == 403
    assert calls(server) == before


def test_api_keys_header_query_and_router(server):
    u = server.url
    r = requests.get(u + "/api/key", headers={"X-API-Key": "key-ops-2"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"key": "ops", "subject": "ops"}
    r = requests.get(u + "/api/key", headers={"X-API-Key": "key-ops-3"}, timeout=10)
    assert r.status_code == 401 and r.json() == {"detail": "Invalid API key"}
    r = requests.get(u + "/api/key", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'APIKey header="X-API-Key"'
    assert requests.get(u + "/api/qkey?x=1&api_key=key-ci-1", timeout=10).json() == {"key": "ci"}
    assert requests.get(u + "/api/qkey?api_key=key%2Dci%2D1", timeout=10).json() == {"key": "ci"}
    assert requests.get(u + "/api/qkey?api_key=key-ci-", timeout=10).status_code == 401
    assert requests.get(u + "/api/qkey", headers={"X-API-Key": "key-ci-1"}, timeout=10).status_code == 401
    assert requests.get(u + "/api/keyed/inside", headers={"X-API-Key": "key-ci-1"}, timeout=10).json() == {"key": "ci"}
    assert requests.get(u + "/api/keyed/inside", timeout=10).status_code == 401
    assert requests.get(u + "/api/keyed/public", timeout=10).json() == {"public": True}
    # Any of a list: a JWT or a key.
    r = requests.get(u + "/api/either", headers={"X-API-Key": "key-ci-1"}, timeout=10)
    assert r.json() == {"scheme": "APIKeyAuth", "subject": "ci"}
    r = requests.get(u + "/api/either", headers=bearer(hs_token(sub="9")), timeout=10)
    assert r.json() == {"scheme": "JWTAuth", "subject": "9"}
    r = requests.get(u + "/api/either", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer, APIKey header="X-API-Key"'


def test_head_and_keep_alive_after_a_401(server):
    s = requests.Session()
    r = s.head(server.url + "/api/me", timeout=10)
    assert r.status_code == 401 and r.content == b""
    r = s.get(server.url + "/api/me", headers=bearer(hs_token(sub="5")), timeout=10)
    assert r.status_code == 200


def test_jwks_url_fetched_at_start_and_refreshed(server, auth_env):
    _, jwks_server, remote_key = auth_env
    token = pyjwt.encode({"sub": "r"}, remote_key, algorithm="ES256", headers={"kid": "r1"})
    r = requests.get(server.url + "/api/remote", headers=bearer(token), timeout=10)
    assert r.status_code == 200 and r.json() == {"sub": "r"}
    # Rotation: a new key replaces the old one in the served set.
    new_key = ec.generate_private_key(ec.SECP256R1())
    n = new_key.public_key().public_numbers()
    jwks_server.jwks = {"keys": [{"kty": "EC", "kid": "r2", "crv": "P-256", "x": b64(n.x, 32), "y": b64(n.y, 32)}]}
    new_token = pyjwt.encode({"sub": "r2"}, new_key, algorithm="ES256", headers={"kid": "r2"})
    deadline = time.monotonic() + 20
    while requests.get(server.url + "/api/remote", headers=bearer(new_token), timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the rotated key never arrived"
        time.sleep(0.2)
    assert requests.get(server.url + "/api/remote", headers=bearer(token), timeout=10).status_code == 401


def test_openapi_security(server):
    doc = requests.get(server.url + "/api/openapi.json", timeout=10).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["apiKeyQuery"] == {"type": "apiKey", "in": "query", "name": "api_key"}
    assert schemes["sessionAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    paths = doc["paths"]
    assert paths["/api/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/either"]["get"]["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert "security" not in paths["/api/health"]["get"]
    assert "security" not in paths["/api/keyed/public"]["get"]
    from openapi_spec_validator import validate

    validate(doc)


# ---- the verifier against PyJWT, both ways ----


def test_tokens_of_jwtauth_encode_decode_in_pyjwt():
    token = authapi.hs.encode({"sub": "7", "scope": "a b"}, expires_in=60)
    claims = pyjwt.decode(token, authapi.SECRET, algorithms=["HS256"], audience=authapi.AUDIENCE, issuer=authapi.ISSUER)
    assert claims["sub"] == "7" and claims == authapi.hs.verify(token)


def test_verifier_keys_are_swapped_whole():
    v = JWTVerifier()
    assert v.key_count == 0
    with pytest.raises(ValueError, match="no key|unknown"):
        v.verify(pyjwt.encode({}, "s" * 32))
    v.set_keys([("secret", "HS256", None, b"s" * 32)])
    v.verify(pyjwt.encode({}, "s" * 32))
    with pytest.raises(ValueError, match="HS algorithms take a secret"):
        v.set_keys([("secret", "HS256", None, b"t" * 32), ("pem", "HS256", None, b"x")])
    assert v.key_count == 1, "a refused set leaves the old one in place"
    v.verify(pyjwt.encode({}, "s" * 32))


# ---- TestClient in Django's TestCase: users and permissions ----


class AuthWithUsers(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = User.objects.create_user("alice", password="pw")
        cls.staff = User.objects.create_user("sam", password="pw", is_staff=True)
        cls.root = User.objects.create_superuser("root", password="pw")
        cls.viewer = User.objects.create_user("vic", password="pw")
        cls.viewer.user_permissions.add(Permission.objects.get(codename="view_item"))
        cls.both = User.objects.create_user("bo", password="pw")
        cls.both.user_permissions.add(*Permission.objects.filter(codename__in=["view_item", "add_item"]))

    def setUp(self):
        self.client_ = TestClient(api=authapi.api)

    def tearDown(self):
        self.client_.close()

    def get(self, path, user=None, **kw):
        headers = kw.pop("headers", {})
        if user is not None:
            headers.update(bearer(hs_token(sub=str(user.pk))))
        return self.client_.get(path, headers=headers, **kw)

    def test_user_resolved_from_sub(self):
        r = self.get("/api/user", self.alice)
        self.assertEqual(r.json(), {"authenticated": True, "username": "alice"})
        r = self.client_.get("/api/user", headers=bearer(hs_token(sub="999999")))
        self.assertEqual(r.json(), {"authenticated": False, "username": ""})

    def test_staff_and_superuser(self):
        self.assertEqual(self.get("/api/staff", self.alice).status_code, 403)
        self.assertEqual(self.get("/api/staff", self.staff).json(), {"staff": "sam"})
        self.assertEqual(self.get("/api/superuser", self.staff).status_code, 403)
        self.assertEqual(self.get("/api/superuser", self.root).status_code, 200)
        self.assertEqual(self.get("/api/staff").status_code, 401)

    def test_permissions(self):
        self.assertEqual(self.get("/api/perm", self.alice).json(), {"detail": "Permission denied"})
        self.assertEqual(self.get("/api/perm", self.viewer).status_code, 200)
        self.assertEqual(self.get("/api/anyperm", self.viewer).status_code, 200)
        self.assertEqual(self.get("/api/allperm", self.viewer).status_code, 403)
        self.assertEqual(self.get("/api/allperm", self.both).status_code, 200)
        self.assertEqual(self.get("/api/perm", self.root).status_code, 200)

    def session_cookie(self, user) -> str:
        c = DjangoClient()
        c.force_login(user)
        return f"sessionid={c.cookies['sessionid'].value}"

    def test_session_auth_and_csrf(self):
        cookie = self.session_cookie(self.alice)
        r = self.client_.get("/api/session", headers={"Cookie": cookie})
        self.assertEqual(r.json(), {"user": "alice"})
        self.assertEqual(self.client_.get("/api/session").status_code, 401)
        # Unsafe methods need the CSRF token, as CsrfViewMiddleware checks it.
        r = self.client_.post("/api/session", headers={"Cookie": cookie})
        self.assertEqual(r.status_code, 403)
        self.assertTrue(r.json()["detail"].startswith("CSRF Failed"))
        secret = "a" * 32
        headers = {"Cookie": f"{cookie}; csrftoken={secret}", "X-CSRFToken": secret}
        self.assertEqual(self.client_.post("/api/session", headers=headers).json(), {"posted": "alice"})
        bad = {**headers, "X-CSRFToken": "b" * 32}
        self.assertEqual(self.client_.post("/api/session", headers=bad).status_code, 403)
        evil = {**headers, "Origin": "http://evil.example"}
        self.assertEqual(self.client_.post("/api/session", headers=evil).status_code, 403)

    def test_jwt_or_session_and_is_authenticated(self):
        cookie = self.session_cookie(self.staff)
        r = self.client_.get("/api/jwt-or-session", headers={"Cookie": cookie})
        self.assertEqual(r.json(), {"scheme": "SessionAuth"})
        self.assertEqual(self.get("/api/jwt-or-session", self.staff).json(), {"scheme": "JWTAuth"})
        self.assertEqual(self.client_.get("/api/jwt-or-session").status_code, 401)
        self.assertEqual(self.client_.get("/api/authenticated").status_code, 401)
        r = self.client_.get("/api/authenticated", headers={"Cookie": cookie})
        self.assertEqual(r.json(), {"user": "sam"})


# ---- differential: the C verifier and PyJWT decide alike ----


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
def test_ecdsa_signatures_of_any_shape(keys, alg):
    """Many ECDSA signatures (r and s with leading zero bytes among them) turned into DER."""
    v = JWTVerifier()
    key = keys.p256 if alg == "ES256" else keys.p384
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    v.set_keys([("pem", alg, None, pem)])
    for i in range(300):
        claims = {"i": i}
        token = pyjwt.encode(claims, key, algorithm=alg)
        assert json.loads(v.verify(token)[0]) == claims


def test_claims_decisions_match_pyjwt():
    now = int(time.time())
    secret = "d" * 32
    variants = [
        {},
        {"exp": now + 100},
        {"exp": now - 100},
        {"exp": now - 20},
        {"nbf": now + 100},
        {"nbf": now - 100},
        {"iat": now + 100},
        {"iat": now - 100},
        {"iss": "a"},
        {"iss": "b"},
        {"aud": "x"},
        {"aud": ["y", "x"]},
        {"aud": ["y"]},
        {"aud": []},
        {"iss": "a", "aud": "x", "exp": now + 100, "nbf": now - 100, "iat": now},
        {"sub": "s", "iss": "a", "aud": ["x"], "exp": now - 40},
    ]
    policies = [
        {},
        {"issuers": ["a"]},
        {"audiences": ["x"]},
        {"issuers": ["a"], "audiences": ["x"], "leeway": 30},
    ]
    for policy in policies:
        v = JWTVerifier(**policy)
        v.set_keys([("secret", "HS256", None, secret.encode())])
        for claims in variants:
            token = pyjwt.encode(claims, secret, algorithm="HS256")
            try:
                pyjwt.decode(
                    token,
                    secret,
                    algorithms=["HS256"],
                    issuer=policy.get("issuers"),
                    audience=policy.get("audiences"),
                    leeway=policy.get("leeway", 0),
                )
                theirs = True
            except pyjwt.InvalidTokenError:
                theirs = False
            try:
                v.verify(token)
                ours = True
            except ValueError:
                ours = False
            if claims == {"aud": []} and not policy.get("audiences") and theirs:
                # The one deliberate difference: PyJWT takes an empty aud as none;
                # RFC 7519 4.1.3 refuses any aud that does not name us.
                assert not ours
                continue
            assert ours == theirs, (policy, claims, ours, theirs)


def test_constant_routes_and_docs_stay_public():
    from meltemi.api import API

    api = API(prefix="/p", auth=JWTAuth(secret="c" * 32), guards=[HasClaim("scope", "x")])
    api.constant("/ping", b"pong")

    @api.get("/private")
    def private(request):
        return {"ok": True}

    with TestClient(api=api) as c:
        assert c.get("/p/ping").content == b"pong"
        assert c.get("/p/openapi.json").status_code == 200
        assert c.get("/p/private").status_code == 401
        token = JWTAuth(secret="c" * 32).encode({"scope": "x y"})
        assert c.get("/p/private", headers=bearer(token)).json() == {"ok": True}
        other = JWTAuth(secret="c" * 32).encode({"scope": "y"})
        assert c.get("/p/private", headers=bearer(other)).status_code == 403


def test_pem_file_key_and_router_guards(tmp_path, keys):
    from meltemi.api import API, Router

    pem = tmp_path / "issuer.pem"
    pem.write_bytes(keys.public_pem())
    rs = JWTAuth(public_key=str(pem), algorithm="PS256", kid="k1")
    api = API(prefix="/x")
    admin = Router(prefix="/admin", auth=rs, guards=[HasClaim("role", "admin")])

    @admin.get("/a")
    def a(request):
        return request.auth

    api.include_router(admin)
    with TestClient(api=api) as c:
        good = pyjwt.encode({"role": ["admin"]}, keys.rsa, algorithm="PS256", headers={"kid": "k1"})
        assert c.get("/x/admin/a", headers=bearer(good)).json() == {"role": ["admin"]}
        rs256 = pyjwt.encode({"role": ["admin"]}, keys.rsa, algorithm="RS256", headers={"kid": "k1"})
        assert c.get("/x/admin/a", headers=bearer(rs256)).status_code == 401
        other_kid = pyjwt.encode({"role": ["admin"]}, keys.rsa, algorithm="PS256", headers={"kid": "k2"})
        r = c.get("/x/admin/a", headers=bearer(other_kid))
        assert r.status_code == 401 and "unknown token key" in r.headers["WWW-Authenticate"]
        user = pyjwt.encode({"role": "user"}, keys.rsa, algorithm="PS256")
        assert c.get("/x/admin/a", headers=bearer(user)).status_code == 403


class TokenHeaderAuth(AuthScheme):
    """A scheme of the project's own, decided in Python (as Django Ninja's are)."""

    openapi_name = "tokenHeader"

    def authenticate(self, request):
        if request.headers.get("x-token") == "let-me-in":
            return User.objects.get(username="carol")
        return None

    def challenge(self):
        return 'Token realm="x"'

    def openapi_scheme(self):
        return {"type": "apiKey", "in": "header", "name": "X-Token"}


class CustomScheme(TestCase):
    def test_python_scheme_with_a_c_one(self):
        from meltemi.api import API

        User.objects.create_user("carol", is_staff=True)
        hs = JWTAuth(secret="e" * 32)
        api = API(prefix="/c", auth=[hs, TokenHeaderAuth()], guards=[IsStaff()])

        @api.get("/who")
        def who(request):
            return {"user": request.user.username, "scheme": type(request.auth_scheme).__name__}

        with TestClient(api=api) as c:
            r = c.get("/c/who", headers={"X-Token": "let-me-in"})
            self.assertEqual(r.json(), {"user": "carol", "scheme": "TokenHeaderAuth"})
            r = c.get("/c/who", headers={"X-Token": "no"})
            self.assertEqual(r.status_code, 401)
            self.assertEqual(r.headers["WWW-Authenticate"], 'Bearer, Token realm="x"')
            r = c.get("/c/who", headers=bearer(hs.encode({"sub": "999"})))
            self.assertEqual(r.status_code, 403)  # a valid token, but no such (staff) user
        doc = api.openapi()
        self.assertEqual(doc["paths"]["/c/who"]["get"]["security"], [{"bearerAuth": []}, {"tokenHeader": []}])
