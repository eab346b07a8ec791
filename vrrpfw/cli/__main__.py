"""``python -m vrrpfw.cli``: the ``vrrpfw`` command, as it was while the CLI
was one module (vrrpfw/cli.py's ``__main__`` guard); ``python -m vrrpfw``
is the same."""

import sys

from .entry import main

sys.exit(main())
