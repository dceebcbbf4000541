"""The closing buffer: what the peer still sends once we are closing, kept up to a bound;
and :func:`closed_error`, how a connection ended, as the exception that reports it.

From the moment a connection is ``closing`` its reader reads on until the peer's Close
(or ``close_timeout``) whatever the inbox holds: a full inbox must never stall the
closing handshake, and the messages the peer sent before its Close belong to the
application. Each data message read meanwhile asks :meth:`ClosingBuffer.keep` whether it
may join the inbox.

Invariants:

* The bytes kept while closing never exceed ``closing_buffer_size`` (the ``max_queue``
  messages the inbox already held are not counted: they were bounded before).
* Nothing is lost silently: from the first message that does not fit, that message and
  every later one is dropped (a later message is never kept after an earlier one was
  dropped, so what the application gets has no gaps), counted in
  :attr:`~ClosingBuffer.dropped_messages` and :attr:`~ClosingBuffer.dropped_bytes`
  (which :class:`~statews.ConnectionClosed` and :class:`~statews.Closed` report), and the
  first drop logs a warning on the ``statews.connection`` logger.
* A message dropped part way (received in pieces by ``recv_stream``) counts once, at its
  last piece.
"""

from __future__ import annotations

import logging

from ..core.errors import ConnectionClosed, connection_closed
from ..core.protocol import ClientProtocol

__all__ = ["ClosingBuffer", "closed_error", "payload_size"]

logger = logging.getLogger("statews.connection")


def payload_size(data: str | bytes) -> int:
    """Bytes of a message's payload (UTF-8 for text)."""
    if isinstance(data, str) and not data.isascii():
        return len(data.encode("utf-8"))
    return len(data)


class ClosingBuffer:
    """The account of data received while closing (one per connection, made on entering
    ``closing``)."""

    __slots__ = ("_dropping", "dropped_bytes", "dropped_messages", "kept_bytes", "limit", "name")

    def __init__(self, limit: int, name: str) -> None:
        #: ``closing_buffer_size``: bytes that may be kept.
        self.limit = limit
        #: The connection's name in log lines.
        self.name = name
        #: Bytes kept so far.
        self.kept_bytes = 0
        #: Complete messages dropped (past the limit).
        self.dropped_messages = 0
        #: Payload bytes dropped.
        self.dropped_bytes = 0
        self._dropping = False

    def keep(self, data: str | bytes, *, fin: bool) -> bool:
        """Whether a message (or a piece of one, ``fin`` False but for the last) read
        while closing is kept; if not, it is counted as dropped."""
        size = payload_size(data)
        if not self._dropping:
            if self.kept_bytes + size <= self.limit:
                self.kept_bytes += size
                return True
            self._dropping = True
            logger.warning(
                "%s: more than closing_buffer_size (%d bytes) received while closing;"
                " dropping what follows until the peer's Close (counted in"
                " ConnectionClosed.dropped_messages)",
                self.name,
                self.limit,
            )
        self.dropped_bytes += size
        if fin:
            self.dropped_messages += 1
        return False


def closed_error(
    proto: ClientProtocol | None, error: BaseException | None, buffer: ClosingBuffer | None
) -> ConnectionClosed:
    """A fresh exception describing the end (fresh: re-raising one instance would pile
    up tracebacks): the Close frames exchanged (``proto``: None if the upgrade never
    completed), the ``error`` that ended the connection (its ``__cause__``), and what
    the closing ``buffer`` dropped."""
    rcvd = proto.close_received if proto is not None else None
    sent = proto.close_sent if proto is not None else None
    if error is not None:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    elif proto is None:
        detail = "closed before the upgrade completed"
    else:
        detail = ""
    closed = connection_closed(
        rcvd,
        sent,
        detail,
        dropped_messages=buffer.dropped_messages if buffer is not None else 0,
        dropped_bytes=buffer.dropped_bytes if buffer is not None else 0,
    )
    closed.__cause__ = error
    return closed
