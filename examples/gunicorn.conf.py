# Configuration for `make run`: a gunicorn.conf.py as gunicorn users write it.
workers = 2
worker_class = "gthread"
threads = 4
accesslog = "-"
loglevel = "info"


def when_ready(server):
    server.log.info("example server ready: try curl http://127.0.0.1:8000/echo?x=1")
