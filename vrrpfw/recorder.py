"""The saved_texts() recorder: each run's saved files, their whole text
before and after, for callers that show a diff of whole files (Ansible's
diff mode).  The run reports to it; nothing about the run changes."""

from __future__ import annotations

import contextlib
import contextvars
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from vrrpfw.record import record

if TYPE_CHECKING:
    from .persist.saved import FileSet


@record(frozen=True)
class SavedText:
    """A saved file one run read and edited (or, in a dry run, would edit):
    its whole text before the run and after it (in a dry run: as the real
    run would write it); None while the file does not exist."""

    path: str
    before: Optional[str]
    after: Optional[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after


# The recorders of the saved_texts() blocks now open in this context.
_RECORDERS: contextvars.ContextVar[Tuple[List[SavedText], ...]] = contextvars.ContextVar(
    "vrrpfw_saved_texts", default=())


@contextlib.contextmanager
def saved_texts() -> Iterator[List[SavedText]]:
    """Record the saved files of every run inside the block, each with its
    text before and after the run: what a diff needs that a unified diff of
    the planned lines (``Result.diff``) cannot give, the whole file as it
    was and as it is (Ansible's diff mode).  Nothing about the run changes;
    the list fills as each run ends.  A run that raised records nothing (it
    changed nothing)::

        with vrrpfw.api.saved_texts() as files:
            vrrpfw.open(["eth1"], dry_run=True)
        [(f.path, f.changed) for f in files]
    """
    seen: List[SavedText] = []
    token = _RECORDERS.set(_RECORDERS.get() + (seen,))
    try:
        yield seen
    finally:
        _RECORDERS.reset(token)


def saved_before(files: FileSet) -> Dict[str, Optional[str]]:
    """Each loaded file's text as read, taken before the flush (which makes
    the written text the file's new original)."""
    if not _RECORDERS.get():
        return {}
    return {f.real: f.original for f in files.all() if f.loaded}


def trace_saved(files: FileSet, before: Dict[str, Optional[str]]) -> None:
    """After the flush: the text on disk now (a failed write was reverted),
    or in a dry run the text the real run would write."""
    recorders = _RECORDERS.get()
    if not recorders:
        return
    texts = [SavedText(f.path, before[f.real], f.text) for f in files.all() if f.real in before]
    for seen in recorders:
        seen.extend(texts)
