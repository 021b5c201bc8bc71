"""meltemi._core.parse_query, the C query-string parser of the API, against
Python's urllib.parse on fixed and random inputs.

Its input is the query string as it came (bytes read as latin-1, like WSGI's
QUERY_STRING); keys and values are percent-decoded and read as UTF-8."""

import random
from urllib.parse import unquote_to_bytes

import pytest

from meltemi._core import parse_query


def reference(qs: str) -> dict:
    out: dict = {}
    for pair in qs.encode("latin-1").split(b"&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition(b"=")
        key, value = (unquote_to_bytes(x.replace(b"+", b" ")).decode("utf-8", "replace") for x in (raw_key, raw_value))
        if key in out:
            old = out[key]
            out[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    "qs",
    [
        "",
        "a=1",
        "a=1&a=2&a=3",
        "a=1&&b=2&",
        "c",
        "=x",
        "a==b",
        "q=a+b%20c",
        "e=%C3%A9&bad=%ff%fe",
        "trunc=%4&x=%&y=%zz",
        "k%3Dv=1",
        "a=1;b=2",
        "x=%E2%82",
        "raw=\xc3\xa9",
    ],
)
def test_fixed_inputs(qs):
    assert parse_query(qs) == reference(qs)


def test_random_inputs_agree_with_urllib():
    rng = random.Random(1234)
    alphabet = "ab=&%+;2Fzé\x00 \t?#/" + "0123456789ABCDEFabcdef"
    for _ in range(5000):
        qs = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert parse_query(qs) == reference(qs), qs


def test_large_query():
    qs = "&".join(f"k{i}=v{i}" for i in range(5000))
    parsed = parse_query(qs)
    assert len(parsed) == 5000 and parsed["k4999"] == "v4999"


def test_type_error():
    with pytest.raises(TypeError):
        parse_query(b"a=1")
