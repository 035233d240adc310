"""The OpenAPI document says every status each route can answer, in the catalog's terms;
the routes answer HEAD and wrong methods as HTTP says; /docs works offline."""

from __future__ import annotations

import re

import pytest

from pgcapacity.errors import CATALOG
from tests.support import api_client, settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(db):
    async with api_client(settings_for(db)) as c:
        yield c


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_python_copy_of_the_catalog_is_the_catalog(conn):
    rows = conn.execute("SELECT name, sqlstate, http_status FROM capacity.error_codes()")
    assert {name: (state, status) for name, state, status in rows} == CATALOG


async def test_every_error_response_is_the_catalogs(client):
    document = (await client.get("/docs/openapi.json")).json()
    statuses = {status for _, status in CATALOG.values()}
    seen = 0
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert "500" in responses, f"{where}: every route can fail (INTERNAL_ERROR)"
        for status, response in responses.items():
            if (
                int(status) < 400
                or response["content"]["application/json"]["schema"].get("$ref")
                != "#/components/schemas/ErrorResponse"
            ):
                continue
            seen += 1
            assert int(status) in statuses, f"{where}: {status} is no catalog status"
            names = re.findall(r"[A-Z_]{4,}", response["description"])
            assert names and all(CATALOG[n][1] == int(status) for n in names), (where, names)
            examples = response["content"]["application/json"]["examples"].values()
            assert [e["value"]["error"]["code"] for e in examples] == names, where
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), f"{where}: a body can be bad or too large"
        security = operation.get("security", [])
        if security:
            assert "401" in responses, f"{where}: a token can be wrong"
        if security and {} not in security:  # a token required, not only read when given
            assert {"401", "403"} <= set(responses), f"{where}: a token can be missing"
    assert seen > 40


async def test_the_claim_route_lists_every_answer(client):
    document = (await client.get("/docs/openapi.json")).json()
    claim = document["paths"]["/v1/codes/{code}/claims"]["post"]["responses"]
    assert set(claim) == {
        "200",
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "410",
        "413",
        "500",
        "503",
    }
    assert "CODE_FULL or HOLDER_LIMIT_EXCEEDED" in claim["409"]["description"]
    for route in ("/health", "/health/ready", "/health/detailed"):
        assert "503" in document["paths"][route]["get"]["responses"], route


async def test_a_wrong_method_says_which_are_allowed(client):
    r = await client.put("/v1/codes/ANY")
    assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    allowed = set(r.headers["allow"].replace(" ", "").split(","))
    assert "GET" in allowed and "PUT" not in allowed, allowed
    assert "Allow header" in r.json()["error"]["details"]["hint"]


async def test_head_answers_the_health_routes_without_a_body(client):
    for route in ("/health", "/health/live", "/health/ready"):
        r = await client.head(route)
        assert (r.status_code, r.content) == (200, b""), route


async def test_the_docs_page_loads_only_what_the_api_serves(client):
    page = await client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/") for a in assets), assets
    for asset in assets:
        got = await client.get(asset)
        assert got.status_code == 200 and len(got.content) > 100, asset
    assert (
        "http://" not in page.text.replace("http://testserver", "") and "https://" not in page.text
    )


async def test_the_root_points_to_the_docs(client):
    r = await client.get("/", follow_redirects=False)
    assert r.status_code in (301, 302, 307, 308) and r.headers["location"] == "/docs"
