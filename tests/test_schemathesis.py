"""schemathesis against `/api/openapi.json` of a running `hopthu serve`: generated requests for every documented
operation, as an admin; no server error, and every response matches the document (status code documented, content
type and body schema as documented).

Kept small for CI (2 cores): `HOPTHU_SCHEMATHESIS_EXAMPLES` examples per operation (default 8), one server for the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from channels.fakes import messenger_text, signed
from tests.conftest import APP_SECRET, PAGE_ID, PAGE_TOKEN, VERIFY_TOKEN, now_ms
from tests.test_crash_durability import free_port, server_env

EXAMPLES = int(os.environ.get("HOPTHU_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Not JSON API operations: the socket, the web app's files and the platforms' webhooks (signed; fuzzed in
# tests/test_hostile.py and tests/test_fuzz_parsers.py instead).
# The session-ending calls would log the generated requests' admin out (tested in tests/test_security.py).
SKIPPED = r"^/(ws|app/|widget/|webhooks/|metrics$|api/auth/(logout|logout-all|password)$|$)"
ADMIN, PASSWORD = "admin@schemathesis.vn", "mật-khẩu-schemathesis-123"


@pytest.fixture(scope="module")
def running(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    database_url = postgres_url or f"sqlite://{tmp / 'st.db'}"
    if postgres_url:
        asyncio.run(_truncate(postgres_url))
    env = server_env(database_url, tmp)
    run = [sys.executable, "-m", "inbox.cli"]
    subprocess.run([*run, "user", "add", "--email", ADMIN, "--password", PASSWORD, "--role", "admin"],
                   env=env, cwd=tmp, check=True, capture_output=True)  # fmt: skip
    subprocess.run([*run, "inbox", "add", "--channel", "facebook", "--name", "Shop", "--page-id", PAGE_ID,
                    "--page-token", PAGE_TOKEN, "--app-secret", APP_SECRET, "--verify-token", VERIFY_TOKEN],
                   env=env, cwd=tmp, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen([*run, "serve", "--port", str(port)], env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        for n in range(3):  # a few conversations, so ids 1..3 exist for the generated paths
            raw, headers = signed(
                messenger_text(PAGE_ID, f"psid-st-{n}", f"mid.st.{n}", "Shop ơi", now_ms()), APP_SECRET
            )
            assert requests.post(f"{base}/webhooks/facebook", data=raw, headers=headers, timeout=10).status_code == 200
        token = requests.post(f"{base}/api/auth/login", json={"email": ADMIN, "password": PASSWORD}, timeout=10)
        yield base, {"Authorization": f"Bearer {token.json()['token']}"}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _wait_ready(base: str, proc: subprocess.Popen) -> None:
    for _ in range(600):  # a loaded 2-core CI machine can take a while to start the server
        assert proc.poll() is None, "hopthu serve exited"
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("hopthu serve did not become ready")


async def _truncate(url: str) -> None:
    from inbox import db

    await db.connect(url)
    conn = db.connection()
    _, rows = await conn.execute_query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'tortoise%'"
    )
    await conn.execute_script(f"TRUNCATE {', '.join(repr(r['tablename']).replace(chr(39), chr(34)) for r in rows)}"
                              " RESTART IDENTITY CASCADE")  # fmt: skip
    await db.disconnect()


@pytest.fixture(scope="module")
def api_schema(running: tuple[str, dict[str, str]]) -> schemathesis.BaseSchema:
    base, _ = running
    return schemathesis.openapi.from_url(f"{base}/api/openapi.json").exclude(path_regex=SKIPPED)


def test_api_matches_its_document(api_schema: schemathesis.BaseSchema, running: tuple[str, dict[str, str]]) -> None:
    """Every failure is collected (operation, request, what did not match), so one run reports them all."""
    base, auth = running
    failures: list[str] = []
    statuses: dict[int, int] = {}
    cases = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            # Always as the admin: schemathesis would otherwise send a made-up bearer token and see only 401s.
            headers = {**(case.headers or {}), **auth}
            try:
                response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except BaseException as exc:  # schemathesis reports failures as an exception group
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                failures.append(f"{case.operation.label}: {case.method} {case.formatted_path} "
                                f"body={str(case.body)[:200]!r}: {str(exc)[:1200]}")  # fmt: skip

        run()
    print(f"\nSCHEMATHESIS: {cases} cases over {len(operations)} operations; failures: {len(failures)}; "
          f"statuses {dict(sorted(statuses.items()))}")  # fmt: skip
    for failure in failures[:40]:
        print("  FAIL", failure.replace("\n", " | ")[:700])
    assert cases >= len(operations)
    assert sum(n for status, n in statuses.items() if status < 300) > len(operations)  # handlers were reached
    assert not failures, failures[:5]


def test_schemathesis_sees_the_api(api_schema: schemathesis.BaseSchema) -> None:
    operations = [op for op in api_schema.get_all_operations() if op.ok()]
    print(f"\nSCHEMATHESIS: {len(operations)} operations x up to {EXAMPLES} examples")
    assert len(operations) >= 20
