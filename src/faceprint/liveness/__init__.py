"""Liveness (presentation-attack detection): an active challenge-response checked from landmarks,
pose and identity across a sequence of frames, with an optional user-supplied passive model."""
