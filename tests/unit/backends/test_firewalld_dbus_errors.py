"""How backends/firewalld/bus.py maps D-Bus errors: an unanswered call is
OutcomeUnknown, and its message carries no libdbus boiler-plate (it is
quoted once per failed read-back, and said nothing about the call)."""

from __future__ import annotations

import pytest

from vrrpfw.backends.firewalld.bus import Firewalld, OutcomeUnknown

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


class _Err(Exception):
    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg)
        self._name, self._msg = name, msg

    def get_dbus_name(self) -> str:
        return self._name

    def get_dbus_message(self) -> str:
        return self._msg


NOREPLY = ("Did not receive a reply. Possible causes include: the remote application did not send a reply, "
           "the message bus security policy blocked the reply, the reply timeout expired, or the network "
           "connection was broken.")


def test_no_reply_is_outcome_unknown_without_libdbus_boilerplate():
    err = Firewalld._map(object.__new__(Firewalld), _Err("org.freedesktop.DBus.Error.NoReply", NOREPLY),
                         "adding rich rule")
    assert isinstance(err, OutcomeUnknown)
    assert str(err) == "firewalld stopped answering while adding rich rule: Did not receive a reply."


def test_timeout_message_kept_whole():
    err = Firewalld._map(object.__new__(Firewalld), _Err("org.freedesktop.DBus.Error.Timeout", "Timed out"),
                         "reading zones")
    assert isinstance(err, OutcomeUnknown) and str(err).endswith("reading zones: Timed out")
