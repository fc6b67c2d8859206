# Configuration for `make run`: a gunicorn.conf.py as gunicorn users write it.
workers = 2
worker_class = "gthread"
threads = 4
accesslog = "-"
loglevel = "info"

# gunicorn-dirty: a pool of 2 dirty workers, each loading the "model" once (examples/dirty_app.py).
dirty_apps = ["dirty_app:ModelApp"]
dirty_workers = 2
dirty_threads = 1
dirty_timeout = 60


def when_ready(server):
    server.log.info("example server ready: try curl http://127.0.0.1:8000/echo?x=1 "
                    "or http://127.0.0.1:8000/factorise?n=600851475143")


def on_dirty_starting(arbiter):
    arbiter.log.info("dirty arbiter starting with %s", ", ".join(arbiter.cfg.dirty_apps))
