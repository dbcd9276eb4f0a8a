"""The `hopthu` command as a user runs it: `user add`, `inbox add`, the generated secret key, and `hopthu demo`
(seeded, serving, simulating, and stopping cleanly on SIGTERM).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inbox import demo_channels
from inbox.demo import SCRIPTS

CLI = [sys.executable, "-m", "inbox.cli"]
LOGIN_LINE = re.compile(r"^\s*(admin|supervisor|agent)\s+(\S+@demo\.hopthu\.vn)\s+(\S+)")
FACEBOOK = ["--channel", "facebook", "--name", "Shop Thời Trang", "--page-id", "106001234567890"]
FACEBOOK_SECRETS = ["--page-token", "EAAtoken", "--app-secret", "s3cr3t-app", "--verify-token", "verify-me"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPTHU_")}
    env.update(PYTHONIOENCODING="utf-8", **extra)
    return env


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(
        HOPTHU_DATABASE_URL=f"sqlite://{tmp_path / 'cli.db'}",
        HOPTHU_SECRET_FILE=str(tmp_path / "secret"),
        HOPTHU_CONFIG=str(tmp_path / "absent.toml"),
    )


def hopthu(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=120
    )


def add_user(env: dict[str, str], cwd: Path, email: str, role: str = "agent") -> subprocess.CompletedProcess[str]:
    return hopthu(env, cwd, "user", "add", "--email", email, "--password", "mật-khẩu-dài-123", "--role", role)


# ---------------------------------------------------------------------------------------------- CLI


def test_user_add_prints_the_new_user_as_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    first = add_user(cli_env, tmp_path, "Lan.Pham@Shop.vn")
    assert first.returncode == 0, first.stderr
    user = json.loads(first.stdout)
    assert isinstance(user["id"], int)
    assert (user["email"], user["role"]) == ("lan.pham@shop.vn", "agent")

    second = hopthu(
        cli_env, tmp_path, "user", "add", "--email", "boss@shop.vn", "--password", "pw-123456", "--role", "admin",
        "--name", "Nguyễn Văn Quang",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    boss = json.loads(second.stdout)
    assert boss["id"] != user["id"]
    assert (boss["name"], boss["role"]) == ("Nguyễn Văn Quang", "admin")


def test_duplicate_email_is_refused_with_a_clear_message(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert add_user(cli_env, tmp_path, "khoa@shop.vn").returncode == 0
    again = add_user(cli_env, tmp_path, "KHOA@shop.vn", role="supervisor")
    assert again.returncode != 0
    assert "khoa@shop.vn" in again.stderr and "already exists" in again.stderr
    assert again.stdout == ""


def test_inbox_add_facebook_prints_the_inbox_without_secrets(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = hopthu(cli_env, tmp_path, "inbox", "add", *FACEBOOK, *FACEBOOK_SECRETS)
    assert done.returncode == 0, done.stderr
    inbox = json.loads(done.stdout)
    assert isinstance(inbox["id"], int)
    assert (inbox["channel"], inbox["external_id"], inbox["name"]) == ("facebook", "106001234567890", "Shop Thời Trang")
    assert "s3cr3t-app" not in done.stdout and "EAAtoken" not in done.stdout

    duplicate = hopthu(cli_env, tmp_path, "inbox", "add", *FACEBOOK, *FACEBOOK_SECRETS)
    assert duplicate.returncode != 0
    assert "already exists" in duplicate.stderr


def test_user_add_puts_an_agent_in_the_inboxes_given(cli_env: dict[str, str], tmp_path: Path) -> None:
    inbox = json.loads(hopthu(cli_env, tmp_path, "inbox", "add", *FACEBOOK, *FACEBOOK_SECRETS).stdout)
    done = hopthu(cli_env, tmp_path, "user", "add", "--email", "lan@shop.vn", "--password", "mật-khẩu-dài-123",
                  "--role", "agent", "--inbox", str(inbox["id"]))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inbox_ids"] == [inbox["id"]]
    db = sqlite3.connect(tmp_path / "cli.db")
    assert db.execute("SELECT inbox_id FROM inbox_members").fetchall() == [(inbox["id"],)]
    unknown = hopthu(cli_env, tmp_path, "user", "add", "--email", "khoa@shop.vn", "--password", "mật-khẩu-dài-123",
                     "--role", "agent", "--inbox", "999")  # fmt: skip
    assert unknown.returncode != 0 and "no inbox with id 999" in unknown.stderr
    assert db.execute("SELECT count(*) FROM users WHERE email = 'khoa@shop.vn'").fetchone() == (0,)
    db.close()


def test_inbox_add_facebook_names_the_missing_flags(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = hopthu(cli_env, tmp_path, "inbox", "add", *FACEBOOK, "--page-token", "EAAtoken")
    assert done.returncode != 0
    assert "--app-secret" in done.stderr and "--verify-token" in done.stderr
    assert done.stdout == ""


def test_secret_key_file_is_created_private_and_reused(cli_env: dict[str, str], tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    assert not secret_file.exists()
    assert add_user(cli_env, tmp_path, "a@shop.vn").returncode == 0
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    key = secret_file.read_text()
    assert len(key.strip()) >= 32

    assert add_user(cli_env, tmp_path, "b@shop.vn").returncode == 0
    assert secret_file.read_text() == key


# ---------------------------------------------------------------------------------------------- demo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    """`hopthu demo` in a subprocess, its output collected by a thread so the pipe never fills."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*CLI, "demo", "--port", str(self.port), *args],
            cwd=cwd,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.token = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited with {self.proc.returncode} before {what}:\n{self.output}")
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout}s; output so far:\n{self.output}")

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def healthy(self) -> bool:
        return self.request("GET", "/healthz")[0] == 200

    def logins(self) -> list[tuple[str, str, str]]:
        found = [m.groups() for line in list(self.lines) if (m := LOGIN_LINE.match(line))]
        return found if len(found) >= 4 else []

    def log_in(self, role: str) -> dict:
        role_, email, password = next(login for login in self.logins() if login[0] == role)
        self.token = ""
        status, body = self.request("POST", "/api/auth/login", {"email": email, "password": password})
        assert status == 200, f"login as {role_} {email} failed with {status}"
        self.token = body["token"]
        return body["user"]

    def conversations(self) -> list[dict]:
        status, body = self.request("GET", "/api/conversations?assignee=all&limit=100")
        assert status == 200
        return body["items"]

    def message_count(self) -> int:
        total = 0
        for conv in self.conversations():
            status, body = self.request("GET", f"/api/conversations/{conv['id']}/messages?limit=200")
            assert status == 200
            total += len(body["items"])
        return total

    def ready(self) -> None:
        self.wait_for("200 from /healthz", self.healthy, timeout=60)
        self.wait_for("printed logins", self.logins, timeout=60)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"demo did not exit within 10 s of SIGTERM:\n{self.output}") from None


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    started: list[Demo] = []

    def start(*args: str) -> Demo:
        started.append(Demo(tmp_path, *args))
        return started[-1]

    yield start
    for demo in started:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.wait(timeout=10)


def test_demo_seeds_serves_simulates_and_stops_on_sigterm(demo_factory, tmp_path: Path) -> None:
    demo = demo_factory()
    demo.ready()
    roles = sorted(role for role, _, _ in demo.logins())
    assert roles == ["admin", "agent", "agent", "supervisor"]
    assert (tmp_path / "hopthu-demo.db").exists()
    assert "curl" in demo.output and "/api/conversations" in demo.output

    me = demo.log_in("agent")
    assert me["role"] == "agent"
    seen_by_agent = demo.conversations()
    assert len(seen_by_agent) >= 15  # agents are members of the demo inbox

    demo.log_in("admin")
    conversations = demo.conversations()
    assert len(conversations) >= 15
    assert {"open", "resolved"} <= {c["status"] for c in conversations}
    assert any(c["labels"] for c in conversations) and any(c["assignee_id"] for c in conversations)
    assert any(c["contact"] and c["contact"]["name"] for c in conversations)

    before = demo.message_count()
    demo.wait_for("a simulated message", lambda: demo.message_count() > before, timeout=30)

    assert demo.stop() == 0
    assert "stopped" in demo.output


def test_demo_without_simulator_starts_fresh_and_stays_quiet(demo_factory, tmp_path: Path) -> None:
    (tmp_path / "hopthu-demo.db").write_bytes(b"left over from an earlier run, not a database")
    demo = demo_factory("--no-simulator")
    demo.ready()
    demo.log_in("supervisor")
    # A fresh database holds exactly what the demo seeds: its Messenger scripts, the post's comments (one thread
    # per commenter) and the Zalo customers — nothing left over from the file that was there before.
    seeded = len(SCRIPTS) + len(demo_channels.COMMENTS) + len(demo_channels.ZALO_CUSTOMERS)
    assert len(demo.conversations()) == seeded

    def edited_and_hidden() -> dict | None:  # the comment that showed a phone number only once edited
        for conv in demo.conversations():
            _, body = demo.request("GET", f"/api/conversations/{conv['id']}/messages?limit=200")
            for msg in body["items"]:
                comment = (msg.get("extra") or {}).get("comment") or {}
                if msg["text"] == demo_channels.EDITED_COMMENT and comment.get("hidden"):
                    return msg
        return None

    edited = demo.wait_for("the edited comment hidden", edited_and_hidden, timeout=20)
    assert [h["text"] for h in edited["edit_history"]] == [demo_channels.COMMENTS[-1][1]]

    before = demo.message_count()
    time.sleep(6)  # the simulator would have written at least once by now
    assert demo.message_count() == before
    assert len(demo.conversations()) == seeded

    assert demo.stop() == 0
