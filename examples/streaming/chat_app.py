"""The dirty app of the streaming example: a pretend language model that streams tokens.

`init()` "loads the model" once per dirty worker (here: a word-pair table built from a small
corpus). `generate()` is a plain generator, like most blocking inference libraries offer: the
dirty worker pulls it one token at a time in its thread pool and sends each token to the caller
as soon as it exists.
"""

import random
import time
from itertools import pairwise

from gunicorn.dirty import DirtyApp

CORPUS = """
the dirty worker loads the model once and keeps it warm while the web workers stay light
the web worker asks for tokens and the dirty worker streams them back one by one
a slow reader slows the model down instead of filling the memory of the arbiter
the stream ends when the model is done or when the reader goes away
every token travels as a chunk through the arbiter to the worker that asked for it
"""


class ChatApp(DirtyApp):
    workers = 1  # one worker holds the "model"; other dirty apps could use the rest

    def init(self):
        words = CORPUS.split()
        self.follows = {}
        for current, following in pairwise(words):
            self.follows.setdefault(current, []).append(following)
        self.vocabulary = sorted(self.follows)

    def generate(self, prompt, max_tokens=20, delay=0.05):
        """Yield up to ``max_tokens`` words continuing ``prompt``, one every ``delay`` s."""
        rng = random.Random(prompt)  # same prompt, same answer: easy to test
        words = prompt.lower().split()
        word = words[-1] if words and words[-1] in self.follows else rng.choice(self.vocabulary)
        for _ in range(int(max_tokens)):
            time.sleep(delay)  # "inference": the time a real model spends per token
            word = rng.choice(self.follows.get(word) or self.vocabulary)
            yield word

    def info(self):
        return {"vocabulary": len(self.vocabulary)}
