# The streaming example: `gunicorn -c gunicorn.conf.py sse_app:app` in this directory.
bind = "127.0.0.1:8000"
worker_class = "asgi"  # FastAPI on gunicorn's asyncio worker
workers = 2
accesslog = "-"

# The "model" lives in one dirty worker; both HTTP workers stream from it.
dirty_apps = ["chat_app:ChatApp"]
dirty_workers = 1
dirty_threads = 8  # streams one dirty worker serves at once (a stream holds a slot until it ends)
dirty_timeout = 60  # the longest a token may take; a stream as a whole may run longer


def on_dirty_starting(arbiter):
    arbiter.log.info("streaming example: open http://127.0.0.1:8000/ or "
                     "curl -N 'http://127.0.0.1:8000/chat?prompt=the+model'")
