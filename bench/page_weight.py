"""Page weight of every patient page: bytes and requests as a phone loads them (no cache).

Run: .venv/bin/python bench/page_weight.py   (needs Debian's chromium)
Target for the first questionnaire page: at most 30 KB uncompressed and at most 4 requests.
"""

from __future__ import annotations

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


def measure(browser, url: str, name: str, storage_state=None) -> Weight:  # type: ignore[no-untyped-def]
    """Load a page in a fresh phone context (empty cache) and add up what came over the wire."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, storage_state=storage_state
    )
    page = context.new_page()
    sizes: list[int] = []
    page.on("requestfinished", lambda request: sizes.append(_body_size(request)))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    context.close()
    return Weight(name, len(sizes), sum(sizes))


def _body_size(request) -> int:  # type: ignore[no-untyped-def]
    response = request.response()
    return len(response.body()) if response is not None else 0


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

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
    print(f"{'page':<28} {'requests':>8} {'bytes':>8} {'KB':>6}")
    for weight in weights:
        print(
            f"{weight.page:<28} {weight.requests:>8} {weight.bytes:>8} {weight.bytes / 1024:>6.1f}"
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
