"""The dirty app of the example served by `make run`.

`init()` "loads a model" once per dirty worker (it builds a big lookup table, which is slow, so
the HTTP workers must not each do it); every call then does CPU-heavy pure-Python work.
"""

import time

from gunicorn.dirty import DirtyApp


class ModelApp(DirtyApp):
    """A pretend model: a table of primes, and "inference" that factorises numbers with it."""

    def init(self):
        started = time.monotonic()
        self.primes = _sieve(2_000_000)
        self.load_seconds = round(time.monotonic() - started, 3)

    def info(self):
        return {"primes": len(self.primes), "load_seconds": self.load_seconds}

    def factorise(self, number):
        """CPU-heavy work that needs the "model"."""
        factors, rest = [], int(number)
        for p in self.primes:
            if p * p > rest:
                break
            while rest % p == 0:
                factors.append(p)
                rest //= p
        if rest > 1:
            factors.append(rest)
        return factors

    def count_up(self, n):
        """A streamed result: one chunk per step."""
        for i in range(int(n)):
            time.sleep(0.1)
            yield {"step": i + 1, "of": int(n)}

    def close(self):
        self.primes = []


def _sieve(limit):
    flags = bytearray([1]) * (limit + 1)
    flags[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if flags[i]:
            flags[i * i::i] = bytearray(len(flags[i * i::i]))
    return [i for i, flag in enumerate(flags) if flag]
