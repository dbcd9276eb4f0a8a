# hopthu server image: `docker compose up` (see docs/deploy.md) runs two of these behind nginx.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p inbox channels nlp contacts agents frontend \
    && touch inbox/__init__.py channels/__init__.py nlp/__init__.py contacts/__init__.py agents/__init__.py \
       frontend/__init__.py \
    && pip install . \
    && pip uninstall -y hopthu \
    && rm -rf inbox channels nlp contacts agents frontend
COPY inbox ./inbox
COPY channels ./channels
COPY nlp ./nlp
COPY contacts ./contacts
COPY agents ./agents
COPY frontend ./frontend
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app hopthu \
    && mkdir -p /app/data && chown hopthu /app/data

USER hopthu
WORKDIR /app/data
EXPOSE 8080
# /healthz answers 200 once migrations are applied and the database answers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["hopthu", "serve", "--host", "0.0.0.0", "--port", "8080"]
