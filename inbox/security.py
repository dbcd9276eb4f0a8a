"""Security headers on every response, and the Origin check for browser WebSockets.

Headers are added in `on_response_prepare`, so they reach every response: handlers' own, error responses raised
as exceptions and aiohttp's 404/405 (not a WebSocket's 101 upgrade, which carries no document). A handler that sets
its own policy (the web app's pages do) keeps it: only missing headers are filled in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from inbox.config import Settings

# HTML pages: scripts and styles only from this origin, nothing inline, no plugins, no framing.
HTML_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",  # contact pictures and attachments come from the platforms' CDNs
        "media-src 'self' https:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Everything else (JSON, files): nothing in it may run or be framed, even if a browser is tricked into rendering it.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
# Content a browser would run if rendered inline: from the API (attachments, exports) it is served as a download.
ACTIVE_TYPES = frozenset(
    {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml", "text/javascript"}
)
DOWNLOAD_ONLY_PREFIXES = ("/api/", "/attachments/", "/media/", "/files/")
# The website chat widget is embedded in customers' sites: framing it is its purpose.
EMBEDDABLE_PREFIXES = ("/widget/",)
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
ALLOWED_ORIGINS_VARIABLE = "HOPTHU_ALLOWED_ORIGINS"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if isinstance(response, web.WebSocketResponse):
        # A 101 upgrade carries no document to protect, and its headers stay in memory for the socket's life
        # (≈ 1.8 KiB per open socket with these seven).
        return
    headers = response.headers
    for name, value in COMMON.items():
        headers.setdefault(name, value)
    path = request.path
    embeddable = path.startswith(EMBEDDABLE_PREFIXES)
    content_type = (response.content_type or "").lower()
    if content_type in ACTIVE_TYPES and path.startswith(DOWNLOAD_ONLY_PREFIXES):
        # Stored XSS through an uploaded SVG/HTML "attachment": never rendered on this origin.
        disposition = headers.get("Content-Disposition", "attachment")
        headers["Content-Disposition"] = disposition.replace("inline", "attachment")
        headers["Content-Security-Policy"] = DATA_CSP
    if not embeddable:
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", HTML_CSP if content_type == "text/html" else DATA_CSP)
    if path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")  # personal data: never in a shared or disk cache
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset)


def install(app: web.Application, settings: Settings) -> None:
    app[ALLOWED_ORIGINS] = allowed_origins(settings)
    app.on_response_prepare.append(add_security_headers)


def allowed_origins(settings: Settings) -> frozenset[str]:
    """Extra origins allowed to open the agents' socket (`HOPTHU_ALLOWED_ORIGINS`, comma-separated), e.g. a UI
    served from another host than the API."""
    raw = settings.extra.get(ALLOWED_ORIGINS_VARIABLE) or os.environ.get(ALLOWED_ORIGINS_VARIABLE, "")
    return frozenset(normalise_origin(o) for o in raw.split(",") if o.strip())


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip().lower())
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(request: web.Request, allowed: Iterable[str] | None = None) -> bool:
    """A browser's Origin must be this server's own or one configured; clients without Origin (mobile apps,
    scripts, bots) are not browsers and cannot be driven by another site, so they pass."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null" or "://" not in origin:
        return False
    try:
        wanted = normalise_origin(origin)
    except ValueError:  # a port past 65535 or not a number, an unclosed [IPv6: no browser sends it
        return False
    try:
        own = normalise_origin(f"{request.scheme}://{request.host}")
    except ValueError:  # a Host header no browser sends (port 99999): only the configured origins can match
        own = None
    if wanted == own:
        return True
    # Behind a TLS-terminating proxy the server sees http:// while the browser says https://: the host decides.
    if own is not None and wanted.split("://", 1)[1] == own.split("://", 1)[1] and wanted.startswith("https://"):
        return True
    if allowed is None:
        allowed = request.app.get(ALLOWED_ORIGINS, frozenset())
    return wanted in set(allowed)
