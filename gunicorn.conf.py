"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (README, Deploy).

Sync workers in threads (gthread): a reader's requests are short and database-bound, and a
thread per request keeps a slow client from holding a whole process. Every value can be
overridden from the environment, as for the rest of the site.

Workers and threads: 2 x cores + 1 processes of 4 threads (5 x 4 on 2 cores). On the 2-core
development box, bench/bench_load.py's 100 readers were served as well by 5 x 4, 3 x 4, 2 x 8
and 3 x 8 (133-187 requests/s, image p95 0.96-1.56 s: within that shared machine's run-to-run
noise, 2026-11-30), so the default stays; each worker holds about 160 MiB and up to `threads`
database connections, so 3 x 4 is the choice where memory or connections are short.
The web process never runs a generator (JOBS_MODE=celery sends generation to workers), so it
never imports torch: post_worker_init logs an error if it finds it loaded.
"""

import logging
import multiprocessing
import os
import sys

wsgi_app = "readerstudy.wsgi:application"
bind = os.getenv("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.getenv("WEB_CONCURRENCY", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "gthread"
threads = int(os.getenv("GUNICORN_THREADS", "4"))
# Workers restart now and then, so a slow leak cannot grow without bound; jitter spreads the restarts.
max_requests = int(os.getenv("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
timeout = int(os.getenv("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# The TLS proxy in front sets X-Forwarded-Proto; trust it only from these addresses.
forwarded_allow_ips = os.getenv("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = os.getenv("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.getenv("LOG_LEVEL", "info").lower()
# Access log lines carry no query strings or tokens beyond the path, which names no image's source.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def post_worker_init(worker):
    if "torch" in sys.modules:
        logging.getLogger("gunicorn.error").error(
            "torch is loaded in web worker %s: something on the web path imports the generator", worker.pid)
