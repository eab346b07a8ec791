"""A firewalld D-Bus call whose outcome vrrpfw cannot know, for one real
vrrpfw process (the firewalld timeout tests' child).

Run as ``python tests/dbusfault.py SPEC vrrpfw-arguments...`` (inside the
test's namespace, on its private bus): SPEC is JSON, the rest goes to
vrrpfw's CLI in this process after the patch below is installed.  Only this
child is patched; the product code is not changed, and firewalld is real.

The first call that *adds* an allowance in the layer ``layer`` (``runtime``
or ``permanent``) meets the fault ``fault``:

- ``late``: firewalld (pid ``pid``) is stopped (SIGSTOP) just before the
  call is sent, so the call waits in firewalld's socket and vrrpfw's call
  times out (set ``VRRPFW_DBUS_TIMEOUT`` small); firewalld is continued
  (SIGCONT) once the timeout was raised, so it then runs the call: timed
  out on vrrpfw's side, completed in firewalld.
- ``later``: the same, but firewalld is continued only once vrrpfw's
  next call (its reading firewalld again) has timed out too: vrrpfw cannot
  learn the outcome, and firewalld then carries the call out while vrrpfw
  is still connected (firewalld checks the caller when it runs the call).
- ``hung``: the same, but firewalld stays stopped; the test continues it
  after vrrpfw has exited, when firewalld refuses the queued call (its
  caller is gone): vrrpfw cannot learn the outcome, and nothing changed.
- ``lost``: the call is never sent; vrrpfw gets the error libdbus raises
  on a timeout (``org.freedesktop.DBus.Error.NoReply``), as where the
  message was lost: the call really did not complete.

A ``trace`` file, if given, gets one line when the fault fires.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def install(spec: Dict[str, Any]) -> None:
    import dbus

    from vrrpfw.backends.firewalld import bus as firewalld_dbus

    cls = firewalld_dbus.Firewalld
    real_change, real_direct, real_call = cls.change, cls.direct_change, cls.call
    armed: Dict[str, bool] = {"fired": False, "now": False}

    def change(self: Any, layer: str, add: bool, *args: Any, **kwargs: Any) -> Any:
        armed["now"] = add and layer == spec["layer"] and not armed["fired"]
        try:
            return real_change(self, layer, add, *args, **kwargs)
        finally:
            armed["now"] = False

    def direct_change(self: Any, layer: str, add: bool, *args: Any, **kwargs: Any) -> Any:
        armed["now"] = add and layer == spec["layer"] and not armed["fired"]
        try:
            return real_direct(self, layer, add, *args, **kwargs)
        finally:
            armed["now"] = False

    def call(self: Any, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if armed.get("continue_after_next"):
            armed["continue_after_next"] = False
            try:
                return real_call(self, doing, fn, *args, **kwargs)
            finally:
                os.kill(spec["pid"], signal.SIGCONT)
        if not (armed["now"] and doing.startswith("adding")):
            return real_call(self, doing, fn, *args, **kwargs)
        armed["fired"], armed["now"] = True, False
        if spec.get("trace"):
            with open(spec["trace"], "a") as f:
                f.write(f"{spec['fault']}: {doing}\n")
        if spec["fault"] == "lost":
            def lost(*_a: Any, **_k: Any) -> Any:
                raise dbus.exceptions.DBusException(
                    "Did not receive a reply (fault injected: the call was never sent)",
                    name="org.freedesktop.DBus.Error.NoReply")
            return real_call(self, doing, lost, *args, **kwargs)
        os.kill(spec["pid"], signal.SIGSTOP)
        try:
            return real_call(self, doing, fn, *args, **kwargs)
        finally:
            if spec["fault"] == "late":
                os.kill(spec["pid"], signal.SIGCONT)
            armed["continue_after_next"] = spec["fault"] == "later"

    cls.change, cls.direct_change, cls.call = change, direct_change, call  # type: ignore[method-assign]


def main(argv: List[str]) -> int:
    spec = json.loads(argv[0])
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from vrrpfw.cli import main as vrrpfw_main

    install(spec)
    return vrrpfw_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
