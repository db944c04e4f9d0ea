# One image for every Afflux service (and the `afflux` command), built from the locked
# workspace (uv.lock). The command chooses what runs:
#
#   docker build -t afflux:0.1.0 .
#   docker run --rm -e DATABASE_URL=... -e KAFKA_BOOTSTRAP_SERVERS=... afflux:0.1.0 afflux provision
#   docker run --rm -e DATABASE_URL=... -e KAFKA_BOOTSTRAP_SERVERS=... -e AFFLUX_ADMIN_TOKEN=... \
#       -p 127.0.0.1:8002:8000 afflux:0.1.0 python -m afflux_tracking
#
# Inside a container every service listens on 0.0.0.0:8000 (one service per container),
# so the health check and the manifests name one port whatever the service.
# infra/compose.yaml runs the whole stack from this image; docs/operations.md says more.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The uv the Makefile pins; the Python of the base image, never a downloaded one.
RUN pip install --no-cache-dir --disable-pip-version-check "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/afflux
WORKDIR /src
# The third-party dependencies first, in a layer that changes only with the lock.
COPY pyproject.toml uv.lock ./
COPY contracts/pyproject.toml contracts/
COPY plumbing/pyproject.toml plumbing/
COPY infra/pyproject.toml infra/
COPY services/partners/pyproject.toml services/partners/
COPY services/tracking/pyproject.toml services/tracking/
COPY services/attribution/pyproject.toml services/attribution/
COPY services/payouts/pyproject.toml services/payouts/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/postbacks/pyproject.toml services/postbacks/
COPY services/console/pyproject.toml services/console/
COPY services/notifications/pyproject.toml services/notifications/
COPY examples/subscriber/pyproject.toml examples/subscriber/
RUN uv sync --frozen --no-dev --all-packages --no-install-workspace
# Then Afflux itself, installed as wheels (not editable): the runtime stage takes only
# the environment, never the source tree.
COPY . .
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 afflux \
    && useradd --system --uid 10001 --gid afflux --no-create-home --home-dir /nonexistent afflux
COPY --from=build /opt/afflux /opt/afflux
COPY LICENSE /usr/share/doc/afflux/LICENSE
ENV PATH=/opt/afflux/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AFFLUX_HOST=0.0.0.0 \
    AFFLUX_PARTNERS_PORT=8000 \
    AFFLUX_TRACKING_PORT=8000 \
    AFFLUX_ATTRIBUTION_PORT=8000 \
    AFFLUX_PAYOUTS_PORT=8000 \
    AFFLUX_GATEWAY_PORT=8000 \
    AFFLUX_POSTBACKS_PORT=8000 \
    AFFLUX_CONSOLE_PORT=8000 \
    AFFLUX_NOTIFICATIONS_PORT=8000
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "afflux_partners"]
