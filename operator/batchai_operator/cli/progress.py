"""A progress line for a person waiting at a terminal (stderr): redrawn in place with a spinner; lines
printed through it stay. When stderr is not a terminal only the lines are printed, one per event, so
logs and pipes get no control characters."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

_SPINNER = "|/-\\"


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._tick = 0
        self._shown = False

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False

    def update(self, text: str) -> None:
        """Redraw the progress line (terminals only)."""
        if not self.live:
            return
        self._clear()
        width = shutil.get_terminal_size((100, 20)).columns - 3
        self.stream.write(f"{_SPINNER[self._tick % len(_SPINNER)]} {text[:width]}")
        self.stream.flush()
        self._tick += 1
        self._shown = True

    def line(self, text: str) -> None:
        """A permanent line (above the progress line on a terminal)."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        self._clear()
        self.stream.flush()
