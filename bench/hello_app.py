"""The bare Flask app the throughput benchmark compares the patient pages with.

`gunicorn bench.hello_app:app`, served exactly as the real app is (same workers, threads,
worker class), answers "hello" from memory: the upper bound of what Flask and gunicorn can do on
this machine, so that the app's own cost shows as a ratio.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    return "hello"


@app.get("/healthz")
def healthz() -> str:  # what the live-server helper polls before the benchmark starts
    return "ok"
