"""Connections made from the same URL and scalar overrides share one frozen Options."""

from __future__ import annotations

import pytest

from statews import OptionsError
from statews.options.model import resolve_options


def test_same_url_and_overrides_share_one_model() -> None:
    first = resolve_options("ws://127.0.0.1:9/a", ping_interval=None, compression=None)
    again = resolve_options("ws://127.0.0.1:9/a", compression=None, ping_interval=None)
    assert again is first
    assert resolve_options("ws://127.0.0.1:9/b", ping_interval=None) is not first


def test_equal_values_of_another_type_are_not_confused() -> None:
    as_int = resolve_options("ws://127.0.0.1:9/", close_timeout=1)
    as_float = resolve_options("ws://127.0.0.1:9/", close_timeout=1.0)
    assert as_int == as_float
    with pytest.raises(OptionsError, match="close_timeout"):
        resolve_options("ws://127.0.0.1:9/", close_timeout=True)
    with pytest.raises(OptionsError, match="close_timeout"):  # the failure is not cached
        resolve_options("ws://127.0.0.1:9/", close_timeout=True)


def test_unhashable_overrides_and_credentials_are_resolved_afresh() -> None:
    first = resolve_options("ws://127.0.0.1:9/", protocols=["chat"])
    assert first.protocols == ("chat",)
    assert resolve_options("ws://127.0.0.1:9/", protocols=["chat"]) is not first
    secret = "ws://user:pw@127.0.0.1:9/"
    assert resolve_options(secret) is not resolve_options(secret)
    assert ("Authorization", "Basic dXNlcjpwdw==") in resolve_options(secret).headers
