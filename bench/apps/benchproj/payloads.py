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
