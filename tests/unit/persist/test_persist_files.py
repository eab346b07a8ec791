import os
import stat

import pytest

from vrrpfw.errors import PersistFileError
from vrrpfw.persist import files, locations

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path):
    p = tmp_path / "rules.v4"
    write(str(p), "old\n", 0o640)
    files.atomic_write(str(p), "new\n")
    assert p.read_text() == "new\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["rules.v4"]


def test_atomic_write_new_file_is_private_and_dir_created_only_when_asked(tmp_path):
    p = tmp_path / "etc" / "iptables" / "rules.v4"
    with pytest.raises(PersistFileError):
        files.atomic_write(str(p), "x\n")
    assert not (tmp_path / "etc").exists()
    files.atomic_write(str(p), "x\n", create_dir=True)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_read_missing_and_directory(tmp_path):
    assert files.read_text(str(tmp_path / "nope")) is None
    with pytest.raises(PersistFileError, match="not a regular file"):
        files.read_text(str(tmp_path))


def test_write_into_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PersistFileError, match="rules.v4: cannot (stat|write)"):
        files.atomic_write(str(blocker / "rules.v4"), "x")


@pytest.mark.parametrize(
    "os_release, family, path",
    [
        ('ID=debian\n', "debian", "/etc/iptables/rules.v4"),
        ('ID=ubuntu\nID_LIKE=debian\n', "debian", "/etc/iptables/rules.v4"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "rhel", "/etc/sysconfig/iptables"),
        ('ID=alpine\n', "alpine", "/etc/iptables/rules-save"),
        ('ID=linuxfoo\nID_LIKE="fedora"\n', "rhel", "/etc/sysconfig/iptables"),
    ],
)
def test_distribution_defaults(tmp_path, os_release, family, path):
    write(str(tmp_path / "etc/os-release"), os_release)
    target = locations.choose(None, str(tmp_path))
    assert target.family == family
    assert target.path == str(tmp_path) + path
    assert target.restorer is None and "nothing on this host restores it" in (target.note or "")


def test_unknown_distribution_asks_for_a_path(tmp_path):
    write(str(tmp_path / "etc/os-release"), "ID=plan9\n")
    with pytest.raises(PersistFileError, match="--persist-file"):
        locations.choose(None, str(tmp_path))


def test_restorer_found_enabled_and_disabled(tmp_path):
    root = str(tmp_path)
    write(f"{root}/etc/os-release", "ID=debian\n")
    write(f"{root}/usr/share/netfilter-persistent/plugins.d/15-ip4tables", "")
    os.makedirs(f"{root}/etc/systemd/system")
    t = locations.choose(None, root)
    assert t.restorer and "netfilter-persistent" in t.restorer
    assert "not enabled" in (t.note or "")
    os.makedirs(f"{root}/etc/systemd/system/multi-user.target.wants")
    os.symlink("/lib/systemd/system/netfilter-persistent.service",
               f"{root}/etc/systemd/system/multi-user.target.wants/netfilter-persistent.service")
    assert locations.choose(None, root).note is None


def test_explicit_file_wins_and_says_boot_is_up_to_you(tmp_path):
    t = locations.choose("/srv/my.rules", str(tmp_path))
    assert t.path == "/srv/my.rules" and t.family == "custom" and "up to you" in (t.note or "")
