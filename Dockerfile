# One image for every obslab Python process (scoring, features, oncall, Locust); each compose
# service picks its command. Built from the source tree, run as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    OBSLAB_HOME=/var/lib/obslab

WORKDIR /app

# The dependencies alone first, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (PYTHONPATH), where config/stack.yaml sits beside it.
COPY app ./app
COPY obslab ./obslab
COPY alerts ./alerts
COPY loadgen ./loadgen
COPY config ./config

RUN useradd --system --uid 10001 --home-dir /var/lib/obslab --shell /usr/sbin/nologin obslab \
    && install -d -o obslab -g obslab /var/lib/obslab /var/lib/obslab/scoring /var/lib/obslab/oncall
USER obslab

# Train every model version now (deterministic, seconds), so a container serves at once.
RUN python -c "from app.model.registry import load_model; from app.model.versions import MODELS; from app.settings import state_dir; [load_model(v, state_dir() / 'models') for v in MODELS]"

EXPOSE 8000 8001 8002 8089
