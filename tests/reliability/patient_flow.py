"""Simulated patients over real HTTP: open the link, answer every page, submit; with figures."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import HIDDEN, csrf_token

RADIO = re.compile(r'type="radio" name="([a-z0-9_]+-\d+)" value="(\d+)"')
ITEM_FIELD = re.compile(r"[a-z0-9_]+-\d+")
# Generous: 200 patients share 2 workers on a loaded 2-CPU machine, so requests queue.
REQUEST_TIMEOUT = 120.0


@dataclass
class Figures:
    """Every request's outcome and latency, for the printed summary and the assertions."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # method, path pattern and why; no tokens

    def record(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] += 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.failures)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def client_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if 400 <= status < 500)

    def line(self, seconds: float) -> str:
        """requests, errors, p50/p95/max latency and throughput, in one line."""
        ordered = sorted(self.latencies) or [0.0]
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return (
            f"requests {self.requests}, 5xx {self.server_errors}, 4xx {self.client_errors}, "
            f"transport errors {len(self.failures)}, "
            f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, {self.requests / max(seconds, 1e-9):.0f} req/s "
            f"over {seconds:.1f} s"
        )


class PatientBrowser:
    """One patient's browser: its own cookies, no automatic redirects, every request timed."""

    def __init__(self, base_url: str, figures: Figures) -> None:
        self.figures = figures
        # While time.monotonic() is below this, transport errors are retried (a patient
        # pressing the button again after "connection lost").
        self.retry_until = 0.0
        # One connection per request, as nginx talks to gunicorn by default (HTTP/1.0 upstream).
        # Reused connections would measure gunicorn's 2-second keep-alive racing this one
        # client process, which a loaded machine can stall for seconds, not the app.
        self.client = httpx.AsyncClient(
            base_url=base_url,
            follow_redirects=False,
            timeout=REQUEST_TIMEOUT,
            headers={"Connection": "close"},
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One timed request; transport errors are recorded, then retried or raised."""
        while True:
            started = time.perf_counter()
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.TransportError as error:
                waited = time.perf_counter() - started
                self.figures.failures.append(
                    f"{method} {_pattern(path)}: {type(error).__name__} after {waited:.1f} s"
                )
                if time.monotonic() > self.retry_until:
                    raise
                await asyncio.sleep(0.2)  # then the same request again, as the patient would
                continue
            self.figures.record(response.status_code, time.perf_counter() - started)
            return response

    async def expect(self, method: str, path: str, status: int, **kwargs: Any) -> httpx.Response:
        """A request that must answer with this status (anything else fails the patient)."""
        response = await self.request(method, path, **kwargs)
        if response.status_code != status:
            raise UnexpectedResponse(f"{method} {_pattern(path)}: {response.status_code}")
        return response

    async def open_link(self, token: str) -> tuple[int, str]:
        """Open the link and press start; returns the first page's number and HTML."""
        welcome = await self.expect("GET", f"/p/{token}", 200)
        data = {"csrf_token": csrf_token(welcome.text), "action": "start"}
        await self.expect("POST", f"/p/{token}", 302, data=data)
        resume = await self.expect("GET", "/q", 302)
        return await self.follow(resume.headers["Location"])

    async def follow(self, location: str) -> tuple[int, str]:
        """GET a page or review location; returns (page number, 0 = review) and its HTML."""
        page = await self.expect("GET", location, 200)
        return page_number(location), page.text

    def page_post(self, number: int, html: str, rng: random.Random) -> dict[str, str]:
        """The form a patient sends from this page: hidden fields and one choice per item."""
        return {
            **form_fields(html, f"/q/page/{number}"),
            **choose_answers(html, rng),
            "action": "next",
        }

    async def answer_everything(self, token: str, rng: random.Random) -> dict[str, int]:
        """The whole questionnaire, page by page, then submit; returns the answers sent."""
        sent: dict[str, int] = {}
        number, html = await self.open_link(token)
        while number:
            form = self.page_post(number, html, rng)
            sent |= answers_in(form)
            moved = await self.expect("POST", f"/q/page/{number}", 302, data=form)
            number, html = await self.follow(moved.headers["Location"])
        await self.submit(html)
        return sent

    async def submit(self, review_html: str) -> None:
        """Press "send" on the review page and see the thank-you page."""
        form = {**form_fields(review_html, "/q/review"), "action": "submit"}
        done = await self.expect("POST", "/q/review", 302, data=form)
        await self.expect("GET", done.headers["Location"], 200)


class UnexpectedResponse(AssertionError):
    """A response the page flow does not allow at this step."""


def answers_in(form: dict[str, str]) -> dict[str, int]:
    """The item answers of a posted form (field name → value)."""
    return {name: int(value) for name, value in form.items() if ITEM_FIELD.fullmatch(name)}


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to `action`, as a browser would send them."""
    start = html.find(f'action="{action}"')
    if start < 0:
        raise UnexpectedResponse(f"no form for {action} on the page")
    return dict(HIDDEN.findall(html[start : html.find("</form>", start)]))


def choose_answers(html: str, rng: random.Random) -> dict[str, str]:
    """One random allowed value for every radio group on the page."""
    options: dict[str, list[str]] = {}
    for name, value in RADIO.findall(html):
        options.setdefault(name, []).append(value)
    return {name: rng.choice(values) for name, values in options.items()}


def page_number(location: str) -> int:
    """1, 2, … for /q/page/<n>; 0 for the review page."""
    if location.rstrip("/").endswith("/q/review"):
        return 0
    match = re.search(r"/q/page/(\d+)$", location)
    if match is None:
        raise UnexpectedResponse(f"unexpected redirect to {_pattern(location)}")
    return int(match.group(1))


def _pattern(path: str) -> str:
    """The path with any link token masked: figures and failures never carry tokens."""
    return re.sub(r"^/p/[^/?]+", "/p/<token>", path)


async def run_all(
    count: int, work: Callable[[int], Awaitable[Any]], *, start_together: bool = True
) -> list[Any]:
    """Run `work(i)` for every i at once; exceptions are returned in place of results."""
    gate = asyncio.Event()

    async def one(index: int) -> Any:
        if start_together:
            await gate.wait()
        return await work(index)

    tasks = [asyncio.create_task(one(index)) for index in range(count)]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Journeys:
    """What a crowd of patients did: seconds taken, answers each sent, and who failed how."""

    seconds: float
    sent: dict[int, dict[str, int]]
    failures: list[str]


def run_journeys(
    base_url: str,
    patient_ids: list[int],
    tokens: list[str],
    figures: Figures,
    journey: Callable[[PatientBrowser, str, int], Awaitable[dict[str, int]]],
) -> Journeys:
    """Every patient's journey(browser, token, index) at once, on its own event loop thread."""
    from tests.reliability.aio import run_async

    async def everyone() -> list[object]:
        browsers = [PatientBrowser(base_url, figures) for _ in tokens]
        try:
            return await run_all(len(tokens), lambda i: journey(browsers[i], tokens[i], i))
        finally:
            await asyncio.gather(*(browser.close() for browser in browsers))

    started = time.perf_counter()
    results = run_async(everyone)
    done = Journeys(time.perf_counter() - started, {}, [])
    for patient_id, result in zip(patient_ids, results, strict=True):
        if isinstance(result, BaseException):
            done.failures.append(f"{type(result).__name__}: {result}")
        else:
            done.sent[patient_id] = result  # type: ignore[assignment]
    return done


def transport_problems(failures: list[str], figures: Figures) -> list[str]:
    """Patients whose journey broke, and any 5xx or connection failure."""
    problems = []
    if failures:
        problems.append(f"{len(failures)} patients failed: {failures[:3]}")
    if figures.server_errors or figures.failures:
        problems.append(f"responses: {dict(figures.statuses)}, {figures.failures[:3]}")
    return problems
