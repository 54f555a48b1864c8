"""How the page and its files are served: policy, caching, errors."""

from __future__ import annotations

import re

import httpx


async def test_the_page_is_public_and_locked_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self' ws: wss:" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-ratelimit-limit" in response.headers

    # No inline script or style: every script is a file of ours, and so is the stylesheet.
    html = response.text
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/app.js">']
    assert "<style" not in html and " style=" not in html
    assert 'href="/static/style.css"' in html


async def test_assets_are_revalidated_not_refetched(client: httpx.AsyncClient) -> None:
    for path, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = await client.get(path)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        # Loading the page's files spends none of the visitor's request budget.
        assert "x-ratelimit-limit" not in response.headers
        again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304


async def test_a_missing_asset_answers_with_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/nothing-here.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    outside = await client.get("/static/%2e%2e/app.py")
    assert outside.status_code == 404


async def test_the_page_is_not_part_of_the_api_description(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/static") for path in paths)
