# One image for every obslab Python process (scoring, features, oncall, Locust); each compose
# service picks its command, and the default one serves the scoring API. It holds exactly the
# versions of uv.lock, without the dev tools and the dashboards-as-code tooling (the `grafana`
# extra), and the project itself, so `docker compose exec scoring obslab ...` works. Non-root.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
# The uv of pyproject.toml's [tool.uv] required-version (tests/unit/test_lock.py keeps them equal).
ARG UV_VERSION=0.13.8

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode compiled at build time, no cache left in the layer, and the base image's Python, never
# a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# The dependencies alone first, so a code change does not reinstall them. --locked refuses a
# uv.lock that no longer matches pyproject.toml.
COPY pyproject.toml uv.lock ./
RUN ["uv", "sync", "--locked", "--no-dev", "--no-install-project"]
# The project, installed editable: its code stays in /app beside config/stack.yaml, which the CLI
# and the services read from the source tree.
COPY README.md ./
COPY app ./app
COPY obslab ./obslab
COPY alerts ./alerts
COPY loadgen ./loadgen
COPY config ./config
RUN ["uv", "sync", "--locked", "--no-dev"]

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    OBSLAB_HOME=/var/lib/obslab

# The log directory is where compose mounts the volume the collector tails: a new named volume
# takes this directory's owner, so the services can write to it.
RUN useradd --system --uid 10001 --home-dir /var/lib/obslab --shell /usr/sbin/nologin obslab \
    && install -d -o obslab -g obslab /var/lib/obslab /var/lib/obslab/scoring \
        /var/lib/obslab/oncall /var/log/obslab
COPY --from=build /app /app
WORKDIR /app
# Numeric, so that a runtime (Kubernetes' runAsNonRoot) can tell it is not root.
USER 10001:10001

# Train every model version now (deterministic, seconds), so a container serves at once.
RUN ["python", "-c", "from app.model.registry import load_model; from app.model.versions import MODELS; from app.settings import state_dir; [load_model(v, state_dir() / 'models') for v in MODELS]"]

EXPOSE 8000 8001 8002 8089
CMD ["gunicorn", "--bind=0.0.0.0:8000", "--workers=1", "--worker-class=gthread", "--threads=4", "--no-control-socket", "--config=python:app.gunicorn_conf", "app.scoring:create_app()"]
