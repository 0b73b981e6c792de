# The operator image: a wheel built in one stage, installed into a virtualenv of a slim runtime, run as a
# non-root user. BASE_IMAGE is any image with Python >= 3.11 and its venv module: the public
# python:3.12-slim by default; the dev cluster builds it from its own Debian image (hack/images).
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/build && /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin batchai
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/batchai && /opt/batchai/bin/pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PATH=/opt/batchai/bin:$PATH
USER 10001
ENTRYPOINT ["kopf"]
CMD ["run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "batchai_operator.main"]
