"""Which events a customer's state has seen: the duplicate memory of each feature state.

:class:`RecentIds` keeps a 64-bit hash of each event id seen within a window of event time,
so a re-delivered event is never counted twice; ``id_hash``, ``pack`` and ``unpack`` are
the smaller hashes and the compact id lists the feature states keep.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from streams.domain.buckets import to_ms


def id_hash(text: str) -> int:
    """A 32-bit hash of an id: enough to tell apart the few ticket ids a state keeps."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def id_hash64(text: str) -> int:
    """A 64-bit hash of an event id: no two genuine events of a customer share one."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def pack(values: list[int]) -> str:
    """32-bit unsigned ints as compact base64 text."""
    return base64.b64encode(struct.pack(f"<{len(values)}I", *values)).decode()


def unpack(text: str) -> list[int]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


#: The most event ids one customer and family keep: a flood of events inside the window
#: forgets its oldest seconds (see :class:`RecentIds`).
MAX_IDS: Final = 128
_HASH: Final = struct.Struct("<Q")
#: Marks the ids' text as base64 (not in the base85 alphabet of earlier values).
B64_MARK: Final = "/"


@dataclass(slots=True, init=False)
class RecentIds:
    """The event ids of one customer and family seen within a window of event time.

    Each id is kept as a 64-bit hash with the second of its event, for as long as that
    second lies within ``window_ms`` of the latest event seen. An event behind that
    horizon cannot be told from a re-delivery, so it counts as seen: a re-delivered burst
    of any size is ignored whatever order it comes back in, and a genuine event that old
    has already been dead-lettered by the intake as too late (the window is the span of
    event times the intake accepts). When more than ``MAX_IDS`` ids fall inside the
    window, the oldest seconds are forgotten and the horizon moves up past them
    (``floor``): duplicates are still never counted twice, but a genuine event of such a
    busy customer that arrives later than every id kept is taken for one. The ids of the
    latest second are always kept, so events dated alike are never lost to the cap.
    """

    window_ms: int
    seconds: dict[int, int] = field(default_factory=dict)  # id hash -> second of its event
    latest: int | None = None  # second of the latest event seen
    floor: int | None = None  # events of this second or before count as seen

    def __init__(self, window_ms: int, seconds: dict[int, int] | None = None,
                 latest: int | None = None, floor: int | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.window_ms = window_ms
        self.seconds = {} if seconds is None else seconds
        self.latest = latest
        self.floor = floor

    def horizon(self) -> int | None:
        """Events of a second before this one count as seen (None: nothing seen yet)."""
        if self.latest is None:
            return None
        start = self.latest - -(-self.window_ms // 1000)
        return start if self.floor is None else max(start, self.floor + 1)

    def seen(self, event_id: str, occurred_at: datetime) -> bool:
        """True if the event was seen (or is behind the horizon); otherwise remember it."""
        second = to_ms(occurred_at) // 1000
        horizon = self.horizon()
        if horizon is not None and second < horizon:
            return True
        h = id_hash64(event_id)
        if h in self.seconds:
            return True
        self.seconds[h] = second
        if self.latest is None or second > self.latest:
            self.latest = second
            horizon = self.horizon()
            assert horizon is not None
            self.seconds = {k: v for k, v in self.seconds.items() if v >= horizon}
            if self.floor is not None and self.floor < horizon - 1:
                self.floor = None  # the window has moved past it
        if len(self.seconds) > MAX_IDS:
            self._forget_oldest()
        return False

    def _forget_oldest(self) -> None:
        """Forget whole seconds, oldest first, until at most ``MAX_IDS`` ids are kept;
        the latest second is kept whole (a bulk import may date many events alike)."""
        counts = Counter(self.seconds.values())
        kept = len(self.seconds)
        for second in sorted(counts):
            if kept <= MAX_IDS or second == self.latest:
                break
            kept -= counts[second]
            self.floor = second
        floor = self.floor
        if floor is None:
            return
        self.seconds = {k: v for k, v in self.seconds.items() if v > floor}

    def to_json(self) -> list[Any]:
        """``[latest second, "/" + base64 of (seconds before the latest as a varint,
        8-byte hash) per id]``, then the floor if any; ``[]`` when nothing was seen.
        (Base64, which the C library encodes; earlier values used base85, which has no
        "/" and still reads.)"""
        if self.latest is None:
            return []
        out = bytearray()
        for h, second in sorted(self.seconds.items(), key=lambda item: (-item[1], item[0])):
            _put_varint(out, self.latest - second)
            out += _HASH.pack(h)
        data: list[Any] = [self.latest, B64_MARK + base64.b64encode(bytes(out)).decode()]
        if self.floor is not None:
            data.append(self.floor)
        return data

    @classmethod
    def from_json(cls, window_ms: int, data: list[Any] | str) -> RecentIds:
        """From :meth:`to_json`. The text of the former count-bounded memory (32-bit
        hashes without event times) cannot be read as event ids and starts empty."""
        if isinstance(data, str) or not data:
            return cls(window_ms)
        latest = int(data[0])
        text: str = data[1]
        raw = (base64.b64decode(text[1:]) if text.startswith(B64_MARK)
               else base64.b85decode(text))
        seconds: dict[int, int] = {}
        pos = 0
        while pos < len(raw):
            back, pos = _get_varint(raw, pos)
            (h,) = _HASH.unpack_from(raw, pos)
            pos += _HASH.size
            seconds[h] = latest - back
        return cls(window_ms, seconds, latest, int(data[2]) if len(data) > 2 else None)


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
