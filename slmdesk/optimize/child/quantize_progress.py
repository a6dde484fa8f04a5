"""Progress of one llama.cpp conversion, from its log as it is written.

llama.cpp logs each tensor in pieces: ``[  12/ 236] blk.1.attn_k.weight - [ 640, 256, 1, 1],
type = q4_K, `` when it starts the tensor, then ``size = ... MiB\\n`` when it is written. Counting
lines alone leaves the bar still on a large tensor (the embeddings are a quarter of a small model)
and only moves when a line ends; weighting each tensor by its element count (from the shape in
the log) and reporting when it *starts* gives a percentage that moves with the work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from slmdesk.models.gguf_info import GGUFInfo

_START = re.compile(r"\[\s*(\d+)/\s*(\d+)\]\s+(\S+)\s+-\s+\[([\d,\s]+)\]")
_END = "size ="

# (tensors started, tensors in the log, tensor name, fraction of the work done)
Report = Callable[[int, int, str, float], None]


class QuantizeProgress:
    """Turns llama.cpp's log chunks into (done, total, name, fraction) reports."""

    def __init__(self, source: GGUFInfo, pruned: Sequence[int], report: Report) -> None:
        drop = tuple(f"blk.{i}." for i in pruned)
        self.total_elements = (
            sum(t.n_elements for t in source.tensors if not t.name.startswith(drop)) or 1
        )
        self.report = report
        self.done_elements = 0
        self.current: tuple[int, int, str, int] | None = None  # index, count, name, elements

    def feed(self, chunk: str) -> None:
        """Read one chunk of the log (called from llama.cpp's log callback)."""
        start = _START.search(chunk)
        if start is not None:
            self._finish()
            index, count, name = int(start[1]), int(start[2]), start[3]
            self.current = (index, count, name, _elements(start[4]))
            self._send(index - 1, count, name)
        if _END in chunk:
            self._finish()

    def _finish(self) -> None:
        if self.current is None:
            return
        index, count, name, elements = self.current
        self.current = None
        self.done_elements += elements
        self._send(index, count, name)

    def _send(self, done: int, count: int, name: str) -> None:
        self.report(done, count, name, min(1.0, self.done_elements / self.total_elements))


def _elements(shape: str) -> int:
    """Elements of a tensor from the log's ``[ 640, 256, 1, 1]``."""
    product = 1
    for dim in shape.split(","):
        if dim.strip():
            product *= int(dim)
    return product
