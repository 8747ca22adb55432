"""One self-contained HTML page per evaluation: plots (matplotlib, embedded as base64 PNG),
tables, and the worst errors as thumbnails -- so a person can *see* what fails.

Nothing is fetched when the page is opened: no scripts, no fonts, no links to files.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import import_optional
from faceprint.evaluation import metrics as M
from faceprint.evaluation.identification import IdentificationResult
from faceprint.evaluation.verification import VerificationResult
from faceprint.types import Box

__all__ = ["identification_report", "pairs_needed", "place_threshold_labels", "verification_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;
background:#fff;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #d5d9e2;padding:4px 9px;text-align:right}
th{background:#f1f3f8}td.l,th.l{text-align:left}.muted{color:#667}.warn{color:#a15c00}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{border:1px solid #e3e6ee;max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:10px}.err{border:1px solid #d5d9e2;padding:6px;width:250px;font-size:.8em;overflow-wrap:anywhere}
.err img{width:112px;height:112px;object-fit:cover;background:#eee}.kpi{display:flex;gap:14px;flex-wrap:wrap}
.kpi div{background:#f4f6fb;border:1px solid #e0e4ee;border-radius:6px;padding:8px 14px}.kpi b{font-size:1.3em;display:block}
.kpi div.unresolved{background:#f7f7f7;border-style:dashed;color:#8a8f99}.kpi div.unresolved b{color:#9aa0aa}
.kpi small{display:block;font-size:.78em;max-width:16em}
code{background:#f3f4f7;padding:0 3px}
"""


# --- small helpers --------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def _pct(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def _f(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def _ratio(groups: dict[str, Any], which: str) -> str:
    if groups[f"{which}_ratio_unbounded"]:
        return "unbounded (a group has no errors)"
    return _f(groups[f"{which}_max_min_ratio"], 2)


def pairs_needed(rate: float) -> int:
    """The fewest impostor pairs (or non-mated probes) that can show an error rate of ``rate``:
    at least one of them must be able to pass."""
    return math.ceil(1.0 / rate - 1e-9)


def _kpis(cards: Sequence[tuple[str, str, str | None]]) -> str:
    """The headline cards; a card with a note is one the data cannot resolve: greyed, and the
    note says why, so it is not read like the others."""
    out = []
    for name, value, note in cards:
        if note is None:
            out.append(f"<div>{_e(name)}<b>{value}</b></div>")
        else:
            out.append(f'<div class="unresolved" title="{_e(note)}">{_e(name)}<b>{value}</b><small>{_e(note)}</small></div>')
    return '<div class="kpi">' + "".join(out) + "</div>"


def _unresolved_note(rate: float, have: int, what: str) -> str:
    return f"not resolvable: needs ≥{pairs_needed(rate):,} {what} (has {have:,})"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure():
    matplotlib = import_optional("matplotlib", "eval")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig, alt: str) -> str:
    plt = _figure()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _jpeg_data(data: bytes | None, alt: str) -> str:
    if not data:
        return f'<img alt="{_e(alt)} (no image)" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
    return f'<img alt="{_e(alt)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode("ascii")}">'


def _thumbnail(file: str, box: Box | None, size: int = 112) -> bytes | None:
    """A JPEG of the face box (widened by 30%) of an image file, or of the whole image."""
    from PIL import Image

    from faceprint.errors import FaceprintError
    from faceprint.imageio import load_image

    try:
        rgb = load_image(file)
    except FaceprintError:
        return None
    h, w = rgb.shape[:2]
    if box is not None:
        cx, cy = box.center
        side = max(box.width, box.height) * 1.3
        x1, y1 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x2, y2 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if x2 > x1 and y2 > y1:
            rgb = rgb[y1:y2, x1:x2]
    img = Image.fromarray(np.ascontiguousarray(rgb))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _page(title: str, subtitle: str, sections: list[str]) -> str:
    from faceprint import __version__ as version

    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class=\"muted\">{subtitle}<br>faceprint {_e(version)}, {_e(when)}</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write_report(path: str | os.PathLike, page: str) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)


# --- verification ---------------------------------------------------------------------------
def _roc_det(result: VerificationResult) -> list[str]:
    plt = _figure()
    same = result.pairs.same
    n_imp, n_gen = int((~same).sum()), int(same.sum())
    if n_imp == 0 or n_gen == 0:
        return ['<p class="warn">ROC and DET need both genuine and impostor pairs.</p>']
    floor = 0.5 / n_imp
    curves = [("clean", result.scores)]
    curves += [(p.perturbation.label, p.scores) for p in result.perturbations]
    tb = result.time_budget
    if tb is not None and tb.scores is not None and tb.scores is not result.scores:
        curves.append((f"budget: {tb.chosen.label}", tb.scores))
    fig1, ax1 = plt.subplots(figsize=(5.4, 4.2))
    fig2, ax2 = plt.subplots(figsize=(5.4, 4.2))
    at_floor = []  # each curve's TAR where no impostor passes yet: the lowest the plot shows
    det_points = 0
    for i, (name, scores) in enumerate(curves):
        far, tar, _ = M.roc_curve(scores, same)
        style = {"lw": 2.0 if i == 0 else 1.2, "alpha": 1.0 if i == 0 else 0.8}
        ax1.step(np.maximum(far, floor), tar, where="post", label=name, **style)
        at_floor.append(float(tar[far == 0].max()) if (far == 0).any() else 0.0)
        frr = 1 - tar
        ok = frr > 0
        det_points += int((ok & (far > 0)).sum())
        ax2.plot(np.maximum(far[ok], floor), frr[ok], label=name, **style)
    if det_points == 0:
        ax2.text(0.5, 0.5, "no genuine pair is rejected\nat any FAR shown: nothing to plot", ha="center",
                 va="center", fontsize=9, color="dimgrey", transform=ax2.transAxes)
    # The card's points: at the FAR measured here when the data resolves it; otherwise (no
    # impostor pair passes) at the card's own FAR, hollow, in the shaded region the data cannot
    # show -- so FAR 1e-3..1e-5 stand a decade apart instead of piling up at the left edge.
    xmin = floor
    card_tars = []
    for row in result.calibration:
        if row["far_measured"] is None or row["frr_measured"] is None:
            continue
        tar_here = 1 - row["frr_measured"]
        card_tars.append(tar_here)
        if row["resolvable"] and row["n_false_accepts"] > 0:
            x, face = max(row["far_measured"], floor), "black"
        else:
            x, face = row["far_nominal"], "white"
            xmin = min(xmin, x)
        ax1.plot(x, tar_here, "o", mec="black", mfc=face, ms=5, zorder=5)
        ax1.annotate(f"card {row['far_nominal']:g}", (x, tar_here), fontsize=7, xytext=(3, -10),
                     textcoords="offset points")
    xmin = xmin / 2 if xmin < floor else floor
    resolution = 1.0 / n_imp
    if xmin < resolution:
        ax1.axvspan(xmin, resolution, color="grey", alpha=0.12, lw=0)
    ax1.axvline(resolution, color="grey", ls=":", lw=1)
    # Zoom on the TARs shown: the curves' lowest (at the floor) and the card's points.
    lowest = min([*card_tars, *at_floor], default=0.0)
    ax1.set(xscale="log", xlim=(xmin, 1), ylim=(max(0.0, lowest - 0.15 * max(1.0 - lowest, 0.02)), 1.005),
            xlabel="FAR (false match rate, log)", ylabel="TAR (true accept rate)",
            title=f"ROC ({n_gen} genuine, {n_imp} impostor pairs)")
    ax1.text(resolution, 0.02, " 1 impostor", fontsize=7, color="grey", transform=ax1.get_xaxis_transform())
    ax2.set(xscale="log", yscale="log", xlim=(floor, 1), xlabel="FMR", ylabel="FNMR", title="DET (log axes)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.25)
        if len(curves) > 1:
            ax.legend(fontsize=7, loc="lower right" if ax is ax1 else "upper right")
    return [_png(fig1, "ROC curve"), _png(fig2, "DET curve")]


def _histogram(scores: np.ndarray, mated: np.ndarray, marks: list[tuple[float, str]], title: str,
               labels: tuple[str, str] = ("genuine (mated)", "impostor (non-mated)")) -> str:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(10.8, 3.6))
    finite = scores[np.isfinite(scores)]
    lo = float(np.percentile(finite, 0.2)) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    at = [m for m, _ in marks if m is not None and math.isfinite(m)]
    bins = np.linspace(min([lo, *at]), max([hi, *at]) + 1e-6, 80)
    for sel, name, colour in ((mated, labels[0], "tab:green"), (~mated, labels[1], "tab:red")):
        vals = scores[sel & np.isfinite(scores)]
        if vals.size:
            ax.hist(np.clip(vals, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5, color=colour,
                    label=f"{name}: {vals.size}")
    ax.set(xlabel="cosine similarity", ylabel="density", title=title)
    legend = ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.25)
    place_threshold_labels(ax, marks, avoid=[legend])
    return _png(fig, title)


def place_threshold_labels(ax: Any, marks: Sequence[tuple[float | None, str]], *, avoid: Sequence[Any] = (),
                           fontsize: float = 7, max_rows: int = 12) -> list[Any]:
    """Draw a dashed line at each finite mark of ``marks`` and its label, laid out so that no
    two labels (nor a label and an ``avoid`` artist, e.g. the legend) overlap: each label goes
    into the highest row where it fits, measured with the figure's renderer (thresholds a few
    hundredths apart, like a card's FAR 1e-2 and the EER, get rows of their own). Labels that
    would run past the right edge are drawn to the left of their line. Returns the labels."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    taken = [a.get_window_extent(renderer) for a in avoid]
    labels = []
    finite = sorted(((v, n) for v, n in marks if v is not None and math.isfinite(v)), key=lambda m: m[0])
    for value, name in finite:
        ax.axvline(value, color="black", lw=1, ls="--")
        for row in range(max_rows):
            text = ax.text(value, 0.97 - row * 0.08, f" {name} ", va="top", ha="left", fontsize=fontsize,
                           transform=ax.get_xaxis_transform(),
                           bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.8})
            box = text.get_window_extent(renderer)
            if box.x1 > axes_box.x1:
                text.set_horizontalalignment("right")
                box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken) or row == max_rows - 1:
                break
            text.remove()
        taken.append(box)
        labels.append(text)
    return labels


def _perturbation_plot(result: VerificationResult) -> str:
    plt = _figure()
    kinds: dict[str, list] = {}
    for p in result.perturbations:
        kinds.setdefault(p.perturbation.kind, []).append(p)
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.6 * len(kinds), 3.2), squeeze=False)
    base = result.summary
    for ax, (kind, items) in zip(axes[0], kinds.items()):
        items = sorted(items, key=lambda p: p.perturbation.strength)
        xs = [str(f"{p.perturbation.strength:g}") for p in items]
        ax.plot(["none", *xs], [base["accuracy"], *[p.summary["accuracy"] for p in items]], "o-", label="accuracy")
        key = M.far_key(result.fars[1] if len(result.fars) > 1 else result.fars[0])
        ax.plot(["none", *xs], [base["tar_at_far"][key], *[p.summary["tar_at_far"][key] for p in items]], "s--",
                label=f"TAR@FAR {key}")
        ax.set(title=kind, xlabel="strength", ylim=(0, 1.02))
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=7, loc="lower left")
    return _png(fig, "accuracy as the probe image degrades")


def _budget_plot(tb) -> str:
    plt = _figure()
    rows = [r for r in tb.candidates if r["ms_per_image"] is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.2))
    labels = [r["label"] for r in rows][::-1]
    values = [r["ms_per_image"] for r in rows][::-1]
    colours = ["tab:green" if r["label"] == tb.chosen.label else ("tab:blue" if r["fits"] else "tab:grey") for r in rows][::-1]
    ax.barh(labels, values, color=colours)
    ax.axvline(tb.budget_ms, color="red", ls="--", lw=1)
    ax.text(tb.budget_ms, 0.01, f" budget {tb.budget_ms:g} ms", color="red", fontsize=8, va="bottom",
            transform=ax.get_xaxis_transform())
    ax.set(xlabel="ms per image, measured here (one process)", title="configurations (green: chosen)")
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig, "time per image of each configuration")


def _worst_pairs(result: VerificationResult, n: int) -> str:
    same, scores = result.pairs.same, result.scores
    rec = result.run.records
    imp = np.flatnonzero(~same)
    gen = np.flatnonzero(same)
    worst_imp = imp[np.argsort(-scores[imp], kind="stable")[:n]]
    worst_gen = gen[np.argsort(scores[gen], kind="stable")[:n]]
    cache: dict[str, bytes | None] = {}

    def thumb(path: str) -> str:
        if path not in cache:
            cache[path] = _thumbnail(result.pairs.resolve(path), rec[path].box)
        note = "" if rec[path].status == "ok" else f" ({rec[path].status})"
        return _jpeg_data(cache[path], path + note)

    def card(i: int) -> str:
        a, b = result.pairs.path_a[i], result.pairs.path_b[i]
        flags = [f"{p}: {rec[p].status}" for p in (a, b) if rec[p].status != "ok"]
        return (f'<div class="err">{thumb(a)} {thumb(b)}<br><b>{scores[i]:.4f}</b>'
                + (f' <span class="warn">{_e("; ".join(flags))}</span>' if flags else "")
                + f'<br><span class="muted">{_e(a)}<br>{_e(b)}</span></div>')

    return ("<h3>Highest-scoring impostor pairs (different people)</h3>"
            + _grid([card(int(i)) for i in worst_imp], "No impostor pairs.")
            + "<h3>Lowest-scoring genuine pairs (same person)</h3>"
            + _grid([card(int(i)) for i in worst_gen], "No genuine pairs."))


def _grid(cards: Sequence[str], when_empty: str) -> str:
    """A grid of error cards, or one line that says why there is none (never an empty heading)."""
    if not cards:
        return f'<p class="muted">{_e(when_empty)}</p>'
    return '<div class="grid">' + "".join(cards) + "</div>"


def verification_report(result: VerificationResult, *, n_worst: int = 8) -> str:
    """The HTML page of a verification run."""
    d = result.to_dict()
    s = result.summary
    tar_notes = {M.far_key(p["far"]): None if p["resolvable"] else _unresolved_note(p["far"], p["n_impostor"], "impostor pairs")
                 for p in d["tar_at_far_detail"]}
    kpis: list[tuple[str, str, str | None]] = [
        ("accuracy", _pct(d["accuracy"]) + (f" ± {_pct(d['accuracy_std'])}" if d["accuracy_std"] is not None else ""), None),
        ("AUC", _f(d["auc"], 5), None), ("EER", _pct(d["eer"]), None),
        *[(f"TAR @ FAR {k}", _pct(v), tar_notes.get(k)) for k, v in d["tar_at_far"].items()],
        ("failures", f"{d['failures']} of {d['n_images']} images", None), ("images / s", _f(d["images_per_s"], 1), None),
    ]
    sections = [_kpis(kpis)]
    # The protocol is said once; without folds, as the warning.
    protocol = ('<span class="warn">Accuracy at the best threshold for these same pairs (no folds): the threshold '
                "is tuned on the very pairs it is scored on, so this accuracy is optimistic.</span>"
                if s["optimistic"] else f"{_e(s['accuracy_protocol'])}.")
    sections.append(
        f"<p>{protocol}"
        + f" Pairs with a face not found: the centre crop of the expected face size was embedded "
        f"({_e(d['fallback']['source'])}); {d['failures_detail']['pairs_affected']} pair(s) involve such an image.</p>"
    )
    if d["folds"]:
        sections.append(_table(["fold", "pairs", "threshold (from the other folds)", "accuracy"],
                               [[_e(f["fold"]), f["n_pairs"], _f(f["threshold"]), _pct(f["accuracy"])] for f in d["folds"]]))
    sections.append("<h2>ROC and DET</h2><div class=\"plots\">" + "".join(_roc_det(result)) + "</div>"
                    '<p class="muted">ROC: filled points are the model card\'s thresholds at the FAR measured here; '
                    "hollow ones let no impostor pair through here, so they stand at the card's own FAR, in the "
                    "shaded region left of one impostor pair that this data cannot resolve.</p>")
    sections.append(_table(
        ["target FAR", "threshold", "TAR", "FAR achieved", "false accepts", "impostor pairs", "resolvable"],
        [[f"{p['far']:g}", _f(p["threshold"]), _pct(p["tar"]), _pct(p["far_achieved"], 3), p["n_false_accepts"],
          p["n_impostor"], "yes" if p["resolvable"] else
          f'<span class="warn">no: needs ≥{pairs_needed(p["far"]):,} impostor pairs</span>']
         for p in d["tar_at_far_detail"]]))
    marks = [(r["threshold"], f"card FAR {r['far_nominal']:g}") for r in result.calibration]
    marks.append((s["eer_threshold"], "EER"))
    sections.append("<h2>Scores</h2>" + _histogram(result.scores, result.pairs.same, marks,
                                                    "similarity of genuine and impostor pairs"))
    sections.append("<h2>Calibration check</h2>")
    if result.calibration:
        sections.append(f"<p>The thresholds of <code>{_e(d['model'])}</code>'s model card (calibrated on "
                        f"{_e(d['calibration_source'])}) and the error rates they give on this data.</p>")
        sections.append(_table(
            ["FAR on the card", "threshold", "FAR measured here", "FRR measured here", "false accepts", "impostor pairs"],
            [[f"{r['far_nominal']:g}", _f(r["threshold"]), _pct(r["far_measured"], 3)
              + ("" if r["resolvable"] else ' <span class="warn">(below resolution)</span>'),
              _pct(r["frr_measured"]), r["n_false_accepts"], r["n_impostor"]] for r in result.calibration]))
    else:
        sections.append("<p class=\"warn\">This model has no calibrated thresholds: run "
                        "<code>faceprint calibrate</code> to make some.</p>")
    sections.append("<h2>Per group</h2>")
    if d.get("groups"):
        g = d["groups"]
        sections.append(f"<p>Column <code>{_e(g['column'])}</code>, one global threshold {_f(g['threshold'])} "
                        f"({_e(g['threshold_source'])}). FMR max/min ratio: {_ratio(g, 'fmr')}; "
                        f"FNMR max/min ratio: {_ratio(g, 'fnmr')}. {_e(g['note'])}</p>")
        sections.append(_table(["group", "genuine pairs", "impostor pairs", "FMR", "FNMR"],
                               [[_e(r["group"]), r["n_genuine"], r["n_impostor"], _pct(r["fmr"], 3), _pct(r["fnmr"])]
                                for r in g["per_group"]]))
    else:
        sections.append("<p class=\"muted\">No <code>--group-by</code> column given. (LFW carries no demographic "
                        "or capture-condition labels; add a column to your pairs file to see error rates per group.)</p>")
    if result.perturbations:
        key = M.far_key(result.fars[1] if len(result.fars) > 1 else result.fars[0])
        rows = [["none (clean)", _pct(s["accuracy"]), _f(s["auc"], 5), _pct(s["tar_at_far"][key]), d["failures"]]]
        rows += [[_e(p.perturbation.label), _pct(p.summary["accuracy"]), _f(p.summary["auc"], 5),
                  _pct(p.summary["tar_at_far"][key]), p.failures] for p in result.perturbations]
        sections.append("<h2>Robustness: the probe side degraded</h2><p>The second image of each pair "
                        "(<code>path_b</code>) is degraded; the first stays clean.</p>"
                        + _table(["probe", "accuracy", "AUC", f"TAR@FAR {key}", "failures"], rows)
                        + _perturbation_plot(result))
    if result.time_budget is not None:
        tb = result.time_budget
        td = tb.to_dict()
        sections.append(f"<h2>Time budget: {tb.budget_ms:g} ms per image</h2><p>Chosen: <b>{_e(tb.chosen.label)}</b> "
                        f"({'fits' if tb.fits else 'does not fit'}{'; ' + _e(tb.note) if tb.note else ''}). Accuracy under the budget "
                        f"{_pct(td.get('accuracy'))} vs {_pct(d['accuracy'])} unconstrained.</p>")
        sections.append(_table(["configuration", "ms / image", "p90 ms", "fits"],
                               [[_e(r["label"]) + (f' <span class="muted">(= {_e(r["same_as"])})</span>' if r["same_as"] else ""),
                                 _f(r["ms_per_image"], 1), _f(r.get("ms_p90"), 1), "yes" if r["fits"] else "no"]
                                for r in tb.candidates]))
        sections.append(_budget_plot(tb))
    sections.append("<h2>Worst errors</h2>" + _worst_pairs(result, n_worst))
    if d["failures_detail"]["images"]:
        sections.append("<h2>Images without a detected face</h2>" + _table(
            ["image", "reason"], [[_e(x["path"]), _e(x["reason"])] for x in d["failures_detail"]["images"]], left=2))
    subtitle = (f"{_e(d['pairs_file'])}: {d['n_pairs']} pairs ({d['n_genuine']} genuine, {d['n_impostor']} impostor), "
                f"{d['n_images']} images. Pipeline: {_e(result.spec.label)}, embedder <code>{_e(d['model'])}</code>, "
                f"{_e(result.spec.select)} face.")
    return _page("Verification report", subtitle, sections)


# --- identification -------------------------------------------------------------------------
def identification_report(result: IdentificationResult, *, n_worst: int = 8) -> str:
    """The HTML page of an identification run."""
    plt = _figure()
    d = result.to_dict()
    fnir_notes = {M.far_key(p["fpir"]): None if p["resolvable"]
                  else _unresolved_note(p["fpir"], p["n_nonmated"], "non-mated probes") for p in d["open_set"]}
    kpis: list[tuple[str, str, str | None]] = [
        ("rank-1", _pct(d["rank1"]), None), ("rank-5", _pct(d["rank5"]), None),
        *[(f"FNIR @ FPIR {k}", _pct(v), fnir_notes.get(k)) for k, v in d["fnir_at_fpir"].items()],
        ("mated / non-mated probes", f"{d['n_mated_probes']} / {d['n_nonmated_probes']}", None),
        ("failures", f"{d['failures']} probes", None)]
    sections = [_kpis(kpis)]
    sections.append(f"<p>{d['n_subjects_enrolled']} subjects enrolled with up to {d['enrol_per_subject']} image(s) each "
                    f"({d['n_templates']} templates, {d['enrolment_rejected']} enrolment image(s) rejected, "
                    f"{d['failed_to_enrol_subjects']} subject(s) failed to enrol). {_e(d['notes'])}</p>")
    fig, ax = plt.subplots(figsize=(5.4, 4.0))
    ranks = np.arange(1, len(result.cmc) + 1)
    ax.plot(ranks, result.cmc, "o-", ms=3)
    ax.set(xlabel="rank", ylabel="identification rate", title=f"CMC ({d['n_mated_probes']} mated probes)",
           ylim=(max(0.0, float(np.nanmin(result.cmc)) - 0.05) if len(result.cmc) else 0, 1.005))
    ax.grid(True, alpha=0.25)
    plots = [_png(fig, "CMC curve")]
    mated = result.mated_scores[np.isfinite(result.mated_scores)]
    nonm = result.nonmated_scores[np.isfinite(result.nonmated_scores)]
    if mated.size or nonm.size:
        scores = np.r_[mated, nonm]
        is_mated = np.r_[np.ones(mated.size, bool), np.zeros(nonm.size, bool)]
        marks = [(p.threshold, f"FPIR {p.fpir_target:g}") for p in result.open_set if p.threshold is not None]
        plots.append(_histogram(scores, is_mated, marks, "mated subject's score vs non-mated top score",
                                ("mated (score of the true subject)", "non-mated (top candidate)")))
    sections.append("<h2>Closed and open set</h2><div class=\"plots\">" + "".join(plots) + "</div>")
    sections.append(_table(
        ["FPIR target", "threshold", "FNIR", "DIR", "FPIR achieved", "non-mated probes", "resolvable"],
        [[f"{p['fpir']:g}", _f(p["threshold"]), _pct(p["fnir"]), _pct(p["dir"]), _pct(p["fpir_achieved"], 3),
          p["n_nonmated"], "yes" if p["resolvable"] else
          f'<span class="warn">no: needs ≥{pairs_needed(p["fpir"]):,} non-mated probes</span>'] for p in d["open_set"]]))
    if d["at_calibrated_threshold"]:
        c = d["at_calibrated_threshold"]
        sections.append(f"<p>At the model card's 1:1 threshold for FAR {c['far']:g} ({_f(c['threshold'])}): "
                        f"FPIR {_pct(c['fpir'], 3)}, FNIR {_pct(c['fnir'])}: {_e(c['note'])}.</p>")
    sections.append(_table(["rank", *[str(k) for k in (1, 2, 3, 5, 10, 20) if k <= len(result.cmc)]],
                           [["identification rate", *[_pct(result.cmc[k - 1]) for k in (1, 2, 3, 5, 10, 20)
                                                      if k <= len(result.cmc)]]]))
    rec = result.run.records

    def probe_img(p: str) -> str:
        return _jpeg_data(_thumbnail(result.ids.resolve(p), rec[p].box), p)

    def cards(items: list[dict[str, Any]], extra) -> list[str]:
        return [
            f'<div class="err">{probe_img(it["probe"])} {_jpeg_data(it.get("candidate_thumbnail"), it["candidate"])}'
            f'<br><b>{it["score"]:.4f}</b> {extra(it)}<br><span class="muted">{_e(it["probe"])} '
            f'({_e(it["probe_identity"])}) → {_e(it["candidate"])}</span></div>'
            for it in items[:n_worst]]

    def rank_note(it: dict[str, Any]) -> str:
        return "true subject at rank " + (str(int(it["mated_rank"])) if it["mated_rank"] else f"&gt; {len(result.cmc)}")

    sections.append(
        "<h2>Worst errors</h2><h3>Strangers with the highest top score</h3>"
        + _grid(cards(result.worst["nonmated"], lambda it: ""), "No non-mated probes (strangers) to show.")
        + "<h3>Mated probes not found at rank 1 (highest wrong score first)</h3>"
        + _grid(cards(result.worst["mated_misses"], rank_note),
                f"None: every one of the {d['n_mated_probes']} mated probes found its true subject at rank 1."))
    if d["enrolment_rejections"]:
        sections.append("<h2>Enrolment rejections</h2>" + _table(
            ["image", "identity", "reason"],
            [[_e(r["path"]), _e(r["identity"]), _e(r["code"])] for r in d["enrolment_rejections"]], left=3))
    subtitle = (f"{_e(d['identities_file'])}: {d['n_images']} images of {d['n_identities']} identities. Pipeline: "
                f"{_e(result.spec.label)}, embedder <code>{_e(d['model'])}</code>.")
    return _page("Identification report", subtitle, sections)
