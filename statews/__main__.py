"""``python -m statews``: the command line (see :mod:`statews.cli.command`)."""

import sys

from .cli.command import main

if __name__ == "__main__":
    sys.exit(main())
