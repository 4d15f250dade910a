"""How a state object is stored in a table: compact JSON, deflated against a preset
dictionary.

A table value is one format byte, then the body:

- ``{`` (a JSON object, the former format): read as it is, never written any more;
- ``0x01``: the JSON deflated (raw deflate, a 4 KiB window) with :data:`DICTIONARY_1` as
  its preset dictionary.

The dictionary holds the keys and the shapes the states' JSON repeats, so even a value of
a hundred bytes compresses well: a year-old busy customer's five states take about 800
bytes together, against about 1,500 as plain JSON (``bench/state_size.py``). A value once
written must stay readable: a new dictionary gets a new format byte, and the old one stays
here for reading.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Final

#: Format byte of JSON deflated with :data:`DICTIONARY_1`.
DEFLATE_1: Final = 1
#: Keys and shapes of the states' JSON (see each state's ``to_json``). Never edit: values
#: written with it read only with it.
DICTIONARY_1: Final = (
    b'{"i":[17,"0"],"b":[2914,127,1,0,],"r":[],"f":20,"l":17000000,"n":1,"s":1,"c":"EUR"}'
    b'{"t":1700000000000,"s":"b2b","u":1700000000000,"p":"pro","m":0,"c":0,"n":1,"r":0,'
    b'"k":1}{"o":"","r":"","c":null,"p":null,"l":17{"s":[,null,null,"f":17,"a":17,"p":,'
    b'"b":"healthy","x":["healthy",0,0,0,null,null],"d":17,"q":0,"e":[,,17],"c":0,'
    b'"pf":{"t":17,"s":"b2c","u":17,"p":null,"m":0,"c":0,"n":1,"r":0,"k":1},"v":1}'
)
#: Raw deflate (no header, no checksum: the table's own record framing carries the
#: value) with a 4 KiB window, which holds the dictionary and a state's JSON (a longer
#: one still round-trips, matching only within the window).
_WBITS: Final = -12
_LEVEL: Final = 6
_MEM_LEVEL: Final = 4


def dumps(data: dict[str, Any]) -> bytes:
    """A state's JSON object as a table value."""
    return deflate(json.dumps(data, separators=(",", ":"), allow_nan=False).encode())


def deflate(text: bytes) -> bytes:
    """``text`` (a state's JSON) as a table value of format :data:`DEFLATE_1`."""
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL,
                              zlib.Z_DEFAULT_STRATEGY, DICTIONARY_1)
    return bytes((DEFLATE_1,)) + packer.compress(text) + packer.flush()


def loads(raw: bytes) -> dict[str, Any]:
    """A table value (either format) back as the state's JSON object. Raises ValueError
    for a value that is neither."""
    if not raw:
        raise ValueError("state is empty")
    kind = raw[0]
    if kind == DEFLATE_1:
        unpacker = zlib.decompressobj(_WBITS, DICTIONARY_1)
        try:
            text = unpacker.decompress(raw[1:]) + unpacker.flush()
        except zlib.error as exc:
            raise ValueError(f"state does not inflate: {exc}") from exc
        if not unpacker.eof:
            raise ValueError("state is truncated")
    elif kind == ord("{"):
        text = raw
    else:
        raise ValueError(f"state has an unknown format byte {kind:#04x}")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("state is not a JSON object")
    return value
