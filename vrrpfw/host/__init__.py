"""This host: what runs here on vrrpfw's behalf (processes, conntrack)."""
