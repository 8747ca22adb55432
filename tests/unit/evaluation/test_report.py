"""The HTML reports' content (synthetic embeddings, no models, no data): unresolvable headline
rates are marked in their card, the protocol warning is said once, threshold labels do not
overlap, the ROC separates the card's points, and no section is left empty. The browser test
is in tests/integration/evaluation/test_eval_cli.py."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import faceprint.evaluation as E
from faceprint.evaluation import metrics as M
from faceprint.evaluation.report import (
    identification_report,
    pairs_needed,
    place_threshold_labels,
    verification_report,
)
from tests.unit.evaluation.test_protocols import fake_run, identity_vectors

pytest.importorskip("matplotlib")


def kpi_cards(page: str) -> dict[str, str]:
    """Each headline card's name -> its whole <div ...> tag and text."""
    block = page.split('<div class="kpi">', 1)[1].split("</div></div>", 1)[0] + "</div>"
    cards = re.findall(r"(<div[^>]*>)([^<]+)<b>(.*?)</b>(.*?)</div>", block)
    return {name.strip(): tag + value + rest for tag, name, value, rest in cards}


def test_pairs_needed():
    assert pairs_needed(1e-1) == 10 and pairs_needed(1e-3) == 1000 and pairs_needed(3e-4) == 3334


def test_an_unresolvable_tar_at_far_is_greyed_in_its_card(pairs, fake_embedding):
    # 12 impostor pairs: FAR 1e-1 is resolvable (1.2 pairs), 1e-2 and 1e-3 are not.
    page = verification_report(E.evaluate_pairs(pairs, E.PipelineSpec.create()))
    cards = kpi_cards(page)
    assert 'class="unresolved"' not in cards["TAR @ FAR 1e-1"]
    for key, needed in (("1e-2", "100"), ("1e-3", "1,000")):
        card = cards[f"TAR @ FAR {key}"]
        assert 'class="unresolved"' in card and f"not resolvable: needs ≥{needed} impostor pairs (has 12)" in card
    assert 'class="unresolved"' not in cards["accuracy"]
    # the table below says how many too
    assert "no: needs ≥1,000 impostor pairs" in page


def test_the_optimistic_warning_is_said_once(pairs, fake_embedding):
    page = verification_report(E.evaluate_pairs(replace(pairs, folds=None), E.PipelineSpec.create()))
    assert page.count("optimistic") == 1
    with_folds = verification_report(E.evaluate_pairs(pairs, E.PipelineSpec.create()))
    assert "optimistic" not in with_folds and "3-fold" in with_folds


def test_threshold_labels_are_laid_out_apart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.8, 3.6))
    ax.set_xlim(-0.2, 1.0)
    legend = ax.legend(handles=ax.bar([0.0], [1.0], label="impostor (non-mated): 300"), loc="upper left")
    # a card's FAR 1e-1 and 1e-2 a hair apart, the EER between them, one far off near the right edge
    marks = [(0.2455, "card FAR 0.01"), (0.2455, "card FAR 0.01 again"), (0.2539, "EER"), (0.2501, "card FAR 0.1"),
             (0.99, "card FAR 1e-05"), (-0.19, "left"), (None, "none"), (float("nan"), "nan")]
    labels = place_threshold_labels(ax, marks, avoid=[legend])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert len(boxes) == 6  # None and NaN are not drawn
    legend_box = legend.get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert not a.overlaps(legend_box), labels[i].get_text()
        assert a.x1 <= axes_box.x1 + 1, labels[i].get_text()  # the right one is drawn left of its line
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    plt.close(fig)


def test_the_roc_puts_unresolved_card_points_at_their_own_far(pairs, fake_embedding, monkeypatch):
    """The card's FARs 1e-3..1e-5 have no false accept here: they are drawn (hollow) at the
    card's FAR, a decade apart, not all at the plot's left edge."""
    import matplotlib.axes

    plotted: list[tuple[float, float, str]] = []
    original = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        if len(args) == 3 and args[2] == "o":
            plotted.append((float(args[0]), float(args[1]), kwargs.get("mfc", "")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    result = E.evaluate_pairs(pairs, E.PipelineSpec.create())
    verification_report(result)
    by_far = {row["far_nominal"]: row for row in result.calibration}
    hollow = sorted(x for x, _, face in plotted if face == "white")
    unresolved = sorted(f for f, row in by_far.items() if row["n_false_accepts"] == 0 or not row["resolvable"])
    assert len(unresolved) >= 3 and hollow == pytest.approx(unresolved)
    assert len(set(np.round(np.log10(hollow), 3))) == len(hollow)  # distinct x: a decade apart


def identification_result(tmp_path: Path, mated_misses: list[dict], n_nonmated: int) -> E.IdentificationResult:
    lines = ["path,identity"] + [f"p{i}/{k}.jpg,p{i}" for i in range(6) for k in range(3)]
    ids_file = tmp_path / "ids.csv"
    ids_file.write_text("\n".join(lines) + "\n")
    ids = E.read_identities(ids_file)
    run = fake_run(identity_vectors(list(ids.paths)))
    mated = np.full(12, 0.8)
    nonmated = np.linspace(0.1, 0.3, n_nonmated)
    ranks = np.ones(12, int)
    open_set = [M.fnir_at_fpir(mated, ranks, nonmated, f) for f in (1e-1, 1e-2)]
    cmc = np.ones(20)
    worst = {"nonmated": [{"probe": "p5/0.jpg", "probe_identity": "p5", "candidate": "p0", "score": 0.3}],
             "mated_misses": mated_misses}
    return E.IdentificationResult(
        ids=ids, spec=E.PipelineSpec.create(), model_id="m@1", enrol_per_subject=1, n_subjects_enrolled=4,
        n_templates=4, rejections=[], fte_subjects=[], stranger_sources={"held_out": 2}, mated_ranks=ranks,
        mated_scores=mated, nonmated_scores=nonmated, cmc=cmc, open_set=open_set, at_card=None, run=run,
        mated_paths=[], nonmated_paths=[], worst=worst)


def test_identification_report_marks_unresolvable_fnir_and_ends_with_no_empty_section(tmp_path):
    page = identification_report(identification_result(tmp_path, [], n_nonmated=30))
    cards = kpi_cards(page)
    assert 'class="unresolved"' not in cards["FNIR @ FPIR 1e-1"]
    assert "not resolvable: needs ≥100 non-mated probes (has 30)" in cards["FNIR @ FPIR 1e-2"]
    # every heading is followed by content, the last one included
    body = page.split("</p>", 1)[1]
    for heading in re.finditer(r"<h([23])>([^<]*)</h[23]>", body):
        after = body[heading.end():heading.end() + 40]
        # an h2 may open with an h3; nothing may be followed by a heading of its level or above, or the end
        stops = "<h2>" if heading.group(1) == "2" else "<h[23]>"
        assert not re.match(rf"\s*({stops}|<div class=\"grid\"></div>|</body>)", after), heading.group(2)
    assert "None: every one of the 12 mated probes found its true subject at rank 1." in page
    assert '<div class="grid"></div>' not in page


def test_identification_report_shows_mated_misses_when_there_are_some(tmp_path):
    miss = {"probe": "p1/2.jpg", "probe_identity": "p1", "candidate": "p2", "score": 0.5, "mated_rank": 3}
    page = identification_report(identification_result(tmp_path, [miss], n_nonmated=30))
    assert "true subject at rank 3" in page and "None: every one" not in page
