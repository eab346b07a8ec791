"""The next boot, per run: each saved store's rulesets, as their boot units
restore them, judged for the adverts that pass now
(:mod:`vrrpfw.judge.nextboot` decides; this module reads the files).

Imports nothing from backends/: a store is any object with
``boot_models()``, a status any object with ``rule`` and ``state``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import VrrpfwError
from ..host import ifaddr
from ..host.run import run
from ..judge.netpath import PASSING
from ..judge.nextboot import BootModel, judge_boot, outcome
from ..judge.path_model import PathModel
from ..judge.read.nft import parse_devices
from ..judge.read.saved import legacy_chains, nft_chains
from ..model import Family
from ..results import Persisted, Result
from . import files

FAMILY_OF = {Family.IPV4: "ip", Family.IPV6: "ip6"}


def judge_next_boot(store: Any, statuses: Sequence[Any], result: Result, peers: Sequence[str]) -> None:
    """Judge the next boot for every rule that passes now: where the saved
    rulesets would drop it, its persisted state becomes "missing" with a
    "not persisted" warning; where they cannot be judged, "uncertain"."""
    todo = [(st, rep) for st, rep in zip(statuses, result.rules)
            if st.state in PASSING and rep.persisted not in (Persisted.SKIPPED, Persisted.ABSENT)]
    if not todo:
        return
    boots: List[BootModel] = store.boot_models()
    if not boots:
        return
    for st, rep in todo:
        r = st.rule
        local = ifaddr.primary_of(r.interface, r.family.value)
        verdict = judge_boot(boots, r, peers, local)
        where = f"VRRP {rep.direction} on {rep.interface} ({rep.group}, {r.family.value})"
        rep.persisted, note = outcome(st.state, rep.persisted, verdict, where)
        if note is not None and note not in result.warnings:
            result.warnings.append(note)


def save_text_model(label: str, text: Optional[str], family: Family, layer: str) -> BootModel:
    """An iptables-save text as iptables(-nft)-restore loads it at boot
    (``layer`` "legacy" or "nft"); None: the file does not exist."""
    if text is None:
        return BootModel(label, (family,), absent=True)
    try:
        chains = legacy_chains(text, layer, FAMILY_OF[family])
    except Exception as e:  # the parser refuses what it cannot read: say so, claim nothing
        return BootModel(label, (family,), problem=f"vrrpfw cannot read it: {type(e).__name__}")
    return BootModel(label, (family,), PathModel(chains=chains))


# The JSON of nft 1.0.x leaves out netdev chains' devices: the text listing
# names them (even a device the namespace lacks).
_NFT_SPLIT = "#vrrpfw-next-boot-chains"
# nft resolves ``iif "eth1"`` / ``type iface_index`` elements when it loads
# the file and refuses an interface that does not exist, as it would at
# boot: the namespace gets a veth of each of this host's interface names
# first (its other end named vrrpfw-nbN).  nft runs from / as nftables.service
# runs it: "./x" and "../x" includes resolve from there (the path is absolute).
_NFT_LOAD = ('cd / || exit 1; f="$1"; shift; i=0; for n in "$@"; do '
             'printf "link add %s type veth peer name vrrpfw-nb%s\\n" "$n" "$i"; i=$((i+1)); done '
             '| ip -force -batch - >/dev/null 2>&1; '
             'nft -f "$f" >/dev/null && nft -j list ruleset && echo && echo "' + _NFT_SPLIT + '" && '
             'exec nft list chains')


BOTH = (Family.IPV4, Family.IPV6)


def in_empty_netns(label: str, script: str, args: Sequence[str], stdin: Optional[str] = None,
                   quote_from: Optional[str] = None) -> Tuple[Optional[str], str]:
    """Run ``script`` (sh) in an anonymous network namespace of its own
    (``unshare --net``: an empty ruleset, as at boot, gone when the command
    ends); its stdout, or None and why not.  The tool's first error line is
    named as :func:`.restorers.complaint` names it: nft's error line (not
    its "In file included from" line), bytes of ``quote_from`` or of a file
    nft names only where the invoking user may read them."""
    if os.geteuid() != 0:
        return None, "loading it into an empty network namespace needs root"
    ran = run(["unshare", "--net", "--", "sh", "-c", script, "sh", *args], stdin=stdin, timeout=60)
    if ran.missing:
        return None, "unshare (util-linux) is not installed"
    if ran.code != 0 or ran.timed_out:
        from .restorers import complaint  # here: the restorers are not needed unless a load failed

        err = ran.err.strip() or ran.out.strip()
        why = complaint(err, quote_from) if err and quote_from is not None else f"exit {ran.code}"
        return None, f"{label} could not be loaded into an empty network namespace: {why}"
    return ran.out, ""


def host_interfaces() -> List[str]:
    """This network namespace's interface names (lo aside)."""
    try:
        return sorted(n for n in os.listdir("/sys/class/net") if n != "lo")
    except OSError:
        return []


def nft_conf_model(label: str, path: str, text: Optional[str], on_disk: bool,
                   interfaces: Optional[Sequence[str]] = None) -> BootModel:
    """An nftables ruleset file as ``nftables.service`` loads it (``nft -f
    FILE`` on an empty ruleset).  nft prints no ruleset it has not loaded
    (``nft -c`` checks and prints nothing), so the kernel loads it into an
    anonymous network namespace of its own, holding an interface of each
    name in ``interfaces`` (default: this host's), and lists it there
    (:func:`in_empty_netns`).  ``on_disk``: the text is the file's (nft
    reads the file itself, includes as at boot); else nft reads the staged
    text on stdin (includes resolve the same way, by nft's include path)."""
    if text is None:
        return BootModel(label, BOTH, absent=True)
    names = list(host_interfaces() if interfaces is None else interfaces)
    out, why = in_empty_netns("nft", _NFT_LOAD, [os.path.abspath(path) if on_disk else "-", *names],
                              stdin=None if on_disk else text, quote_from=path)
    if out is None:
        return BootModel(label, BOTH, problem=why)
    listing, _, chains = out.partition(_NFT_SPLIT)
    try:
        doc = json.loads(listing)
    except ValueError:
        return BootModel(label, BOTH, problem="nft printed no JSON ruleset")
    return BootModel(label, BOTH, PathModel(chains=nft_chains(doc, parse_devices(chains))))


UFW_INITS = ("/lib/ufw/ufw-init", "/usr/lib/ufw/ufw-init")
UFW_FILES = ("before.rules", "before6.rules", "after.rules", "after6.rules", "user.rules", "user6.rules")
_SPLIT = "#vrrpfw-next-boot-ip6"
# ufw-init on a private copy of ufw's files, then both families' tables.
_UFW_LOAD = ('"$1" --datadir "$2" start >&2 && iptables-save && echo "' + _SPLIT + '" && '
             'exec ip6tables-save')


def ufw_model(ufw_dir: str, default_file: str, staged: Dict[str, str], layer: str) -> BootModel:
    """ufw's files as ``ufw enable`` (and ufw.service at boot) loads them:
    ufw's own ufw-init, with ENABLED=yes, on a private copy of /etc/ufw and
    /etc/default/ufw (``staged``: file name -> the text this run would
    write), in an empty network namespace of its own.  Its sysctl and module
    settings are left out (they are not the firewall); an executable
    before.init / after.init (an admin's script, run at boot) is not run, so
    the next boot is then not judged."""
    label = f"ufw's files in {ufw_dir} and {default_file} (as `ufw enable` loads them)"
    init = next((p for p in UFW_INITS if os.access(p, os.X_OK)), None)
    if init is None:
        return BootModel(label, BOTH, problem="ufw-init is not installed")
    scripts = [n for n in ("before.init", "after.init") if os.access(os.path.join(ufw_dir, n), os.X_OK)]
    if scripts:
        return BootModel(label, BOTH, problem=f"{', '.join(scripts)} runs at boot and vrrpfw does not run it")
    try:
        defaults = files.read_text(os.path.realpath(default_file))
        texts = {name: staged.get(name, files.read_text(os.path.realpath(os.path.join(ufw_dir, name))))
                 for name in UFW_FILES + ("ufw.conf",)}
    except VrrpfwError as e:
        return BootModel(label, BOTH, problem=str(e))
    if defaults is None:
        return BootModel(label, BOTH, problem=f"{default_file} does not exist")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vrrpfw-ufw-") as tmp:
        etc = os.path.join(tmp, "etc", "ufw")
        os.makedirs(etc)
        os.makedirs(os.path.join(tmp, "etc", "default"))
        for name, text in texts.items():
            if text is not None:
                with open(os.path.join(etc, name), "w") as f:
                    f.write(text + ("\nENABLED=yes\n" if name == "ufw.conf" else ""))
        with open(os.path.join(tmp, "etc", "default", "ufw"), "w") as f:
            f.write(defaults + "\nIPT_SYSCTL=\nIPT_MODULES=\n")
        out, why = in_empty_netns("ufw's files", _UFW_LOAD, [init, tmp])
    if out is None:
        return BootModel(label, BOTH, problem=why)
    v4, _, v6 = out.partition(_SPLIT + "\n")
    try:
        chains = legacy_chains(v4, layer, "ip") + legacy_chains(v6, layer, "ip6")
    except Exception as e:  # the parser refuses what it cannot read: say so, claim nothing
        return BootModel(label, BOTH, problem=f"vrrpfw cannot read ufw's loaded tables: {type(e).__name__}")
    return BootModel(label, BOTH, PathModel(chains=chains))


def boot_label(path: str, restorer: Optional[str]) -> str:
    return f"{path} (restored at boot by {restorer})" if restorer else path


def unrestored(path: str, families: Sequence[Family]) -> BootModel:
    """The distribution's saved file where nothing restores it at boot
    (its restorer is not installed): the next boot loads nothing from it."""
    return BootModel(path, tuple(families), absent=True,
                     problem=f"nothing restores {path} at boot (its restore service is not installed)")

