FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MONITOR_CONFIG=/app/config/monitor.yaml
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . && useradd --create-home --uid 1000 monitor \
    && mkdir -p /app/config /app/state && chown monitor /app/state
COPY config/monitor.yaml /app/config/monitor.yaml
USER monitor
VOLUME ["/app/state"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["monitor", "healthcheck", "--max-age", "90s"]
CMD ["monitor", "run"]
