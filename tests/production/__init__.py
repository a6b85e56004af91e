"""The whole production stack on this machine: gunicorn, PostgreSQL, scheduler, SMTP, Chromium."""
