"""The client's :class:`ssl.SSLContext`, built from :class:`~statews.options.model.SSLOptions`.

Invariants: verification is on unless ``verify`` is false; the given CA sources replace
the system store; every failure to load a file or PEM text is an
:class:`~statews.core.errors.OptionsError` naming the option (``ssl_options.cafile``, ...),
never a bare :class:`ssl.SSLError` or :class:`OSError`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..core.errors import OptionsError

if TYPE_CHECKING:
    from .model import SSLOptions

__all__ = ["create_context"]


def create_context(options: SSLOptions) -> ssl.SSLContext:
    """The SSL context that ``options`` describe: ``context`` if given, else a new one.

    A new context starts from :func:`ssl.create_default_context` (certificate and
    host name verification on); ``cafile``/``capath``/``cadata`` replace the system
    CA store, ``certfile``/``keyfile``/``password`` add a client certificate,
    ``verify=False`` turns verification off, ``alpn_protocols`` are offered.

    Raises:
        OptionsError: a file or PEM text cannot be loaded; ``option`` names it
            (``ssl_options.cafile``, ...).
    """
    if options.context is not None:
        return options.context
    context = _new_context(options)
    if options.capath is not None and options.cafile is not None:
        with _loading("capath", options.capath):
            context.load_verify_locations(capath=_directory(options.capath))
    if options.cadata is not None and (options.cafile is not None or options.capath is not None):
        with _loading("cadata", None):
            context.load_verify_locations(cadata=options.cadata)
    if options.certfile is not None:
        if options.keyfile is not None and not os.path.isfile(options.keyfile):
            # load_cert_chain reports one error for both files; name the missing one.
            raise _load_error("keyfile", options.keyfile, "No such file")
        password = None if options.password is None else options.password.get_secret_value()
        with _loading("certfile", options.certfile):
            context.load_cert_chain(options.certfile, options.keyfile, password)
    if not options.verify:
        context.check_hostname = False  # must precede CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    if options.alpn_protocols is not None:
        context.set_alpn_protocols(list(options.alpn_protocols))
    return context


def _new_context(options: SSLOptions) -> ssl.SSLContext:
    # create_default_context loads the system store only when no CA source is given,
    # so the first given source is passed to it and the others are loaded after.
    if options.cafile is not None:
        with _loading("cafile", options.cafile):
            return ssl.create_default_context(cafile=options.cafile)
    if options.capath is not None:
        with _loading("capath", options.capath):
            return ssl.create_default_context(capath=_directory(options.capath))
    if options.cadata is not None:
        with _loading("cadata", None):
            return ssl.create_default_context(cadata=options.cadata)
    return ssl.create_default_context()


def _directory(path: str) -> str:
    # OpenSSL accepts a missing CA directory silently and then trusts nothing.
    if not os.path.isdir(path):
        raise NotADirectoryError(20, "Not a directory", path)
    return path


def _load_error(option: str, path: str | None, reason: object) -> OptionsError:
    what = "cannot load" if path is None else f"cannot load {path!r}"
    return OptionsError(f"ssl_options.{option}: {what}: {reason}", option=f"ssl_options.{option}")


@contextmanager
def _loading(option: str, path: str | None) -> Iterator[None]:
    """Report a failure to load ``option`` as an OptionsError naming it."""
    try:
        yield
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason: object = exc
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
            reason = exc.strerror  # "No such file or directory", without "[Errno 2]"
        raise _load_error(option, path, reason) from exc
