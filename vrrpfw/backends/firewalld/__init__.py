"""firewalld: its backend (backend.py), the D-Bus client (bus.py; not dbus.py, which would read as the
dbus-python library), the rules vrrpfw asks for (rules.py), the runtime and permanent layers
(layer.py), what is whose in firewalld's table (owner.py), the zone after a reload (boot.py) and
the kernel path on the iptables backend (kernel.py)."""
