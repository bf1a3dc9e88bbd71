"""Pickles that prove whether they were opened, for the tests of what a bundle load refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["Detonator"]


class Detonator:
    """Unpickling this creates ``marker``: the proof that a pickle was opened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))
