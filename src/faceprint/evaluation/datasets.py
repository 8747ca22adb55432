"""Benchmark files: labelled pairs (``path_a,path_b,same[,fold][,GROUP...]``) and identity
lists (``path,identity``), read from CSV; and the progress callback the protocols report to."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from faceprint.errors import InvalidArgumentError

__all__ = ["IdentityList", "PairList", "ProgressFactory", "csv_kind", "no_progress", "read_identities", "read_pairs"]

#: ``progress(label, total)`` starts a task and returns ``advance(n)``.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def no_progress(label: str, total: int) -> Callable[[int], None]:
    """A :data:`ProgressFactory` that reports nothing."""
    return lambda n: None


_TRUE = {"1", "true", "yes", "y", "same", "t"}
_FALSE = {"0", "false", "no", "n", "different", "diff", "f"}


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"{path} does not exist or is not a file", details={"path": str(path)})
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if any((v or "").strip() for v in r.values())]
            columns = [c.strip() for c in (reader.fieldnames or [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidArgumentError(f"{path} is not a readable CSV file: {exc}", details={"path": str(path)}) from None
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]
    return columns, rows


def _need(columns: list[str], wanted: Sequence[str], path: Path, what: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidArgumentError(
            f"{path} is not a {what} file: column(s) {', '.join(missing)} missing (it has: {', '.join(columns) or 'none'})",
            details={"path": str(path), "missing": missing, "columns": columns},
        )


def csv_kind(path: Path) -> str:
    """``"pairs"`` (path_a, path_b, same) or ``"identities"`` (path, identity)."""
    columns, _ = _read_csv(path)
    if {"path_a", "path_b", "same"} <= set(columns):
        return "pairs"
    if {"path", "identity"} <= set(columns):
        return "identities"
    raise InvalidArgumentError(
        f"{path}: expected columns path_a,path_b,same (pairs) or path,identity (identities); it has: {', '.join(columns)}",
        details={"path": str(path), "columns": columns},
    )


@dataclass(frozen=True)
class PairList:
    """Labelled pairs: paths as listed (relative to ``root`` unless absolute)."""

    path_a: tuple[str, ...]
    path_b: tuple[str, ...]
    same: np.ndarray  # bool
    root: Path
    source: str
    folds: np.ndarray | None = None
    groups: tuple[str, ...] | None = None
    group_by: str | None = None
    n_listed: int = 0  # pairs in the file (before any subsampling)

    def __len__(self) -> int:
        return len(self.path_a)

    def resolve(self, path: str) -> str:
        return str(self.root / path)

    def images(self) -> list[str]:
        """Every distinct image, in first-seen order."""
        return list(dict.fromkeys([*self.path_a, *self.path_b]))

    def subsample(self, max_pairs: int | None) -> PairList:
        """An evenly spaced subset of ``max_pairs`` pairs (keeps the folds' and labels' mix
        when the file lists them in blocks, as LFW does)."""
        if not max_pairs or max_pairs >= len(self):
            return self
        idx = np.unique(np.linspace(0, len(self) - 1, max_pairs).round().astype(int))
        def pick(seq: Sequence[str]) -> tuple[str, ...]:
            return tuple(seq[i] for i in idx)

        return replace(
            self, path_a=pick(self.path_a), path_b=pick(self.path_b), same=self.same[idx],
            folds=None if self.folds is None else self.folds[idx],
            groups=None if self.groups is None else pick(self.groups),
        )


def read_pairs(path: str | os.PathLike, root: str | os.PathLike | None = None, group_by: str | None = None) -> PairList:
    """Read ``path_a,path_b,same[,fold][,GROUP...]``. ``root`` defaults to the CSV's folder."""
    path = Path(path)
    columns, rows = _read_csv(path)
    _need(columns, ("path_a", "path_b", "same"), path, "pairs (path_a,path_b,same)")
    if group_by is not None and group_by not in columns:
        raise InvalidArgumentError(
            f"--group-by {group_by!r}: {path} has no such column (it has: {', '.join(columns)})",
            details={"group_by": group_by, "columns": columns},
        )
    if not rows:
        raise InvalidArgumentError(f"{path} lists no pairs", details={"path": str(path)})
    same = []
    for i, r in enumerate(rows, start=2):
        v = r["same"].lower()
        if v in _TRUE:
            same.append(True)
        elif v in _FALSE:
            same.append(False)
        else:
            raise InvalidArgumentError(f"{path} line {i}: same={r['same']!r} is not 1/0 (or true/false)")
        if not r["path_a"] or not r["path_b"]:
            raise InvalidArgumentError(f"{path} line {i}: empty path")
    folds = None
    if "fold" in columns and any(r["fold"] for r in rows):
        raw = [r["fold"] for r in rows]
        if not all(raw):
            raise InvalidArgumentError(f"{path}: some pairs have a fold and some do not")
        folds = np.array([int(v) for v in raw]) if all(v.lstrip("-").isdigit() for v in raw) else np.array(raw)
    groups = tuple(r[group_by] or "(blank)" for r in rows) if group_by else None
    return PairList(
        path_a=tuple(r["path_a"] for r in rows), path_b=tuple(r["path_b"] for r in rows),
        same=np.array(same, dtype=bool), root=Path(root) if root is not None else path.parent,
        source=str(path), folds=folds, groups=groups, group_by=group_by, n_listed=len(rows),
    )


@dataclass(frozen=True)
class IdentityList:
    paths: tuple[str, ...]
    identities: tuple[str, ...]
    root: Path
    source: str
    n_listed: int = 0

    def resolve(self, path: str) -> str:
        return str(self.root / path)

    def by_identity(self) -> dict[str, list[str]]:
        """identity -> its images in file order (identities in first-seen order)."""
        out: dict[str, list[str]] = {}
        for p, i in zip(self.paths, self.identities):
            out.setdefault(i, []).append(p)
        return out

    def subsample(self, max_identities: int | None) -> IdentityList:
        """Every k-th identity (sorted by name), ``max_identities`` of them."""
        groups = self.by_identity()
        if not max_identities or max_identities >= len(groups):
            return self
        names = sorted(groups)
        keep = {names[i] for i in np.unique(np.linspace(0, len(names) - 1, max_identities).round().astype(int))}
        pairs = [(p, i) for p, i in zip(self.paths, self.identities) if i in keep]
        return replace(self, paths=tuple(p for p, _ in pairs), identities=tuple(i for _, i in pairs))


def read_identities(path: str | os.PathLike, root: str | os.PathLike | None = None) -> IdentityList:
    """Read ``path,identity[,...]``. ``root`` defaults to the CSV's folder. Repeated paths
    are read once (the first identity given wins; a conflicting one is an error)."""
    path = Path(path)
    columns, rows = _read_csv(path)
    _need(columns, ("path", "identity"), path, "identities (path,identity)")
    seen: dict[str, str] = {}
    for i, r in enumerate(rows, start=2):
        if not r["path"] or not r["identity"]:
            raise InvalidArgumentError(f"{path} line {i}: empty path or identity")
        prior = seen.setdefault(r["path"], r["identity"])
        if prior != r["identity"]:
            raise InvalidArgumentError(f"{path}: {r['path']} is listed as both {prior!r} and {r['identity']!r}")
    if not seen:
        raise InvalidArgumentError(f"{path} lists no images", details={"path": str(path)})
    return IdentityList(tuple(seen), tuple(seen.values()), Path(root) if root is not None else path.parent,
                        str(path), len(rows))
