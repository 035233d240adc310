"""The web dashboard at /ui: one page and its assets, all served by the API itself (no
internet access needed). The page holds no data: its script signs in with the admin token,
keeps it in the tab's session storage and reads the /v1 endpoints like any client.

The assets are the page's own (ui/static) and Chart.js from the npm registry
(ui/node_modules, installed by scripts/setup.sh from ui/package-lock.json)."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

ASSETS = "/ui/assets"

# Only this origin's scripts, styles and connections; no framing, no referrer leaves.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ui_files() -> Path:
    """The dashboard's files: pgcapacity/ui in an installed wheel, the checkout's ui/
    folder in an editable install."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "ui", package.parent / "ui"):
        if (candidate / "static" / "index.html").is_file():
            return candidate
    raise FileNotFoundError("the dashboard's files (ui/) were not found next to pgcapacity")


def chart_js_dir() -> Path:
    return ui_files() / "node_modules" / "chart.js" / "dist"


@get("/ui", include_in_schema=False, media_type="text/html")
async def dashboard_page() -> Response[bytes]:
    """The dashboard's page (the same for everyone: it shows a login form until signed in)."""
    page = (ui_files() / "static" / "index.html").read_bytes()
    return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def ui_routes() -> list:
    assets = create_static_files_router(
        path=ASSETS,
        # Without Chart.js (npm absent at set-up) the page still works and says so.
        directories=[ui_files() / "static", *[d for d in [chart_js_dir()] if d.is_dir()]],
        name="ui-assets",
        cache_control=CacheControlHeader(no_cache=True),  # revalidated: new releases show at once
    )
    return [dashboard_page, Router(path="/", route_handlers=[assets])]
