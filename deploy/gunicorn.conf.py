"""gunicorn settings for production: `gunicorn --config deploy/gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment file without editing this file:
PRO_BIND (default 127.0.0.1:8000, behind the reverse proxy), PRO_WEB_WORKERS (1, as the app
assumes when it is not set; 2 or more needs PostgreSQL and Redis) and PRO_WEB_THREADS (4).
`pro-app check` reads the same PRO_WEB_WORKERS, so it can refuse SQLite with several workers.
"""

import os

bind = os.environ.get("PRO_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PRO_WEB_WORKERS", "1"))
threads = int(os.environ.get("PRO_WEB_THREADS", "4"))
worker_class = "gthread"
# A request that takes longer than this is stuck; the worker is replaced (answers are saved
# per page, so nothing already stored is lost).
timeout = 60
graceful_timeout = 20
keepalive = 5
# The app writes its own JSON line per request; gunicorn's access log would repeat it with the
# full path, and a patient's path holds the link token.
accesslog = None
errorlog = "-"
loglevel = "info"
# Its default path under $HOME is shared by every gunicorn on the host (several trials).
control_socket_disable = True
forwarded_allow_ips = os.environ.get("PRO_FORWARDED_ALLOW_IPS", "127.0.0.1")
