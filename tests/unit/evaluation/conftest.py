"""Fixtures shared by the evaluation tests: the synthetic pair list and embedding of
test_protocols.py (defined there, next to the helpers they use), offered to test_report.py."""

from tests.unit.evaluation.test_protocols import fake_embedding, pairs

__all__ = ["fake_embedding", "pairs"]
