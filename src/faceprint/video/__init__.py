"""Faces in video: decode a file, webcam or stream, track faces, name each track, report events.

Layers inside the package (import-linter enforces them): ``watch`` drives everything;
``annotate``, ``proctor`` and ``enroll`` use ``identity``; ``identity`` uses ``track``;
``track``, ``cuts`` and ``events`` use only ``source`` and ``types``. Only ``source`` opens videos.
"""
