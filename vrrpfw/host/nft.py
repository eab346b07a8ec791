"""``nft -j``: the one reader of nf_tables' JSON, for the host scan, the
judge's kernel reader and firewalld's owner check alike.

One error convention (the process itself runs through :func:`.run.run`):
nft that could not start is the OSError (FileNotFoundError: not
installed); nft refusing (not root) is :class:`NftDenied` (a
PermissionError); nft that timed out or failed is :class:`NftError` (a
RuntimeError); output that is not JSON is ValueError.  Both typed errors carry the :class:`.run.Ran`, so a
caller may word its own message from nft's stderr.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional

from .run import Ran, run
from .which import which


class NftError(RuntimeError):
    """nft did not finish in time, or failed."""

    def __init__(self, message: str, ran: Ran) -> None:
        super().__init__(message)
        self.ran = ran


class NftDenied(PermissionError):
    """nft refused: reading or writing nf_tables needs root or CAP_NET_ADMIN."""

    def __init__(self, message: str, ran: Ran) -> None:
        super().__init__(message)
        self.ran = ran


def denied(err: str) -> bool:
    return "Operation not permitted" in err or "must be root" in err


def nft_json(args: List[str], timeout: float = 60, nft: Optional[str] = None) -> Any:
    """``nft -j ARGS`` parsed (``nft``: the binary, looked up on PATH where
    not given)."""
    nft = nft or which("nft")
    if nft is None:
        raise FileNotFoundError("nft is not installed")
    return nft_parsed(run([nft, "-j", *args], timeout=timeout), args)


def nft_parsed(ran: Ran, args: List[str]) -> Any:
    """:func:`nft_json`'s answer from ``nft -j ARGS`` as it ran (also
    started early, see :class:`.run.Started`): the same errors."""
    if isinstance(ran.exc, OSError):
        raise ran.exc
    if ran.exc is not None:
        raise NftError(str(ran.exc), ran)
    if ran.code != 0:
        err = ran.err.strip()
        if denied(err):
            raise NftDenied(err.splitlines()[0] if err else "permission denied", ran)
        raise NftError(f"nft {' '.join(args[:3])} failed: {err[:200]}", ran)
    return json.loads(ran.out or "{}")
