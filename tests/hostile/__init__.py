"""Hostile-peer reliability suite: statews against servers that misbehave on purpose."""
