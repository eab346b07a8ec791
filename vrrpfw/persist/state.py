"""What vrrpfw added where the firewall cannot label it.

firewalld's rich rules and services carry no comment, so "remove exactly
what vrrpfw added, never an allowance that was already there" needs a
record: one JSON file, written atomically.  Each entry is one zone
allowance (a service or a rich rule) in the runtime or permanent
configuration, with the interfaces that asked for it: a zone allowance
covers every interface in the zone, so it is removed only when the last
interface that vrrpfw opened there is closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..errors import PersistFileError
from . import files

DEFAULT_STATE_FILE = "/var/lib/vrrpfw/state.json"
VERSION = 1


@dataclass
class Entry:
    layer: str  # "runtime" | "permanent"
    zone: str
    kind: str  # "service" | "rich"
    value: str
    interfaces: List[str] = field(default_factory=list)

    @property
    def ident(self) -> Tuple[str, str, str, str]:
        return (self.layer, self.zone, self.kind, self.value)


class StateFile:
    def __init__(self, path: Optional[str]) -> None:
        self.path = path or DEFAULT_STATE_FILE
        self.entries: List[Entry] = []
        self._loaded_text: Optional[str] = None

    def load(self) -> None:
        text = files.read_text(self.path)
        self._loaded_text = text
        if text is None or not text.strip():
            self.entries = []
            return
        try:
            doc: Dict[str, Any] = json.loads(text)
            self.entries = [Entry(**e) for e in doc.get("firewalld", [])]
        except (ValueError, TypeError) as e:
            raise PersistFileError(f"{self.path}: not a vrrpfw state file ({e}); move it aside") from None

    def find(self, layer: str, zone: str, kind: str, value: str) -> Optional[Entry]:
        for e in self.entries:
            if e.ident == (layer, zone, kind, value):
                return e
        return None

    def add(self, layer: str, zone: str, kind: str, value: str, iface: str) -> None:
        entry = self.find(layer, zone, kind, value)
        if entry is None:
            entry = Entry(layer, zone, kind, value, [])
            self.entries.append(entry)
        if iface not in entry.interfaces:
            entry.interfaces.append(iface)

    def release(self, layer: str, zone: str, kind: str, value: str, iface: str) -> bool:
        """Forget ``iface``; True when no interface needs the allowance any more."""
        entry = self.find(layer, zone, kind, value)
        if entry is None:
            return False
        if iface in entry.interfaces:
            entry.interfaces.remove(iface)
        if not entry.interfaces:
            self.entries.remove(entry)
            return True
        return False

    def save(self) -> None:
        doc = {"version": VERSION, "firewalld": [e.__dict__ for e in self.entries]}
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        if text != self._loaded_text:
            files.atomic_write(self.path, text)
            self._loaded_text = text
