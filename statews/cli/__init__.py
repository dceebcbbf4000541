"""The ``statews`` command line and the built-in echo server.

:mod:`.command` is the entry point (``main``: parser, subcommands, exit codes);
:mod:`.console` the ``connect`` session (what it prints, sends and when it closes);
:mod:`.stdin` reads standard input without blocking trio; :mod:`.server` is the echo
server behind ``statews serve`` and ``statews demo``.

Layer rule: the top layer; uses the public API below it, and nothing below imports it.
"""

from .command import main

__all__ = ["main"]
