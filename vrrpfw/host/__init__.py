"""This host: what runs here on vrrpfw's behalf (processes, conntrack), which
netfilter layers exist (:mod:`.hostscan`), interface addresses
(:mod:`.ifaddr`) and entering a named namespace (:mod:`.enter_netns`)."""
