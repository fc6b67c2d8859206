"""The dirty app of the model-serving example: a pretend model, one per GPU.

Everything a real model server needs is here, with the model itself faked so the example runs
anywhere:

* ``resources = {"gpu": 1}``: every dirty worker that holds the model is granted one GPU token
  before it imports this module. ``CUDA_VISIBLE_DEVICES`` names that one device, so a real
  engine (``torch``, ``vllm``, ``onnxruntime``) only ever sees "its" GPU, as device 0.
* ``init()`` loads the weights once per worker (``MODEL_LOAD_SECONDS`` pretends it is slow);
  the worker is "loading" until it returns and gets no call before.
* ``embed`` is ``@batch``-ed: concurrent callers each send one text, the model runs once per
  batch of up to 16.
* ``generate`` is a generator: its tokens stream to the caller as they are produced.
* ``stashes = ["sessions"]``: the table the web app keeps conversations in.

With a real model, ``init`` would read ``self.resources["gpu"]`` (or just use ``cuda:0``),
``embed`` would call ``self.model.encode(texts)`` on the whole list, and ``generate`` would
yield from the engine's token iterator.
"""

import hashlib
import math
import os
import random
import time
from itertools import pairwise

from gunicorn.dirty import DirtyApp, batch

DIMENSIONS = 8
CORPUS = """
the model lives in a dirty worker and the web workers stay light and quick
each dirty worker holds one gpu token and loads the weights once in init
concurrent callers share one batch so the gpu runs once for many texts
tokens stream back to the browser one by one as the model produces them
the conversation is kept in the stash so any web worker can continue it
"""


class TinyModel(DirtyApp):
    resources = {"gpu": 1}  # one GPU token per worker that holds the model
    stashes = ["sessions"]

    def init(self):
        [self.gpu] = self.resources["gpu"]  # e.g. "1"; CUDA_VISIBLE_DEVICES is "1" too
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        time.sleep(float(os.environ.get("MODEL_LOAD_SECONDS", "0.5")))  # "loading the weights"
        words = CORPUS.split()
        self.follows = {}
        for current, following in pairwise(words):
            self.follows.setdefault(current, []).append(following)
        self.vocabulary = sorted(self.follows)
        self.batches = 0
        self.embedded = 0

    @batch(max_size=16, max_wait=0.01)
    def embed(self, texts):
        """One "forward pass" for the whole batch: a unit vector per text, in order."""
        self.batches += 1
        self.embedded += len(texts)
        return [_vector(text) for text in texts]

    def generate(self, prompt, max_tokens=20, delay=0.02):
        """Yield up to ``max_tokens`` words continuing ``prompt``, one every ``delay`` s."""
        rng = random.Random(prompt)  # same prompt, same answer
        words = prompt.lower().split()
        word = words[-1] if words and words[-1] in self.follows else rng.choice(self.vocabulary)
        for _ in range(int(max_tokens)):
            time.sleep(delay)  # the time a real model spends per token
            word = rng.choice(self.follows.get(word) or self.vocabulary)
            yield word

    def info(self):
        return {"pid": os.getpid(), "gpu": self.gpu, "cuda_visible_devices": self.visible,
                "batches": self.batches, "embedded": self.embedded}


def _vector(text):
    digest = hashlib.sha256(text.encode()).digest()
    raw = [b - 127.5 for b in digest[:DIMENSIONS]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]
