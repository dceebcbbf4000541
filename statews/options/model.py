"""The options of one WebSocket connection: an immutable, validated pydantic model.

Invariants (h11 style: what holds for every :class:`Options` that exists):

- It was validated: there is no way to hold an invalid one. Models are frozen and refuse
  unknown keys; a copy with changes goes through :func:`resolve_options`, which validates
  again.
- Times are seconds as floats (never hackney's milliseconds); ``None`` means no limit.
- ``host`` is a host name or an IP address, IPv6 stored without brackets; ``path`` starts
  with ``/``, may carry a query, and is ASCII without spaces, control characters or ``#``.
- ``headers`` is a tuple of ``(name, value)`` string pairs: names are HTTP tokens, values
  hold no control character (so no CR/LF injection), and no name in
  :data:`~statews.options.schema.RESERVED_HEADERS` (the opening handshake owns those).
- Every failure is an :class:`~statews.core.errors.OptionsError` naming the option by its dotted
  path (``ssl_options.cafile``) and saying what was expected; a pydantic
  ``ValidationError`` never escapes :class:`Options` construction, :meth:`Options.from_url`
  or :func:`resolve_options` (``model_validate`` stays pydantic's raw API).

Option groups (``connect_options``, ``ssl_options``) are sub-models, so new groups and
fields are added without touching the machinery here. The value types and their rules
live in :mod:`statews.options.schema`.
"""

from __future__ import annotations

import difflib
import functools
import ssl
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from ..core.deflate import DeflateSettings
from ..core.errors import OptionsError
from .redact import masked
from .schema import (
    PATH,
    Active,
    ALPNProtocols,
    Count,
    Delay,
    FileName,
    Headers,
    Host,
    HTTP2Mode,
    IPAddress,
    Port,
    Protocols,
    ProxySetting,
    RequestPath,
    Seconds,
    Size,
    WindowBits,
    input_json_schema,
    invalid,
)
from .tlscontext import create_context
from .url import invalid_at, url_fields

# Every printable ASCII character: quote() keeps these and percent-encodes the rest.

__all__ = [
    "ConnectOptions",
    "DeflateOptions",
    "Options",
    "SSLOptions",
    "json_schema",
    "options_error",
    "resolve_options",
]

# --- models ----------------------------------------------------------------------------


class _Model(BaseModel):
    """Base of every options model: frozen, strict about keys, OptionsError on failure."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    #: Where the model sits inside :class:`Options`, to name options in errors.
    _group: ClassVar[tuple[str, ...]] = ()

    def __init__(self, /, **data: Any) -> None:
        """Validate ``data``.

        Raises:
            OptionsError: an option is invalid or unknown.
        """
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise options_error(exc, group=self._group) from None

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        return cls.expand(value)

    @classmethod
    def expand(cls, value: object) -> object:
        """``value`` given for this group as the mapping it stands for (a group may
        accept a shorthand); anything else as it is. Also used when merging overrides."""
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() mask secrets as statews check does: a logged Options is safe.
        for name, value in super().__repr_args__():
            yield name, value if name is None else masked(dotted((*self._group, name)), value)

    def __setattr__(self, name: str, value: Any) -> None:
        """Options are immutable: :func:`resolve_options` makes a changed copy.

        Raises:
            OptionsError: always.
        """
        option = dotted((*self._group, name))
        raise OptionsError(
            f"{option}: options are immutable; use resolve_options(options, {name}=...)",
            option=option,
        )

    # Marked as pydantic's own __init__ so that nested validation and model_validate
    # keep building sub-models directly (with full error locations) instead of calling
    # this wrapper, which would turn an error into an opaque "Value error".
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


class ConnectOptions(_Model):
    """How the TCP connection is opened."""

    _group = ("connect_options",)

    nodelay: bool = Field(
        default=True, description="Set TCP_NODELAY: send small frames at once (no Nagle delay)."
    )
    keepalive: bool = Field(default=False, description="Set SO_KEEPALIVE on the socket.")
    local_address: IPAddress | None = Field(
        default=None,
        description="Local IP address to bind before connecting; None lets the OS choose.",
    )
    happy_eyeballs_delay: Delay | None = Field(
        default=0.25,
        description="Seconds before racing the next resolved address (RFC 8305); "
        "None tries one address at a time.",
    )


class DeflateOptions(_Model):
    """permessage-deflate (RFC 7692) parameters, used when ``compression`` is ``"deflate"``."""

    _group = ("deflate",)

    client_max_window_bits: WindowBits | None = Field(
        default=None,
        description="LZ77 window (bits) we promise to compress with, 9-15; None offers the "
        "bare parameter and lets the server choose.",
    )
    server_max_window_bits: WindowBits | None = Field(
        default=None,
        description="Largest window (bits) the server may compress with, 9-15; None: no limit.",
    )
    client_no_context_takeover: bool = Field(
        default=False, description="Compress each outgoing message with a fresh context."
    )
    server_no_context_takeover: bool = Field(
        default=False, description="Ask the server to compress each message with a fresh context."
    )
    compress_level: int = Field(
        default=6, ge=0, le=9, description="zlib compression level for outgoing messages (0-9)."
    )
    mem_level: int = Field(
        default=8, ge=1, le=9, description="zlib memLevel for the compressor (1-9)."
    )
    threshold: int = Field(
        default=128,
        ge=0,
        description="Outgoing messages (first frames) shorter than this are sent uncompressed.",
    )

    def settings(self) -> DeflateSettings:
        """These options as the codec's settings."""
        return DeflateSettings(**self.model_dump())


class SSLOptions(_Model):
    """How TLS is set up when ``transport`` is ``"ssl"``. A ready :class:`ssl.SSLContext`
    given for the whole group stands for ``{"context": ctx}``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _group = ("ssl_options",)

    context: SkipJsonSchema[ssl.SSLContext | None] = Field(
        default=None,
        exclude=True,
        description="A ready ssl.SSLContext, used as is; excludes every option below "
        "except server_hostname. Python API only: not serialised, not in config files.",
    )
    cafile: FileName | None = Field(
        default=None,
        json_schema_extra=PATH,
        description="PEM file of CA certificates to trust instead of the system's.",
    )
    capath: FileName | None = Field(
        default=None,
        json_schema_extra=PATH,
        description="Directory of hashed CA certificates to trust instead of the system's.",
    )
    cadata: str | None = Field(
        default=None, description="PEM text of CA certificates to trust instead of the system's."
    )
    certfile: FileName | None = Field(
        default=None,
        json_schema_extra=PATH,
        description="PEM file with the client certificate (and its key if keyfile is unset).",
    )
    keyfile: FileName | None = Field(
        default=None,
        json_schema_extra=PATH,
        description="PEM file with the client certificate's private key.",
    )
    password: SecretStr | None = Field(
        default=None, description="Password decrypting the client's private key."
    )
    verify: bool = Field(
        default=True,
        description="Verify the server certificate and host name. False turns both off: "
        "for tests only.",
    )
    server_hostname: Host | None = Field(
        default=None,
        description="Name for SNI and certificate matching; None uses host.",
    )
    alpn_protocols: ALPNProtocols | None = Field(
        default=None, description='ALPN protocols to offer, e.g. ["http/1.1"]; None offers none.'
    )

    @classmethod
    def expand(cls, value: object) -> object:
        """A ready context stands for ``{"context": context}``; other values as they are."""
        return {"context": value} if isinstance(value, ssl.SSLContext) else value

    @model_validator(mode="after")
    def _consistent(self) -> SSLOptions:
        if self.context is not None:
            # Options that configure a context would be silently ignored next to a ready one.
            clash = sorted(self.model_fields_set - {"context", "server_hostname"})
            if clash:
                raise invalid(f"context cannot be combined with {', '.join(clash)}")
        if self.certfile is None:
            for name in ("keyfile", "password"):
                if getattr(self, name) is not None:
                    raise invalid(f"{name} needs certfile")
        return self

    def create_context(self) -> ssl.SSLContext:
        """The SSL context for a connection: ``context`` if given, else a new one built
        as :func:`statews.options.tlscontext.create_context` says.

        Raises:
            OptionsError: a file or PEM text cannot be loaded; ``option`` names it.
        """
        return create_context(self)


class Options(_Model):
    """Everything one connection needs, validated. Build with :func:`resolve_options`,
    :meth:`from_url`, ``Options(host=..., ...)`` or :func:`statews.load_config`.

    ``repr()`` and ``str()`` show secrets masked (:mod:`statews.options.redact`).

    Raises:
        OptionsError: from construction, when an option is invalid or unknown.
    """

    host: Host = Field(
        description="Server host name or IP address; an IPv6 address with or without brackets."
    )
    port: Port | None = Field(
        default=None, description="Server TCP port; None means 80 for tcp and 443 for ssl."
    )
    transport: Literal["tcp", "ssl"] = Field(
        default="tcp", description='"tcp" for ws://, "ssl" for wss:// (TLS).'
    )
    path: RequestPath = Field(
        default="/", description="Request target: starts with '/', may carry a ?query."
    )
    connect_timeout: Seconds | None = Field(
        default=8.0,
        description="Seconds for TCP connect, TLS and the opening handshake together; "
        "None for no limit.",
    )
    recv_timeout: Seconds | None = Field(
        default=None, description="Default seconds recv() waits for a message; None waits forever."
    )
    close_timeout: Seconds | None = Field(
        default=5.0,
        description="Seconds to wait for the peer's Close and the TCP close; None for no limit.",
    )
    max_redirects: Count = Field(
        default=10,
        description="Redirects (301/302/303/307/308) of the opening handshake to follow, "
        "within connect_timeout; 0 reports a redirect as HandshakeRejected.",
    )
    active: Active = Field(
        default=False,
        description="Delivery mode as in hackney_ws: false (passive: recv() pulls), true "
        '(messages pushed as they come) or "once" (push one, then passive).',
    )
    headers: Headers = Field(
        default=(),
        description="Extra request headers: a mapping or a list of [name, value] pairs, kept "
        "in order. Names are HTTP tokens; the handshake's own headers are refused; a Host "
        "here replaces the generated one.",
    )
    protocols: Protocols = Field(
        default=(), description="Subprotocols to offer in Sec-WebSocket-Protocol, by preference."
    )
    control_frames: bool = Field(
        default=False,
        description="Also deliver Ping and Pong frames to the application, as hackney_ws "
        "does (pings are answered either way; a Close always ends the connection).",
    )
    max_frame_size: Size | None = Field(
        default=16 * 2**20,
        description="Largest incoming frame payload in bytes (else close 1009); None for no limit.",
    )
    max_message_size: Size | None = Field(
        default=64 * 2**20,
        description="Largest incoming message in bytes, after decompression (else close 1009); "
        "None for no limit.",
    )
    fragment_size: Size | None = Field(
        default=None,
        description="Split outgoing messages into frames of at most this many payload bytes; "
        "None sends each message as one frame.",
    )
    max_queue: Size = Field(
        default=16,
        description="Complete messages buffered in passive mode before the reader stops "
        "reading the socket.",
    )
    closing_buffer_size: Size = Field(
        default=4 * 2**20,
        description="Bytes of data messages that may arrive while closing and be kept: "
        "once closing, the reader reads on until the peer's Close whatever the inbox "
        "holds, keeping what arrives for recv() or the owner; from the first message past "
        "this many bytes the rest is dropped, counted in ConnectionClosed.dropped_messages "
        "and dropped_bytes, and logged as a warning.",
    )
    write_limit: Size = Field(
        default=64 * 1024,
        description="Bytes queued for the writer before send() waits (back-pressure).",
    )
    compression: Literal["deflate"] | None = Field(
        default="deflate",
        description='Offer permessage-deflate ("deflate") or no compression (null).',
    )
    deflate: DeflateOptions = Field(
        default_factory=DeflateOptions, description="permessage-deflate parameters."
    )
    ping_interval: Seconds | None = Field(
        default=20.0,
        description="Seconds between keepalive pings; None sends none.",
    )
    ping_timeout: Seconds | None = Field(
        default=20.0,
        description="Seconds to wait for a keepalive ping's pong before failing the connection "
        "with 1011; None waits forever.",
    )
    connect_options: ConnectOptions = Field(
        default_factory=ConnectOptions, description="TCP connection options."
    )
    ssl_options: SSLOptions = Field(
        default_factory=SSLOptions,
        description='TLS options, used when transport is "ssl". In Python, a ready '
        'ssl.SSLContext here stands for {"context": ctx}.',
    )
    proxy: ProxySetting = Field(
        default="auto",
        description="Proxy to tunnel through: an http://, https://, socks5:// (we resolve the "
        "host) or socks5h:// (the proxy resolves it) URL, user:password@ for authentication; "
        '"auto" takes it from the environment (wss_proxy/ws_proxy, then https_proxy/'
        "http_proxy, then all_proxy, no_proxy exempting hosts); null connects directly. An "
        "https:// proxy is verified with ssl_options.",
    )
    unix_path: FileName | None = Field(
        default=None,
        json_schema_extra=PATH,
        description="Connect over this Unix domain socket instead of TCP (and no proxy); "
        "host and port still make the Host header.",
    )
    http2: HTTP2Mode = Field(
        default="never",
        description='WebSockets over HTTP/2 (RFC 8441): "never" upgrades over HTTP/1.1; '
        '"auto" offers h2 by ALPN (wss only) and uses RFC 8441 when the server selects h2 and '
        'enables extended CONNECT, else falls back to HTTP/1.1; "always" fails when RFC 8441 '
        "is not available (over ws://: HTTP/2 with prior knowledge). WebSockets to one origin "
        "started in one nursery share one HTTP/2 connection.",
    )

    def __init__(self, /, **data: Any) -> None:
        """Validate ``data``. A ``url`` key is read as :func:`resolve_options` reads it
        in a mapping: the URL first, the other keys on top.

        Raises:
            OptionsError: an option or the URL is invalid, or an option is unknown.
        """
        if "url" in data:
            data = _explicit(resolve_options(data))
        super().__init__(**data)

    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]  # as in _Model

    @property
    def secure(self) -> bool:
        """Whether the connection uses TLS (``wss://``)."""
        return self.transport == "ssl"

    @property
    def effective_port(self) -> int:
        """``port``, or the transport's default: 443 for ssl, 80 for tcp."""
        if self.port is not None:
            return self.port
        return 443 if self.secure else 80

    @property
    def url(self) -> str:
        """The ``ws://`` or ``wss://`` URL; IPv6 in brackets, default port omitted."""
        host = self.host
        if ":" in host:
            host = "[" + host.replace("%", "%25") + "]"  # RFC 6874 zone identifier
        default = 443 if self.secure else 80
        port = "" if self.port in (None, default) else f":{self.port}"
        return f"{'wss' if self.secure else 'ws'}://{host}{port}{self.path}"

    @classmethod
    def from_url(cls, url: str, /, **overrides: Any) -> Options:
        """Options for ``url`` (``ws://`` or ``wss://``), then ``overrides`` on top.

        The scheme sets ``transport``; a missing port means the default; a query stays in
        ``path``. ``user:password@`` in the URL becomes an ``Authorization: Basic`` header
        appended to ``headers``. Fragments and other schemes are refused.

        Raises:
            OptionsError: the URL or an override is invalid (``option`` is ``"url"`` for
                problems in the URL itself).
        """
        return resolve_options(url, **overrides)


# --- building and merging --------------------------------------------------------------


def resolve_options(value: Options | Mapping[str, Any] | str, /, **overrides: Any) -> Options:
    """The one way the connection turns what the user gave into :class:`Options`.

    ``value`` is ready :class:`Options`, a mapping of options (which may hold a ``"url"``
    key: the URL first, the other keys on top), or a URL string. ``overrides`` are
    applied last; an override that is a mapping for a group (``ssl_options={...}``)
    changes only the keys it names. The result is validated again as a whole.

    Raises:
        OptionsError: the result would be invalid; the message names the option.
    """
    if isinstance(value, Options) and not overrides:
        return value
    key = _cache_key(value, overrides)
    if key is not None:
        return _resolve_cached(key)
    return _resolve(value, overrides)


def _resolve(value: object, overrides: Mapping[str, Any]) -> Options:
    try:
        return build_options(value, overrides)
    except ValidationError as exc:
        raise options_error(exc) from None


#: Override values whose equality is their identity of meaning (``1 == True`` is why the
#: type is part of the key); anything else (lists, contexts, mappings) is not cached.
_SCALARS = (str, int, float, bool, type(None))


def _cache_key(value: object, overrides: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The key of :func:`_resolve_cached` for a URL string and scalar overrides, or None.

    Options are frozen, so connections made from the same URL and overrides can share one
    model: the per-connect validation (~40 us) and ~3 KB per connection are saved.
    """
    if type(value) is not str or "@" in value:  # credentials are not kept past their use
        return None
    items: list[tuple[str, type, Any]] = []
    for name, given in overrides.items():
        if type(given) not in _SCALARS:
            return None
        items.append((name, type(given), given))
    return (value, *sorted(items, key=lambda item: item[0]))


@functools.lru_cache(maxsize=64)
def _resolve_cached(key: tuple[Any, ...]) -> Options:
    """:func:`_resolve` of the URL and overrides in ``key`` (failures are not cached)."""
    return _resolve(key[0], {name: given for name, _, given in key[1:]})


def build_options(value: object, overrides: Mapping[str, Any]) -> Options:
    """:func:`resolve_options` reporting failures as pydantic's ``ValidationError``.

    For :mod:`statews.options.config`, which reports them with the file's key path; anything
    else should call :func:`resolve_options`.
    """
    credentials = None
    if isinstance(value, str):
        data, credentials = url_fields(value)
    elif isinstance(value, Options):
        data = _explicit(value)
    elif isinstance(value, Mapping):
        data = dict(value)
        if "url" in data:
            url_data, credentials = url_fields(data.pop("url"))
            data = _merge(url_data, data)
    else:
        raise invalid_at(
            (),
            f"Input should be Options, a mapping of options or a URL string, "
            f"got {type(value).__name__}",
        )
    extra = dict(overrides)
    if "url" in extra:
        url_data, credentials = url_fields(extra.pop("url"))
        data = _merge(data, url_data)
    data = _merge(data, extra)
    options = Options.model_validate(data)
    if credentials is None:
        return options
    if any(name.lower() == "authorization" for name, _ in options.headers):
        raise invalid_at(("url",), "has user:password but an Authorization header is given too")
    data["headers"] = (*options.headers, ("Authorization", credentials))
    return Options.model_validate(data)


def _groups(model: type[BaseModel]) -> dict[str, type[_Model]]:
    """The fields of ``model`` that are option groups (sub-models), by name."""
    return {
        name: field.annotation
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, _Model)
    }


def _explicit(model: BaseModel) -> dict[str, Any]:
    # Only the fields that were given: defaults stay defaults, and checks that depend on
    # what was given (SSLOptions.context) see the same set again.
    return {name: getattr(model, name) for name in model.model_fields_set}


def _merge(
    base: dict[str, Any], layer: Mapping[str, Any], model: type[BaseModel] = Options
) -> dict[str, Any]:
    """``base`` with ``layer`` on top; a mapping for a group updates that group's keys."""
    result = dict(base)
    groups = _groups(model)
    for key, given in layer.items():
        under = result.get(key)
        if isinstance(under, BaseModel):
            under = _explicit(under)
        value = groups[key].expand(given) if key in groups else given
        if key in groups and isinstance(value, Mapping) and isinstance(under, Mapping):
            result[key] = _merge(dict(under), value, groups[key])
        else:
            result[key] = value
    return result


# --- errors ----------------------------------------------------------------------------


def dotted(path: Sequence[str | int]) -> str:
    """``("connections", "a", "headers", 0)`` as ``connections.a.headers[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def options_error(
    exc: ValidationError,
    *,
    group: tuple[str, ...] = (),
    prefix: str = "",
    key_base: tuple[str | int, ...] = (),
) -> OptionsError:
    """Convert pydantic's ``exc`` into one :class:`OptionsError`.

    Each problem reads ``<key path>: <what was expected>``, several are joined by ``; ``;
    an unknown key reads ``<parent>: unknown option 'x': did you mean 'y'?``. ``group``
    is where the failing model sits in :class:`Options` (for sub-models built alone),
    ``key_base`` what comes before the option in the message (a config file's
    ``connections.<name>``), ``prefix`` what starts the message (the file name).
    ``option`` is the first problem's option path, without ``key_base`` or list indexes.
    """
    problems = []
    option = None
    for error in exc.errors(include_url=False):
        # pydantic tags union members in locations ("function-after[...]"); not options.
        loc = group + tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        where: tuple[str | int, ...] = key_base + loc
        if error["type"] == "extra_forbidden" and loc:
            what = f"unknown option {str(loc[-1])!r}{_suggestion(loc[:-1], loc[-1])}"
            where = where[:-1]
        elif error["type"] == "invalid_key" and loc:
            what = f"option names should be strings, got {loc[-1]!r}"
            loc, where = loc[:-1], where[:-1]
        elif error["type"] == "missing" and loc == ("host",):
            what = "Field required (give host or a url)"
        else:
            what = error["msg"].removeprefix("Value error, ")
        problems.append(f"{dotted(where)}: {what}" if where else what)
        if option is None and loc:
            option = dotted([p for p in loc if isinstance(p, str)])  # no list indexes
    message = "; ".join(problems)
    return OptionsError(f"{prefix}: {message}" if prefix else message, option=option)


def _suggestion(parent: tuple[str | int, ...], unknown: str | int) -> str:
    model: type[BaseModel] = Options
    for part in parent:
        group = _groups(model).get(str(part))
        if group is None:
            return ""
        model = group
    names = list(model.model_fields)
    if model is Options:
        names.append("url")
    match = difflib.get_close_matches(str(unknown), names, n=1)
    return f": did you mean {match[0]!r}?" if match else ""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one connection's options as mappings and config files give them.

    :class:`Options`'s schema without ``ssl_options.context`` (Python only), with the
    input forms of ``headers`` and ``active`` and the ``url`` key: ``host`` or ``url`` is
    required. Deterministic: the same schema on every call.
    """
    return input_json_schema(Options)
