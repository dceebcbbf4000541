"""The options of a connection, declared once as pydantic models, and where they come from.

:mod:`.model` is the model (:class:`~.model.Options` and its groups) and
:func:`~.model.resolve_options` (keywords, mappings, URLs); :mod:`.schema` holds the
annotated field types and their validators; :mod:`.modes` the delivery mode and its one
parser; :mod:`.redact` what counts as a secret and how it is masked; :mod:`.config`
configuration files (TOML, JSON, YAML) and the JSON Schema of a whole file;
:mod:`.tlscontext` turns ``ssl_options`` into an :class:`ssl.SSLContext`.

Layer rule: built on :mod:`statews.core` only; no trio, no lifecycle, no runtime.

Where to add things: a new option -> a field on the model in :mod:`.model` (with its
type in :mod:`.schema` if it needs a validator); the JSON Schema, ``docs/options.md``,
configuration files and ``statews connect -o`` pick it up.
"""
