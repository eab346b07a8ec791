"""The persister contract: where a backend keeps vrrpfw's rules for the
next boot (a saved ruleset file, firewalld's permanent configuration, ...).

A store imports nothing from :mod:`vrrpfw.backends`: it gets options,
files and a placement callback, and a backend holds one.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, List, Optional, Sequence, Set

from vrrpfw.record import field, record

from ..model import Key, VrrpRule

if TYPE_CHECKING:
    from ..judge.nextboot import BootModel


@record
class PersistPlan:
    """What persisting would change: a human-readable diff and the backend's
    own payload (new file text, a list of D-Bus calls, ...)."""

    changed: bool
    diff: str = ""
    payload: Any = None
    # Keys of the rules the plan persists (open) or removes (close), where the
    # store cannot stage a plan without applying it: dry-run predicts from them.
    keys: Set[Key] = field(default_factory=set)


class Persister(abc.ABC):
    """Where a backend keeps vrrpfw's rules for the next boot: a saved
    ruleset file, firewalld's permanent configuration, ..."""

    path: str  # shown to the admin: a file, or a description of the store
    restorer: Optional[str] = None
    note: Optional[str] = None
    # True where commit() only stages the plan in memory (saved files: the run
    # writes each file once at its end), so dry-run can stage and measure.
    stages: ClassVar[bool] = False

    def lock_paths(self) -> List[str]:
        """Files this store reads and rewrites; the run locks them from load
        to commit (:mod:`vrrpfw.persist.lock`)."""
        return []

    @abc.abstractmethod
    def load(self) -> None:
        """Read and validate; raise before anything changes."""

    @abc.abstractmethod
    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Keys of those rules that the store allows VRRP for."""

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Keys for which vrrpfw's *own* items are in the store (what close
        must remove).  Where everything vrrpfw finds is its own, that is
        simply what is persisted."""
        return self.persisted(rules)

    def runtime_only(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Keys allowed at runtime by someone else's rule that the store
        lacks: not "not managed" but missing (the next reload blocks them)."""
        return set()

    def uncertain(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Keys the store would call persisted but whose next boot it cannot
        know (persisted "uncertain"); call after ``persisted``."""
        return set()

    def boot_models(self) -> List[BootModel]:
        """The store's saved rulesets as the boot units restore them, for
        judging the next boot (:mod:`vrrpfw.persist.nextboot`); empty where
        the store judges its next boot itself (firewalld)."""
        return []

    @abc.abstractmethod
    def discover(self) -> List[VrrpRule]:
        """vrrpfw's own rules in the store."""

    @abc.abstractmethod
    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        """``open``: ensure these rules; ``close``: remove vrrpfw's for them."""

    @abc.abstractmethod
    def commit(self, plan: PersistPlan) -> None:
        """Make the plan true (atomically where the store allows)."""
