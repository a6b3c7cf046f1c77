"""kit: per-frame action understanding in video (notebooks + an importable engine).

Importing ``kit`` is cheap: submodules (``kit.data``, ``kit.temporal.model``, ...) are imported explicitly.
"""
__version__ = "0.1.0"
