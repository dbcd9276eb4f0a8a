"""The web app's files as the server hands them out: a strict CSP, known types only, nothing outside frontend/,
and no way in the app's code to insert data as HTML."""

from __future__ import annotations

import re

from inbox.frontend import ROOT


async def test_index_is_served_with_a_strict_content_security_policy(client):
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="' in tag for tag in scripts), "no inline scripts in the page"
    assert not re.search(r"<[^>]*\son[a-z]+=", html), "no inline event handlers"


async def test_modules_and_styles_are_served_with_their_types(client):
    main = await client.get("/app/js/main.js")
    assert main.status == 200 and main.content_type == "text/javascript"
    assert "Content-Security-Policy" in main.headers
    css = await client.get("/app/css/app.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_nothing_outside_the_app_directory_is_served(client):
    for path in ("/app/../inbox/app.py", "/app/%2e%2e/inbox/app.py", "/app/js/nope.js", "/app/__init__.py", "/app/.x"):
        response = await client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"


def test_the_app_never_inserts_html_from_strings():
    """User content goes in as text: the app has no innerHTML/outerHTML/insertAdjacentHTML/document.write/eval."""
    sinks = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    files = [p for p in (ROOT / "js").rglob("*.js")]
    assert files
    offenders = [str(p) for p in files if sinks.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_label_exists_in_both_languages():
    source = (ROOT / "js" / "i18n.js").read_text(encoding="utf-8")
    vi_block = source.split("  vi: {", 1)[1].split("\n  },\n", 1)[0]
    en_block = source.split("  en: {", 1)[1].split("\n  },\n", 1)[0]
    key = re.compile(r'^\s+"([^"]+)":', re.M)
    vi, en = set(key.findall(vi_block)), set(key.findall(en_block))
    assert len(vi) > 100
    assert vi == en, (sorted(vi - en), sorted(en - vi))
    used = set()
    for path in (ROOT / "js").rglob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z][a-zA-Z0-9_]*\.[a-zA-Z0-9_.]+)"', path.read_text(encoding="utf-8")))
    assert used - vi == set(), "labels used but not defined"
