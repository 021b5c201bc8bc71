"""The bodies the scenarios return, shared by every server's app so that all send the same bytes' worth."""

MESSAGE = "Hello, World!"

# About 10 KB of JSON once encoded: 100 records of the shape an API returns.
RECORDS = [
    {
        "id": i,
        "name": f"item {i:03d}",
        "price": round(i * 1.25, 2),
        "tags": ["alpha", "beta", "gamma"],
        "active": i % 2 == 0,
        "stock": i * 7,
    }
    for i in range(100)
]

# The rows the ORM scenarios read (seeded by bench/apps/benchproj/seed.py).
ROWS = [{"name": f"row {i}", "price": round(10 + i * 0.5, 2), "stock": i * 3} for i in range(100)]

POST_BODY = b'{"name":"widget","price":9.5,"tags":["a","b"]}'

WAIT_SECONDS = 0.010


def _jwt(claims: dict, secret: bytes, signature_ok: bool = True) -> str:
    """An HS256 JWT (made here so that no JWT library is needed to run the bench)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret if signature_ok else secret + b"!", signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(mac)


# The JWT scenarios: a token for the settings' SECRET_KEY (both servers read
# it: meltemi's JWTAuth and Bolt's JWTAuthentication default to it), valid
# until 2100, and the same token with a wrong signature (answered 401).
JWT_SECRET = b"bench-only-not-secret"
JWT_CLAIMS = {"sub": "bench", "iat": 1700000000, "exp": 4102444800}
JWT_TOKEN = _jwt(JWT_CLAIMS, JWT_SECRET)
JWT_BAD_TOKEN = _jwt(JWT_CLAIMS, JWT_SECRET, signature_ok=False)
