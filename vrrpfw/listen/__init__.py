"""``vrrpfw check --listen``: the live proof while keepalived runs.
:mod:`.listener` captures and judges, :mod:`.packet` decodes (and encodes)
VRRP adverts."""
