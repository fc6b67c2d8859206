"""JSON log lines that stay valid JSON whatever a request holds (``--log-format json``).

:class:`JsonFormatter` is a plain :class:`logging.Formatter`, so it works in a user's
``logconfig_dict`` / ``logconfig`` too::

    "formatters": {"json": {"()": "gunicorn.instrument.jsonlog.JsonFormatter"}}

Every record becomes one line, one JSON object, with these fields:

==================  ===============================================================
``timestamp``       ISO 8601 local time with its UTC offset, milliseconds
                    (``2024-05-01T13:55:36.123+02:00``)
``level``           ``INFO``, ``ERROR``, ...
``logger``          ``gunicorn.error``, ``gunicorn.access``, or the record's logger
``message``         the rendered message (access lines: ``METHOD URI PROTOCOL STATUS``)
``pid``             the process that wrote the line
``exception``       the formatted traceback, when the record carries one
==================  ===============================================================

Access records (``record.args`` is the request's access-log atoms) add ``remote_addr``,
``method``, ``path``, ``query``, ``protocol``, ``status`` (int), ``response_bytes`` (int),
``duration`` (seconds, float), ``user_agent``, ``referer`` and ``request_id``; a value that is
unknown is ``null``. ``access_log_format`` is not used for JSON lines.

Why the line is always valid: the object is built from Python values and written by
``json.dumps`` with ``ensure_ascii`` (so the line is ASCII whatever the stream's encoding and
control characters come out as ``\\u00XX``). Request strings reach us decoded as latin-1, one
character per byte; they are re-read as UTF-8 with invalid bytes spelled ``\\xff``
(backslashreplace), so a UTF-8 header shows its real characters and a broken one its bytes.
A message whose ``%`` arguments do not fit its format is written as the raw format and the
``repr`` of the arguments, never dropped.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any

# Extra attributes of a LogRecord that are the logging machinery's own, not a caller's.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime"}
# Keys the statsd logger reads from ``extra``: metric plumbing, not log content.
_METRIC_EXTRA = frozenset({"metric", "value", "mtype", "rate"})


def clean_text(value: str) -> str:
    """``value`` (latin-1-decoded request text, or any str) as readable Unicode: valid UTF-8
    byte runs become their characters, invalid bytes ``\\xNN``; lone surrogates and
    characters above U+00FF are kept as they are (json.dumps escapes them)."""
    if value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value  # already real Unicode (an application's message): leave it
    return raw.decode("utf-8", "backslashreplace")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object (see the module docstring for the fields).

    ``prefix`` is written before the object (the syslog tag, ``"gunicorn.app.error: "``).
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None,
                 style: str = "%", validate: bool = True, *, prefix: str = "",
                 **kwargs: Any) -> None:
        # fmt/datefmt/style are accepted (dictConfig passes them) but the layout is fixed.
        super().__init__(None, datefmt, "%", validate, **kwargs)
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record.args, "fields", None)
        if callable(fields):
            line = self._access(record, fields())
        else:
            line = self._entry(record, self._message(record))
        extras = {k: v for k, v in vars(record).items()
                  if k not in _RECORD_ATTRS and k not in _METRIC_EXTRA and k not in line}
        for key, value in extras.items():
            line[key] = _clean(value) if not isinstance(value, Mapping | list) else _safe(value)
        if record.exc_info:
            line["exception"] = clean_text(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = clean_text(record.exc_text)
        if record.stack_info:
            line["stack"] = clean_text(self.formatStack(record.stack_info))
        return self.prefix + json.dumps(line, ensure_ascii=True, default=str)

    def _entry(self, record: logging.LogRecord, message: str) -> dict[str, Any]:
        return {
            "timestamp": self.iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": clean_text(message),
            "pid": record.process,
        }

    def _access(self, record: logging.LogRecord, facts: Mapping[str, Any]) -> dict[str, Any]:
        facts = {key: _clean(value) for key, value in facts.items()}
        uri = facts.get("path") or ""
        if facts.get("query"):
            uri = f"{uri}?{facts['query']}"
        message = f"{facts.get('method')} {uri} {facts.get('protocol')} {facts.get('status')}"
        line = self._entry(record, message)
        line.update(facts)
        return line

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A caller's format and arguments that do not fit: keep both rather than lose the
            # line (the stdlib would print a "--- Logging error ---" block instead).
            return f"{record.msg} {record.args!r}"

    def iso_time(self, created: float) -> str:
        """``created`` (epoch seconds) as ISO 8601 local time with the UTC offset."""
        moment = datetime.datetime.fromtimestamp(created).astimezone()
        return moment.isoformat(timespec="milliseconds")


def _safe(value: Any) -> Any:
    """A caller's structured ``extra`` value, with every string cleaned."""
    if isinstance(value, Mapping):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return _clean(value)
