"""Where a gallery is: a SQLite file's path, or a PostgreSQL URL -- and the store that opens it.

``--gallery people.db`` (or ``FACEPRINT_GALLERY``) names a SQLite file, the embedded default;
``--gallery postgresql://user@host/db`` a PostgreSQL database with the pgvector extension
(:class:`~faceprint.gallery.storage.postgres.PostgresStore`, the ``postgres`` extra, imported only
when such a URL is given). Everything that shows a location -- messages, logs, ``gallery
stats`` -- shows :func:`describe_location`, which never contains a password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from faceprint import settings
from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.storage.base import GalleryStore
from faceprint.gallery.storage.sqlite import SQLiteStore

#: A gallery's location: a SQLite file, or a database URL kept as text (``Path`` would fold its
#: ``//``).
GalleryLocation = Union[str, os.PathLike[str]]


def is_database_url(location: object) -> bool:
    """Whether ``location`` is a database URL (``postgresql://...``), not a file."""
    return isinstance(location, str) and location.strip().lower().startswith(settings.DATABASE_URL_SCHEMES)


def parse_location(text: str | os.PathLike[str]) -> Path | str:
    """A ``--gallery`` value as a location: a database URL stays text, anything else is a path."""
    if is_database_url(text):
        return str(text).strip()
    return Path(text)


def describe_location(location: GalleryLocation) -> str:
    """``location`` fit to show: a URL's password (in ``user:PASSWORD@`` or ``?password=``)
    replaced by ``***``."""
    text = os.fspath(location)
    return masked_url(text) if is_database_url(text) else text


#: Connection parameters whose values are secrets (libpq's ``password`` and ``sslpassword``).
SECRET_PARAMETERS = ("password", "sslpassword")
_SECRET_IN_QUERY = re.compile(r"([?&](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&#]*", re.IGNORECASE)


def _authority(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, authority, rest)`` of a URL split as libpq splits it: the authority ends at
    the first ``/`` (not at ``?`` or ``#``, which a password may hold: ``u:pa?ss@host``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    at = rest.rfind("@", 0, (rest.find("?") + 1 or len(rest) + 1) - 1)
    if at >= 0 and "/" in rest[:at]:  # a "/" in the password (libpq would misread it): hide it all
        slash = rest.find("/", at)
        return scheme + sep, rest[:slash] if slash >= 0 else rest, rest[slash:] if slash >= 0 else ""
    slash = rest.find("/")
    authority, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" not in authority:  # no user info: the authority is the host (and maybe a query)
        cut = min((i for i in (authority.find("?"), authority.find("#")) if i >= 0), default=len(authority))
        authority, tail = authority[:cut], authority[cut:] + tail
    return scheme + sep, authority, tail


def url_secrets(url: str) -> list[str]:
    """The secrets a connection URL carries: the password of ``user:PASSWORD@`` and the values
    of ``password=`` / ``sslpassword=`` parameters, as written."""
    found: list[str] = []
    parts = _authority(url)
    if parts is not None:
        userinfo = parts[1].rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    found += [m.group(0).split("=", 1)[1] for m in _SECRET_IN_QUERY.finditer(url)]
    return [f for f in found if f]


def masked_url(url: str) -> str:
    """``url`` with its secrets (``user:PASSWORD@``, ``password=``, ``sslpassword=``) shown as
    ``***``; a URL that cannot be split is shown as its scheme and ``***``."""
    parts = _authority(url)
    if parts is None:
        return "***"
    scheme, authority, tail = parts
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return _SECRET_IN_QUERY.sub(r"\1***", scheme + authority + tail)


def location_exists(location: GalleryLocation) -> bool:
    """Whether a gallery file is at ``location`` (a path that cannot even be looked at counts as
    there: opening it then says why). A database URL counts as there: opening it with
    ``create=False`` says whether it holds a gallery (:class:`~faceprint.errors.GalleryNotFoundError`)."""
    if is_database_url(location):
        return True
    try:
        return Path(location).exists()
    except OSError:
        return True


def open_store(
    location: GalleryLocation,
    *,
    create: bool = True,
    master_key: MasterKey | None = None,
    keyring: str | os.PathLike[str] | None = None,
    encrypt: bool = False,
) -> GalleryStore:
    """The store of the gallery at ``location``: :class:`SQLiteStore` for a path,
    :class:`~faceprint.gallery.storage.postgres.PostgresStore` for a ``postgresql://`` URL."""
    if is_database_url(location):
        from faceprint.gallery.storage.postgres import PostgresStore

        return PostgresStore(str(location).strip(), create=create, master_key=master_key, keyring=keyring,
                             encrypt=encrypt)
    return SQLiteStore(location, create=create, master_key=master_key, keyring=keyring, encrypt=encrypt)
