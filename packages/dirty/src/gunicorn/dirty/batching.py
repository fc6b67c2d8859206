"""``@batch``: many callers' single inputs, one invocation of the action over a list.

::

    from gunicorn.dirty import DirtyApp, batch

    class Embedder(DirtyApp):
        def init(self):
            self.model = load_model()

        @batch(max_size=16, max_wait=0.01)
        def embed(self, texts):              # a list in, a list of the same length out
            return self.model.encode(texts)

    # callers send one input each and get their own output:
    vector = client.execute("app:Embedder", "embed", "hello")

The dirty worker gathers concurrent calls of a batched action until ``max_size`` inputs are
there or ``max_wait`` seconds passed since the first, invokes the action once with the list,
and answers each caller with its item (see :mod:`gunicorn.dirty.batch_runner`). The decorator
only marks the function: called directly (in a test, from another action) it is the plain
list-in, list-out function.

This module is imported by user code, so it stays light (no asyncio, no msgpack).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from gunicorn.dirty.app import LIFECYCLE_METHODS

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__dirty_batch__"


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """How a batched action is gathered: at most ``max_size`` inputs, waiting at most
    ``max_wait`` seconds after the first one."""

    max_size: int
    max_wait: float


@overload
def batch(func: F, /) -> F: ...


@overload
def batch(*, max_size: int = 16, max_wait: float = 0.01) -> Callable[[F], F]: ...


def batch(func: F | None = None, /, *, max_size: int = 16,
          max_wait: float = 0.01) -> F | Callable[[F], F]:
    """Mark a dirty action (sync or ``async def``) as batched.

    The action takes a list of inputs and must return a list (or tuple) of outputs of the same
    length, in the same order. Each caller passes exactly one positional argument (its input)
    and no keyword arguments.

    ``max_size`` (int >= 1) is the most inputs per invocation; ``max_wait`` (seconds >= 0) how
    long the first input of a batch waits for company. Raises ``ValueError``/``TypeError`` for
    bad values, when the class is defined. Usable bare (``@batch``) for the defaults.

    Failures: an exception raised by the action fails every caller of that batch with
    ``DirtyAppError``; a result of the wrong length or type fails them all with a
    ``DirtyAppError`` saying so. A caller that gave up (timeout, cancel) before its batch ran
    is left out of it; after, its output is dropped. Generators are not batched.
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"batch max_size must be an integer >= 1, got {max_size!r}")
    if isinstance(max_wait, bool) or not isinstance(max_wait, int | float) or max_wait < 0:
        raise ValueError(f"batch max_wait must be a number of seconds >= 0, got {max_wait!r}")
    spec = BatchSpec(max_size, float(max_wait))

    def mark(target: F) -> F:
        if not callable(target):
            raise TypeError(f"@batch decorates a function, not {type(target).__name__}")
        setattr(target, _MARK, spec)
        return target

    return mark(func) if func is not None else mark


def batch_spec(obj: Any) -> BatchSpec | None:
    """The BatchSpec of a function or bound method marked by :func:`batch`, else None."""
    spec = getattr(obj, _MARK, None)
    return spec if isinstance(spec, BatchSpec) else None


def batched_actions(app: Any) -> dict[str, BatchSpec]:
    """The batched public actions of an app instance: ``{action name: BatchSpec}``."""
    found: dict[str, BatchSpec] = {}
    for name in dir(type(app)):
        if name.startswith("_") or name in LIFECYCLE_METHODS:
            continue
        spec = batch_spec(getattr(type(app), name, None))
        if spec is not None:
            found[name] = spec
    return found
