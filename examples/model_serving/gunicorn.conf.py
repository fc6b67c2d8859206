# The model-serving example: `gunicorn -c gunicorn.conf.py web_app:app` in this directory.
bind = "127.0.0.1:8000"
worker_class = "asgi"  # FastAPI on gunicorn's asyncio worker
workers = 2
accesslog = "-"

dirty_apps = ["model_app:TinyModel"]
# Two GPUs (pretend ones here): each dirty worker holding the model gets one, exported as
# CUDA_VISIBLE_DEVICES before model_app is imported. With 8 real GPUs: "gpu=8".
dirty_resources = ["gpu=2"]
dirty_workers = 2  # no more holders than GPU tokens in any case
dirty_threads = 4  # calls one dirty worker runs at once; a stream holds one until it ends
dirty_timeout = 60  # the longest one call (or the gap between two tokens) may take
dirty_max_queue = 256  # calls waiting for the model beyond this get DirtyBusyError (503)


def on_dirty_starting(arbiter):
    arbiter.log.info("model serving example: curl -N "
                     "'http://127.0.0.1:8000/chat?session=s1&prompt=the+model'")
