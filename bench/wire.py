"""Lean HTTP and WebSocket clients for the benchmarks' load generators and receivers.

On the 2-core VM the benchmarks run on, the clients share the cores with the server they measure. aiohttp's client
spent ≈ 300 µs of CPU per webhook in `bench/realtime.py`'s open loop and ≈ 14 µs per WebSocket frame in its
receiver (50 agents, ≈ 2.6 frames per message each: half a core at 1,000 msg/s), CPU the server then did not get.
Real platforms and agents' browsers run on other machines. These clients do only what the measurement needs, on
asyncio protocols with no per-request task: a pre-built request written to an idle keep-alive connection and the
answer's status line and length read back; a WebSocket upgrade and a frame walk that stamps each frame with the
arrival time of the chunk that completed it and keeps only the `external_id` of `message.created` frames.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from urllib.parse import urlsplit

# ------------------------------------------------------------------------------------------- HTTP, open loop


def http_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of one keep-alive POST request."""
    parts = urlsplit(url)
    head = [f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{name}: {value}" for name, value in headers.items() if name.lower() not in ("host", "content-length")]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _HttpConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time (as a platform's webhook sender does)."""

    def __init__(self, pool: OpenLoop) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_flight: tuple[object, float] | None = None  # (key, scheduled time)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pool.idle(self)

    def send(self, key: object, scheduled: float, request: bytes) -> None:
        self.in_flight = (key, scheduled)
        self.transport.write(request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end].lower()
        length, at = 0, head.find(b"content-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at)
            length = int(head[at + 15 : line_end if line_end >= 0 else len(head)])
        if len(buffer) < end + 4 + length:
            self.buffer = buffer
            return
        self.buffer = buffer[end + 4 + length :]
        status = int(buffer[9:12])
        key, scheduled = self.in_flight  # type: ignore[misc]
        self.in_flight = None
        self.pool.answered(key, scheduled, status)
        if b"connection: close" in head:
            self.transport.close()  # type: ignore[union-attr]
        elif self.transport is not None and not self.transport.is_closing():
            self.pool.idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.lost(self)


class OpenLoop:
    """Requests leave on a fixed schedule whether or not earlier ones were answered; latency counts from the
    scheduled time (no coordinated omission). A request that finds no idle connection waits for one while a new
    connection is opened, up to `max_connections`."""

    def __init__(self, url: str, max_connections: int = 2_000) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.max_connections = max_connections
        self._idle: deque[_HttpConnection] = deque()
        self._waiting: deque[tuple[object, float, bytes]] = deque()
        self._connections = 0
        self._opening = 0
        self.acked: dict[object, float] = {}  # key → scheduled time, for 2xx answers
        self.ack_ms: list[float] = []
        self.errors = 0
        self.statuses: Counter[int] = Counter()  # answers by HTTP status
        self.lost_in_flight = 0  # requests whose connection closed before the answer
        self._outstanding = 0
        self._all_done: asyncio.Future[None] | None = None
        self._opening_tasks: set[asyncio.Future[None]] = set()
        self.started = 0.0  # the first request's scheduled time

    async def warm(self, connections: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._open(loop) for _ in range(connections)))

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._connections += 1
        self._opening += 1
        try:
            await loop.create_connection(lambda: _HttpConnection(self), self.host, self.port)
        except OSError:
            self._connections -= 1
            if self._waiting:  # a request that counted on this connection fails instead of waiting for ever
                self._waiting.popleft()
                self._finished(error=True)
        finally:
            self._opening -= 1

    def submit(self, key: object, scheduled: float, request: bytes) -> None:
        self._outstanding += 1
        if self._idle:
            self._idle.pop().send(key, scheduled, request)
            return
        self._waiting.append((key, scheduled, request))
        if self._connections < self.max_connections and self._opening < len(self._waiting):
            task = asyncio.ensure_future(self._open(asyncio.get_running_loop()))
            self._opening_tasks.add(task)
            task.add_done_callback(self._opening_tasks.discard)

    def idle(self, connection: _HttpConnection) -> None:
        if self._waiting:
            connection.send(*self._waiting.popleft())
        else:
            self._idle.append(connection)

    def answered(self, key: object, scheduled: float, status: int) -> None:
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.acked[key] = scheduled
            self.ack_ms.append((time.monotonic() - scheduled) * 1000)
            self._finished(error=False)
        else:
            self._finished(error=True)

    def lost(self, connection: _HttpConnection) -> None:
        self._connections -= 1
        if connection in self._idle:
            self._idle.remove(connection)
        if connection.in_flight is not None:
            connection.in_flight = None
            self.lost_in_flight += 1
            self._finished(error=True)

    def _finished(self, *, error: bool) -> None:
        self.errors += error
        self._outstanding -= 1
        if self._outstanding == 0 and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    async def run(self, requests: list[tuple[object, bytes]], rate: float, timeout: float = 30.0) -> None:
        """Send `requests` ((key, bytes)) at `rate` per second, then wait for their answers."""
        loop = asyncio.get_running_loop()
        self.started = t0 = time.monotonic()
        for i, (key, request) in enumerate(requests):
            scheduled = t0 + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            self.submit(key, scheduled, request)
        if self._outstanding:  # the future exists only now: in between, the count touched 0 many times
            self._all_done = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_done), timeout)
            except TimeoutError:
                self.errors += self._outstanding

    def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()


# ------------------------------------------------------------------------------------------- WebSocket receiver

CREATED = b'{"type":"message.created"'
READY = b'{"type":"ready"'
EXTERNAL_ID = b'"external_id":"'
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 requires the mask; a zero key leaves the payload as it is)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class FrameReceiver(asyncio.Protocol):
    """An agent's socket: the upgrade, then every server frame walked as it arrives. Pings are answered; a
    `message.created` frame's `external_id` is recorded with the monotonic time of the chunk that completed it
    when `recording` is on; `on_ready` is called on the first `ready` frame; `frames` counts text frames."""

    def __init__(self, path: str, host: str, index: int, sink: list, on_ready: Callable[[], None]) -> None:
        self.path, self.host, self.index = path, host, index
        self.sink = sink
        self.on_ready = on_ready
        self.recording = False
        self.frames = 0
        self.upgraded = False
        self.ready = False
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        # The headers a browser's tab sends: the server keeps the request's headers for the socket's life, so
        # fewer would flatter its memory per socket.
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
            f"Cache-Control: no-cache\r\nUser-Agent: {BROWSER}\r\nUpgrade: websocket\r\n"
            f"Origin: http://{self.host}\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
            f"Accept-Language: vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if buffer[9:12] != b"101":
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            buffer = buffer[end + 4 :]
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            first, length = buffer[pos], buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, pos + 2)
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1:
                self.frames += 1
                if self.recording and buffer.startswith(CREATED, start):
                    found = buffer.find(EXTERNAL_ID, start, end)
                    if found >= 0:
                        found += len(EXTERNAL_ID)
                        self.sink.append((self.index, buffer[found : buffer.find(b'"', found)], at))
                elif not self.ready and buffer.startswith(READY, start):
                    self.ready = True
                    self.on_ready()
            elif opcode == 9:  # ping → pong with the same payload
                self.transport.write(_client_frame(0xA, buffer[start:end]))  # type: ignore[union-attr]
            elif opcode == 8:
                self.transport.close()  # type: ignore[union-attr]
                break
            pos = end
        self.buffer = buffer[pos:] if pos < size else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_receiver(
    url: str, index: int, sink: list, on_ready: Callable[[], None], timeout: float = 60.0
) -> FrameReceiver:
    """Connect one agent socket to `url` (ws://host:port/path?query)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: FrameReceiver(path, parts.netloc, index, sink, on_ready), parts.hostname, parts.port
        ),
        timeout,
    )
    return protocol


if __name__ == "__main__":  # `make bench` runs every bench/*.py
    print("bench/wire.py holds the latency phases' clients; run bench/realtime.py or bench/scaleout.py")
