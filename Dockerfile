# golive: the Slack app, served over HTTP on port 3000 (or Socket Mode with --socket-mode).
#
#   docker build -t golive .
#   docker run -d --name golive -p 3000:3000 \
#     -v golive-data:/data -v "$PWD/golive.yml:/etc/golive/golive.yml:ro" \
#     -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET golive
#
# The config must keep its database on the volume:  database: /data/golive.db
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY checks ./checks
RUN pip install . \
    && groupadd --system --gid 10001 golive \
    && useradd --system --uid 10001 --gid golive --home-dir /data --shell /usr/sbin/nologin golive \
    && mkdir -p /data /etc/golive \
    && chown golive:golive /data

USER golive
VOLUME ["/data"]
EXPOSE 3000

# No curl in the slim image: Python asks /healthz (non-2xx or no answer → unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

CMD ["golive", "serve", "--config", "/etc/golive/golive.yml", "--port", "3000"]
