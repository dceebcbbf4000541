"""The declared lifecycle of a connection, and its drawing.

:mod:`.machine` declares it once with python-statemachine (:class:`Lifecycle`: ``idle
-> upgrading -> connected -> closing -> closed``) with :data:`OPERATIONS`, what the
application may do in each state; :mod:`.drawing` draws it (or any python-statemachine
machine) as Mermaid, a table, DOT or SVG.

Layer rule: built on :mod:`statews.core` only (its errors); no trio, no runtime.
"""

from .drawing import FORMATS, Format, render
from .machine import OPERATIONS, STATES, Lifecycle, Operation, StateName

__all__ = [
    "FORMATS",
    "OPERATIONS",
    "STATES",
    "Format",
    "Lifecycle",
    "Operation",
    "StateName",
    "render",
]
