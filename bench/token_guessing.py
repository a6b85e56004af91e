"""10,000 guessed link tokens against a running app: identical answers, and the rate limit.

Run from the project folder, with the app serving (for example `make run`, or gunicorn):

    .venv/bin/python bench/token_guessing.py [--url http://127.0.0.1:5000] [--guesses 10000]
        [--threads 8] [--spread N]

Each guess is a random token shaped like a real one (43 URL-safe characters); even guesses open
the link (GET), odd ones press "start" with a valid CSRF token (POST), as a script would. It
prints the time taken, requests per second, latency percentiles, the status counts, how many
guesses the rate limit refused, and how many *different* answers came back per status once the
parts that must vary are set aside: Date and the rate limiter's clock and count headers, the
CSRF token (it carries the second it was signed) and the guessed token where a page repeats
its own address. One distinct answer per status is the target: nothing tells a guesser more.

--spread N sends the guesses from N addresses in X-Forwarded-For. The app believes that header
only with PRO_PROXY_FIX_X_FOR=1 (behind a proxy); without it, every guess counts against the
one real address, which is what an attacker without a botnet gets. Counters live in
PRO_RATELIMIT_STORAGE_URI: memory:// is per worker process, so with several gunicorn workers
the limit per address is that many times higher; use redis://... to share one counter.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import re
import secrets
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

VARYING_HEADERS = {
    "date",
    "content-length",
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-remaining",
    "x-request-id",  # a fresh id per response, by design
    "set-cookie",
    "server",
}
CSRF_VALUE = re.compile(rb'(name="csrf_token"[^>]*value=")[^"]+"')


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)


def random_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def fingerprint(headers: list[tuple[str, str]], body: bytes, token: str) -> str:
    kept = sorted((k.lower(), v) for k, v in headers if k.lower() not in VARYING_HEADERS)
    body = body.replace(f"/p/{token}".encode(), b"/p/<token>")
    body = CSRF_VALUE.sub(rb'\1<csrf>"', body)
    return hashlib.sha256(repr(kept).encode() + body).hexdigest()[:16]


class Guesser:
    """One keep-alive connection with its own session cookie and CSRF token."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        status, headers, body = self.request("GET", "/", {})
        if status != 200:
            sys.exit(f"GET / answered {status}: is the app running at {url}?")
        cookie = next((v for k, v in headers if k.lower() == "set-cookie"), "")
        self.cookie = cookie.split(";", 1)[0]
        found = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body)
        self.csrf = found.group(1).decode() if found else ""

    def request(
        self, method: str, path: str, headers: dict[str, str], body: str | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def guess(self, n: int, spread: int) -> tuple[int, float, str]:
        token = random_token()
        headers = {"Cookie": self.cookie}
        if spread:
            address = n % spread
            headers["X-Forwarded-For"] = f"10.{address >> 16}.{address >> 8 & 255}.{address & 255}"
        started = time.perf_counter()
        if n % 2:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode({"csrf_token": self.csrf, "action": "start"})
            status, answer_headers, body = self.request("POST", f"/p/{token}", headers, data)
        else:
            status, answer_headers, body = self.request("GET", f"/p/{token}", headers)
        return status, time.perf_counter() - started, fingerprint(answer_headers, body, token)


def run(url: str, guesses: int, threads: int, spread: int) -> Tally:
    tally = Tally()
    local = threading.local()

    def one(n: int) -> None:
        if not hasattr(local, "guesser"):
            local.guesser = Guesser(url)
        status, seconds, answer = local.guesser.guess(n, spread)
        with tally.lock:
            tally.latencies.append(seconds)
            tally.statuses[status] += 1
            tally.answers[status].add(f"{'POST' if n % 2 else 'GET'} {answer}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(guesses)))
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--guesses", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--spread", type=int, default=0, help="addresses in X-Forwarded-For")
    args = parser.parse_args()
    started = time.perf_counter()
    tally = run(args.url, args.guesses, args.threads, args.spread)
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    limited = tally.statuses.get(429, 0)
    print(
        f"guesses:   {args.guesses} in {elapsed:.1f} s ({args.guesses / elapsed:.0f}/s), "
        f"{args.threads} threads, {args.spread or 1} address(es)"
    )
    print(f"latency:   p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    print(f"statuses:  {dict(sorted(tally.statuses.items()))}")
    print(f"limited:   {limited} of {args.guesses} ({100 * limited / args.guesses:.1f} %)")
    for status, answers in sorted(tally.answers.items()):
        methods = Counter(answer.split()[0] for answer in answers)
        print(f"answers:   {status}: {dict(methods)} distinct (target: 1 per method)")
    opened = tally.statuses.get(302, 0)
    if opened:
        print(f"WARNING:   {opened} guesses opened a questionnaire")
    if any(len(answers) > 2 for answers in tally.answers.values()):
        sys.exit("the answers differ: a guesser can tell something apart")


if __name__ == "__main__":
    main()
