"""Page weight of every patient page: bytes and requests as a phone loads them (no cache).

Run: .venv/bin/python bench/page_weight.py   (needs Debian's chromium)
Target for the first questionnaire page: at most 30 KB uncompressed and at most 4 requests.

The app sends everything uncompressed; the reverse proxy compresses (docs/deployment.md). The
gzip and brotli columns are what the same bodies weigh compressed as nginx would (gzip level 6,
nginx's usual setting; brotli quality 6, when the brotli package is installed: it is in the
`bench` extra).
"""

from __future__ import annotations

import gzip
import logging
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIRST_PAGE_MAX_BYTES = 30 * 1024
FIRST_PAGE_MAX_REQUESTS = 4


@dataclass(frozen=True)
class Weight:
    page: str
    requests: int
    bytes: int
    gzip_bytes: int
    brotli_bytes: int | None


def compressed_sizes(bodies: list[bytes]) -> tuple[int, int | None]:
    """gzip (level 6) and brotli (quality 6, if installed) sizes of each body, added up."""
    gzip_total = sum(len(gzip.compress(body, compresslevel=6)) for body in bodies)
    try:
        import brotli  # type: ignore[import-not-found]
    except ImportError:
        return gzip_total, None
    return gzip_total, sum(len(brotli.compress(body, quality=6)) for body in bodies)


def measure(browser, url: str, name: str, storage_state=None) -> Weight:  # type: ignore[no-untyped-def]
    """Load a page in a fresh phone context (empty cache) and add up what came over the wire."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, storage_state=storage_state
    )
    page = context.new_page()
    bodies: list[bytes] = []
    page.on("requestfinished", lambda request: bodies.append(_body(request)))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    context.close()
    return Weight(name, len(bodies), sum(map(len, bodies)), *compressed_sizes(bodies))


def _body(request) -> bytes:  # type: ignore[no-untyped-def]
    response = request.response()
    return response.body() if response is not None else b""


def measure_patient_pages(base_url: str, token: str, browser) -> list[Weight]:  # type: ignore[no-untyped-def]
    """Welcome, first page, the 7-point page, review, saved: each as a phone loads it cold."""
    weights = [measure(browser, f"{base_url}/p/{token}", "welcome (link page)")]
    starter = browser.new_context()
    page = starter.new_page()
    page.goto(f"{base_url}/p/{token}")
    page.click("button[name=action][value=start]")
    page.wait_for_url(re.compile(r"/q/page/1$"))
    session = starter.storage_state()  # the patient session cookie only
    starter.close()
    for path, name in (
        ("/q/page/1", "first questionnaire page"),
        ("/q/page/7", "page with 7-point items"),
        ("/q/review", "review"),
        ("/q/saved", "saved"),
    ):
        weights.append(measure(browser, base_url + path, name, storage_state=session))
    return weights


def main() -> None:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from pro_app import create_app
    from pro_app.extensions import db
    from tests import factories
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    for name in ("werkzeug", "pro_app"):  # request lines would bury the table
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "ENV": "development",
                "SECRET_KEY": "bench-" + "x" * 40,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3",
                "BASE_URL": "http://127.0.0.1",
            }
        )
        with app.app_context():
            db.create_all()
        enrolled = factories.enrol(app, "BENCH-0001")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            weights = measure_patient_pages(
                f"http://127.0.0.1:{server.server_port}", enrolled.token, browser
            )
            browser.close()
        server.shutdown()
    print("| page | requests | bytes | KB | gzip KB | brotli KB |")
    print("|---|---:|---:|---:|---:|---:|")
    for weight in weights:
        brotli_kb = f"{weight.brotli_bytes / 1024:.1f}" if weight.brotli_bytes else "n/a"
        print(
            f"| {weight.page} | {weight.requests} | {weight.bytes:,} | {weight.bytes / 1024:.1f} "
            f"| {weight.gzip_bytes / 1024:.1f} | {brotli_kb} |"
        )
    first = weights[1]
    verdict = (
        "OK"
        if (first.bytes <= FIRST_PAGE_MAX_BYTES and first.requests <= FIRST_PAGE_MAX_REQUESTS)
        else "OVER TARGET"
    )
    print(
        f"first questionnaire page: {first.bytes / 1024:.1f} KB in {first.requests} requests "
        f"(target <= 30 KB, <= 4 requests): {verdict}"
    )


if __name__ == "__main__":
    main()
