"""The database engine (collector/db.py)."""

from __future__ import annotations


def test_json_columns_read_what_orjson_refuses() -> None:
    """PostgreSQL JSON columns are read with orjson (fast), and what it refuses
    (integers beyond 64 bits, NaN) still reads as the standard library reads it."""
    import math

    from collector.db import _loads_json

    assert _loads_json(b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}
    assert _loads_json('{"n": 18446744073709551616}') == {"n": 2**64}
    assert math.isnan(_loads_json('{"x": NaN}')["x"])
