"""``vrrpfw prove``: replay this host's packet filter in throw-away namespaces
and send real adverts through it.  :mod:`.proof` runs a proof,
:mod:`.snapshot` reads what a replica copies from the host,
:mod:`.addresses` plans its addresses, :mod:`.replica` (with
:mod:`.replica_ifaces`) builds it in namespaces, :mod:`.traffic` sends and
counts adverts (:mod:`.adverts` is its children's half), :mod:`.netns` makes
and removes the throw-away namespaces.

``vrrpfw.prove.prove`` (the documented entry point) is :func:`.proof.prove`,
loaded on first use (PEP 562): importing :mod:`.netns` or :mod:`.traffic`
alone (the test harness, ``python -m vrrpfw.prove.traffic``) does not import
the replica.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at runtime __getattr__ loads it
    from .proof import prove

__all__ = ["prove"]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from . import proof

        return getattr(proof, name)
