# The stream-app worker, and the compose stack's init service (deploy/init.sh): one image.
# `docker compose up` builds it and starts both next to Kafka.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY agents ./agents
COPY schemas ./schemas
COPY deploy/init.sh deploy/worker.sh ./deploy/
# rocksdict (a dependency) is the rocksdb:// table store: the build fails if its wheel
# does not import here.
RUN pip install --no-cache-dir . \
    && python -c "import rocksdict" \
    && useradd --create-home --uid 10001 app \
    && chmod 0755 deploy/init.sh deploy/worker.sh \
    && mkdir /data /keys /signing && chown app /data /keys /signing
USER app

# Tables in RocksDB under /data: a restart on the same volume reads only the changelogs'
# tail (README, "Settings"). Give each worker its own volume.
ENV STREAM_STORE=rocksdb:// STREAM_DATA_DIR=/data
VOLUME /data

# /health (JSON report), /readyz and /livez. Healthy = ready (a model loaded).
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/readyz', timeout=3)"
CMD ["stream-app", "worker", "-l", "info"]
