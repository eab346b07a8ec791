"""A private vrrpfw lock directory per test (VRRPFW_LOCK_DIR), inside the
session's (tests/conftest.py): vrrpfw refuses one below a directory others
can write to, as pytest's tmp_path is (/tmp)."""

from __future__ import annotations

import hashlib
import os


def private_lock_dir(key: object) -> str:
    """A lock directory of its own for ``key`` (a test's tmp_path or root),
    which vrrpfw creates (0700) on first use; removed with the session's."""
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:16]
    return os.path.join(os.environ["VRRPFW_LOCK_DIR"], f"t-{digest}")
