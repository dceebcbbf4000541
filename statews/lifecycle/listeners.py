"""Application listeners on a connection's declared machine, with their errors contained.

``start_link(..., listeners=[...])`` attaches each listener to the connection's
:class:`~statews.Lifecycle` through python-statemachine's own listener
protocol: a listener is any object whose methods are named as the library's callbacks
(``after_transition(event, source, target)``, ``on_enter_state(state)``,
``on_enter_closed()``, ``before_connect()``, ...; arguments are injected by name), so it
observes every transition exactly as the diagram draws it.

Invariants:

* A listener never breaks the connection: :func:`contained` wraps each of its public
  methods so that an exception is logged (``statews.lifecycle`` logger, with the
  traceback) and swallowed; the wrapper keeps the method's signature, so the library
  injects the same arguments.
* Listeners are synchronous and do no I/O (the engine runs inside the connection's
  transitions); a listener that needs I/O hands the event to a trio task.
* No listener, no cost: the machine is built without any.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable
from typing import Any

__all__ = ["contained", "contained_method"]

logger = logging.getLogger("statews.lifecycle")


def contained_method(method: Callable[..., Any], owner: object) -> Callable[..., Any]:
    """``method``, whose exceptions are logged and swallowed (same signature)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception:
            logger.exception("listener %r failed in %s; ignored", owner, method.__name__)
            return None

    return call


def contained(listener: object) -> object:
    """An object with ``listener``'s public methods, each :func:`contained_method`."""
    proxy = types.SimpleNamespace()
    for name in dir(listener):
        if name.startswith("_"):
            continue
        attribute = getattr(listener, name)
        if callable(attribute):
            setattr(proxy, name, contained_method(attribute, listener))
    return proxy
