"""The deployment files: the compose file parses and every file it references exists; the
Dockerfile runs the service as a non-root user with a health check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


COMPOSE: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
SERVICES: dict[str, Any] = COMPOSE["services"]


def mounts(service: str) -> dict[str, str]:
    """Bind mounts of a service: container path -> host path (relative to the repo)."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            found[target] = source
    return found


def test_compose_has_the_stack() -> None:
    assert set(SERVICES) == {"lark-service", "postgres", "rabbitmq", "prometheus", "grafana"}
    # The seed's troubleshooting runs `docker logs lark-service`.
    assert SERVICES["lark-service"]["container_name"] == "lark-service"
    assert set(COMPOSE["volumes"]) == {
        v.split(":")[0]
        for s in SERVICES.values()
        for v in s.get("volumes", [])
        if not v.startswith(".")
    }


def test_every_bind_mounted_file_exists() -> None:
    sources = [src for name in SERVICES for src in mounts(name).values()]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_the_service_is_built_from_the_dockerfile() -> None:
    build = SERVICES["lark-service"]["build"]
    assert build == "."
    assert (ROOT / "Dockerfile").is_file()


def test_prometheus_scrapes_the_service_and_loads_the_rules() -> None:
    files = mounts("prometheus")
    config_path = ROOT / files["/etc/prometheus/prometheus.yml"]
    config = load_yaml(config_path)
    for rule_file in config["rule_files"]:
        inside = f"/etc/prometheus/{rule_file}"
        assert inside in files, f"{rule_file} is not mounted next to prometheus.yml"
        assert load_yaml(ROOT / files[inside])["groups"]
    (target,) = [t for job in config["scrape_configs"] for c in job["static_configs"]
                 for t in c["targets"]]
    host, port = target.split(":")
    assert host == "lark-service"
    environment = SERVICES["lark-service"].get("environment", {})
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"LARK_SCHEDULER_HTTP__PORT={port}" in dockerfile or (
        environment.get("LARK_SCHEDULER_HTTP__PORT") == port
    )
    assert "LARK_SCHEDULER_HTTP__HOST=0.0.0.0" in dockerfile


def test_grafana_is_provisioned_with_both_dashboards() -> None:
    files = mounts("grafana")
    provisioning = ROOT / files["/etc/grafana/provisioning"]
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "lark-scheduler.yml")["providers"]
    inside = provider["options"]["path"]
    dashboards = ROOT / files[inside]
    import json

    titles = {
        json.loads(p.read_text(encoding="utf-8"))["title"] for p in dashboards.glob("*.json")
    }
    assert titles == {"Scheduler Monitoring", "Token Expiry Monitoring"}


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(None, 1)
        for line in re.sub(r"\\\n", " ", text).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    first = {name: rest for name, rest in reversed(instructions)}  # the first of each kind
    last = {name: rest for name, rest in instructions}
    assert first["FROM"] == "python:3.11-slim"
    assert last["USER"] not in ("root", "0")
    assert "useradd" in text
    assert "/healthz" in last["HEALTHCHECK"]
    assert last["ENTRYPOINT"] == '["lark-scheduler"]'
    assert last["CMD"] == '["serve"]'
    for name, rest in instructions:
        if name == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
