"""``vrrpfw check --listen``: the live proof while keepalived runs.
:mod:`.listener` runs a listen: :mod:`.capture` opens the sockets,
:mod:`.counters` reads the firewall's drop counters, :mod:`.verdicts` judges
what was heard into a :mod:`.report`; :mod:`.packet` decodes (and encodes)
VRRP adverts."""
