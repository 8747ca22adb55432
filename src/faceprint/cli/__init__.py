"""The ``faceprint`` command line: thin wrappers that parse, call the library, and format.

``common`` is the bottom (consoles, shared options, errors -> exit status, progress, ``--jobs``);
one module per command group above it (``images``, ``gallery``, ``people``, ``evaluation``,
``service``); ``root`` assembles them. The console script is ``faceprint.cli:main``.
"""

from faceprint.cli.root import app, main

__all__ = ["app", "main"]
