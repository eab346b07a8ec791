"""The ufw backend against Debian's real ufw, running in a network namespace
on private copies of /etc/ufw and /etc/default/ufw (tests/ufwharness.py),
on both iptables variants ufw can run on, with real adverts.

What an admin relies on: ufw enabled with its default deny incoming blocks
adverts; ``vrrpfw open --backend ufw`` (and ``auto``) lets them in without
a ``ufw reload``; ``ufw reload`` and ``ufw disable; ufw enable`` keep them
arriving, because vrrpfw's lines are in before.rules (before6.rules for
IPv6); ``close`` blocks them again and gives every file back byte for byte.
Every shape (unicast peers with --src, AH, --strict, several interfaces,
deny outgoing) goes through ufw's chains; errors change nothing.  After the
module, the real /etc/ufw and /etc/default/ufw are byte-identical to before.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Iterator, Tuple

import pytest
from netns import HOST_ADDR, Pair, add_ipv6, inbound, ns_names, outbound
from ufwharness import UfwHost, fingerprint, ufw_pair

from vrrpfw.prove import netns as _netns
from vrrpfw.prove.traffic import exchange

pytestmark = [pytest.mark.integration, pytest.mark.needs("ufw", "unshare", "iptables-nft")]

PREFIX = "vufw"
HOST4, PEER4 = HOST_ADDR.split("/")[0], "192.0.2.2"


@pytest.fixture(scope="module", autouse=True)
def real_files_untouched() -> Iterator[None]:
    """The host's own ufw files, before and after every test of the module."""
    before = fingerprint()
    yield
    assert fingerprint() == before, "a test changed the real /etc/ufw or /etc/default/ufw"
    mine = tuple(f"{PREFIX}{side}{os.getpid() % 100000}-" for side in "hp")  # netns.unique's names
    assert not [n for n in ns_names() if n.startswith(mine)], "namespaces left behind"


def vrrpfw(h: UfwHost, *args: str) -> Tuple[int, Dict[str, Any], str]:
    """vrrpfw in the host namespace, seeing the private /etc/ufw (its
    default saved files are the test's copies), with --json."""
    proc = h.run(sys.executable, "-m", "vrrpfw", *args, "--json", check=False, timeout=180)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError:
        raise AssertionError(f"no JSON from vrrpfw {args}: {proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, doc, proc.stderr


def plain(h: UfwHost, *args: str) -> Tuple[int, str, str]:
    proc = h.run(sys.executable, "-m", "vrrpfw", *args, check=False, timeout=180)
    return proc.returncode, proc.stdout, proc.stderr


def rules_only(save: str) -> str:
    return "\n".join(sorted(line for line in save.splitlines() if line.startswith("-A")))


def enabled(p: Pair) -> UfwHost:
    h = p.host
    assert isinstance(h, UfwHost)
    out = h.ufw("--force", "enable")
    assert "active" in out, out
    return h


def adverts6(p: Pair, count: int = 20) -> Dict[str, int]:
    return exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, count, "ff02::12").to_dict()


def delivered(got: Dict[str, int], count: int = 20) -> bool:
    return got["wire"] == count and got["delivered"] == count


def blocked(got: Dict[str, int], count: int = 20) -> bool:
    return got["wire"] == count and got["delivered"] == 0


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_open_survives_reload_and_restart_close_gives_everything_back(tmp_path, variant):
    with ufw_pair(str(tmp_path), variant, PREFIX) as p:
        h = enabled(p)
        assert blocked(inbound(p)), "ufw's default deny incoming must block adverts first"
        files = {name: h.read(name) for name in ("before.rules", "before6.rules", "user.rules")}
        runtime = rules_only(h.save())

        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--backend", "ufw")
        assert rc == 0, (doc, err)
        assert doc["backend"] == "ufw" and doc["changed"] is True
        rin = next(r for r in doc["rules"] if r["direction"] == "in")
        assert (rin["runtime"], rin["persisted"]) == ("allowed", "present")
        assert delivered(inbound(p)), "open must let adverts in at once, without a ufw reload"
        text = h.read().decode()
        line = (f"-A ufw-before-input -d 224.0.0.18/32 -i {p.host_if} -p 112 -m comment --comment vrrpfw "
                "-j ACCEPT")
        assert line in text.splitlines()
        assert h.read("before6.rules") == files["before6.rules"]  # IPv4 rules only
        tool = "iptables-nft" if variant == "nft" else "iptables-legacy"
        assert any(c.startswith(f"{tool} -I ufw-before-input 1 ") for c in doc["planned"]), doc["planned"]

        # idempotent: nothing changes, exit 0, the file keeps its bytes
        before_second = h.read()
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--backend", "auto")
        assert rc == 0 and doc["backend"] == "ufw" and doc["changed"] is False, (doc, err)
        assert h.read() == before_second

        h.ufw("reload")
        assert delivered(inbound(p)), "ufw reload must keep vrrpfw's lines (they are in before.rules)"
        h.ufw("disable")
        h.ufw("--force", "enable")
        assert delivered(inbound(p)), "ufw disable; ufw enable must keep them too"
        rc, doc, err = vrrpfw(h, "check", "--iface", p.host_if)
        assert rc == 0 and doc["backend"] == "ufw", (doc, err)

        rc, doc, err = vrrpfw(h, "close", "--iface", p.host_if)
        assert rc == 0 and doc["changed"] is True, (doc, err)
        assert blocked(inbound(p))
        assert {name: h.read(name) for name in files} == files
        assert rules_only(h.save()) == runtime
        rc, doc, err = vrrpfw(h, "close", "--iface", p.host_if)
        assert rc == 0 and doc["changed"] is False, (doc, err)
        h.ufw("reload")
        assert blocked(inbound(p)), "closed rules must not come back at the next reload"


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_ipv6_goes_to_before6_rules(tmp_path, variant):
    with ufw_pair(str(tmp_path), variant, PREFIX) as p:
        add_ipv6(p)
        h = enabled(p)
        assert blocked(adverts6(p))
        files = {name: h.read(name) for name in ("before.rules", "before6.rules")}
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--family", "ipv6")
        assert rc == 0 and doc["backend"] == "ufw", (doc, err)
        assert delivered(adverts6(p))
        six = h.read("before6.rules").decode().splitlines()
        assert f"-A ufw6-before-input -d ff02::12/128 -i {p.host_if} -p 112 -m comment --comment vrrpfw " \
               "-j ACCEPT" in six
        assert h.read("before.rules") == files["before.rules"]
        h.ufw("reload")
        assert delivered(adverts6(p))
        rc, doc, err = vrrpfw(h, "close", "--iface", p.host_if, "--family", "ipv6")
        assert rc == 0, (doc, err)
        assert blocked(adverts6(p))
        assert {name: h.read(name) for name in files} == files


def second_link(p: Pair) -> Tuple[str, str]:
    """Another veth between host and peer, on 198.51.100.0/24 (TEST-NET-2)."""
    hif, pif = _netns.unique("vh"), _netns.unique("vp")
    _netns.veth(p.host.ns, hif, p.peer.ns, pif)
    _netns.add_addresses(p.host.ns, hif, ["198.51.100.1/24"])
    _netns.add_addresses(p.peer.ns, pif, ["198.51.100.2/24"])
    for side, name in ((p.host, hif), (p.peer, pif)):
        _netns.link_up(side.ns, name)
    for side, name in ((p.host, hif), (p.peer, pif)):
        _netns.wait_operstate_up(side.ns, name)
    return hif, pif


def test_every_shape_goes_through_ufws_chains(tmp_path):
    """Unicast with --src, AH, --strict (TTL 64 stays out), two interfaces,
    and ufw's deny outgoing (the before-output chain), one run each, all
    surviving a ufw reload; close gives the files back."""
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        hif2, pif2 = second_link(p)
        h = enabled(p)
        h.ufw("default", "deny", "outgoing")
        files = {name: h.read(name) for name in ("before.rules", "before6.rules")}

        def uni():  # unicast from the peer to the host's address
            return exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 20, HOST4).to_dict()

        def ah(iface=p.host_if, piface=p.peer_if):
            return exchange(p.peer.ns, piface, p.host.ns, iface, 20, proto=51).to_dict()

        def ttl64():
            return exchange(p.peer.ns, pif2, p.host.ns, hif2, 20, ttl=64).to_dict()

        def second():
            return exchange(p.peer.ns, pif2, p.host.ns, hif2, 20).to_dict()

        assert blocked(uni()) and blocked(ah()) and blocked(second())
        out = outbound(p)
        assert out["wire"] == 0, "deny outgoing must keep adverts off the wire first"

        runs = [["--iface", p.host_if, "--peer", PEER4, "--src", HOST4],
                ["--iface", p.host_if, "--ah"],
                ["--iface", hif2, "--strict"],
                ["--iface", p.host_if]]
        for args in runs:
            rc, doc, err = vrrpfw(h, "open", *args)
            assert rc == 0 and doc["backend"] == "ufw", (args, doc, err)
        text = h.read().decode()
        assert f"-s {PEER4}/32 -d {HOST4}/32 -i {p.host_if} -p 112" in text
        assert f"-d 224.0.0.18/32 -i {p.host_if} -p 51" in text
        assert f"-i {hif2} -p 112 -m ttl --ttl-eq 255" in text
        assert f"-A ufw-before-output -d 224.0.0.18/32 -o {p.host_if} -p 112" in text
        h.ufw("reload")
        assert delivered(uni()) and delivered(ah()) and delivered(second())
        assert blocked(ttl64()), "--strict lets only TTL 255 in"
        assert delivered(outbound(p))

        rc, doc, err = vrrpfw(h, "close")
        assert rc == 0 and doc["changed"] is True, (doc, err)
        assert {name: h.read(name) for name in files} == files
        h.ufw("reload")
        assert blocked(ah()) and blocked(second())


def test_disabled_ufw_is_not_picked_and_named_backend_is_exit_3(tmp_path):
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        h = p.host
        assert isinstance(h, UfwHost)
        rc, out, err = plain(h, "open", "--iface", p.host_if, "--backend", "ufw")
        assert rc == 3 and out == "" and len(err.strip().splitlines()) == 1, err
        assert "ENABLED=no" in err and "Traceback" not in err
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--dry-run")
        assert rc == 0 and doc["backend"] != "ufw", (doc, err)  # nothing filters in a bare namespace


def test_missing_or_bad_before_rules_is_exit_3_and_changes_nothing(tmp_path):
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        h = enabled(p)
        runtime = rules_only(h.save())
        good = h.read()
        path = h.rules_file()
        with open(path, "wb") as f:
            f.write(good.replace(b"COMMIT\n", b"COMMIT \n"))
        rc, out, err = plain(h, "open", "--iface", p.host_if)
        assert rc == 3 and len(err.strip().splitlines()) == 1 and "/etc/ufw/before.rules:" in err, err
        assert rules_only(h.save()) == runtime and blocked(inbound(p))
        # a rule ufw's restorer (iptables-nft-restore --noflush) rejects, though vrrpfw's parser takes it
        # (its --test does not look for a jump's chain: an unknown match it does refuse)
        with open(path, "wb") as f:
            f.write(good.replace(b"COMMIT\n", b"-A ufw-before-input -m no-such-match -j ACCEPT\nCOMMIT\n"))
        rc, out, err = plain(h, "open", "--iface", p.host_if)
        assert rc == 3 and "iptables-nft-restore" in err, err
        assert rules_only(h.save()) == runtime
        os.unlink(path)
        rc, out, err = plain(h, "open", "--iface", p.host_if)
        assert rc == 3 and "does not exist" in err and "never creates" in err, err
        assert not os.path.exists(path)
        assert rules_only(h.save()) == runtime and blocked(inbound(p))
        with open(path, "wb") as f:
            f.write(good)


def test_no_persist_persist_file_and_dry_run(tmp_path):
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        h = enabled(p)
        good = h.read()
        runtime = rules_only(h.save())
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--dry-run")
        assert rc == 0 and doc["changed"] is True and doc["backend"] == "ufw", (doc, err)
        assert next(r for r in doc["rules"] if r["direction"] == "in")["runtime"] == "allowed"
        assert h.read() == good and rules_only(h.save()) == runtime
        # a runtime-only rule of the admin's in ufw's chains: a `ufw reload` would drop it
        h.run("iptables-nft", "-w", "-A", "ufw-user-input", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT")
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--no-persist")
        assert rc == 0, (doc, err)
        assert "-A ufw-user-input -p tcp -m tcp --dport 2222 -j ACCEPT" in h.save(), "ufw was reloaded"
        assert delivered(inbound(p)) and h.read() == good
        h.ufw("reload")
        assert blocked(inbound(p)), "--no-persist: runtime only, gone at the next reload"
        reloaded = rules_only(h.save())
        copy = tmp_path / "copy-before.rules"
        copy.write_bytes(good)
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--persist-file", str(copy))
        assert rc == 0, (doc, err)
        assert h.read() == good and b"--comment vrrpfw" in copy.read_bytes()
        rc, doc, err = vrrpfw(h, "close", "--iface", p.host_if, "--persist-file", str(copy))
        assert rc == 0 and copy.read_bytes() == good, (doc, err)
        assert rules_only(h.save()) == reloaded


def test_other_backends_on_a_ufw_host_never_advise_netfilter_persistent(tmp_path):
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        h = enabled(p)
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if, "--backend", "nftables", "--dry-run")
        text = json.dumps(doc) + err
        assert "install netfilter-persistent" not in text and "netfilter-persistent save" not in text, text
        rc, out, err = plain(h, "backends")
        assert "ufw" in out, out


def test_ufw_with_ipv6_off_refuses_ipv6_and_changes_nothing(tmp_path):
    """IPV6=no: ufw drops all IPv6 (policy DROP) and loads no ufw6 chains,
    so IPv6 VRRP cannot be opened through ufw: --family both is one line,
    exit 3, and nothing changes (IPv4 included); IPv4 alone opens."""
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        add_ipv6(p)
        default = os.path.join(str(tmp_path), "default-ufw")
        with open(default, encoding="utf-8") as f:
            text = f.read()
        with open(default, "w", encoding="utf-8") as f:
            f.write(text.replace("IPV6=yes", "IPV6=no"))
        h = enabled(p)
        files = {name: h.read(name) for name in ("before.rules", "before6.rules")}
        runtime = rules_only(h.save())
        assert blocked(inbound(p)) and blocked(adverts6(p))
        rc, out, err = plain(h, "open", "--iface", p.host_if, "--family", "both")
        assert rc == 3 and len(err.strip().splitlines()) == 1 and "IPV6=no" in err, (out, err)
        assert rules_only(h.save()) == runtime and {n: h.read(n) for n in files} == files
        assert blocked(inbound(p))
        rc, doc, err = vrrpfw(h, "check", "--iface", p.host_if, "--family", "ipv6")
        assert rc == 1 and {r["runtime"] for r in doc["rules"] if r["direction"] == "in"} == {"missing"}
        rc, doc, err = vrrpfw(h, "open", "--iface", p.host_if)
        assert rc == 0 and delivered(inbound(p)), (doc, err)
        assert h.read("before6.rules") == files["before6.rules"]
        rc, doc, err = vrrpfw(h, "close", "--iface", p.host_if)
        assert rc == 0 and {n: h.read(n) for n in files} == files, (doc, err)


def test_prove_on_a_ufw_host_replays_and_opens_through_ufw(tmp_path):
    """prove replays ufw's iptables-nft table in throw-away namespaces and
    runs open there (auto picks ufw, as on the host): adverts 0/20 today,
    20/20 after; the host itself and its files are left alone."""
    with ufw_pair(str(tmp_path), "nft", PREFIX) as p:
        h = enabled(p)
        files = {name: h.read(name) for name in ("before.rules", "before6.rules")}
        runtime = rules_only(h.save())
        rc, out, err = plain(h, "prove", "--iface", p.host_if)
        assert rc == 0, (out, err)
        assert f"{p.host_if}: inbound today 0/20, after open 20/20" in out
        assert f"open would iptables-nft -I ufw-before-input 1 -d 224.0.0.18/32 -i {p.host_if}" in out
        assert rules_only(h.save()) == runtime and {n: h.read(n) for n in files} == files
