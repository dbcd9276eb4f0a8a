"""The deployment files hold together: what docker-compose.yml promises (docs/deploy.md) is what it says.

`docker compose config` validates the syntax where Docker has the compose plugin (.ci/run); this checks the
meaning everywhere: services, health checks, volumes, shared secrets, and WebSocket upgrade in the proxy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_service_is_there_with_a_health_check(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "hopthu-1", "hopthu-2", "proxy"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name


def test_both_servers_share_database_redis_and_secret(compose: dict) -> None:
    one, two = compose["services"]["hopthu-1"], compose["services"]["hopthu-2"]
    assert one["environment"] == two["environment"]
    env = one["environment"]
    assert env["HOPTHU_DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["HOPTHU_DATABASE_URL"]
    assert env["HOPTHU_REDIS_URL"] == "redis://redis:6379/0"
    assert env["HOPTHU_SECRET_KEY"].startswith("${HOPTHU_SECRET_KEY:?")  # required, never a built-in default
    assert "/healthz" in " ".join(one["healthcheck"]["test"])
    # The second waits for the first to be healthy: migrations never run twice at once.
    assert two["depends_on"]["hopthu-1"]["condition"] == "service_healthy"


def test_data_lives_in_named_volumes(compose: dict) -> None:
    services = compose["services"]
    volumes = set(compose["volumes"])
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"]) and "pgdata" in volumes
    assert any(v.startswith("redisdata:") for v in services["redis"]["volumes"]) and "redisdata" in volumes
    assert "--appendonly" in services["redis"]["command"]


def test_the_proxy_balances_both_servers_and_upgrades_websockets(compose: dict) -> None:
    proxy = compose["services"]["proxy"]
    mounted = [v.split(":")[0] for v in proxy["volumes"]]
    config = (ROOT / mounted[0]).read_text(encoding="utf-8")
    assert re.search(r"server hopthu-1:8080", config) and re.search(r"server hopthu-2:8080", config)
    assert "proxy_set_header Upgrade $http_upgrade" in config
    assert "proxy_set_header Connection $connection_upgrade" in config
    assert "location /ws" in config and "proxy_read_timeout 1h" in config
    assert "non_idempotent" not in config  # a reply POST is never sent to a second server


def test_the_image_runs_the_server_unprivileged_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'^CMD \["hopthu", "serve", "--host", "0.0.0.0"', dockerfile, re.M)
    assert re.search(r"^USER hopthu$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
