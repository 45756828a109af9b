# syntax=docker/dockerfile:1
# Image for the marketplace web app, the Celery worker and Celery beat.
# The default command runs the web app; docker-compose.yml overrides it for
# the migrate / worker / beat services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    INSTANCE_PATH=/app/instance

WORKDIR /app

# Unprivileged user that runs every process in the container.
RUN groupadd --system app \
    && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# Project metadata first, then the code; `pip install .` pulls in the
# runtime dependencies (psycopg[binary], gunicorn, redis, celery, ...).
COPY pyproject.toml README.md alembic.ini gunicorn.conf.py ./
COPY marketplace/ marketplace/
COPY worker/ worker/
COPY migrations/ migrations/
# /app/instance (INSTANCE_PATH) belongs to `app`: docker-compose.yml mounts the named volume
# instance-data there, and Docker gives an empty volume the owner of the folder it covers.
RUN pip install --no-cache-dir . \
    && rm -rf build *.egg-info \
    && mkdir -p /app/instance \
    && chown app:app /app/instance

USER app

EXPOSE 8000

# Shell form via `sh -c` so $PORT is honoured (defaults to 8000);
# gunicorn reads WEB_CONCURRENCY for the worker count, and the rest (request limits, logs)
# from gunicorn.conf.py, shared with `./dev run`.
CMD ["sh", "-c", "exec gunicorn --config gunicorn.conf.py --bind 0.0.0.0:${PORT:-8000} marketplace.wsgi:app"]
