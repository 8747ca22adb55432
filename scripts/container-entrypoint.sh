#!/bin/sh
# The container's entry point: `faceprint ARGS`. `serve` needs its gallery to exist (a
# mistyped path must not become a new empty gallery), so the first start of a container makes
# one in the volume; later starts find it. Any other problem with the gallery (an encrypted one
# without its key, say) is left for `serve` to report.
set -eu
if [ "${1:-}" = serve ]; then
    if ! found=$(faceprint gallery stats --json 2>&1); then
        case "$found" in
        # (two replicas on one PostgreSQL may both try: the second finds the first's gallery)
        *'"gallery_not_found"'*) faceprint gallery init || faceprint gallery stats >/dev/null ;;
        esac
    fi
fi
exec faceprint "$@"
