"""``faceprint liveness SOURCE``: an active liveness check (challenge-response) on a video file,
a stream or a webcam.

A recording cannot answer a challenge drawn after it was made, so a file or stream URL needs
``--challenge`` (the one it was recorded answering: for tests and audits); a webcam index gets a
random challenge whose prompts are printed one step at a time. Thin: frames come from
:func:`faceprint.video.source.open_source`, the check is :class:`faceprint.liveness.check.LivenessChecker`.

Exit status: 0 passed, 1 failed (or a faceprint error), 2 a usage error (a mistyped path:
``video_not_found``), 130 interrupted (Ctrl-C: the result so far is printed, failed ``incomplete``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape

from faceprint.cli import common
from faceprint.cli.common import DetectorOpt, JsonOpt, ModelOpt, err, out
from faceprint.errors import InvalidArgumentError
from faceprint.liveness.challenge import DEFAULT_STEP_TIMEOUT_S, Challenge, random_challenge

if TYPE_CHECKING:  # the models, OpenCV and the gallery load when the command runs, not with every `faceprint`
    from faceprint.liveness.check import LivenessResult

#: ``liveness``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()


@app.command("liveness")
def liveness(
    source: str = typer.Argument(..., help="A video file, a stream URL (rtsp://, http(s)://) or a webcam index (0-9)."),
    challenge_text: Optional[str] = typer.Option(
        None, "--challenge", metavar="STEPS",
        help="The steps, comma-separated: blink[:N], turn_left, turn_right (the user's own left/right). Needed for a "
        "file or stream; a webcam without it gets a random challenge.",
    ),
    steps: int = typer.Option(
        4, "--steps", min=1, max=10,
        help="Steps of a random challenge (webcam); a replay of one earlier check answers 3.0% of 4-step challenges, 7.1% of 3-step ones.",
    ),
    step_timeout: float = typer.Option(DEFAULT_STEP_TIMEOUT_S, "--step-timeout", min=0.1, max=600,
                                       help="Seconds allowed for each step after its prompt."),
    passive_model: Optional[Path] = typer.Option(
        None, "--passive-model", metavar="MODEL.onnx",
        help="A passive anti-spoofing ONNX model (MODEL.json beside it gives its settings); its score is reported, "
        "not decided on.",
    ),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Read at most this many frames."),
    detector: Optional[str] = DetectorOpt,
    model: Optional[str] = ModelOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Is a live person answering a challenge (blink, turn left, turn right), the same throughout?
    Exit 0 passed, 1 failed."""
    from faceprint.liveness.check import LivenessChecker
    from faceprint.liveness.passive import PassiveModel
    from faceprint.pipeline import Analyzer
    from faceprint.video.source import is_stream_url, open_source, webcam_index

    with common.errors_to_exit(as_json):
        live = webcam_index(source) is not None
        if challenge_text is not None:
            challenge = Challenge.parse(challenge_text, step_timeout)
        elif live:
            challenge = random_challenge(steps, step_timeout_s=step_timeout)
        else:
            what = "a stream" if is_stream_url(source) else "a file"
            raise InvalidArgumentError(
                f"{what} cannot answer a random challenge drawn now: give the one it answers with --challenge "
                "(e.g. blink,turn_left,turn_right); a webcam index gets a random one",
                details={"source": source})
        video = open_source(source, max_frames=max_frames)  # a bad SOURCE is said before any model loads
        prompt: str | None = None
        last_time = 0.0
        interrupted = False
        try:
            passive = PassiveModel.load(passive_model) if passive_model is not None else None
            analyzer = Analyzer(detector=detector, embedder=model, landmarks68=True)
            checker = LivenessChecker(analyzer, challenge, passive=passive)
            if live:
                err.print("Look at the camera. Follow each prompt as it appears.")
            for frame in video:
                last_time = frame.time_s
                progress = checker.observe(frame.rgb, frame.time_s)
                if live and progress.prompt != prompt and progress.prompt is not None:
                    prompt = progress.prompt
                    err.print(f"[bold]step {progress.step + 1}/{progress.steps}:[/] {escape(prompt)}")
                if progress.state != "pending":
                    break
        except KeyboardInterrupt:  # Ctrl-C while frames are read: the check ends there, undecided
            interrupted = True
        finally:
            video.close()
        result = checker.finish(last_time)
        if as_json:
            print(json.dumps({"source": video.info.to_dict(), **result.to_dict(), "interrupted": interrupted}))
        else:
            _print_result(result)
    if interrupted:
        err.print("interrupted: the check ended there")
        raise typer.Exit(common.EXIT_INTERRUPTED)
    if not result.passed:
        raise typer.Exit(common.EXIT_FAILED)


def _print_result(result: LivenessResult) -> None:
    if result.passed:
        out.print(f"[bold green]PASSED[/]  {escape(result.challenge.describe())}")
    else:
        step = f" at step {result.failed_step + 1}" if result.failed_step is not None else ""
        out.print(f"[bold red]FAILED[/] ({result.reason}){step}: {escape(result.message)}")
    for i, s in enumerate(result.steps):
        when = (f"done at {s.completed_at:.2f} s" if s.completed_at is not None
                else f"prompted at {s.prompted_at:.2f} s, not done" if s.prompted_at is not None else "not reached")
        count = f" x{s.count}" if s.count > 1 else ""
        out.print(f"  {i + 1}. {s.action}{count}: {when}")
    ident = result.identity
    lowest = "-" if ident.min_similarity is None else f"{ident.min_similarity:.3f}"
    ends = "-" if ident.ends_similarity is None else f"{ident.ends_similarity:.3f}"
    out.print(f"  identity: lowest similarity to the running mean {lowest} (threshold {ident.threshold:.3f}), "
              f"first third vs last third {ends} (threshold {ident.ends_threshold:.3f}); {ident.frames} frames, "
              f"{ident.model}")
    if result.passive is not None:
        p = result.passive
        score = "-" if p.mean is None else f"{p.mean:.3f}"
        verdict = "" if p.live is None else ("  (live)" if p.live else "  (spoof)")
        out.print(f"  passive model {escape(p.model)}: score {score} over {p.frames} frame(s){verdict}; "
                  "reported only, not part of the verdict")
