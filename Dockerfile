# syntax=docker/dockerfile:1
# The operator image. The build stage installs the package and its dependencies into a virtualenv and
# removes pip from it; the runtime stage copies only that virtualenv, so no wheel, pip or setuptools is
# left in the image (the base image's own pip is removed too, where it has one). Non-root, numeric user
# 10001.
#
# BASE_IMAGE is any image with Python >= 3.11 and its venv module. By default the public python 3.12.12
# slim (Debian bookworm), pinned by its multi-arch index digest: bump the tag and the digest together
# (docker buildx imagetools inspect python:<tag>). The dev cluster builds from its own Debian image
# (hack/images), as no registry is reachable there.
ARG BASE_IMAGE=python:3.12.12-slim-bookworm@sha256:593bd06efe90efa80dc4eee3948be7c0fde4134606dd40d8dd8dbcade98e669c

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/batchai \
    && /opt/batchai/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/batchai/bin/python -m pip uninstall --yes --disable-pip-version-check pip \
    && find /opt/batchai -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN (python3 -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel || true) \
    && rm -f /usr/local/bin/pip* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin batchai
COPY --from=build /opt/batchai /opt/batchai
ENV PATH=/opt/batchai/bin:$PATH PYTHONDONTWRITEBYTECODE=1
USER 10001
ENTRYPOINT ["kopf"]
CMD ["run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "batchai_operator.main"]
