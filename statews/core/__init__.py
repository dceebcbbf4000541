"""The sans-I/O core: RFC 6455 and RFC 7692 as bytes in, events out; no trio here.

Frames (:mod:`.events`), their wire format (:mod:`.framing`, :mod:`.masking`,
:mod:`.utf8`), the protocol state of one connection (:mod:`.protocol`, with message
reassembly in :mod:`.assembly`), the opening handshake (:mod:`.handshake` over the
HTTP/1.1 head parser :mod:`.http11`), extensions (:mod:`.extensions`,
permessage-deflate in :mod:`.deflate`), proxy codecs (:mod:`.proxycodec`, with proxy
URLs and ``no_proxy`` in :mod:`.proxyconf`), and the one exception hierarchy with the
one map from failures to close codes (:mod:`.errors`).

Layer rule (enforced by the import-linter contract in ``pyproject.toml``): nothing
here imports trio, the lifecycle, the options or the runtime.

Where to add things: a new frame kind -> :mod:`.events` and :mod:`.protocol` (then the
inbox's dispatch in :mod:`statews.trio.inbox`); a new extension -> an
:class:`~.extensions.Extension` like :mod:`.deflate`; a new proxy protocol -> a codec
here and its driver in :mod:`statews.trio.proxy`.
"""
