"""nftables.conf includes: vrrpfw follows the files real nft loads.

nft (src/scanner.l) takes a name starting with "/" as given, one starting
with "./" or "../" from its working directory (/ for nftables.service and
for vrrpfw's ``nft -c``), and any other name only in its include path,
/etc, never beside the including file.  Each test builds files where the
two readings differ, loads them with real nft from / in a namespace, and
compares with what vrrpfw reads."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from netns import inbound, namespace, pair

from vrrpfw.errors import PersistFileError
from vrrpfw.persist import nft_conf

pytestmark = [pytest.mark.integration, pytest.mark.needs("nft")]


def chain(table: str, name: str, hook: str = "input") -> str:
    return (f"table ip {table} {{\n\tchain {name} {{\n\t\ttype filter hook {hook} priority 0; "
            "policy accept;\n\t}\n}\n")


def nft_from_slash(ns, *args: str):
    """nft run from /, as nftables.service runs it."""
    return ns.run("sh", "-c", 'cd / && exec nft "$@"', "nft", *args, check=False)


def base_chains(ns) -> set:
    doc = json.loads(ns.run("nft", "-j", "list", "chains").stdout)
    return {((c["family"], c["table"], c["name"]), c["hook"]) for o in doc["nftables"]
            for c in [o.get("chain")] if c and "hook" in c}


def rel(path) -> str:
    """``path`` as "./..." from /."""
    return "./" + os.path.relpath(str(path), "/")


@pytest.mark.one_end  # reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
def test_vrrpfw_reads_the_chains_nft_loads(tmp_path):
    """./ and ../ names from /, a glob with a directory among its matches, a
    nested include: the chains real nft defines are exactly those vrrpfw
    reads.  Each include has a decoy beside the including file, which is
    what vrrpfw read before (and nft never loads)."""
    conf = tmp_path / "conf"
    d = tmp_path / "d"
    for x in (conf, d, d / "sub.nft"):
        x.mkdir()
    (tmp_path / "slash.nft").write_text(chain("slash", "c"))
    (d / "a.nft").write_text(chain("ga", "c", "output") + f'include "{rel(tmp_path / "deep.nft")}"\n')
    (d / "b.nft").write_text(chain("gb", "c"))
    (tmp_path / "deep.nft").write_text(chain("deep", "c"))
    for where, target, table in ((d, tmp_path / "deep.nft", "decoy_nested"),
                                 (conf, tmp_path / "slash.nft", "decoy")):
        decoy = where / rel(target)  # the including file's directory joined with the "./..." name
        decoy.parent.mkdir(parents=True)
        decoy.write_text(chain(table, "c"))
    dots = "/".join([".."] * 12)  # more ../ than / has: nft stays at /
    main = conf / "main.nft"
    main.write_text(f'include "{rel(tmp_path / "slash.nft")}"\n'
                    f'include "{dots}{tmp_path / "d"}/*.nft"\n'
                    f'include "{rel(tmp_path)}/nothing-*.nft"\n')
    with namespace("vrnc") as ns:
        proc = nft_from_slash(ns, "-f", str(main))
        assert proc.returncode == 0, proc.stderr
        loaded = base_chains(ns)
    assert loaded == {(("ip", t, "c"), h) for t, h in (("slash", "input"), ("ga", "output"), ("gb", "input"),
                                                         ("deep", "input"))}
    assert set(nft_conf.defined_chains_in(str(main), main.read_text())) == loaded


@pytest.mark.one_end  # reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
def test_an_include_inside_a_block_defines_chains_of_that_block(tmp_path):
    """nft reads an included file where its include line is: inside a table
    block its chains are that table's, inside a chain block its ``type
    filter hook`` line is that chain's, and an include inside the included
    file too.  Real nft -f from / loads exactly the base chains vrrpfw
    reads (before: none of them, and open refused to persist into them)."""
    (tmp_path / "chains.nft").write_text(
        "chain input {\n\ttype filter hook input priority 0; policy accept;\n}\n"
        "chain output { type filter hook output priority 0; policy accept; }\n")
    (tmp_path / "hook.nft").write_text("type filter hook prerouting priority -300; policy accept;\n")
    (tmp_path / "nested.nft").write_text(f'include "{tmp_path}/chains.nft"\n')
    main = tmp_path / "main.nft"
    main.write_text(f'table inet filter {{\n\tinclude "{tmp_path}/chains.nft"\n}}\n'
                    f'table ip t {{ include "{tmp_path}/nested.nft"; }}\n'
                    f'table ip6 raw {{\n\tchain pre {{\n\t\tinclude "{tmp_path}/hook.nft"\n\t}}\n}}\n')
    with namespace("vrnc") as ns:
        proc = nft_from_slash(ns, "-f", str(main))
        assert proc.returncode == 0, proc.stderr
        loaded = base_chains(ns)
    assert loaded == {(("inet", "filter", "input"), "input"), (("inet", "filter", "output"), "output"),
                      (("ip", "t", "input"), "input"), (("ip", "t", "output"), "output"),
                      (("ip6", "raw", "pre"), "prerouting")}
    assert set(nft_conf.defined_chains_in(str(main), main.read_text())) == loaded


@pytest.mark.one_end  # reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
def test_a_bare_name_beside_the_including_file_is_refused_like_nft(tmp_path):
    """``include "NAME"`` with NAME beside the file but not in /etc: nft -c
    says "File not found"; vrrpfw refuses it too (before: it read the file
    beside, a chain nft never defines)."""
    name = f"vrrpfw-test-{uuid.uuid4().hex}.nft"
    assert not os.path.exists(os.path.join("/etc", name))
    (tmp_path / name).write_text(chain("beside", "c"))
    main = tmp_path / "main.nft"
    main.write_text(f'include "{name}"\n')
    with namespace("vrnc") as ns:
        proc = nft_from_slash(ns, "-c", "-f", str(main))
    assert proc.returncode == 1 and f"File not found: {name}" in proc.stderr, proc.stderr
    with pytest.raises(PersistFileError, match="not beside the including file"):
        nft_conf.defined_chains_in(str(main), main.read_text())


def test_open_persists_into_a_chain_defined_by_a_dot_include(tmp_path):
    """The admin's input chain is defined in a file included as "./...":
    vrrpfw finds it, writes its lines, nft -c accepts the file, and the file
    alone opens VRRP in a fresh namespace (before: vrrpfw looked beside the
    file, found no chain and persisted nothing)."""
    chains = tmp_path / "chains.nft"
    chains.write_text("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; "
                      "policy drop;\n\t}\n}\n")
    conf = tmp_path / "etc" / "nftables.conf"
    conf.parent.mkdir()
    conf.write_text(f'flush ruleset\ninclude "{rel(chains)}"\n')
    with pair("vrnc") as p:
        assert nft_from_slash(p.host, "-f", str(conf)).returncode == 0
        assert inbound(p)["delivered"] == 0
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(conf))
        assert rc == 0 and out["persist"][0]["changed"] is True, out
        assert 'comment "vrrpfw"' in conf.read_text()
        p.host.run("nft", "flush", "ruleset")
        assert nft_from_slash(p.host, "-f", str(conf)).returncode == 0  # as at boot: the file alone
        assert inbound(p)["delivered"] == 20
