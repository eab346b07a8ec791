"""ufw in a network namespace, on private copies of its configuration.

ufw keeps its state in files: ``/etc/ufw`` (ufw.conf's ENABLED, the
before/after/user rules files, which ``ufw enable``, ``ufw allow`` and
vrrpfw rewrite) and ``/etc/default/ufw`` (default policies, IPV6); it
calls plain ``iptables``/``iptables-restore``, which Debian's alternatives
point at iptables-nft.  Every command of a :class:`UfwHost` runs as
``unshare -m`` (a private mount namespace, propagation private, so nothing
leaks to the host) that bind-mounts a per-test copy of those files over
the real paths, then ``ip netns exec`` into the host namespace.  The real
files are only ever read (to copy them) and are checked byte for byte after
the tests (:func:`fingerprint`).  For the legacy variant a copy of
``/etc/alternatives`` points iptables and ip6tables (and their -restore
and -save) at the legacy tools, as ``update-alternatives --set`` would.

ufw's own lock (``/run/ufw.lock``) is shared with the host; it only
serialises ufw runs.  ufw-init applies ``/etc/ufw/sysctl.conf``: every
setting in it is per network namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple

from lockdirs import private_lock_dir
from netns import Netns, Pair, pair

from vrrpfw.prove.netns import Namespace

REAL_UFW = "/etc/ufw"
REAL_DEFAULT = "/etc/default/ufw"
ALTERNATIVES = "/etc/alternatives"
LEGACY_LINKS = ("iptables", "iptables-restore", "iptables-save",
                "ip6tables", "ip6tables-restore", "ip6tables-save")


def fingerprint() -> Dict[str, str]:
    """sha256 of every file under the real /etc/ufw and of /etc/default/ufw
    (and each file's mode), to prove the tests left them alone."""
    out: Dict[str, str] = {}
    paths = [REAL_DEFAULT]
    for top, _, names in os.walk(REAL_UFW):
        paths += [os.path.join(top, n) for n in names]
    for path in sorted(paths):
        with open(path, "rb") as f:
            out[path] = f"{hashlib.sha256(f.read()).hexdigest()} {oct(os.stat(path).st_mode)}"
    return out


@dataclass
class PrivateEtcNamespace(Namespace):
    """A :class:`Namespace` whose commands see ``mounts`` (source, target)
    bind-mounted in a private mount namespace."""

    mounts: List[Tuple[str, str]] = field(default_factory=list)

    def command(self, argv):  # type: ignore[no-untyped-def]
        binds = " && ".join(f"mount --bind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in self.mounts)
        script = f"{binds} && exec ip netns exec {shlex.quote(self.name)} \"$@\""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]


@dataclass
class UfwHost(Netns):
    """The tests' :class:`Netns` for a namespace where ufw runs on private files."""

    root: str = ""  # the test's directory holding etc-ufw, default-ufw (and alternatives)
    mounts: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def ns(self) -> Namespace:
        return PrivateEtcNamespace(self.name, dict(self.env or {}), list(self.mounts))

    @property
    def etc_ufw(self) -> str:
        """The private copy of /etc/ufw (what ufw and vrrpfw see as /etc/ufw)."""
        return os.path.join(self.root, "etc-ufw")

    def rules_file(self, name: str = "before.rules") -> str:
        return os.path.join(self.etc_ufw, name)

    def read(self, name: str = "before.rules") -> bytes:
        with open(self.rules_file(name), "rb") as f:
            return f.read()

    def ufw(self, *args: str) -> str:
        return self.run("ufw", *args).stdout

    def save(self, family: str = "ip") -> str:
        """The ufw variant's filter table as -S lines."""
        tool = ("ip6tables" if family == "ip6" else "iptables") + "-" + self.variant
        return self.run(tool, "-w", "-S").stdout

    @property
    def variant(self) -> str:
        return "legacy" if any(dst == ALTERNATIVES for _, dst in self.mounts) else "nft"


def private_copies(root: str, variant: str) -> List[Tuple[str, str]]:
    """Copy ufw's files (and, for legacy, the alternatives) under ``root``;
    the (copy, real path) bind mounts."""
    etc = os.path.join(root, "etc-ufw")
    shutil.copytree(REAL_UFW, etc, symlinks=True)
    default = os.path.join(root, "default-ufw")
    shutil.copy2(REAL_DEFAULT, default)
    mounts = [(etc, REAL_UFW), (default, REAL_DEFAULT)]
    if variant == "legacy":
        alt = os.path.join(root, "alternatives")
        shutil.copytree(ALTERNATIVES, alt, symlinks=True)
        for name in LEGACY_LINKS:
            link = os.path.join(alt, name)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(f"/usr/sbin/{name.replace('tables', 'tables-legacy', 1)}", link)
        mounts.append((alt, ALTERNATIVES))
    return mounts


@contextlib.contextmanager
def ufw_pair(root: str, variant: str = "nft", prefix: str = "vufw") -> Iterator[Pair]:
    """A :func:`netns.pair` whose host runs ufw (not yet enabled) on private
    copies of its files under ``root``; the namespaces go on the way out."""
    mounts = private_copies(root, variant)
    # vrrpfw locks a saved file by its real path, and every test's copy is
    # /etc/ufw/before.rules inside its mount namespace: a lock directory per
    # test keeps parallel tests (pytest-xdist) from waiting on each other.
    env = {"VRRPFW_LOCK_DIR": private_lock_dir(root)}
    with pair(prefix) as p:
        host = UfwHost(p.host.name, env, root=root, mounts=mounts)
        yield Pair(host, p.peer, p.host_if, p.peer_if)
