# syntax=docker/dockerfile:1
# The API server image.
#   docker build -t hospital-api .
#   docker run --rm -e DATABASE_URL=... hospital-api migrate
#   docker run -p 8000:8000 -e DATABASE_URL=... -e SECRET_KEY=... hospital-api
# tests/ops/test_container_steps.py runs this file's install and start steps outside Docker.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
WORKDIR /app
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
# Every dependency has a binary wheel, so no compiler is needed here either.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -e . \
    && /opt/venv/bin/python -m compileall -q /app/app \
    && /opt/venv/bin/pip uninstall --yes --quiet pip

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    LOG_FORMAT=json \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/hospital-api-metrics
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin hospital
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["hospital-api"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
