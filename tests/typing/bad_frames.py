"""Frames hold the right payload types."""

import statews

text = statews.Text(b"x")  # E: [arg-type]
binary = statews.Binary("x")  # E: [arg-type]
close = statews.Close("1000")  # E: [arg-type]
ping = statews.Ping(data="x")  # E: [arg-type]
