"""Readers: the kernel's rulesets into the path model (vrrpfw.judge.netpath)."""
