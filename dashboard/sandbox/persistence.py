"""`--state FILE`: the whole account plus the clock offset, written atomically, read back at start.

Pickle, because events share their snapshot versions with the live objects (a JSON dump would copy each
version once per event that holds it, and the reload would lose that sharing). The file is the sandbox's
own, written by the sandbox; it is never a format to exchange.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .model import Sandbox

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedState:
    sandbox: Sandbox
    clock_offset: int


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SavedState | None:
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            version, state = pickle.load(handle)
        if version != FORMAT_VERSION:
            raise ValueError(f"{self.path}: state format {version}, this sandbox reads {FORMAT_VERSION}")
        return state

    def save(self, state: SavedState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                pickle.dump((FORMAT_VERSION, state), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
