"""The API's documentation pages: Swagger UI at /docs, its scripts, styles and icon served
by the API itself from the swagger-ui-py package (so the pages work with no internet
access), and the OpenAPI document at /docs/openapi.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS = "/docs/assets"


def _swagger_ui_files() -> Path:
    """swagger-ui-py's copy of Swagger UI's distribution (found without importing the
    package, whose framework adapters are of no use here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of pgcapacity)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_assets() -> Router:
    return create_static_files_router(
        path=ASSETS, directories=[_swagger_ui_files()], name="docs-assets"
    )


def swagger_page() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">',
    )
