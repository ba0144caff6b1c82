# syntax=docker/dockerfile:1
# The API server image.
#   docker build -t hospital-api .
#   docker run --rm -e DATABASE_URL=... hospital-api migrate
#   docker run -p 8000:8000 -e DATABASE_URL=... -e SECRET_KEY=... hospital-api
# BASE_IMAGE is any image with Python 3.11+ and its venv module as `python3`: the official
# slim image by default, or one made from Debian's packages (deploy/image/debian-base.sh,
# `make image-base`). `make image-test` builds it and runs it from its own files (tests/image/).
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS builder
WORKDIR /src
# pip trusts the certificate authorities of an optional build secret `pip-ca` (a network whose
# proxy re-signs TLS: `--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt`); the file
# is mounted for the step alone and never stored in a layer.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, from pyproject.toml alone, so that a change of the code reuses them.
# Every dependency has a binary wheel, so no compiler is needed here either.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt
# Then the project as a built wheel (not an editable install): the image holds the installed
# package, migrations included, and no source tree.
COPY README.md ./
COPY app ./app
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && /opt/venv/bin/pip wheel --no-deps -w /tmp/dist . \
    && /opt/venv/bin/pip install --no-deps /tmp/dist/*.whl \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools wheel

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    LOG_FORMAT=json \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/hospital-api-metrics
RUN groupadd --system --gid 10001 hospital \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin hospital
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["hospital-api"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
