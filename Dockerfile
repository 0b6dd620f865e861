# KubeBot image: `kubebot serve` with its config mounted at /etc/kubebot/config.yaml
# and its SQLite store on a volume at /var/lib/kubebot.
#
# Base pinned by version so rebuilds are reproducible; pin by digest too in your registry
# mirror (python:3.11.14-slim-bookworm@sha256:...) if you need byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the package and its dependencies into a self-contained venv ---------
FROM ${PYTHON_IMAGE} AS build
# Every dependency ships manylinux wheels, so no compiler is needed even here.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/kubebot
WORKDIR /src
RUN python -m venv "$VIRTUAL_ENV"
# Only what the package needs: tests, manifests and bench stay out of the image.
COPY setup.cfg pyproject.toml README.md ./
COPY receiver/ receiver/
COPY enrichers/ enrichers/
COPY rca/ rca/
RUN "$VIRTUAL_ENV/bin/pip" install --no-cache-dir .

# --- runtime: the venv and nothing else ---------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kubebot" \
      org.opencontainers.image.description="Alertmanager webhook receiver: enrich, rank root causes, suppress, notify" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so Kubernetes runAsNonRoot can verify it and fsGroup matches.
# The default config listens on all interfaces (a container's loopback is unreachable)
# and keeps the store on the volume; Kubernetes replaces it with the ConfigMap.
RUN groupadd --system --gid 10001 kubebot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/kubebot --shell /usr/sbin/nologin kubebot \
    && mkdir -p /etc/kubebot /var/lib/kubebot \
    && printf '%s\n' \
       'server: {host: 0.0.0.0, port: 8080}' \
       'store: {path: /var/lib/kubebot/kubebot.db}' \
       > /etc/kubebot/config.yaml \
    && chown kubebot:kubebot /var/lib/kubebot

COPY --from=build /opt/kubebot /opt/kubebot

# No .pyc writes (the root filesystem is read-only in Kubernetes), unbuffered logs,
# and HOME/cwd on the data volume so nothing tries to write elsewhere.
ENV PATH=/opt/kubebot/bin:$PATH \
    VIRTUAL_ENV=/opt/kubebot \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/kubebot
WORKDIR /var/lib/kubebot
VOLUME ["/var/lib/kubebot"]
USER 10001:10001
EXPOSE 8080

# slim has no curl: python's urllib raises on anything but 2xx, which fails the check.
# KUBEBOT_SERVER__PORT is the same override the server honours.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KUBEBOT_SERVER__PORT', '8080'), timeout=4)"]

ENTRYPOINT ["kubebot", "serve", "--config", "/etc/kubebot/config.yaml"]
