#!/usr/bin/env bash
# The build steps of the container image, in one place: the Dockerfile's RUN lines call this
# script, and tests/integration/test_container_steps.py runs the same steps outside Docker (in a
# temporary prefix, as a user who owns nothing else), so CI tests them where Docker cannot run.
#
#   container-steps.sh venv            create the virtual environment at $PREFIX
#   container-steps.sh install SRC     install faceprint[service] from SRC (a source folder or a wheel)
#   container-steps.sh models          install the default model pack (faceplugin, via npm) under $PREFIX/models
#   container-steps.sh check           the installed faceprint runs, with the pack's models as its default
#
# PREFIX (default /opt/faceprint): the virtual environment, models in $PREFIX/models.
# PIP_INSTALL_ARGS: extra `pip install` arguments (the test passes --no-deps --no-index).
# Nothing here downloads at container start: the models are part of the image.
set -euo pipefail
PREFIX="${PREFIX:-/opt/faceprint}"
MODELS="$PREFIX/models"

step="${1:?usage: container-steps.sh venv|install SRC|models|check}"
case "$step" in
venv)
    python3 -m venv "$PREFIX"
    ;;
install)
    src="${2:?usage: container-steps.sh install SRC}"
    # shellcheck disable=SC2086  # PIP_INSTALL_ARGS is a list of words
    "$PREFIX/bin/python" -m pip install --no-cache-dir --disable-pip-version-check ${PIP_INSTALL_ARGS:-} "$src[service,postgres]"
    ;;
models)
    # npm's own client fetches the pack; faceprint checks it against the hashes pinned in its
    # source before writing anything (README, "Model packs").
    FACEPRINT_MODELS_DIR="$MODELS" "$PREFIX/bin/faceprint" models install faceplugin
    chmod -R a+rX "$MODELS"
    ;;
check)
    # The default pipeline must be the pack's (fr-feature), found under $PREFIX/models.
    FACEPRINT_MODELS_DIR="$MODELS" "$PREFIX/bin/faceprint" models --json | "$PREFIX/bin/python" -c '
import json, sys
doc = json.load(sys.stdin)
pack = {p["name"]: p for p in doc.get("packs", [])}.get("faceplugin", {})
assert pack.get("installed"), ("the faceplugin pack is not installed", pack.get("problem"))
assert doc["default"]["embedder"] == "fr-feature", ("the default pipeline is not the pack models", doc["default"])
print("container-steps: faceprint and its models are installed")'
    "$PREFIX/bin/python" -c "import faceprint.service, uvicorn, fastapi"
    ;;
*)
    echo "container-steps.sh: unknown step $step" >&2
    exit 2
    ;;
esac
