"""Validators: turn raw setting values into typed ones.

A raw value is a string when it comes from the command line, ``$GUNICORN_CMD_ARGS`` or the
environment, and any Python value when it comes from a config file. Each validator accepts both
shapes and raises ``ValueError``/``TypeError`` with a short message;
:meth:`gunicorn.config.registry.Setting.validate` turns that into a ``ConfigError`` naming the
setting, so no message here repeats the setting's name.

Validators that need parameters (bounds, choices, hook arity) are built by small factories, so a
settings module reads as a table: ``validator=positive_int(minimum=1)``.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from gunicorn.config.address import parse_address

Validator = Callable[[Any], Any]

_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f", ""})


def boolean(value: Any) -> bool:
    """``True``/``False``, or one of true/false, 1/0, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    return value.strip()


def optional_string(value: Any) -> str | None:
    return None if value is None else string(value)


def _to_int(value: Any) -> int:
    # bool is an int subclass; `workers = True` in a config file is a mistake, not 1.
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0) if value.strip().lower().startswith("0x") \
                else int(value.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")


def positive_int(minimum: int = 0, maximum: int | None = None) -> Validator:
    """An integer ``>= minimum`` (and ``<= maximum`` when given)."""

    def validate(value: Any) -> int:
        number = _to_int(value)
        if number < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ValueError(f"expected an integer <= {maximum}, got {number}")
        return number

    return validate


def capped_int(cap: int, zero_means: int | None = None) -> Validator:
    """A non-negative integer; values above ``cap`` become ``cap``; 0 becomes ``zero_means``.

    This is how the request limits behave: a too-large limit is lowered rather than refused, so
    a config written for another gunicorn keeps working.
    """

    def validate(value: Any) -> int:
        number = positive_int()(value)
        if number == 0 and zero_means is not None:
            return zero_means
        return min(int(number), cap)

    return validate


def zero_means(default: int) -> Validator:
    """A non-negative integer where 0 stands for ``default`` (``limit_request_field_size``: 0
    is gunicorn's default maximum, never "unlimited")."""

    def validate(value: Any) -> int:
        number = positive_int()(value)
        return default if number == 0 else number

    return validate


def octal_int(value: Any) -> int:
    """A umask: an int, or a string in octal (``"022"``, ``"0o22"``), hex or decimal."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.startswith("0o") or text.startswith("0x"):
                number = int(text, 0)
            elif len(text) > 1 and text.startswith("0"):
                number = int(text, 8)
            else:
                number = int(text)
        except ValueError:
            raise ValueError(f"expected an octal or decimal integer, got {value!r}") from None
    else:
        number = _to_int(value)
    if not 0 <= number <= 0o777:
        raise ValueError(f"expected a mode between 0 and 0o777, got {oct(number)}")
    return number


def choice(*choices: str, aliases: Mapping[str, str] | None = None) -> Validator:
    """One of ``choices`` (case-insensitive); ``aliases`` maps extra spellings to a choice."""
    extra = dict(aliases or {})

    def validate(value: Any) -> str:
        if isinstance(value, bool) and str(value).lower() in extra:
            return extra[str(value).lower()]
        text = string(value).lower()
        if text in choices:
            return text
        if text in extra:
            return extra[text]
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")

    # The typed settings view (gunicorn.config.typed_gen) reads the value type from here.
    validate.__annotations__["return"] = Literal[choices]
    return validate


def string_list(value: Any) -> list[str]:
    """A list of strings, or one comma-separated string. Empty items are dropped."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise TypeError(f"expected a list or a comma-separated string, got {value!r}")
    result = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"expected strings in the list, got {item!r}")
        if item.strip():
            result.append(item.strip())
    return result


def appended_list(value: Any) -> list[str]:
    """A list from an ``append`` option: each given value is one item (no comma splitting)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [string(item) for item in value]
    raise TypeError(f"expected a list of strings, got {value!r}")


def upper_list(value: Any) -> list[str]:
    return [item.upper() for item in string_list(value)]


def ip_list(value: Any) -> list[str]:
    """IP addresses or CIDR networks (v4 or v6), or ``*`` for every peer."""
    items = string_list(value)
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address, a CIDR network or '*'") from None
    return items


def env_list(value: Any) -> list[str]:
    """``KEY=VALUE`` entries (``-e`` / ``raw_env``)."""
    items = appended_list(value)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not of the form KEY=VALUE")
    return items


def string_dict(value: Any) -> dict[str, str]:
    """A dict of strings to strings (``secure_scheme_headers``); keys are upper-cased."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    result = {}
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise TypeError(f"expected string keys and values, got {key!r}: {val!r}")
        result[key.strip().upper()] = val.strip()
    return result


def any_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return dict(value)


def bind_list(value: Any) -> list[str]:
    """Addresses to listen on; each is parsed now so a typo fails before anything starts."""
    items = appended_list(value)
    if not items:
        raise ValueError("at least one address is needed")
    for item in items:
        parse_address(item)
    return items


def existing_file(value: Any) -> str | None:
    if value is None:
        return None
    path = string(value)
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist")
    return path


def existing_dir(value: Any) -> str:
    path = string(value)
    if not os.path.isdir(path):
        raise ValueError(f"directory {path!r} does not exist")
    return os.path.abspath(path)


def user_or_group(value: Any) -> int | str:
    """A numeric id (int or digits) or a name; names are resolved to ids by ``cfg.uid``/``gid``."""
    if isinstance(value, bool):
        raise TypeError(f"expected a name or a numeric id, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative id, got {value}")
        return value
    text = string(value)
    if text.isdigit():
        return int(text)
    if not text:
        raise ValueError("expected a name or a numeric id")
    return text


def ssl_constant(prefix: str) -> Validator:
    """An ``ssl`` module constant given by value or by name (``CERT_REQUIRED``, ``2``)."""

    def validate(value: Any) -> int:
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            import ssl  # only needed when a name is given

            name = value.strip().upper()
            if not name.startswith(prefix):
                name = prefix + name
            found = getattr(ssl, name, None)
            if found is None:
                raise ValueError(f"unknown ssl constant {value!r}")
            return int(found)
        return _to_int(value)

    return validate


def import_dotted(path: str) -> Any:
    """Import ``package.module.attr`` and return ``attr``."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not a dotted path (module.attribute)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None


def _accepts(fn: Callable[..., Any], count: int) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # builtins without a signature: trust the user
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def hook(arity: int | tuple[int, ...]) -> Validator:
    """A callable (or a dotted path to one) accepting ``arity`` positional arguments.

    When several arities are allowed the hook is wrapped so callers always pass the largest
    number of arguments and the user's function gets as many as it declared.
    """
    allowed = (arity,) if isinstance(arity, int) else tuple(sorted(arity))
    full = max(allowed)

    def validate(value: Any) -> Callable[..., Any]:
        fn: Callable[..., Any] = import_dotted(value.strip()) if isinstance(value, str) else value
        if not callable(fn):
            raise TypeError(f"expected a callable, got {value!r}")
        for count in reversed(allowed):
            if _accepts(fn, count):
                break
        else:
            wanted = " or ".join(str(n) for n in allowed)
            raise ValueError(f"the hook must accept {wanted} positional arguments: {fn!r}")
        if count == full:
            return fn
        return _Truncated(fn, count)

    # The typed settings view reads this: a hook is called with ``full`` positional arguments.
    validate.__annotations__["return"] = Callable[[Any] * full, Any]
    return validate


class _Truncated:
    """A hook declared with fewer arguments than it is called with (``post_request(w, r)``)."""

    __slots__ = ("fn", "count")

    def __init__(self, fn: Callable[..., Any], count: int) -> None:
        self.fn = fn
        self.count = count

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args[: self.count])

    def __repr__(self) -> str:
        return repr(self.fn)
