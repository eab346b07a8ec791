"""The version, in a module of its own: ``vrrpfw --version`` and ``--help``
read it without importing the API (pyproject.toml carries the same string;
a unit test keeps the two equal)."""

__version__ = "0.1.0"
