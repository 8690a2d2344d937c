# The pipeline image: the default_image of every component that `polyvit compile` writes. It runs
# TFX's KFP v2 entry point (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor)
# with the project's components, trainer and transforms importable.
#
#   make image                                   # docker build -t polyvit:latest .
#   docker tag polyvit:latest REGISTRY/polyvit:TAG && docker push REGISTRY/polyvit:TAG
#
# Same Python (3.11) and glibc (Debian 12) as the machines the pinned stack was verified on.

# ---- wheels: build the few sdists in the lock (crcmod, docopt, ...) where a compiler exists ----
FROM python:3.11-slim-bookworm AS wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.lock ./
# Same flags as `make install`: the exact pins, no resolver, TFX 1.16's Python < 3.11 marker ignored.
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --ignore-requires-python \
        --wheel-dir /wheels -r requirements.lock

# ---- runtime ----
FROM python:3.11-slim-bookworm
# core/env.py is the one source of the process environment, but KFP starts TFX's entry point
# (kubeflow_v2_run_executor), which imports TensorFlow and Keras before any module of ours:
# so the variables TensorFlow and gRPC read when they load are set before Python starts, with
# the same values as core/env.py's ENVIRONMENT (tests/foundation/test_logging.py checks it).
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    GRPC_VERBOSITY=ERROR \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock ./
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-deps --ignore-requires-python --no-index --find-links /wheels \
        -r requirements.lock
COPY setup.py pyproject.toml ./
COPY core ./core
COPY media ./media
COPY demo ./demo
COPY transforms ./transforms
COPY trainer ./trainer
COPY serving ./serving
COPY components ./components
COPY pipeline ./pipeline
COPY configs ./configs
RUN pip install --no-deps --no-build-isolation . \
    && python -c "import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor, \
pipeline.pipeline, trainer, transforms"
# KFP passes the full command (python -m ...) per task; the CLI is the default for `docker run`.
ENTRYPOINT ["polyvit"]
CMD ["--help"]
