"""The ``vrrpfw`` command: typer commands (:mod:`.commands`), their options
(:mod:`.options`), the console script's entry (:mod:`.entry`), help text
(:mod:`.help_text`), shell completion (:mod:`.completion`), typer/click
repairs (:mod:`.typer_coercion`) and rendering of results (:mod:`.render`).

``vrrpfw.cli:main`` (the console script) and ``vrrpfw.cli.build_command``
(packaging/gen_docs.py) are loaded on first use (PEP 562), so that importing
:mod:`.render` alone (the Ansible module does) does not import typer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at runtime __getattr__ loads them
    from .entry import build_command, main

__all__ = ["build_command", "main"]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from . import entry

        return getattr(entry, name)
