"""A saved file as one run sees it: read once, edited by every layer, written once.

On a hybrid host ``auto`` runs two layers (legacy iptables and iptables-nft)
that both keep lines in rules.v4.  Each used to read the file, plan, and
write it back: the second write dropped the first's lines.  Now a run has
one :class:`SavedFile` per real path (:class:`FileSet`): every layer plans
on the text the previous layers staged, and the file is written once at the
end, after its restorer accepted the candidate and after a re-read showed
that nobody changed it meanwhile.  The caller holds the store's lock
(:mod:`vrrpfw.persist.lock`) from :meth:`SavedFile.load` to
:meth:`SavedFile.flush`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional

from ..errors import PersistFileError

if TYPE_CHECKING:
    from .restorers import Restorer

# The restorers (nft -c, iptables-restore --test) are imported where a file is
# validated: a run whose layers keep no saved file (firewalld) never needs them;
# the file primitives (.files: tempfile, the invoker's quoting) where a file
# is read or written: a run without saved files (--no-persist) never needs them.


class SavedFile:
    def __init__(self, path: str, default_location: bool = False) -> None:
        self.path = path
        self.real = os.path.realpath(path)
        self.default_location = default_location  # the distribution's own file: may create its directory
        self.restorers: List[Restorer] = []
        self.missing_restorers: List[str] = []
        self.original: Optional[str] = None  # as read; None while absent
        self.text: Optional[str] = None  # with the changes staged so far
        self.loaded = False
        self.prepared = False  # stale temp files removed (once per run, under the lock)
        self.validated: List[str] = []  # restorers that accepted the file as read
        self.notes: List[str] = []
        self.blocked: Optional[str] = None  # why the file could not be replaced (found by load)

    def want(self, restorer: Optional[Restorer], label: str) -> None:
        """Check this file with ``restorer`` (None: ``label`` is not installed)."""
        if restorer is None:
            if label not in self.missing_restorers:
                self.missing_restorers.append(label)
        elif restorer not in self.restorers:
            self.restorers.append(restorer)

    def load(self, validate: bool = False, locked: bool = False) -> None:
        """Read once; with ``validate``, refuse a file a restorer rejects
        (check skips it: ``nft -c -f`` over a 50,000-rule file takes 0.5 s)."""
        from . import files

        if not self.loaded:
            self.original = files.settled(lambda: files.read_text(self.real))
            self.text = self.original
            self.loaded = True
        if validate and not self.prepared:
            # A file that could not be replaced is refused before the runtime
            # changes (FileSet.check_writable; a dry run predicts that
            # refusal), not here: a run that changes nothing (the rules are
            # already open and saved) does not need to write it.  Under the
            # store's lock no other vrrpfw is writing a temp file.
            try:
                files.check_writable(self.real, len(self.original or ""))
            except PersistFileError as e:
                self.blocked = str(e)
            if locked:
                files.remove_stale_temps(self.path)
            self.prepared = True
        if validate and self.original is not None:
            from . import restorers

            for r in self.restorers:
                if r.label not in self.validated:
                    restorers.validate_file(self.path, r)
                    self.validated.append(r.label)
            for label in self.missing_restorers:
                note = f"{self.path}: {label} is not installed, so only vrrpfw's parser checked this file"
                if note not in self.notes:
                    self.notes.append(note)

    @property
    def current(self) -> str:
        if not self.loaded:
            self.load()
        return self.text or ""

    def stage(self, text: str) -> None:
        """The file's new content; written by :meth:`flush`."""
        self.text = None if text == "" and self.original is None else text

    @property
    def changed(self) -> bool:
        return self.loaded and self.text != self.original

    def revert(self) -> None:
        self.text = self.original

    def check_candidate(self) -> None:
        """Raise PersistFileError if a restorer would reject the staged text."""
        if self.changed and self.text is not None:
            from . import restorers

            for r in self.restorers:
                restorers.validate_candidate(self.real, self.text, r)

    def flush(self) -> None:
        """Write the staged text, once: the restorers must accept it, and the
        file on disk must still be what :meth:`load` read, give or take
        lines another program appended meanwhile, which are kept (see
        :func:`files.commit`).  Any other change by a writer that does not
        take vrrpfw's lock (e.g. an editor) wins: nothing is overwritten and
        the run says so."""
        if not self.changed:
            return
        from . import files

        if self.blocked is not None:
            self.revert()
            raise PersistFileError(self.blocked)
        try:
            self.check_candidate()
            written, notes = files.commit(self.path, self.original, self.text or "",
                                          create_dir=self.default_location, accept=self._accept)
        except files.Conflict:
            self.original = self.text  # vrrpfw's text is in place; the other version beside it
            raise
        except PersistFileError:
            self.revert()
            raise
        self.notes.extend(n for n in notes if n not in self.notes)
        self.original = self.text = written

    def _accept(self, text: str) -> None:
        """The restorers must accept the staged text with lines another
        program appended since the load."""
        from . import restorers

        for r in self.restorers:
            restorers.validate_candidate(self.real, text, r)


class FileSet:
    """The saved files of one run, one object per real path."""

    def __init__(self) -> None:
        self._files: Dict[str, SavedFile] = {}

    def get(self, path: str, default_location: bool = False) -> SavedFile:
        real = os.path.realpath(path)
        if real not in self._files:
            self._files[real] = SavedFile(path, default_location)
        return self._files[real]

    def all(self) -> List[SavedFile]:
        return list(self._files.values())

    def check_writable(self) -> None:
        """Raise (PersistFileError) if a file of the run could not be
        replaced (a read-only or full filesystem, no free inode, an
        immutable or append-only file or directory): called before the
        runtime changes, where a change there means the saved file changes."""
        for f in self._files.values():
            if f.blocked is not None:
                raise PersistFileError(f.blocked)

    def notes(self) -> List[str]:
        return [n for f in self._files.values() for n in f.notes]

    def flush(self, dry_run: bool = False) -> Dict[str, str]:
        """Write every changed file (dry run: only test the candidates with
        their restorers); {real path: error} for those that failed."""
        errors: Dict[str, str] = {}
        for f in self._files.values():
            try:
                f.check_candidate() if dry_run else f.flush()
            except PersistFileError as e:
                errors[f.real] = str(e)
        return errors
