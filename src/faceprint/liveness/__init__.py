"""Liveness (presentation-attack detection): an active challenge-response checked from landmarks,
pose and identity across a sequence of frames, with an optional user-supplied passive model.

- :mod:`.challenge`: :class:`~.challenge.Challenge` (steps ``blink``, ``turn_left``, ``turn_right``
  in the user's own sense; ``turn_left`` is ``yaw > 0`` in an un-mirrored frame) and
  :func:`~.challenge.random_challenge` (a CSPRNG, no two equal steps in a row).
- :mod:`.signals`: per-frame signals (the main face, other faces, eye aspect ratio, yaw,
  embedding) read by a :class:`~.signals.SignalReader`.
- :mod:`.actions`: blink and head-turn detectors over those signals.
- :mod:`.check`: :class:`~.check.LivenessChecker`, frame by frame to a :class:`~.check.LivenessResult`
  (passed, or a stable failure code: ``no_face``, ``multiple_faces``, ``timeout``,
  ``wrong_action``, ``identity_changed``, ``face_jumped``, ``expired``, ``incomplete``).
- :mod:`.passive`: :class:`~.passive.PassiveModel`, a user's ONNX anti-spoofing model and sidecar
  (:mod:`faceprint.models.onnx.antispoof`), reported beside the active result, never deciding it.

What it stops: a still photo (no blink, no turn), a recording replayed against a new random
challenge (wrong order), a face that changes midway. What it does not: a live accomplice, a
3-D mask, a deepfake or recordings injected through a virtual camera, spliced to the prompts.
"""
