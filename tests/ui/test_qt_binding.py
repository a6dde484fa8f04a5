"""Guards against defects of the Qt binding that would crash the app in long sessions."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    ping = Signal(int, str)


def test_emitting_signals_keeps_the_reference_count_of_true() -> None:
    """PySide6 6.12.0 drops a reference to True on every emit(); on Python 3.11 the app then
    aborts ("deallocating True") after a few thousand streamed chunks. The pin in pyproject
    keeps such a release out; this test catches it if it comes back."""
    emitter = _Emitter()
    received: list[int] = []
    emitter.ping.connect(lambda n, _text: received.append(n))
    before = sys.getrefcount(True), sys.getrefcount(False)
    for n in range(100):
        emitter.ping.emit(n, "chunk")
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert len(received) == 100
    assert after[0] - before[0] > -10
    assert after[1] - before[1] > -10
