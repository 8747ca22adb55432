"""``faceprint watch SOURCE``: faces in a video file, a webcam or a stream, tracked and named.

Thin like the rest of the CLI: parse, call :class:`faceprint.video.watch.Watcher`, format.
``--json`` writes JSON Lines (one event a line, as it happens; the summary last), else a line
per event and a table of tracks at the end. Ctrl-C ends the tracks and prints the summary
(exit 130). Galleries as elsewhere: a gallery named (``--gallery``, ``$FACEPRINT_GALLERY``) must
exist; with none named and no default gallery, tracks are followed but not named; enrolling
(``--enroll-track``) creates the gallery if needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape
from rich.text import Text

from faceprint.cli import common
from faceprint.cli.common import CalibrationOpt, DetectorOpt, LandmarksOpt, MinScoreOpt, err, out
from faceprint.errors import InvalidArgumentError
from faceprint.pipeline import DEFAULT_FAR

if TYPE_CHECKING:
    from faceprint.gallery import Gallery
    from faceprint.pipeline import Analyzer
    from faceprint.video.events import Event
    from faceprint.video.source import VideoWriter
    from faceprint.video.types import VideoSource
    from faceprint.video.watch import Watcher, WatchOptions, WatchSummary

#: ``watch``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()


@app.command()
def watch(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="A video file, a webcam index (0, 1 ...) or a stream URL (rtsp://, http(s)://)."),
    far: Optional[float] = typer.Option(None, "--far", help=f"False-accept rate to name tracks at (default {DEFAULT_FAR:g})."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Explicit cosine-similarity threshold."),
    every: int = typer.Option(1, "--every", min=1, metavar="N", help="Detect faces on every Nth frame; boxes are predicted between."),
    annotated: Optional[Path] = typer.Option(
        None, "--out", metavar="ANNOTATED.mp4|.webm|.avi",
        help="Write the video with boxes, track ids and names (.webm plays in browsers; .mp4 is MPEG-4 part 2).",
    ),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, metavar="N", help="Stop after this many frames."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", min=0.0, metavar="S", help="Stop after this many seconds of video."),
    min_hits: int = typer.Option(3, "--min-hits", min=1, metavar="N", help="Detections before a track is reported."),
    max_age: float = typer.Option(0.5, "--max-age", min=0.0, metavar="S", help="Seconds a track may go unseen before it ends."),
    no_cuts: bool = typer.Option(False, "--no-cuts", help="Do not end tracks at scene cuts (colour-histogram jumps)."),
    enroll_track: Optional[int] = typer.Option(
        None, "--enroll-track", metavar="N", min=1,
        help="Enrol track N's best faces under --name (ids are the same on every run of a file with the same options).",
    ),
    name: Optional[str] = typer.Option(None, "--name", help="The person to enrol track N as."),
    enroll_frames: int = typer.Option(5, "--enroll-frames", min=1, max=50, metavar="N", help="How many of the track's best faces to enrol."),
    proctor: Optional[str] = typer.Option(
        None, "--proctor", metavar="SUBJECT",
        help="Report when no face, several faces, a face not SUBJECT's, or SUBJECT looking away is seen (start, end, duration).",
    ),
    yaw_limit: float = typer.Option(30.0, "--yaw-limit", metavar="DEGREES", help="--proctor: degrees of head turn that count as looking away."),
    pitch_limit: float = typer.Option(
        25.0, "--pitch-limit", metavar="DEGREES", help="--proctor: degrees of head tilt up or down that count as looking away.",
    ),
    min_duration: float = typer.Option(1.0, "--min-duration", min=0.0, metavar="S", help="--proctor: seconds a condition must last to be reported."),
    detector: Optional[str] = DetectorOpt,
    landmarks: Optional[str] = LandmarksOpt,
    min_score: Optional[float] = MinScoreOpt,
    calibration: Optional[Path] = CalibrationOpt,
    as_json: bool = typer.Option(False, "--json", help="Write JSON Lines: one event per line as it happens, the summary last."),
) -> None:
    """Track the faces of a video, webcam or stream and name each track from the gallery."""
    with common.errors_to_exit(as_json):
        from faceprint.video.identity import IdentityPolicy
        from faceprint.video.proctor import ProctorPolicy
        from faceprint.video.track import TrackerConfig
        from faceprint.video.watch import WatchOptions

        if (enroll_track is None) != (name is None):
            raise InvalidArgumentError("--enroll-track N and --name NAME go together")
        if annotated is not None:
            from faceprint.video.source import check_video_extension

            check_video_extension(annotated)  # before the source, the gallery and the models are opened
        if annotated is not None and _same_file(source, annotated):
            raise InvalidArgumentError(f"--out {annotated} is SOURCE itself: writing it would destroy the video being read",
                                       details={"source": source, "out": str(annotated)})
        options = WatchOptions(
            every=every, far=far, threshold=threshold, tracker=TrackerConfig(max_age_s=max_age, min_hits=min_hits),
            identity=IdentityPolicy(), cuts=not no_cuts,
            proctor=None if proctor is None else ProctorPolicy(proctor, yaw_limit=yaw_limit, pitch_limit=pitch_limit,
                                                               min_duration_s=min_duration),
            enroll_track=enroll_track, enroll_name=name, enroll_frames=enroll_frames,
        )
        try:
            summary = _watch_source(ctx, source, options, annotated, max_frames, max_seconds, detector, landmarks,
                                    min_score, calibration, far, threshold, as_json)
        except KeyboardInterrupt:  # while opening the source, the gallery or the models
            err.print("interrupted before the video was watched")
            raise typer.Exit(common.EXIT_INTERRUPTED) from None
        if annotated is not None and not as_json:
            err.print(f"wrote {escape(str(annotated))}", markup=True, highlight=False, soft_wrap=True)
        if summary.interrupted:
            raise typer.Exit(common.EXIT_INTERRUPTED)


def _watch_source(ctx: typer.Context, source: str, options: WatchOptions, annotated: Path | None, max_frames: int | None,
                  max_seconds: float | None, detector: str | None, landmarks: str | None, min_score: float | None,
                  calibration: Path | None, far: float | None, threshold: float | None, as_json: bool) -> WatchSummary:
    """Open the source, then the gallery and the models, and watch; the summary."""
    from faceprint.video.source import VideoWriter, open_source
    from faceprint.video.watch import Watcher

    video = open_source(source, max_frames=max_frames)  # a bad SOURCE is said before any model loads
    try:
        gallery = _gallery(ctx, options, detector, landmarks)
        try:
            analyzer = _analyzer(gallery, detector, landmarks, min_score, calibration)
            if gallery is not None:
                common.check_decision(analyzer.embedder_card, far, threshold)
            elif far is not None or threshold is not None:
                raise InvalidArgumentError("--far and --threshold name tracks from a gallery, and there is none here")
            watcher = Watcher(analyzer, gallery, options)  # its refusals (--proctor Nobody) before --out is written
            writer = None if annotated is None else VideoWriter(annotated, video.info.fps or 30.0,
                                                                (video.info.width, video.info.height))
            try:
                summary = _run(video, watcher, options, writer, max_seconds, as_json)
            finally:
                if writer is not None:
                    writer.close()
        finally:
            if gallery is not None:
                gallery.close()
    finally:
        video.close()
    return summary


def _same_file(source: str, out: Path) -> bool:
    """Whether ``out`` is the file ``source`` names (a link or another spelling included)."""
    try:
        return Path(source).resolve() == out.resolve() or (out.exists() and os.path.samefile(source, out))
    except (OSError, ValueError):  # SOURCE not a file (a webcam index, a URL): nothing to overwrite
        return False


def _gallery(ctx: typer.Context, options: WatchOptions, detector: str | None, landmarks: str | None) -> Gallery | None:
    """The gallery the command line names, if any (see the module's docstring)."""
    from faceprint.gallery import Gallery

    if options.enroll_track is not None:  # adds to the gallery: may create it
        location = common.gallery_path(ctx)
        new = not common.gallery_holds_one(location)
        gallery = Gallery.open(location, create=True, detector=detector, landmarks=landmarks)
        if new:
            common.note_created(location)
        return gallery
    named = common.global_options(ctx).gallery is not None
    if named or options.proctor is not None or common.gallery_exists(common.gallery_path(ctx)):
        path = common.existing_gallery_path(ctx, create_with="enroll NAME IMAGE...")
        return Gallery.open(path, create=False, detector=detector, landmarks=landmarks)
    err.print("note: no gallery, so tracks are followed but not named (--gallery PATH names one)", style="dim",
              highlight=False, soft_wrap=True)
    return None


def _analyzer(gallery: Gallery | None, detector: str | None, landmarks: str | None, min_score: float | None,
              calibration: Path | None) -> Analyzer:
    from faceprint.pipeline import Analyzer

    analyzer = gallery.analyzer if gallery is not None else Analyzer(detector=detector, landmarks=landmarks)
    common.tune_analyzer(analyzer, min_score, calibration)
    return analyzer


def _run(video: VideoSource, watcher: Watcher, options: WatchOptions, writer: VideoWriter | None,
         max_seconds: float | None, as_json: bool) -> WatchSummary:
    """Watch ``video`` to its end (or ``max_seconds``, or Ctrl-C), writing events as they come;
    the summary. An enrolment that failed is raised after the summary is written."""
    from faceprint.video.watch import annotated

    show = _show_json if as_json else _show_text
    show(watcher.started(video.info))
    interrupted = False
    try:
        for frame in video:
            if max_seconds is not None and frame.time_s > max_seconds:
                break
            result = watcher.process(frame)
            if writer is not None:
                writer.write(annotated(frame.rgb, result.tracks))
            for event in result.events:
                show(event)
    except KeyboardInterrupt:
        interrupted = True
    for event in watcher.finish(interrupted=interrupted):
        show(event)
    summary = watcher.summary()
    if not as_json:
        _print_summary(summary)
        if interrupted:
            err.print(f"interrupted after {common.plural(summary.frames, 'frame')}; tracks ended there")
    if watcher.enroll_error is not None:
        raise watcher.enroll_error
    if options.enroll_track is not None and not watcher.enrolled_face_ids:  # every crop rejected
        raise typer.Exit(common.EXIT_FAILED)
    return summary


def _show_json(event: Event) -> None:
    print(event.to_json(), flush=True)


def _show_text(event: Event) -> None:
    """One line for the events a person follows; nothing for the start and the summary."""
    head = f"{event.time_s:8.3f} s  frame {event.frame:<6d}"
    who = "" if event.track is None else f"#{event.track}  "
    extra = event.extra
    sim = "" if event.similarity is None else f" ({event.similarity:.3f})"
    if event.event == "video_started":
        threshold = extra.get("threshold")
        decided = "" if threshold is None else f"; named at similarity {threshold:.4f} (FAR {extra.get('far')})"
        err.print(f"watching {escape(str(extra.get('source')))}: {extra.get('width')}x{extra.get('height')}, "
                  f"detecting every {common.plural(int(extra.get('every', 1)), 'frame')}{decided}",
                  markup=True, highlight=False, soft_wrap=True)
        return
    if event.event == "track_started":
        line = f"{who}track started (first seen at frame {extra['first_frame']})"
    elif event.event == "identified":
        line = f"{who}identified {event.identity}{sim}, named at frame {extra['named_at_frame']} ({extra['rule']})"
    elif event.event == "track_ended":
        line = (f"{who}track ended ({extra['reason']}): {event.identity or 'unknown'}{sim}, frames "
                f"{extra['first_frame']}-{extra['last_frame']}, {extra['duration_s']:.1f} s")
    elif event.event == "scene_cut":
        line = "scene cut"
    elif event.event == "proctor_started":
        line = f"{who}proctoring: {extra['kind']} since {extra['start_s']:.3f} s"
    elif event.event == "proctor_ended":
        line = (f"{who}proctoring: {extra['kind']} ended: {extra['start_s']:.3f}-{extra['end_s']:.3f} s "
                f"({extra['duration_s']:.1f} s)")
    elif event.event == "enrolled":
        if extra["error"] is not None:
            return  # raised after the summary, as every error is shown
        rejected = "; ".join(f"{r['path']}: {r['reason']['code']}" for r in extra["rejected"])
        line = (f"{who}enrolled {extra['name']}: {common.plural(len(extra['face_ids']), 'face')}"
                + (f" (rejected {rejected})" if rejected else ""))
    else:
        return
    out.print(Text(f"{head}{line}"), soft_wrap=True)


def _print_summary(summary: WatchSummary) -> None:
    table = common.ResultTable("track", "frames", "seconds", "identity", "similarity", "ended",
                               keep=["identity", "track"], right=["seconds", "similarity"])
    for t in summary.tracks:
        sim = "-" if t["similarity"] is None else f"{t['similarity']:.4f}"
        table.add_row(f"#{t['track']}", f"{t['first_frame']}-{t['last_frame']}", f"{t['duration_s']:.1f}",
                      t["identity"] or Text("unknown", style="dim"), sim, t["end_reason"] or "-")
    table.print()
    if summary.proctor:
        intervals = common.ResultTable("proctoring", "from (s)", "to (s)", "seconds", "track", keep=["proctoring"])
        for p in summary.proctor:
            intervals.add_row(p["kind"], f"{p['start_s']:.2f}", f"{p['end_s']:.2f}", f"{p['duration_s']:.1f}",
                              "-" if p["track"] is None else f"#{p['track']}")
        intervals.print()
    names = ", ".join(summary.identities) or "nobody"
    out.print(f"{common.plural(summary.frames, 'frame')} ({summary.detected_frames:,} detected) in "
              f"{summary.seconds:.1f} s: {summary.fps:.1f} frames/s; {common.plural(len(summary.tracks), 'track')}; "
              f"identified: {names}", markup=False, highlight=False, soft_wrap=False)
