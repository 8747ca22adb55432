"""Regenerate the committed OpenAPI schema: ``python -m tests.integration.service.update_openapi``.

The contract test (test_openapi.py) fails whenever the running app's schema differs from the
committed file, so that a change to the API is always a deliberate, reviewed change of this file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).with_name("openapi.json")


def current_schema() -> dict:
    from faceprint.service import Settings, create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(gallery=Path(tmp) / "gallery.db"))
        try:
            return app.openapi()
        finally:
            app.state.service.close()


def dump(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA.write_text(dump(current_schema()))
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
