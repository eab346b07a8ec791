"""Ask the program that restores a saved file at boot whether it accepts it.

vrrpfw's own parsers only know the structure they edit; the restorer knows
every match, target and syntax rule of its version.  A file it rejects is
a host without a firewall after the next boot, so an existing file it
rejects is refused before vrrpfw changes anything, and a candidate it
rejects never replaces the old file.

- iptables-save files: ``iptables-legacy-restore --test`` or
  ``iptables-nft-restore --test`` (``ip6tables-...`` for IPv6 files) (the variant of the layer that restores
  the file), in the caller's network namespace: ipsets a rule names exist
  there, as they do at boot.  ``--test`` commits nothing.
- nftables files: ``nft -c -f``, run from / as nftables.service runs it
  (so ``include "./x"`` resolves as at boot).
Where the restorer is not installed the check is skipped and said so.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional

from vrrpfw.record import record

from ..errors import PersistFileError
from ..host.invoker import NOT_SHOWN, may_quote
from ..host.run import run
from ..host.which import which
from . import files

TIMEOUT = 120


@record(frozen=True)
class Restorer:
    """One program that loads a saved file, and how to test a file with it."""

    label: str  # iptables-legacy-restore | iptables-nft-restore | nft
    argv: List[str]  # the file path is appended

    def check(self, path: str, shown_as: Optional[str] = None) -> Optional[str]:
        """None if the restorer accepts ``path``, else its complaint with
        the line number it names.  Run from / (as nftables.service runs
        ``nft -f``, so ``include "./x"`` resolves as at boot), and with a
        private xtables lock file: ``iptables-restore --test`` commits
        nothing but still takes the lock, and a busy lock (Docker,
        kube-proxy) must not read as "the file does not load".

        The restorers echo the offending line (nft) or a word of it
        (iptables-restore: ``Couldn't load match `WORD'``): where the
        invoking user could not read the file (``shown_as``: the real file
        a candidate stands for), or a file nft names in its complaint,
        only the line number is kept."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="vrrpfw-restorer-") as scratch:
            env = {**os.environ, "XTABLES_LOCKFILE": os.path.join(scratch, "xtables.lock")}
            ran = run(self.argv + [os.path.abspath(path)], timeout=TIMEOUT, env=env, cwd="/",
                      errors="replace")
        if ran.timed_out:
            return f"{self.label} did not finish within {TIMEOUT}s"
        if isinstance(ran.exc, OSError):
            return f"cannot run {self.label}: {ran.exc.strerror}"
        if ran.code == 0:
            return None
        return complaint(ran.err or ran.out, path, shown_as)


def complaint(text: str, path: str, shown_as: Optional[str] = None) -> str:
    """A restorer's complaint about ``path`` in one line: its error line
    (nft's ``FILE:LINE:COLS: Error: ...``, not the "In file included from"
    line before it), or, where the invoking user could not read ``path``
    (``shown_as``: the real file it stands for) or a file nft names, only
    the file and line number."""
    first = _first_complaint(text)
    me = os.path.abspath(path)
    named = [shown_as if shown_as and p == me else p for p in _named_files(text)]
    if all(may_quote(p) for p in [shown_as or path] + named):
        return first
    where = re.search(r"(?:Error occurred at line|line):? (\d+)", text)
    at = re.search(r"^(\S+?):(\d+):[-\d:]*:? Error:", text, re.M)
    line = f"{at.group(1)}:{at.group(2)}" if at else f"line {where.group(1)}" if where else "a line"
    return f"{line}: refused {NOT_SHOWN}"


def _first_complaint(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    where = re.search(r"(?:Error occurred at line|line):? (\d+)", text)
    msg = next((line for line in lines if "Error:" in line), lines[0])
    for noise in ("Try `", "iptables-restore: ", "iptables-nft-restore: "):
        if msg.startswith(noise) and len(lines) > 1:
            msg = lines[1]
    return f"line {where.group(1)}: {msg}" if where and f"line {where.group(1)}" not in msg else msg


def _named_files(text: str) -> List[str]:
    """Files nft names in its complaint (``FILE:LINE:COLS: Error:``, ``In
    file included from FILE:LINE``), as paths from / (where it runs)."""
    found = re.findall(r"^(?:In file included from )?(\S+?):\d+:[-\d:]*:?(?: Error:|$)", text, re.M)
    return [os.path.join("/", f) for f in found]


def _binary(*names: str) -> Optional[str]:
    for name in names:
        found = which(name)
        if found:
            return found
    return None


def iptables(variant: str, family: str = "ip") -> Optional[Restorer]:
    """The ``legacy`` or ``nft`` iptables-restore (``family`` "ip6":
    ip6tables-restore, for rules.v6), or None if absent."""
    label = f"{'ip6tables' if family == 'ip6' else 'iptables'}-{variant}-restore"
    found = _binary(label)
    if found is None:
        return None
    return Restorer(label, [found, "--test", "--wait=5"])


def nft() -> Optional[Restorer]:
    found = _binary("nft")
    return Restorer("nft -c -f", [found, "-c", "-f"]) if found else None


def validate_file(path: str, restorer: Restorer) -> None:
    """Raise PersistFileError (file:line) if the restorer rejects the file
    as it is."""
    err = restorer.check(path)
    if err:
        raise PersistFileError(f"{path} does not load with {restorer.label} ({err}); "
                               "vrrpfw leaves it untouched")


def validate_candidate(real: str, text: str, restorer: Optional[Restorer]) -> None:
    """Raise PersistFileError if the restorer would reject ``text`` as the
    new content of ``real``; tested as a temporary file beside it."""
    if restorer is None:
        return
    tmp = files.write_temp(real, text)
    try:
        err = restorer.check(tmp, shown_as=real)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    if err:
        raise PersistFileError(f"{real}: with vrrpfw's lines it would not load with {restorer.label} "
                               f"({err}); left untouched")
