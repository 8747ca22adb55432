"""``faceprint serve`` and ``faceprint keys create|list|revoke``: the HTTP service and its API keys."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.text import Text

from faceprint import settings as env
from faceprint.cli import common
from faceprint.cli.common import CalibrationOpt, DetectorOpt, JsonOpt, KeepThumbnailsOpt, MinScoreOpt, err, out

if TYPE_CHECKING:
    from faceprint.service.auth import KeyStore

#: ``serve``, merged into the root by :mod:`faceprint.cli.root`.
app = typer.Typer()
#: ``faceprint keys ...``
keys_app = typer.Typer(help="Create, list and revoke API keys of the HTTP service.", no_args_is_help=True)

#: Addresses only this machine can reach: no warning about exposing the service.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _gallery_file(ctx: typer.Context, override: str | Path | None = None) -> Path | str:
    """The gallery as an absolute path (the service's workers may run from another folder), or
    its database URL."""
    location = common.gallery_path(ctx, override)
    return location if isinstance(location, str) else location.expanduser().resolve()


#: What makes a gallery a service can use: one with an API key.
_FIRST_KEY = "keys create --scope recognize --scope manage"


def _keys(ctx: typer.Context, create: bool = False) -> KeyStore:
    """The API keys of the gallery the command line names; it must exist unless ``create``
    (``keys create``: a new gallery is announced on stderr)."""
    from faceprint.service.auth import KeyStore

    path = common.gallery_path(ctx) if create else common.existing_gallery_path(ctx, create_with=_FIRST_KEY)
    new = create and not common.gallery_holds_one(path)
    store = KeyStore(path if isinstance(path, str) else path.expanduser().resolve())
    if new:
        common.note_created(path)
    return store


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback only)."),
    gallery: Optional[str] = typer.Option(
        None, "--gallery", metavar="PATH|URL",
        help="Gallery: a SQLite file or a PostgreSQL URL (as the global --gallery; this one wins when both are given).",
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each loads the models)."),
    threads: int = typer.Option(2, "--threads", min=1, help="Worker threads per process for decoding, models and the database."),
    rate_limit: float = typer.Option(600.0, "--rate-limit", min=0, help="Requests a minute per API key (0: no limit)."),
    auth_failure_limit: float = typer.Option(30.0, "--auth-failure-limit", min=0,
                                             help="Invalid API keys a minute from one client address before 429 (0: no limit)."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1,
                                         help="Seconds a connection has to send a request's headers (slow clients are cut off)."),
    max_request_mb: float = typer.Option(32.0, "--max-request-mb", min=0.001, help="Largest request body, MiB."),
    max_image_mb: float = typer.Option(10.0, "--max-image-mb", min=0.001, help="Largest encoded image, MiB."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest decoded image, width x height."),
    max_request_pixels: int = typer.Option(
        200_000_000, "--max-request-pixels", min=1,
        help="Most decoded pixels of all the images of one request together (checked from their headers)."),
    max_faces: int = typer.Option(50, "--max-faces", min=1, help="Most faces handled in one image."),
    max_top_k: int = typer.Option(100, "--max-top-k", min=1, max=1000, help="Largest top_k of identify."),
    max_images: int = typer.Option(20, "--max-images", min=1, help="Most images in one enrolment request."),
    max_video_mb: float = typer.Option(30.0, "--max-video-mb", min=0.001, help="Largest clip of /v1/videos/identify, MiB."),
    max_video_seconds: float = typer.Option(30.0, "--max-video-seconds", min=0.1,
                                            help="Longest clip of /v1/videos/identify, seconds."),
    liveness_challenge: Optional[str] = typer.Option(
        None, "--liveness-challenge", metavar="STEPS",
        help="TESTS AND DEMOS ONLY: every liveness session gets this challenge (blink,turn_left) instead of a "
        "random one, which defeats the replay protection."),
    liveness_secret_file: Optional[Path] = typer.Option(
        None, "--liveness-secret-file", help="A file of at least 32 bytes that signs liveness results, for relying "
        "parties to check them (default: a random secret per process)."),
    cors_origin: Optional[list[str]] = typer.Option(None, "--cors-origin", help="Allow this origin by CORS (repeatable; default: CORS off)."),
    detector: Optional[str] = DetectorOpt,
    min_score: Optional[float] = MinScoreOpt,
    calibration: Optional[Path] = CalibrationOpt,
    keep_thumbnails: bool = KeepThumbnailsOpt,
    log_level: str = typer.Option("info", "--log-level", envvar=env.LOG_LEVEL, help="debug, info, warning, error."),
    master_key_file: Optional[Path] = typer.Option(
        None, "--master-key-file", help=f"The master key of an encrypted gallery (default: ${env.MASTER_KEY_FILE}); "
        "re-read after a `gallery rotate-key`.",
    ),
) -> None:
    """Run the HTTP service and its web page (FastAPI + uvicorn). API docs at /docs, schema at /openapi.json."""
    with common.errors_to_exit(False):
        from faceprint.gallery import Gallery
        from faceprint.service import Settings
        from faceprint.service import serve as run_service
        from faceprint.service.auth import KeyStore

        mib = 1024 * 1024
        # A service never creates its gallery: a new one would have no API key, so no client
        # could use it (and a mistyped path would look like lost keys). `keys create` makes one.
        common.existing_gallery_path(ctx, gallery, create_with=_FIRST_KEY)
        gallery_file = _gallery_file(ctx, gallery)
        if master_key_file is not None:  # the worker processes inherit it
            os.environ[env.MASTER_KEY_FILE] = str(master_key_file.expanduser().resolve())
        # Fail here, with a one-line message, on a bad gallery; and resolve the models once (the
        # gallery's own), so every worker process runs the same ones.
        card = calibration.expanduser().resolve() if calibration is not None else None
        if liveness_challenge:  # refused here, in one line, rather than by every worker
            from faceprint.liveness.challenge import Challenge

            Challenge.parse(liveness_challenge)
        if liveness_secret_file is not None:
            from faceprint.service.sessions import load_secret

            load_secret(str(liveness_secret_file.expanduser()))
        with Gallery.open(gallery_file, create=False, detector=detector) as opened:
            chosen = opened.analyzer
            # Checked here (a missing file, another model's card) before any worker starts.
            common.tune_analyzer(chosen, min_score, card)
        settings = Settings(
            gallery=gallery_file, detector=chosen.detector_card.name, landmarks=chosen.landmarks_card.name,
            embedder=chosen.embedder_card.name, threads=threads,
            max_request_bytes=int(max_request_mb * mib), max_image_bytes=int(max_image_mb * mib),
            max_pixels=max_pixels, max_request_pixels=max_request_pixels, max_faces=max_faces, max_top_k=max_top_k, max_images=max_images,
            rate_limit=rate_limit, cors_origins=tuple(cors_origin or ()), log_level=log_level,
            auth_failure_limit=auth_failure_limit, header_timeout=header_timeout,
            keep_thumbnails=keep_thumbnails, calibration=str(card) if card else None, min_score=min_score,
            max_video_bytes=int(max_video_mb * mib), max_video_seconds=max_video_seconds,
            liveness_challenge=liveness_challenge,
            liveness_secret_file=str(liveness_secret_file.expanduser().resolve()) if liveness_secret_file else None,
        )
        keys = KeyStore(settings.gallery)
        try:
            active = keys.count_active()
        finally:
            keys.close()
        shown = f"[{host}]" if ":" in host else host
        print(f"faceprint service on http://{shown}:{port}/  (gallery {common.shown_gallery(settings.gallery)}; models "
              f"{chosen.detector_card.name} + {chosen.landmarks_card.name} + {chosen.model_id}; API docs /docs)",
              file=sys.stderr)
        if card is not None:
            print(f"thresholds from the calibration card {card}", file=sys.stderr)
        if not active:
            print("no API keys yet: create one with "
                  f"`faceprint --gallery {common.shown_gallery(settings.gallery)} keys create --scope recognize --scope manage`", file=sys.stderr)
        if liveness_challenge:
            err.print(f"[yellow]every liveness session gets the fixed challenge {liveness_challenge!r}: for tests and "
                      "demos only (a recording of one session answers the next)[/]")
        if host not in _LOOPBACK:
            err.print(f"[yellow]listening on {host}: other machines can reach this service; use TLS in front of it[/]")
        sys.stdout.flush()
        run_service(settings, host=host, port=port, workers=workers)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    scope: list[str] = typer.Option(..., "--scope", help="recognize, manage or admin (repeatable or comma-separated)."),
    name: str = typer.Option("", "--name", help="A label for the key (who or what uses it)."),
    as_json: bool = JsonOpt,
) -> None:
    """Create an API key. The key is shown once; only its SHA-256 is stored."""
    from faceprint.service.auth import normalise_scopes

    with common.errors_to_exit(as_json):
        scopes = normalise_scopes(scope)  # a bad scope creates no gallery
        store = _keys(ctx, create=True)
        try:
            secret, record = store.create(scopes, name)
        finally:
            store.close()
        if as_json:
            print(json.dumps({**record.to_dict(), "key": secret}))
        else:
            out.print(f"key id {record.key_id}  scopes {', '.join(record.scopes)}")
            out.print(secret)
            err.print("This is the only time the key is shown: store it now.")


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Every key with its scopes and state (never the key itself)."""
    with common.errors_to_exit(as_json):
        store = _keys(ctx)
        try:
            keys = store.list()
        finally:
            store.close()
        if as_json:
            print(json.dumps({"keys": [k.to_dict() for k in keys]}))
            return
        table = common.ResultTable("key id", "name", "scopes", "created (UTC)", "last used (UTC)", "state",
                                   keep=["key id", "name"])
        for k in keys:
            table.add_row(k.key_id, k.name, ", ".join(k.scopes), common.when(k.created_at), common.when(k.last_used_at),
                          Text("revoked " + common.when(k.revoked_at), style="dim") if k.revoked_at else "active")
        table.print()
        if not keys:
            out.print("no API keys: create one with `faceprint keys create --scope recognize`")


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key id (see `keys list`)."),
                as_json: bool = JsonOpt) -> None:
    """Revoke a key: the service refuses it from the next request on."""
    with common.errors_to_exit(as_json):
        store = _keys(ctx)
        try:
            record = store.revoke(key_id)
        finally:
            store.close()
        if as_json:
            print(json.dumps(record.to_dict()))
        else:
            out.print(f"revoked {record.key_id}")
