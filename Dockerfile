# botserver: one image for the app replicas and the one-shot `botserver migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, pinned by the lock file, so code changes reuse this layer.
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
RUN pip install -c requirements.lock .

COPY bots ./bots

RUN useradd --system --uid 10001 --home-dir /app botserver \
    && mkdir -p /app/data \
    && chown botserver /app/data
USER botserver

ENV BOTSERVER_HOST=0.0.0.0 \
    BOTSERVER_PORT=8080 \
    BOTSERVER_BOTS_DIR=/app/bots

EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

CMD ["botserver", "serve"]
