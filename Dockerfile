# lark-scheduler: the Lark service's scheduler (kernel, built-in jobs, metrics, admin API).
#   docker build -t lark-scheduler .
#   docker run --rm -p 127.0.0.1:9180:9180 -e LARK_SCHEDULER_ADMIN_TOKEN=... lark-scheduler
# docker-compose.yml runs it with PostgreSQL, RabbitMQ, Prometheus and Grafana.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY kernel ./kernel
COPY actors ./actors
COPY lark_service ./lark_service
RUN pip install . && rm -rf /src

# A system user without a login shell; the data directory is its home.
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/lark-scheduler \
        --shell /usr/sbin/nologin lark \
    && mkdir -p -m 0700 /var/lib/lark-scheduler/data \
    && chown -R lark:lark /var/lib/lark-scheduler
USER lark
WORKDIR /var/lib/lark-scheduler

# Listen on every interface inside the container (publish the port to loopback only, or
# behind a proxy); 9180 is the port deploy/prometheus/prometheus.yml scrapes.
ENV LARK_SCHEDULER_HTTP__HOST=0.0.0.0 \
    LARK_SCHEDULER_HTTP__PORT=9180 \
    LARK_SCHEDULER_STORE__DATA_DIR=/var/lib/lark-scheduler/data
EXPOSE 9180
VOLUME ["/var/lib/lark-scheduler/data"]

# The image has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9180/healthz', timeout=4)"]

# SIGTERM stops firing and gives running jobs scheduler.shutdown_grace (30 s) to finish;
# give `docker stop` more than that (docker-compose.yml sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["lark-scheduler"]
CMD ["serve"]
