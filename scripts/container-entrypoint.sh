#!/bin/sh
# The container's entry point: `faceprint ARGS`. `serve` needs its gallery to exist (a
# mistyped path must not become a new empty gallery), so the first start of a container makes
# one in the volume; later starts find it.
set -eu
if [ "${1:-}" = serve ] && ! faceprint gallery stats >/dev/null 2>&1; then
    faceprint gallery init
fi
exec faceprint "$@"
