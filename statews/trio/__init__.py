"""The trio runtime: connections whose I/O runs as tasks in the application's nursery.

:mod:`.client` holds the entry points (``start_link``, ``open_websocket``);
:mod:`.connection` the :class:`~.connection.WebSocket` (the hackney_ws API and the
reader task), which owns its parts, one job each: :mod:`.writer` (application ->
socket), :mod:`.inbox` (socket -> application, with the closing buffer of
:mod:`.closing`), :mod:`.keepalive`, :mod:`.streaming` (a message in pieces) and
:mod:`.delivery` (active mode's owner channel). Getting a connection: :mod:`.transport`
(TCP, TLS, Unix sockets, proxies through :mod:`.proxy`), :mod:`.opening` (the HTTP/1.1
upgrade), :mod:`.redirects`; keeping one: :mod:`.reconnect`.

Layer rule: built on :mod:`statews.core`, :mod:`statews.options.model` and
:mod:`statews.lifecycle`; never imports the command line. Only the connection sends
lifecycle events; its parts report outcomes to it.

Where to add things: a new delivery mode -> :mod:`statews.options.modes` (its value)
and :mod:`.delivery` (what it does); a new transport -> :mod:`.transport` /
:mod:`.opening`, with the rest of the connection unchanged.
"""
