"""keepalived's configuration: :mod:`.conf` reads keepalived.conf and says
what vrrpfw must open for it (:mod:`.reader` reads the files into lines and
blocks)."""
