"""What vrrpfw added where the firewall cannot label it.

firewalld's rich rules and services carry no comment, so "remove exactly
what vrrpfw added, never an allowance that was already there" needs a
record: one JSON file, written atomically.  Each entry is one zone (or
policy) allowance in the runtime or permanent configuration that was
absent until vrrpfw added it, with the interfaces that asked for it: a zone
allowance covers every interface in the zone, so it is removed only when
the last interface that vrrpfw opened there is closed.

An entry is proof only while the allowance has stayed in place since
vrrpfw added it.  Once it vanished, an identical allowance that appears
later is someone else's, so :meth:`StateFile.prune` forgets entries whose
allowance is gone.  A runtime entry also carries the *generation* of
firewalld's runtime it was added in: a reload or restart rebuilds the
runtime from the permanent configuration, so what is there afterwards is
vrrpfw's only where it came back from vrrpfw's own permanent allowance.

``interfaces`` (top level) lists what ``open`` was asked for, also where
it added nothing because the admin's allowance was there: ``check``
without ``--iface`` checks them, ``close`` forgets them.  Each is an
interface and a rule selector (model.selector_text: ``224.0.0.18``,
``ff02::12``, ``peer 192.0.2.2 local 192.0.2.1 ah``).  Version 2 files
name it ``group`` and hold only IPv4 groups; a file is still written as
version 2 while that is all it holds (an older vrrpfw keeps reading it),
as version 3 with ``selector`` once it holds more, which an older vrrpfw
refuses rather than misread as a group.

An entry with ``"pending": true`` is an allowance vrrpfw was about to add
when it wrote the file: it is saved *before* the firewalld call, because a
call can time out on vrrpfw's side and still complete in firewalld.  A run
that learns the outcome (the call answered, or firewalld read again) makes
it an ordinary entry or drops it; a pending entry left by a run that could
not learn it is settled by the next run that reads firewalld
(:meth:`StateFile.prune`): there now, it is vrrpfw's (its call completed);
absent, it is forgotten.  The key is written only while true, so a file
without pending entries is byte for byte what an older vrrpfw writes; an
older vrrpfw reading a pending entry takes it for an ordinary one (kept
while the allowance is there, forgotten once it is gone), which is right
once the call completed.

The file is rewritten only if it is still what this run read (a run that
does not hold the lock must not make another's entries disappear).  A file
left holding nothing (no entry, pending or not, and no interface) by a run
that changed it is removed, by the same check, rather than rewritten empty:
``open`` then ``close`` leaves no state file where there was none.  A file
that held nothing already is left as it is (an empty file an admin or a
package put there stays), and a symlinked one is rewritten empty, never
removed (the link, and where it points, are the admin's).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from vrrpfw.record import asdict, field, fields, record

from ..errors import InputError, PersistFileError
from ..host.invoker import NOT_SHOWN, may_quote
from ..model import VRRP_PROTO, Family, parse_selector, selector_text
from . import files

DEFAULT_STATE_FILE = "/var/lib/vrrpfw/state.json"
VERSION = 3


@record
class Entry:
    layer: str  # "runtime" | "permanent"
    zone: str  # a zone, or "policy:NAME"
    kind: str  # "service" | "rich"
    value: str
    interfaces: List[str] = field(default_factory=list)
    # runtime only: firewalld's runtime generation when vrrpfw added it (see runtime_generation)
    generation: Optional[str] = None
    # about to be added, outcome not yet known (see the module's doc); written only while true
    pending: bool = False

    @property
    def ident(self) -> Tuple[str, str, str, str]:
        return (self.layer, self.zone, self.kind, self.value)

    def describe(self) -> str:
        where = (f"policy {self.zone[len('policy:'):]}" if self.zone.startswith("policy:")
                 else f"zone {self.zone}")
        return f"{self.kind} {self.value} in {where} ({self.layer})"


_FIELDS = {f.name for f in fields(Entry)}


class StateFile:
    def __init__(self, path: Optional[str]) -> None:
        self.path = path or DEFAULT_STATE_FILE
        self.default_location = path is None  # /var/lib/vrrpfw is created on first use
        self.entries: List[Entry] = []
        self.asked: List[Tuple[str, str]] = []  # (interface, selector) that open was asked for
        self.generation: Optional[str] = None  # the runtime generation now; stamped on new runtime entries
        self._loaded_text: Optional[str] = None
        self._loaded_nothing = True  # the file read held no entry and no interface (or was absent)

    def load(self) -> None:
        text = files.read_text(self.path)
        self._loaded_text = text
        self.entries, self.asked = [], []
        self._loaded_nothing = True
        if text is None or not text.strip():
            return
        try:
            doc: Dict[str, Any] = json.loads(text)
            if not isinstance(doc, dict) or not isinstance(doc.get("version", 1), int) \
                    or doc.get("version", 1) > VERSION:
                raise ValueError(f"unknown version {doc.get('version') if isinstance(doc, dict) else doc!r}")
            self.entries = [Entry(**{k: v for k, v in e.items() if k in _FIELDS})
                            for e in doc.get("firewalld", [])]
            if any(not isinstance(e.pending, bool) for e in self.entries):
                raise ValueError("pending is not true or false")
            self.asked = [(str(a["interface"]), _selector(a)) for a in doc.get("interfaces", [])]
            self._loaded_nothing = not self.entries and not self.asked
        except (ValueError, TypeError, KeyError, AttributeError, InputError, RecursionError) as e:
            # RecursionError: json nests without limit ('[' * 200000 is not a state file)
            raise PersistFileError(f"{_where(self.path, e)}: not a vrrpfw state file "
                                   f"({_reason(self.path, e)}); move it aside") from None

    def find(self, layer: str, zone: str, kind: str, value: str) -> Optional[Entry]:
        for e in self.entries:
            if e.ident == (layer, zone, kind, value):
                return e
        return None

    def add(self, layer: str, zone: str, kind: str, value: str, iface: str) -> None:
        """Record ``iface`` on the allowance; a new entry means vrrpfw has
        just added an allowance that was absent."""
        entry = self.find(layer, zone, kind, value)
        if entry is None:
            entry = Entry(layer, zone, kind, value, [],
                          self.generation if layer == "runtime" else None)
            self.entries.append(entry)
        if iface not in entry.interfaces:
            entry.interfaces.append(iface)

    # -- an add whose outcome is not known yet --------------------------------
    def add_pending(self, layer: str, zone: str, kind: str, value: str, iface: str) -> Optional[Entry]:
        """Record, before the call, an allowance vrrpfw is about to add for
        ``iface``.  Returns the new pending entry; None where an entry is
        there already (vrrpfw's own: the call only makes sure of it), which
        is then only shared with ``iface``."""
        if self.find(layer, zone, kind, value) is not None:
            self.add(layer, zone, kind, value, iface)
            return None
        self.add(layer, zone, kind, value, iface)
        entry = self.find(layer, zone, kind, value)
        assert entry is not None
        entry.pending = True
        return entry

    @staticmethod
    def confirm(entry: Entry) -> None:
        """The pending allowance is in firewalld: vrrpfw's, like any entry."""
        entry.pending = False

    def drop(self, entry: Entry) -> None:
        """The pending allowance is not in firewalld: the call did not complete."""
        if entry in self.entries:
            self.entries.remove(entry)

    def pending(self) -> List[Entry]:
        return [e for e in self.entries if e.pending]

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

    def others(self, layer: str, zone: str, kind: str, value: str, closing: List[str]) -> List[str]:
        """Interfaces other than ``closing`` that still need this allowance."""
        entry = self.find(layer, zone, kind, value)
        return [i for i in entry.interfaces if i not in closing] if entry is not None else []

    # -- what open was asked for ------------------------------------------
    def ask(self, iface: str, selector: str) -> None:
        if (iface, selector) not in self.asked:
            self.asked.append((iface, selector))

    def forget(self, iface: str, selector: str) -> None:
        if (iface, selector) in self.asked:
            self.asked.remove((iface, selector))

    # -- proof of ownership -------------------------------------------------
    def prune(self, present: Callable[[Entry], bool]) -> List[str]:
        """Forget every entry that no longer proves ownership; return one
        note per entry forgotten.  ``present(entry)``: is the allowance in
        firewalld now (in the entry's layer)?"""
        notes: List[str] = []
        for e in list(self.entries):
            reloaded = e.layer == "runtime" and self.generation is not None \
                and e.generation != self.generation
            if e.pending:  # an earlier run could not learn whether its call completed
                earlier = f"an earlier vrrpfw run could not learn whether firewalld added {e.describe()}"
                if not present(e):
                    self.entries.remove(e)
                    notes.append(f"{earlier}: it is not there, so that call did not complete; "
                                 "vrrpfw forgets it")
                    continue
                e.pending = False
                if not reloaded:
                    notes.append(f"{earlier}: it is there, so that call completed; it is vrrpfw's "
                                 "(close removes it)")
            if reloaded:
                twin = self.find("permanent", e.zone, e.kind, e.value)
                there = present(e)
                if there and twin is not None and present(twin):
                    e.generation = self.generation  # back from vrrpfw's own permanent allowance
                    continue
                self.entries.remove(e)
                if there:
                    notes.append(f"firewalld was reloaded or restarted since vrrpfw added {e.describe()}: "
                                 "the one there now is not provably vrrpfw's (vrrpfw did not persist it), "
                                 "so vrrpfw leaves it in place and forgets it")
                else:
                    notes.append(f"firewalld was reloaded or restarted since vrrpfw added {e.describe()}; "
                                 "it is gone and vrrpfw forgets it")
            elif not present(e):
                self.entries.remove(e)
                notes.append(f"vrrpfw's {e.describe()} was removed by someone since vrrpfw added it; "
                             "vrrpfw forgets it (an identical allowance added later is not vrrpfw's)")
        return notes

    # -- writing ------------------------------------------------------------
    def text(self) -> str:
        if all(_v2_group(sel) for _i, sel in self.asked):
            asked = [{"interface": i, "group": g} for i, g in self.asked]
            version = 2
        else:
            asked = [{"interface": i, "selector": g} for i, g in self.asked]
            version = VERSION
        doc = {"version": version, "firewalld": [_entry_doc(e) for e in self.entries], "interfaces": asked}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def unchanged(self) -> bool:
        """:meth:`save` would write nothing: the text is as read, or nothing
        is recorded and the file held nothing.  Decided from this run's
        memory alone, so a caller may skip the lock it would take for it."""
        if self.text() == self._loaded_text:
            return True
        return not self.entries and not self.asked and self._loaded_nothing

    def save(self) -> None:
        """Atomically replace the file, if anything changed and if it is
        still what this run read; otherwise refuse (PersistFileError) rather
        than drop what another run recorded.  An absent file with nothing
        to record stays absent: ``check`` on a firewalld host must not leave
        an empty state file behind.  A file this run emptied is removed (see
        the module's doc), under the same check."""
        text = self.text()
        if text == self._loaded_text:
            return
        empty = not self.entries and not self.asked
        if empty and self._loaded_nothing:
            return  # absent, blank, or holding nothing already: nothing to record, nothing to change
        on_disk = files.read_text(self.path)
        if on_disk != self._loaded_text:
            raise PersistFileError(
                f"{self.path}: changed by someone else since vrrpfw read it (another vrrpfw run without "
                "the lock?); not overwritten, so nothing it records is lost; run vrrpfw again")
        if empty and files.remove_if_unchanged(self.path, self._loaded_text):
            self._loaded_text, self._loaded_nothing = None, True
            return
        files.atomic_write(self.path, text, create_dir=self.default_location)
        self._loaded_text = text
        self._loaded_nothing = empty


def _where(path: str, e: Exception) -> str:
    return f"{path}:{e.lineno}" if isinstance(e, json.JSONDecodeError) else path


def _reason(path: str, e: Exception) -> str:
    """Why the file is not a state file; json's own reasons quote nothing,
    the others may quote a value, shown only to a user who may read it."""
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg}, column {e.colno}"
    return str(e) if may_quote(path) else f"a value vrrpfw cannot use, {NOT_SHOWN}"


def _entry_doc(e: Entry) -> Dict[str, Any]:
    """One entry as JSON; ``pending`` only while true (see the module's doc)."""
    doc = asdict(e)
    if not e.pending:
        del doc["pending"]
    return doc


def _selector(item: Dict[str, Any]) -> str:
    """One asked rule's selector, normalised: ``selector`` (version 3) or
    ``group`` (version 2, an IPv4 group); InputError if it is neither."""
    text = item["selector"] if "selector" in item else item["group"]
    if not isinstance(text, str):
        raise ValueError(f"bad selector {text!r}")
    return selector_text(*parse_selector(text))


def _v2_group(selector: str) -> bool:
    """Can a version 2 reader take this selector for a group?  Only an IPv4
    multicast group with nothing else (what vrrpfw opened before IPv6)."""
    group, local, proto, strict = parse_selector(selector)
    return local is None and proto == VRRP_PROTO and not strict and Family.of(group) is Family.IPV4
