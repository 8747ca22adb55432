"""``faceprint gallery init | encrypt | rotate-key | encryption``: templates encrypted at rest.

Registered on the ``gallery`` command group by :mod:`faceprint.cli.root`. The master key lives
in a key file (``--key-file``, else ``$FACEPRINT_MASTER_KEY_FILE``, else ``master.key`` in the
user config folder); it is created (mode 0600) when missing and never printed. Only its
fingerprint, a public name, is shown. See :mod:`faceprint.gallery.crypto`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape

from faceprint import settings
from faceprint.cli import common
from faceprint.cli.common import JsonOpt, err, out
from faceprint.errors import InvalidArgumentError

if TYPE_CHECKING:
    from faceprint.gallery import MasterKey

KeyFileOpt: Any = typer.Option(
    None, "--key-file", help=f"The master key file (default: ${settings.MASTER_KEY_FILE}, else master.key in your "
    "config folder); created, readable by you only, when missing.",
)
KeyringOpt: Any = typer.Option(None, "--keyring", help="The keyring file of the gallery's data keys (default: GALLERY.keys).")


def _key_for_new_encryption(key_file: Path | None) -> tuple[MasterKey, Path, bool]:
    """The master key to encrypt with: read from the key file, or made and written there when
    the file does not exist. Returns (key, file, whether it was created)."""
    from faceprint.gallery import MasterKey, write_key_file

    path = (key_file or settings.master_key_file()).expanduser()
    if path.exists():
        return MasterKey.from_file(path), path, False
    key = MasterKey.generate()
    write_key_file(path, key)
    return key, path, True


def _given_key(key_file: Path | None) -> MasterKey | None:
    """The key of ``--key-file`` (``None``: the library reads the default one itself)."""
    from faceprint.gallery import MasterKey

    return MasterKey.from_file(key_file) if key_file is not None else None


def _report_key(path: Path, created: bool, fingerprint: str) -> None:
    if created:
        err.print(f"created a new master key in {escape(str(path))} (fingerprint {fingerprint}, readable by you only): "
                  "keep a copy of it offline -- without it the gallery cannot be read")
    if path != settings.master_key_file():
        err.print(f"commands find the key when {settings.MASTER_KEY_FILE}={escape(str(path))} is set "
                  "(or give --key-file)")


def gallery_init(
    ctx: typer.Context,
    encrypt: bool = typer.Option(False, "--encrypt", help="Encrypt templates and thumbnails at rest (AES-256-GCM)."),
    key_file: Optional[Path] = KeyFileOpt,
    keyring: Optional[Path] = KeyringOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create a new, empty gallery (with --encrypt: encrypted at rest, and a master key file if none exists)."""
    with common.errors_to_exit(as_json):
        from faceprint.gallery import Gallery

        path = common.gallery_path(ctx)
        if common.gallery_holds_one(path):
            hint = " (to encrypt it: faceprint gallery encrypt)" if encrypt else ""
            shown = common.shown_gallery(path)
            raise InvalidArgumentError(f"a gallery already exists at {shown}{hint}", details={"path": shown})
        key, key_path, created = _key_for_new_encryption(key_file) if encrypt else (None, None, False)
        with Gallery.open(path, master_key=key, keyring=keyring, encrypt=encrypt) as gallery:
            info = gallery.store.encryption()
        doc: dict[str, Any] = {"gallery": common.shown_gallery(path), "encryption": info.to_dict() if info else None}
        if key_path is not None:
            doc["key_file"], doc["key_file_created"] = str(key_path), created
        if as_json:
            print(json.dumps(doc))
            return
        out.print(f"created {'an encrypted' if info else 'a'} gallery at {escape(common.shown_gallery(path))}"
                  + (f" (keyring {escape(info.keyring)}, master key {info.master_fingerprint})" if info else ""))
        if key is not None and key_path is not None:
            _report_key(key_path, created, key.fingerprint)


def gallery_encrypt(
    ctx: typer.Context,
    key_file: Optional[Path] = KeyFileOpt,
    keyring: Optional[Path] = KeyringOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Encrypt an existing gallery's templates and thumbnails in place (stop `faceprint serve` first)."""
    with common.errors_to_exit(as_json):
        from faceprint.gallery import Gallery

        path = common.existing_gallery_path(ctx)
        key, key_path, created = _key_for_new_encryption(key_file)
        with Gallery.open(path, create=False, master_key=key, keyring=keyring, encrypt=True) as gallery:
            info = gallery.store.encryption()
            counts = gallery.store.count()
        doc = {"gallery": common.shown_gallery(path), "encryption": info.to_dict() if info else None, "key_file": str(key_path),
               "key_file_created": created, "subjects": counts.subjects, "faces": counts.faces}
        if as_json:
            print(json.dumps(doc))
            return
        shown = escape(common.shown_gallery(path))
        out.print(f"{shown} is encrypted at rest: {common.plural(counts.faces, 'face')} of {common.plural(counts.subjects, 'subject')}"
                  f" (keyring {escape(info.keyring if info else '?')}, master key {key.fingerprint})")
        err.print("copies of the gallery made before now (backups) still hold the templates in plain text")
        _report_key(key_path, created, key.fingerprint)


def gallery_rotate_key(
    ctx: typer.Context,
    key_file: Optional[Path] = typer.Option(
        None, "--key-file", help=f"The current master key file (default: ${settings.MASTER_KEY_FILE}, else master.key "
        "in your config folder).",
    ),
    new_key_file: Optional[Path] = typer.Option(
        None, "--new-key-file", help="Where the new master key is (used if it exists, else made there). Default: a new "
        "key replaces the current key file once the keyring is re-wrapped.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Re-wrap the gallery's data keys with a new master key (no template is re-encrypted; no downtime).

    A running `faceprint serve` keeps serving: it re-reads its key file when it next needs the
    master key, so replace that file with the new key (the default does)."""
    with common.errors_to_exit(as_json):
        from faceprint.gallery import Gallery, MasterKey, write_key_file

        path = common.existing_gallery_path(ctx)
        current_file = (key_file or settings.master_key_file()).expanduser()
        current = MasterKey.from_file(current_file)
        in_place = new_key_file is None
        # The new key is on disk before anything is re-wrapped with it: a crash never loses it.
        staged = new_key_file.expanduser() if new_key_file is not None else current_file.with_name(f"{current_file.name}.new")
        if not in_place and staged.exists():
            new = MasterKey.from_file(staged)
        else:
            new = MasterKey.generate()
            write_key_file(staged, new)
        if new.fingerprint == current.fingerprint:
            raise InvalidArgumentError("the new master key is the current one")
        with Gallery.open(path, create=False, master_key=current) as gallery:
            count = gallery.store.rotate_master_key(new)
        if in_place:
            os.replace(staged, current_file)  # the old key is gone: it opens nothing any more
        doc: dict[str, Any] = {"gallery": common.shown_gallery(path), "data_keys": count, "old_fingerprint": current.fingerprint,
               "new_fingerprint": new.fingerprint, "key_file": str(current_file if in_place else staged)}
        if as_json:
            print(json.dumps(doc))
            return
        out.print(f"re-wrapped {common.plural(count, 'data key')}: master key {current.fingerprint} -> {new.fingerprint}, "
                  f"now in {escape(doc['key_file'])}")
        if not in_place:
            err.print(f"the old key file {escape(str(current_file))} opens nothing any more: destroy it, and point "
                      f"{settings.MASTER_KEY_FILE} (and any running service's key file) at {escape(str(staged))}")
        err.print("keyring copies (backups) made before now still need the old key: with it gone, they are useless")


def gallery_encryption(ctx: typer.Context, key_file: Optional[Path] = KeyFileOpt, as_json: bool = JsonOpt) -> None:
    """Whether the gallery is encrypted at rest, its keyring, and its master key's fingerprint."""
    with common.errors_to_exit(as_json):
        from faceprint.gallery import Gallery

        with Gallery.open(common.existing_gallery_path(ctx), create=False, master_key=_given_key(key_file)) as gallery:
            info = gallery.store.encryption()
        doc: dict[str, Any] = {"gallery": str(gallery.store.location), "encrypted": info is not None,
                               **(info.to_dict() if info else {})}
        if as_json:
            print(json.dumps(doc))
            return
        for key, value in doc.items():
            out.print(f"{key:>18}: {escape(str(value))}")


def register(gallery_app: typer.Typer) -> None:
    """Add these commands to the ``faceprint gallery`` group."""
    gallery_app.command("init")(gallery_init)
    gallery_app.command("encrypt")(gallery_encrypt)
    gallery_app.command("rotate-key")(gallery_rotate_key)
    gallery_app.command("encryption")(gallery_encryption)
