# syntax=docker/dockerfile:1
# The one image of every callstore service (docker-compose.yml): the project and its locked
# dependencies with the workers' extras (`worker`: PostgreSQL, migrations, Flower, metrics;
# `azure`: the legacy migration), installed by uv from uv.lock, run as an unprivileged user.
# The embedded servers (`embedded`) stay out: compose runs PostgreSQL and Redis themselves.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM python:${PYTHON_VERSION}-slim AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, from the lock alone: this layer is rebuilt only when uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra worker --extra azure --no-install-project
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra worker --extra azure

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin callstore \
    && mkdir /data \
    && chown callstore:callstore /data
# The project and its virtualenv at the same path as in the build stage (the venv's scripts and
# the project's editable install refer to /app). Owned by root: the services cannot change code.
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER callstore
# The only writable state (beat's schedule, Flower's database) lives in /data, on the volumes
# docker-compose.yml mounts there.
CMD ["celery", "-A", "worker.celery_app", "worker", "-Q", "calls", "--loglevel=INFO"]
