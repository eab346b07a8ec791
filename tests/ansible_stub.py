"""The Ansible module (packaging/ansible/plugins/modules/vrrp_firewall.py)
imported as a plain Python file, with ``AnsibleModule`` stood in for by a
recorder: no Ansible needed (tests/unit/packages/test_ansible_module.py and
tests/unit/test_request_refusals.py load it)."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE_PATH = os.path.join(REPO, "packaging", "ansible", "plugins", "modules", "vrrp_firewall.py")


class Exited(Exception):
    """exit_json / fail_json ended the module (Ansible's raise SystemExit)."""

    def __init__(self, failed: bool, result: Dict[str, Any]) -> None:
        super().__init__(result)
        self.failed, self.result = failed, result


class FakeModule:
    """What the module uses of AnsibleModule."""

    def __init__(self, params: Dict[str, Any], check_mode: bool = False, diff: bool = False) -> None:
        self.params, self.check_mode, self._diff = params, check_mode, diff
        self.warnings: List[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def exit_json(self, **kw: Any) -> None:
        raise Exited(False, kw)

    def fail_json(self, **kw: Any) -> None:
        raise Exited(True, kw)


def _load() -> types.ModuleType:
    stubs = {}
    for name in ("ansible", "ansible.module_utils", "ansible.module_utils.basic"):
        if name not in sys.modules:
            stubs[name] = types.ModuleType(name)
    if "ansible.module_utils.basic" in stubs:
        stubs["ansible.module_utils.basic"].AnsibleModule = FakeModule  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location("vrrp_firewall_under_test", MODULE_PATH)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod
