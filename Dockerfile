# churnwatch worker image.
#
#   docker build -t churnwatch .
#   docker run --rm -e CHURN_KAFKA_BOOTSTRAP=kafka:9092 -p 6066:6066 churnwatch          # a worker
#   docker run --rm -e CHURN_KAFKA_BOOTSTRAP=kafka:9092 churnwatch topics               # create topics
#
# The package is installed with the exact versions of constraints.txt (the same pins
# 'make venv' and CI use). Every setting is a CHURN_ environment variable; see
# docs/operations.md.

# ---- build: install churnwatch and its pinned dependencies into a virtualenv ----------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# a C compiler, so that the build compiles the domain modules with mypyc (setup.py); the
# runtime stage needs none of it
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY streams ./streams
RUN python -m venv /opt/churnwatch \
    && /opt/churnwatch/bin/pip install --constraint constraints.txt . \
    && /opt/churnwatch/bin/pip check

# ---- runtime -----------------------------------------------------------------------------
FROM python:3.11-slim

# A fixed, unprivileged uid/gid, so volume permissions can be set up front (Kubernetes
# fsGroup, docker volumes).
RUN groupadd --system --gid 10001 churnwatch \
    && useradd --system --uid 10001 --gid churnwatch --home-dir /home/churnwatch \
       --create-home --shell /usr/sbin/nologin churnwatch \
    && mkdir -p /var/lib/churnwatch \
    && chown churnwatch:churnwatch /var/lib/churnwatch

COPY --from=build /opt/churnwatch /opt/churnwatch

ENV PATH=/opt/churnwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHURN_DATA_DIR=/var/lib/churnwatch \
    CHURN_WEB_HOST=0.0.0.0 \
    CHURN_WEB_PORT=6066

USER churnwatch:churnwatch
WORKDIR /home/churnwatch

# /metrics, /live and /ready of a worker
EXPOSE 6066

ENTRYPOINT ["churnwatch"]
CMD ["worker"]
