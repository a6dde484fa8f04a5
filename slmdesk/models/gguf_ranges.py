"""Read a GGUF header that lives elsewhere (on the Hub) in byte ranges, within a byte budget.

A header is mostly vocabulary: Gemma 3's is 6.5 MB, 4.4 MB of it the 262,144 token texts, then
2.1 MB of per-token scores and types. None of that changes a memory estimate, so it is skipped:

- arrays of fixed-size items are skipped by arithmetic (count × item size), the next read
  starting after them;
- an array of strings cannot be, because each item carries its own length. The first items are
  read, their average length says roughly where the array ends, and windows around that spot are
  fetched until one shows where the chain of length-prefixed strings stops and the next entry
  begins (a key such as ``tokenizer.ggml.scores`` whose array has the same count, or a tensor
  name). Windows that are still inside the chain move the search forward, windows with no chain
  in them move it back (a bisection).

A jump is a guess, so a header read with jumps must prove itself: its tensor table has to end
exactly where the file the Hub lists ends (with the alignment padding). If it does not, the
header is read again from the start, every byte in order (the ranges already fetched are not
fetched again), up to the hard cap. Every read counts against the budget, so a hostile header —
huge counts, a string array that never ends, a size that lies — costs at most `HARD_CAP` bytes
and ends in an `InvalidModelError` sentence.

The parser itself is `gguf_info.parse_with_cursor`, the one used for local files: the rules are
the same, except that skipped vocabulary texts are not checked (they are, once downloaded).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_info import (
    GGUFInfo,
    HeaderCursor,
    invalid,
    parse_with_cursor,
    printable,
)

# read(offset, length) -> the bytes of the file from ``offset`` (at most ``length`` of them).
RangeReader = Callable[[int, int], bytes]

NORMAL_BUDGET = 4 << 20  # bytes a header may cost when its long arrays are skipped
HARD_CAP = 8 << 20  # bytes a header may cost in all, read in order when skipping failed
CHUNK = 64 << 10  # bytes first fetched when the parser needs bytes that are not here yet...
MAX_CHUNK = 1 << 20  # ...doubling while it reads on from where the last range ended
PROBE = 32 << 10  # bytes of one window looking for the end of a string array
MAX_PROBES = 40
SYNC_SPAN = 4096  # offsets tried in a window to find the start of a string
MAX_ITEM = 4096  # longer strings break a chain (vocabulary texts are much shorter)
MIN_CHAIN = 8  # strings in a row that prove a window is inside a string array
MIN_SAMPLE = 64  # strings read before their average length is trusted
_KEY_RE = re.compile(rb"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+")
_NAME_RE = re.compile(rb"[\x21-\x7e]+")
_U64 = struct.Struct("<Q")
_VALUE_TYPES = range(13)
_COUNTED_KEYS = (b"tokenizer.ggml.scores", b"tokenizer.ggml.token_type")


class HeaderTooLongError(InvalidModelError):
    """Reading the header would cost more bytes than the cap allows."""


@dataclass(frozen=True)
class RangeHeader:
    """A header read in ranges, and what reading it cost."""

    info: GGUFInfo
    bytes_read: int
    requests: int
    skipped_arrays: int  # string arrays jumped over (0: read in order)


def read_header_in_ranges(
    read: RangeReader,
    name: str,
    size_bytes: int,
    budget: int = NORMAL_BUDGET,
    cap: int = HARD_CAP,
) -> RangeHeader:
    """The facts of a GGUF file of ``size_bytes`` bytes whose bytes ``read`` returns.

    Args:
        read: ``read(offset, length)`` returns the file's bytes from ``offset``; it raises for a
            source that cannot answer (the Hub's errors pass through untouched).
        name: the file's name, for messages.
        size_bytes: the file's size as listed (the tensor table must end there).
        budget: bytes the header may cost with long arrays skipped.
        cap: bytes it may cost in all, when it must be read in order.

    Raises:
        InvalidModelError: not GGUF, damaged, or too long to read within ``cap``
            (`HeaderTooLongError`).
    """
    fetcher = _Fetcher(read, size_bytes, name, min(budget, cap))
    cursor = _RangeCursor(fetcher, Path(name), jump=True)
    try:
        info = parse_with_cursor(cursor, size_bytes)
    except InvalidModelError:
        if cursor.jumps == 0 and not fetcher.exhausted:
            raise  # read in order and damaged: reading it again would say the same
    else:
        if cursor.jumps == 0 or _ends_at_file_end(info, size_bytes):
            return RangeHeader(info, fetcher.bytes_read, fetcher.requests, cursor.jumps)
    fetcher.limit = cap
    fetcher.exhausted = False
    plain = _RangeCursor(fetcher, Path(name), jump=False)
    info = parse_with_cursor(plain, size_bytes)
    return RangeHeader(info, fetcher.bytes_read, fetcher.requests, 0)


def _ends_at_file_end(info: GGUFInfo, size_bytes: int) -> bool:
    """Whether the tensor table's last tensor ends where the file does (padding allowed)."""
    if not info.tensors:
        return False
    last = max(info.tensors, key=lambda t: t.offset)
    end = info.data_offset + last.offset + last.n_bytes
    padded = (end + info.alignment - 1) // info.alignment * info.alignment
    return end <= size_bytes <= padded


class _Fetcher:
    """The ranges fetched so far, and the budget they count against."""

    def __init__(self, read: RangeReader, size: int, name: str, limit: int) -> None:
        self.read = read
        self.size = size
        self.name = printable(name, 80)
        self.limit = limit
        self.exhausted = False
        self.bytes_read = 0
        self.requests = 0
        self.segments: list[tuple[int, bytes]] = []
        self._last: tuple[int, bytes] = (0, b"")
        self.chunk = CHUNK

    def get(self, offset: int, n: int, chunk: int | None = None) -> tuple[bytes, int]:
        """A buffer holding bytes ``offset .. offset + n`` of the file, and the index of the first."""
        start, data = self._last
        if start <= offset and offset + n <= start + len(data):
            return data, offset - start
        for start, data in self.segments:
            if start <= offset and offset + n <= start + len(data):
                self._last = (start, data)
                return data, offset - start
        room = self.limit - self.bytes_read
        if n > room:
            self.exhausted = True
            raise HeaderTooLongError(
                f"{self.name}'s header is longer than the {self.limit >> 20} MiB slmdesk reads "
                "to judge a file before downloading it."
            )
        if chunk is None:
            last_start, last_data = self.segments[-1] if self.segments else (-1, b"")
            follows = last_start <= offset <= last_start + len(last_data)
            self.chunk = min(self.chunk * 2, MAX_CHUNK) if follows else CHUNK
            chunk = self.chunk
        length = min(max(n, chunk), room, self.size - offset)
        data = self.read(offset, length)[:length]
        self.requests += 1
        self.bytes_read += len(data)
        if len(data) < n:
            raise invalid(
                f"{self.name}: the Hub sent {len(data):,} bytes where {n:,} were asked for "
                f"(from byte {offset:,})."
            )
        self.segments.append((offset, data))
        self._last = (offset, data)
        return data, 0


class _RangeCursor(HeaderCursor):
    """The GGUF parser's cursor, reading through a `_Fetcher` and able to skip string arrays."""

    contiguous = False

    def __init__(self, fetcher: _Fetcher, path: Path, jump: bool) -> None:
        super().__init__(b"", path)
        self.fetcher = fetcher
        self.size = fetcher.size
        self.jump = jump
        self.jumps = 0

    def view(self, n: int) -> tuple[Any, int]:
        return self.fetcher.get(self.pos, n)

    def skip_string_array(self, key: str, length: int, what: str) -> bool:
        if not self.jump or length <= MIN_SAMPLE:
            return False
        end = _StringArrayEnd(self, length).find()
        if end is None:
            return False
        self.pos = end
        self.jumps += 1
        return True


class _StringArrayEnd:
    """Finds where an array of ``count`` length-prefixed strings starting at the cursor ends."""

    def __init__(self, cursor: _RangeCursor, count: int) -> None:
        self.cursor = cursor
        self.fetcher = cursor.fetcher
        self.count = count
        self.start = cursor.pos

    def find(self) -> int | None:
        """The end's file offset, or None when it could not be found (then read in order)."""
        cur = self.cursor
        if cur.left < 8:
            return None
        buf, index = cur.view(8)
        read, pos = 0, index
        while read < self.count and pos + 8 <= len(buf):
            size = _U64.unpack_from(buf, pos)[0]
            if size > MAX_ITEM or pos + 8 + size > len(buf):
                break
            pos += 8 + size
            read += 1
        consumed = pos - index
        if read == self.count:
            return self.start + consumed  # short enough to be here already
        if read < MIN_SAMPLE:
            return None
        remaining = self.count - read
        low = self.start + consumed + 8 * remaining  # every string has its length
        high = self.fetcher.size
        guess = self.start + consumed + int(remaining * consumed / read)
        return self._search(low, high, guess)

    def _search(self, low: int, high: int, guess: int) -> int | None:
        at = max(low, guess - PROBE // 2)
        step = PROBE
        bracketed = False
        for _ in range(MAX_PROBES):
            if at >= high:
                at = max(low, high - PROBE)
            length = min(PROBE, self.fetcher.size - at)
            if length < 16:
                return None
            try:
                window, index = self.fetcher.get(at, length, chunk=length)
            except HeaderTooLongError:
                return None
            kind, where = self._classify(window[index : index + length], at)
            if kind == "end":
                return where
            if kind == "inside":
                low = max(low, at + length - SYNC_SPAN)
            else:
                high = min(high, at + SYNC_SPAN)
                bracketed = True
            if high - low <= PROBE:
                at = low
            elif bracketed:
                at = (low + high) // 2 - PROBE // 2
            else:
                at = low + step  # gallop forward until a window lies past the end
                step *= 2
        return None

    def _classify(self, window: bytes, at: int) -> tuple[str, int]:
        """``("end", offset)``, ``("inside", 0)`` (a chain runs to the window's end) or ``("after", 0)``."""
        for offset in range(min(SYNC_SPAN, len(window) - 8)):
            starts, pos, broke = _chain(window, offset)
            if not broke and len(starts) >= MIN_CHAIN:
                return "inside", 0
            if not broke or len(starts) < 2:
                continue
            for start in [*starts[-4:], pos]:
                if at + start >= self.start and self._next_entry_at(window, start):
                    return "end", at + start
            if len(starts) >= MIN_CHAIN:
                return "after", 0  # a real chain that ends without a recognisable entry
        return "after", 0

    def _next_entry_at(self, window: bytes, pos: int) -> bool:
        """Whether a metadata entry (or the tensor table) plausibly starts at ``pos``."""
        if pos + 8 > len(window):
            return False
        size = _U64.unpack_from(window, pos)[0]
        text = window[pos + 8 : pos + 8 + size]
        tail = pos + 8 + size
        if not 3 <= size <= 256 or len(text) < size or tail + 4 > len(window):
            return False
        first = struct.unpack_from("<I", window, tail)[0]
        if _KEY_RE.fullmatch(text) and first in _VALUE_TYPES:
            if first != 9:
                return True
            if tail + 16 > len(window):
                return False
            item_type, count = struct.unpack_from("<IQ", window, tail + 4)
            if item_type not in _VALUE_TYPES or item_type == 9:
                return False
            return text not in _COUNTED_KEYS or count == self.count
        # The tensor table: a name, 1 to 4 dimensions.
        return size <= 63 and bool(_NAME_RE.fullmatch(text)) and 1 <= first <= 4


def _chain(window: bytes, offset: int) -> tuple[list[int], int, bool]:
    """Length-prefixed strings in a row from ``offset``: their starts, where the chain stops,
    and whether it broke (False: it ran to the window's end)."""
    starts: list[int] = []
    pos = offset
    end = len(window)
    while pos + 8 <= end:
        size = _U64.unpack_from(window, pos)[0]
        if size > MAX_ITEM or (size == 0 and starts and starts[-1] == pos - 8):
            return starts, pos, True
        if pos + 8 + size > end:
            return starts, pos, False
        starts.append(pos)
        pos += 8 + size
    return starts, pos, False
