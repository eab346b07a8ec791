"""What the kernel will do with a VRRP advert: the rule model (chaineval),
the path over every hook (netpath), rulesets into that model (nft, iptables)
and, in ``read``, the kernel's and saved rulesets read into it.

Imports no backend: backends write, the judge only reads and decides.
"""
