"""Secrets in options, masked for display: the one masking behind ``repr()`` and ``str()``
of the options models and :func:`statews.dump_options` (``statews check``).

Masked: the values of headers named like a secret (Authorization, Proxy-Authorization,
Cookie, anything with auth, token, secret, password, api-key, session, credential or
signature), such query parameters in ``path``, the proxy URL's password and
``ssl_options.password``. Each reads :data:`MASK`; nothing else is changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from ..core.proxyconf import redact_proxy_setting

__all__ = ["MASK", "SECRET_OPTIONS", "is_secret_name", "mask_headers", "mask_query", "masked"]

#: What a masked secret is shown as.
MASK: Final = "***"

# Header and query parameter names whose values are secrets.
_SECRET_NAME = re.compile(
    r"auth|token|secret|passw|cookie|api[-_]?key|session|credential|signature", re.IGNORECASE
)


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter called ``name`` holds a secret."""
    return _SECRET_NAME.search(name) is not None


def mask_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``headers`` with the values of secret-named ones masked, order kept."""
    return tuple((name, MASK if is_secret_name(name) else value) for name, value in headers)


def mask_query(path: str) -> str:
    """``path`` with the values of secret-named query parameters masked."""
    target, question, query = path.partition("?")
    if not question:
        return path
    parameters = []
    for parameter in query.split("&"):
        name, equals, _ = parameter.partition("=")
        secret = equals and is_secret_name(unquote(name))
        parameters.append(f"{name}={MASK}" if secret else parameter)
    return f"{target}?{'&'.join(parameters)}"


def _mask_set(value: object) -> str | None:
    return None if value is None else MASK


def _mask_proxy(setting: str | None) -> str | None:
    return redact_proxy_setting(setting, MASK)


#: The options that may hold a secret, by dotted path, and how each is shown masked.
SECRET_OPTIONS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "path": mask_query,
    "headers": mask_headers,
    "proxy": _mask_proxy,
    "ssl_options.password": _mask_set,
}


def masked(option: str, value: Any) -> Any:
    """``value`` of the option at the dotted path ``option``, as shown with secrets masked."""
    mask = SECRET_OPTIONS.get(option)
    return value if mask is None else mask(value)
