"""Built-in source connectors for retro, one folder per vendor.

Each folder holds the same parts:
- `__init__.py`: the `Connector` subclass (metadata and four one-line methods), registered
  under the `retro.connectors` entry point group like any third-party connector;
- `read.py`: file mode, the vendor's own JSON (or CSV) in a bundle, recognised by content;
- `live.py`: live mode (harvest and `sources check`), where the vendor has an API.

`_support.py` holds what several connectors share (a retrying JSON client, a keyed collector).
Connectors import only retro's interface modules: `retro.models`, `retro.errors`,
`retro.connector` and `retro.retry`, never the pipeline.
"""
