"""The web app: `GET /` serves the single page, `GET /app/{path}` its ES modules, styles and icons.

Every response carries a strict Content-Security-Policy (scripts and styles only from this origin, nothing
inline, no framing): user content is only ever inserted as text by the app, and the policy stops anything that
slips through from running. The pages are public (the login form is one of them); data comes from the API.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from inbox.api.openapi import document, op

routes = web.RouteTableDef()
# Beside the `inbox` package both in a checkout and in an installed wheel (package-data of `frontend`).
ROOT = Path(__file__).resolve().parent.parent / "frontend"
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Contact pictures and attachments come from the platforms' CDNs over HTTPS.
        "img-src 'self' data: https:",
        "media-src 'self' https:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _file_response(path: Path, *, cache: str) -> web.Response:
    response = web.Response(body=path.read_bytes(), content_type=TYPES[path.suffix], charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    # Modules are small and change with each release: revalidate (ETag-free, cheap) rather than cache stale code.
    response.headers["Cache-Control"] = cache
    return response


def resolve_asset(name: str) -> Path | None:
    """A file under frontend/ with a known type; never a path outside it (`..`, absolute, hidden files)."""
    if not name or name.startswith("/") or "\\" in name:
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = ROOT.joinpath(*parts)
    if path.suffix not in TYPES or not path.is_file():
        return None
    return path


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _file_response(ROOT / "index.html", cache="no-cache")


@routes.get("/app/{path:.+}")
async def asset(request: web.Request) -> web.Response:
    path = resolve_asset(request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound(reason="no such file in the web app")
    return _file_response(path, cache="no-cache")


document(
    {
        "/": {
            "get": op(
                "The web app (agent inbox, supervisor dashboard, admin)",
                {"description": "HTML page", "content": {"text/html": {}}},
                role=None,
                tag="ui",
            )
        },
        "/app/{path}": {
            "get": op(
                "The web app's static files (ES modules, styles, icons)",
                {"description": "the file"},
                params=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
                role=None,
                tag="ui",
            )
        },
    }
)
