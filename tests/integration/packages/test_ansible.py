"""The Ansible collection (packaging/ansible) against real firewalls in
namespaces, with ansible-core from PyPI (the newest venv's): the collection
is built with ansible-galaxy and installed into a temporary collections
path, and `ansible localhost -c local` runs inside the host namespace of a
pair (`ip netns exec`), with the module run by Debian's libraries
(.venv-debian) and by the newest (.venv-newest).  Real adverts judge it:
first run changed and adverts arrive, second run unchanged, check mode
changes nothing, diff mode shows the saved file and the runtime rules
before and after, state=closed gives the file back byte for byte, and a bad
value fails with vrrpfw's one-line message.  Ansible's home, temp dirs and
configuration are the test's; saved files are temporary files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import pytest
from fwharness import firewalld_host
from lockdirs import private_lock_dir
from netns import Netns, blocked_inbound, blocked_outbound, inbound, namespace, outbound, pair

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(REPO, ".venv-newest", "bin")
ANSIBLE = os.path.join(BIN, "ansible")
GALAXY = os.path.join(BIN, "ansible-galaxy")
ANSIBLE_DOC = os.path.join(BIN, "ansible-doc")
SOURCE = os.path.join(REPO, "packaging", "ansible")
FQCN = "vrrpfw.vrrpfw.vrrp_firewall"
PYTHONS = {"debian": os.path.join(REPO, ".venv-debian", "bin", "python"),
           "newest": os.path.join(BIN, "python")}
SHIPPED = {"MANIFEST.json", "FILES.json", "README.md", "meta", "meta/runtime.yml", "plugins",
           "plugins/modules", "plugins/modules/vrrp_firewall.py"}

# once: ansible-core from .venv-newest runs the module under both venvs' pythons itself.
pytestmark = [pytest.mark.integration, pytest.mark.needs(ANSIBLE, GALAXY, ANSIBLE_DOC), pytest.mark.once]

# A stdout callback of the test's own: one JSON line per host result, the
# module's return values unabridged (the shipped callbacks drop `diff` below -vvv).
CALLBACK = '''
import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "vrrpfw_test_json"

    def _emit(self, result, status):
        raw = getattr(result, "result", None)
        raw = result._result if raw is None else raw
        doc = {k: v for k, v in dict(raw).items() if not k.startswith("_ansible")}
        doc["_status"] = status
        self._display.display(json.dumps(doc, default=str))

    def v2_runner_on_ok(self, result):
        self._emit(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._emit(result, "unreachable")
'''


@dataclass
class Collection:
    root: str
    tarball: str
    env: Dict[str, str]


def ansible_env(root: str) -> Dict[str, str]:
    """Everything Ansible writes goes under ``root``; no ansible.cfg of the
    host or the working directory is read; the module's interpreter imports
    vrrpfw as installed in it (the harness's PYTHONPATH is cleared)."""
    home = os.path.join(root, "home")
    for sub in ("home", "local", "remote", "callbacks", "locks"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    cfg = os.path.join(root, "ansible.cfg")
    open(cfg, "w").close()
    return {
        "HOME": home, "ANSIBLE_HOME": os.path.join(home, ".ansible"), "ANSIBLE_CONFIG": cfg,
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(root, "collections"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(root, "local"),
        "ANSIBLE_REMOTE_TEMP": os.path.join(root, "remote"),
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(root, "callbacks"), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "vrrpfw_test_json", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False", "PYTHONPATH": "",
        "XTABLES_LOCKFILE": os.path.join(root, "xtables.lock"),
        "VRRPFW_LOCK_DIR": private_lock_dir(root),
    }


def galaxy(env: Dict[str, str], *args: str) -> str:
    proc = subprocess.run([GALAXY, *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"ansible-galaxy {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def build(source: str, root: str, env: Dict[str, str]) -> str:
    """ansible-galaxy collection build, as packaging/build.sh runs it."""
    out = os.path.join(root, "dist")
    galaxy(env, "collection", "build", source, "--output-path", out, "--force")
    (name,) = os.listdir(out)
    return os.path.join(out, name)


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    root = str(tmp_path_factory.mktemp("ansible"))
    env = ansible_env(root)
    with open(os.path.join(root, "callbacks", "vrrpfw_test_json.py"), "w") as f:
        f.write(CALLBACK)
    tarball = build(SOURCE, root, env)
    galaxy(env, "collection", "install", "-p", env["ANSIBLE_COLLECTIONS_PATH"], tarball)
    return Collection(root, tarball, env)


def ansible(ns: Netns, coll: Collection, python: str, args: Dict[str, Any], *flags: str,
            env: Dict[str, str] | None = None) -> Tuple[int, Dict[str, Any]]:
    """`ansible localhost -m vrrpfw.vrrpfw.vrrp_firewall` inside ``ns``: its
    exit code and the host's result."""
    proc = ns.run(ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-m", FQCN, "-a", json.dumps(args),
                  "-e", f"ansible_python_interpreter={python}", *flags, check=False, timeout=300,
                  env={**coll.env, **(env or {})})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.returncode, json.loads(lines[0])


def ansible_text(ns: Netns, coll: Collection, python: str, args: Dict[str, Any], *flags: str) -> str:
    """The same with Ansible's own ad-hoc output (the minimal callback), as an admin reads it."""
    env = {**coll.env, "ANSIBLE_STDOUT_CALLBACK": "minimal", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "0"}
    proc = ns.run(ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-m", FQCN, "-a", json.dumps(args),
                  "-e", f"ansible_python_interpreter={python}", *flags, check=False, timeout=300, env=env)
    return proc.stdout


def drop_and_save(ns: Netns, path: str) -> bytes:
    """An admin's host: legacy iptables drops everything in and out but
    loopback, saved where netfilter-persistent would restore it."""
    ns.ipt("-P", "INPUT", "DROP")
    ns.ipt("-P", "OUTPUT", "DROP")
    ns.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    ns.ipt("-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
    saved = ns.run("iptables-legacy-save").stdout.encode()
    with open(path, "wb") as f:
        f.write(saved)
    return saved


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def ours(text: str) -> List[str]:
    return [line for line in text.splitlines() if "--comment vrrpfw" in line]


def by_header(res: Dict[str, Any]) -> Dict[str, Dict[str, str]]:
    return {d["before_header"]: d for d in res.get("diff", [])}


RUNTIME = "vrrpfw runtime rules (iptables)"


# -- the collection ------------------------------------------------------------

def test_the_built_collection_holds_the_module_and_its_metadata_only(tmp_path):
    """build_ignore keeps out what a working tree collects (bytecode, editor
    files, an earlier build, tests); the real build holds the same files."""
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    junk = ["plugins/modules/__pycache__/vrrp_firewall.cpython-311.pyc",
            "plugins/modules/.vrrp_firewall.py.swp",
            "plugins/modules/vrrp_firewall.py~", "vrrpfw-vrrpfw-0.0.9.tar.gz", "tests/unit/test_x.py",
            "dist/old.tar.gz", ".pytest_cache/v/x"]
    for rel in junk:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("junk\n")
    env = ansible_env(str(tmp_path))
    with tarfile.open(build(str(src), str(tmp_path), env)) as tar:
        assert set(tar.getnames()) == SHIPPED
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("vrrpfw", "vrrpfw")
    import vrrpfw

    assert info["version"] == vrrpfw.__version__  # the collection is versioned with the library


def test_the_installed_collection_is_the_built_one(collection):
    with tarfile.open(collection.tarball) as tar:
        assert set(tar.getnames()) == SHIPPED
    installed = os.path.join(collection.env["ANSIBLE_COLLECTIONS_PATH"], "ansible_collections", "vrrpfw",
                             "vrrpfw", "plugins", "modules", "vrrp_firewall.py")
    assert read(installed) == read(os.path.join(SOURCE, "plugins", "modules", "vrrp_firewall.py"))


def test_ansible_doc_renders_every_option_as_the_module_declares_it(collection):
    env = {**os.environ, **collection.env}
    text = subprocess.run([ANSIBLE_DOC, "-t", "module", FQCN], env=env, capture_output=True, text=True,
                          timeout=120)
    assert text.returncode == 0 and "[WARNING]" not in text.stderr, text.stderr
    assert "ff02::12" in text.stdout and "EXAMPLES" in text.stdout and "RETURN VALUES" in text.stdout
    raw = subprocess.run([ANSIBLE_DOC, "--json", "-t", "module", FQCN], env=env, capture_output=True,
                         text=True, timeout=120)
    doc = json.loads(raw.stdout)[FQCN]["doc"]
    assert set(doc["attributes"]) == {"check_mode", "diff_mode"}
    assert all(a["support"] == "full" for a in doc["attributes"].values())
    # The argument spec the module runs with, read by the Python that has Ansible.
    spec = json.loads(subprocess.run(
        [PYTHONS["newest"], "-c", "import importlib.util, json, sys; "
         "s = importlib.util.spec_from_file_location('m', sys.argv[1]); "
         "m = importlib.util.module_from_spec(s); "
         "s.loader.exec_module(m); print(json.dumps(m.ARGUMENT_SPEC))",
         os.path.join(SOURCE, "plugins", "modules", "vrrp_firewall.py")],
        capture_output=True, text=True, check=True).stdout)
    assert set(doc["options"]) == set(spec)
    for name, want in spec.items():
        got = doc["options"][name]
        assert got["type"] == want["type"], name
        assert got.get("default") == want.get("default"), name
        assert got.get("choices") == want.get("choices"), name
        assert got.get("aliases", []) == want.get("aliases", []), name
        assert got.get("elements") == want.get("elements"), name
        assert got["description"], name


# -- against the firewall --------------------------------------------------------

@pytest.mark.parametrize("which", sorted(PYTHONS))
def test_open_check_diff_idempotent_close_on_legacy_iptables(collection, tmp_path, which):
    python = PYTHONS[which]
    if not os.access(python, os.X_OK):
        pytest.fail(f"{python} is missing (packaging/setup.sh builds it)")
    path = str(tmp_path / "rules.v4")
    with pair("vans") as p:
        original = drop_and_save(p.host, path)
        runtime0 = p.host.legacy_save()
        assert blocked_inbound(p) and blocked_outbound(p)
        args = {"interfaces": [p.host_if], "persist_file": path}

        # check mode on the fresh namespace: would change; changes nothing
        rc, res = ansible(p.host, collection, python, args, "--check", "--diff")
        assert rc == 0 and res["_status"] == "ok" and res["changed"] is True, res
        assert read(path) == original and p.host.legacy_save() == runtime0
        assert blocked_inbound(p) and blocked_outbound(p)
        diff = by_header(res)
        assert diff[path]["before"] == original.decode()
        after = diff[path]["after"]
        assert len(ours(after)) == 2 and [x for x in after.splitlines() if x not in ours(after)] \
            == original.decode().splitlines()
        assert "runtime missing, persisted missing" in diff[RUNTIME]["before"]
        assert "runtime missing" not in diff[RUNTIME]["after"]
        assert "runtime allowed, persisted present" in diff[RUNTIME]["after"]
        assert {r["action"] for r in res["rules"]} == {"insert"} and len(res["planned"]) == 2

        # how an admin sees the same check: Ansible's diff of the file and the rules
        shown = ansible_text(p.host, collection, python, args, "--check", "--diff")
        assert f"before: {path}" in shown and f"after: {path}" in shown
        assert f"+-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p 112 -m comment --comment vrrpfw -j ACCEPT" \
            in shown
        assert f"before: {RUNTIME}" in shown and "CHANGED" in shown
        assert read(path) == original and blocked_inbound(p)

        # the real run: changed, the adverts arrive both ways, the file says so
        rc, res = ansible(p.host, collection, python, args, "--diff")
        assert rc == 0 and res["changed"] is True and res["ok"] is True and res["exit_code"] == 0, res
        assert inbound(p)["delivered"] == 20 and outbound(p)["delivered"] == 20
        now = read(path).decode()
        assert len(ours(now)) == 2 and len(ours(p.host.legacy_save())) == 2
        diff = by_header(res)
        assert diff[path]["before"] == original.decode() and diff[path]["after"] == now
        assert "runtime allowed, persisted present" in diff[RUNTIME]["after"]
        assert {(r["runtime"], r["persisted"]) for r in res["rules"]} == {("allowed", "present")}

        # the second run: unchanged, and its diff shows no file and equal rules
        rc, res = ansible(p.host, collection, python, args, "--diff")
        assert rc == 0 and res["changed"] is False, res
        diff = by_header(res)
        assert set(diff) == {RUNTIME} and diff[RUNTIME]["before"] == diff[RUNTIME]["after"]
        assert read(path).decode() == now

        # closing in check mode: would change, the adverts still arrive
        closed = {**args, "state": "closed"}
        rc, res = ansible(p.host, collection, python, closed, "--check")
        assert rc == 0 and res["changed"] is True, res
        assert read(path).decode() == now and inbound(p)["delivered"] == 20

        # closing: the file comes back byte for byte, the runtime as it was
        rc, res = ansible(p.host, collection, python, closed, "--diff")
        assert rc == 0 and res["changed"] is True, res
        assert read(path) == original and p.host.legacy_save() == runtime0
        assert blocked_inbound(p) and blocked_outbound(p)
        diff = by_header(res)
        assert diff[path]["after"] == original.decode()
        assert "runtime allowed" in diff[RUNTIME]["before"] and "runtime absent" in diff[RUNTIME]["after"]
        rc, res = ansible(p.host, collection, python, closed)
        assert rc == 0 and res["changed"] is False, res


NFT_RULESET = """table inet filter {
  chain input { type filter hook input priority 0; policy drop; iifname "lo" accept; }
}
table ip other {
  chain in { type filter hook input priority 10; policy accept; ip protocol vrrp drop; }
}
"""


def test_open_on_nftables_runtime_only(collection):
    python = PYTHONS["debian"]
    with pair("vann") as p:
        p.host.run("nft", "-f", "-", stdin=NFT_RULESET)
        assert blocked_inbound(p)
        args = {"interfaces": [p.host_if], "persist": False}
        rc, res = ansible(p.host, collection, python, args)
        assert rc == 0 and res["changed"] is True and res["backend"] == "nftables", res
        assert {r["persisted"] for r in res["rules"]} == {"skipped"}
        assert inbound(p)["delivered"] == 20
        rc, res = ansible(p.host, collection, python, args)
        assert rc == 0 and res["changed"] is False, res
        rc, res = ansible(p.host, collection, python, {**args, "state": "closed"})
        assert rc == 0 and res["changed"] is True, res
        assert blocked_inbound(p)
        assert '"vrrpfw"' not in p.host.run("nft", "list", "ruleset").stdout


def cli_error(ns: Netns, *argv: str) -> str:
    """vrrpfw's own one line for the same input, from the command."""
    proc = ns.vrrpfw(*argv)
    assert proc.returncode == 2, proc
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("vrrpfw: error: ")
    return line[len("vrrpfw: error: "):]


def test_bad_values_fail_with_vrrpfws_one_line_and_change_nothing(collection, tmp_path):
    python = PYTHONS["newest"]
    path = str(tmp_path / "rules.v4")
    with pair("vanb") as p:
        original = drop_and_save(p.host, path)
        runtime0 = p.host.legacy_save()
        cases = [
            ({"interfaces": ["eth*"], "persist_file": path},
             cli_error(p.host, "open", "--iface", "eth*", "--persist-file", path)),
            ({"interfaces": [p.host_if], "group": "10.0.0.1", "persist_file": path},
             cli_error(p.host, "open", "--iface", p.host_if, "--group", "10.0.0.1", "--persist-file", path)),
            ({"interfaces": [p.host_if], "persist": False, "persist_file": path}, None),
            ({"interfaces": [p.host_if], "lock_timeout": "nan", "persist_file": path}, None),
            ({"interfaces": [p.host_if], "backend": "pf", "persist_file": path}, None),
        ]
        for args, cli_says in cases:
            rc, res = ansible(p.host, collection, python, args)
            assert rc != 0 and res["_status"] == "failed" and res["changed"] is False, res
            assert res["exit_code"] == 2 and "\n" not in res["msg"] and "Traceback" not in res["msg"], res
            if cli_says is not None:
                assert res["msg"] == cli_says, (res["msg"], cli_says)
            assert read(path) == original and p.host.legacy_save() == runtime0
        assert "contradict" in ansible(p.host, collection, python, cases[2][0])[1]["msg"]
        # the module's own refusal, before the library is called
        refused = {"interfaces": [p.host_if], "state": "closed", "ah": True, "persist_file": path}
        rc, res = ansible(p.host, collection, python, refused)
        assert res["_status"] == "failed" and res["exit_code"] == 2
        assert res["msg"] == "ah applies to state=open only, not to state=closed"
        # Ansible's own type check of a fixed choice
        rc, res = ansible(p.host, collection, python, {"interfaces": [p.host_if], "family": "ipv5",
                                                       "persist_file": path})
        assert res["_status"] == "failed" and "family" in res["msg"] and "ipv5" in res["msg"], res
        assert read(path) == original and p.host.legacy_save() == runtime0 and blocked_inbound(p)


def test_without_the_library_the_module_says_to_install_vrrpfw(collection, tmp_path):
    """A Python without vrrpfw: the newest venv's, with no site-packages (-S)."""
    bare = tmp_path / "python-without-vrrpfw"
    bare.write_text(f"#!/bin/sh\nexec {PYTHONS['newest']} -S \"$@\"\n")
    bare.chmod(0o755)
    with namespace("vanm") as ns:
        rc, res = ansible(ns, collection, str(bare), {"interfaces": ["eth1"], "persist": False})
    assert rc != 0 and res["_status"] == "failed" and res["exit_code"] == 3, res
    assert "install the vrrpfw package" in res["msg"] and "\n" not in res["msg"]


KEEPALIVED_CONF = """vrrp_instance VI_1 {{
  state BACKUP
  interface {iface}
  virtual_router_id 51
  priority 100
  virtual_ipaddress {{
    192.0.2.100/24
  }}
}}
"""


def test_keepalived_conf_opens_what_its_instances_need_and_closes_it(collection, tmp_path):
    python = PYTHONS["newest"]
    conf = tmp_path / "keepalived.conf"
    path = str(tmp_path / "rules.v4")
    with pair("vank") as p:
        conf.write_text(KEEPALIVED_CONF.format(iface=p.host_if))
        original = drop_and_save(p.host, path)
        args = {"keepalived_conf": str(conf), "persist_file": path}
        rc, res = ansible(p.host, collection, python, args)
        assert rc == 0 and res["changed"] is True, res
        # The module's output reaches the controller's logs, so it names only what anyone may read:
        # this keepalived.conf sits below pytest's 0700 tmp directory, so the instance's name is hidden.
        assert any("vrrp_instance (name not shown) (VRID 51" in line for line in res["derivation"]), \
            res["derivation"]
        assert not any("VI_1" in line for line in res["derivation"]), res["derivation"]
        assert inbound(p)["delivered"] == 20 and outbound(p)["delivered"] == 20
        assert len(ours(read(path).decode())) == 2
        rc, res = ansible(p.host, collection, python, args)
        assert rc == 0 and res["changed"] is False, res
        rc, res = ansible(p.host, collection, python, {**args, "state": "closed"})
        assert rc == 0 and res["changed"] is True, res
        assert read(path) == original and blocked_inbound(p)


def test_a_run_that_leaves_vrrp_blocked_fails_and_says_changed(collection):
    """backend=iptables opens legacy iptables, while an nf_tables chain still
    drops the adverts: vrrpfw's exit 1, so the task fails, with what blocks
    it, and says what it changed; check mode predicts the same failure."""
    python = PYTHONS["debian"]
    with pair("vanf") as p:
        p.host.ipt("-P", "INPUT", "DROP")
        p.host.run("nft", "-f", "-", stdin=NFT_RULESET)
        args = {"interfaces": [p.host_if], "backend": "iptables", "persist": False}
        rc, res = ansible(p.host, collection, python, args, "--check")
        assert res["_status"] == "failed" and res["changed"] is True and res["exit_code"] == 1, res
        assert not ours(p.host.legacy_save())
        rc, res = ansible(p.host, collection, python, args)
        assert res["_status"] == "failed" and res["changed"] is True and res["exit_code"] == 1, res
        assert res["msg"].startswith("vrrpfw open: NOT OK, changed (backend iptables): blocked: "), res["msg"]
        assert "\n" not in res["msg"] and res["blockers"]
        assert ours(p.host.legacy_save()) and blocked_inbound(p)  # legacy opened; nf_tables still drops


def test_unicast_peers_open_and_close_by_peer_with_diff(collection):
    """peers (unicast) open rules between the peer and this host's address;
    state=closed with group=PEER closes them, and the diff's "before" shows
    exactly those rules (check's group takes no unicast peer: the module
    reads every rule and keeps those the close handled)."""
    python = PYTHONS["debian"]
    with pair("vanu") as p:
        p.host.ipt("-P", "INPUT", "DROP")
        rc, res = ansible(p.host, collection, python, {"interfaces": [p.host_if], "peers": ["192.0.2.2"],
                                                       "persist": False})
        assert rc == 0 and res["changed"] is True, res
        assert {r["group"] for r in res["rules"]} == {"peer 192.0.2.2 local 192.0.2.1"}
        rc, res = ansible(p.host, collection, python, {"state": "closed", "group": "192.0.2.2",
                                                       "persist": False}, "--diff")
        assert rc == 0 and res["changed"] is True, res
        runtime = by_header(res)[RUNTIME]
        assert f"in {p.host_if} peer 192.0.2.2 local 192.0.2.1 (iptables INPUT): runtime allowed" \
            in runtime["before"], runtime
        assert "runtime absent" in runtime["after"] and "runtime allowed" not in runtime["after"]
        assert not ours(p.host.legacy_save())


@pytest.mark.needs("firewalld")
def test_firewalld_check_mode_open_idempotent_close_with_diff(collection, tmp_path):
    """firewalld (nftables backend) in the namespace on a private bus: no
    saved file to show, so the diff is the runtime rules, whose persisted
    state is firewalld's permanent configuration."""
    python = PYTHONS["debian"]
    with firewalld_host(tmp_path / "fw", "nftables") as fw:
        p = fw.pair
        args = {"interfaces": [p.host_if], "backend": "firewalld", "state_file": fw.state_file}
        assert blocked_inbound(p)
        rc, res = ansible(p.host, collection, python, args, "--check", "--diff")
        assert rc == 0 and res["changed"] is True and res["backend"] == "firewalld", res
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert blocked_inbound(p) and not os.path.exists(fw.state_file)
        runtime = by_header(res)["vrrpfw runtime rules (firewalld)"]
        assert "in " + p.host_if in runtime["before"] and "runtime missing" in runtime["before"], runtime
        assert "runtime allowed, persisted present" in runtime["after"], runtime
        rc, res = ansible(p.host, collection, python, args, "--diff")
        assert rc == 0 and res["changed"] is True, res
        assert inbound(p)["delivered"] == 20
        assert fw.cmd("--permanent", "--list-rich-rules") == fw.cmd("--list-rich-rules") != ""
        rc, res = ansible(p.host, collection, python, args)
        assert rc == 0 and res["changed"] is False, res
        rc, res = ansible(p.host, collection, python, {**args, "state": "closed"})
        assert rc == 0 and res["changed"] is True, res
        assert blocked_inbound(p)
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""


PLAYBOOK = """- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Let keepalived's adverts through the firewall, and keep them through reboots
      vrrpfw.vrrpfw.vrrp_firewall:
        keepalived_conf: "{{ conf }}"
        persist_file: "{{ saved }}"
      register: first
    - name: The same again
      vrrpfw.vrrpfw.vrrp_firewall:
        keepalived_conf: "{{ conf }}"
        persist_file: "{{ saved }}"
      register: again
    - name: What the module returned
      ansible.builtin.assert:
        that:
          - first is changed
          - again is not changed
          - first.ok and first.exit_code == 0
          - first.rules | map(attribute='runtime') | unique == ['allowed']
"""


def test_the_readme_playbook(collection, tmp_path):
    """The README's example as a playbook (ansible-playbook, the default
    output): changed once, then not; the adverts arrive."""
    python = PYTHONS["debian"]
    book, conf, path = tmp_path / "site.yml", tmp_path / "keepalived.conf", str(tmp_path / "rules.v4")
    book.write_text(PLAYBOOK)
    with pair("vanp") as p:
        conf.write_text(KEEPALIVED_CONF.format(iface=p.host_if))
        drop_and_save(p.host, path)
        env = {**collection.env, "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "0"}
        proc = p.host.run(os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(book),
                          "-e", f"conf={conf}", "-e", f"saved={path}",
                          "-e", f"ansible_python_interpreter={python}", check=False, timeout=300, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "changed=1" in proc.stdout and "failed=0" in proc.stdout, proc.stdout
        assert inbound(p)["delivered"] == 20 and outbound(p)["delivered"] == 20
