"""One saved file kept by two layers is reported once (results.merge)."""

import pytest

from vrrpfw.results import PersistReport, Result, merge

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def layer(name, *reports):
    r = Result("open", name)
    r.persist = list(reports)
    return r


def test_same_path_is_merged_and_distinct_paths_kept_in_order():
    a = PersistReport("/f", changed=True, error=None, boot_restore="svc", note="n1")
    b = PersistReport("/f", changed=False, error="e2", boot_restore="svc", note="n2")
    c = PersistReport("/g", changed=False, error=None, boot_restore=None, note=None)
    m = merge([layer("x", a, c), layer("y", b)])
    assert [(p.path, p.changed, p.error, p.boot_restore, p.note) for p in m.persist] == [
        ("/f", True, "e2", "svc", "n1; n2"), ("/g", False, None, None, None)]
    assert (a.changed, a.error, a.note) == (True, None, "n1")  # the layers' own reports untouched


def test_changed_by_the_second_layer_only_and_errors_joined():
    a = PersistReport("/f", changed=False, error="e1", boot_restore=None, note=None)
    b = PersistReport("/f", changed=True, error="e2", boot_restore="svc", note=None)
    same = PersistReport("/f", changed=False, error="e2", boot_restore="svc", note=None)
    m = merge([layer("x", a), layer("y", b), layer("z", same)])
    assert len(m.persist) == 1
    p = m.persist[0]
    assert (p.changed, p.error, p.boot_restore, p.note) == (True, "e1; e2", "svc", None)
