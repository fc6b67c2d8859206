"""Readable text for reply data: tables for lists of records, ``key: value`` for the rest.

The layout is derived from the data rather than written per command, so a plugin's commands
(``stash keys``, ``show dirty``) print sensibly without gunictl knowing them. A few hints make
the common ones nicer: preferred column order, units, and the ``help`` listing.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from typing import Any

# Columns shown first, in this order, when present; other keys follow alphabetically.
# ``path``/``declared``/``current`` order the ``show dirty`` apps table, ``keys`` the stash
# tables, ``resource``/``token``/``holder`` its resource tokens.
PREFERRED_COLUMNS = ("pid", "name", "path", "resource", "token", "holder", "declared", "current",
                     "limit", "workers", "keys", "age", "state", "booted", "apps", "requests",
                     "in_flight", "queued", "loaded_in", "loading_for", "last_heartbeat",
                     "uptime", "address", "type", "fd")
SECONDS = frozenset({"last_heartbeat", "uptime", "loaded_in", "loading_for"})
# Wall-clock times (seconds since the epoch), shown as local date and time.
TIMESTAMPS = frozenset({"started_at"})
HEADINGS = {"last_heartbeat": "LAST BEAT", "in_flight": "IN FLIGHT", "loaded_in": "LOADED IN",
            "loading_for": "LOADING FOR"}


def render(command: Sequence[str], data: dict[str, Any]) -> str:
    """Text for the reply ``data`` of ``command`` (its words, as typed)."""
    words = [w.lower() for w in command]
    if words[:1] == ["help"]:
        return render_help(data)
    if not data:
        return "OK"
    if words[:2] == ["show", "config"]:
        return "\n".join(f"{key}: {_setting_cell(key, value)}"
                         for key, value in sorted(data.items()))
    if words[:2] == ["show", "dirty"] and data.get("running"):
        return render_mapping(dirty_view(data))
    return render_mapping(data)


def dirty_view(data: dict[str, Any]) -> dict[str, Any]:
    """``show dirty`` for people: one row per worker, app and resource token, without the
    fields the JSON repeats under gunicorn's names (``--json`` keeps everything)."""
    view = {k: v for k, v in data.items() if k not in ("workers", "apps", "resources")}
    view["workers"] = [{
        "pid": w.get("pid"), "age": w.get("age"), "state": w.get("state"),
        "apps": w.get("apps"), "in_flight": w.get("in_flight"), "queued": w.get("queued"),
        "loaded_in": sum((w.get("load_seconds") or {}).values()) if w.get("booted")
        else None,
        "loading_for": w.get("loading_for"),
        "tokens": [f"{name}:{t}" for name, items in (w.get("resources") or {}).items()
                   for t in items],
        "retrying": w.get("retrying") or w.get("failed_apps"),
        "last_heartbeat": w.get("last_heartbeat"), "uptime": w.get("uptime"),
    } for w in data.get("workers") or []]
    view["apps"] = [{
        "path": a.get("path"),
        "declared": "all" if a.get("worker_count") is None else a.get("worker_count"),
        "current": a.get("current_workers"), "workers": a.get("worker_pids"),
        "loading": a.get("loading"), "queued": a.get("queued"),
        "needs": [f"{name}:{count}" for name, count in (a.get("resources") or {}).items()],
        "batched": [f"{action}:{size}" for action, size in (a.get("batched") or {}).items()],
        "problem": a.get("error") or a.get("not_started"),
    } for a in data.get("apps") or []]
    tokens = [{"resource": r.get("name"), "token": t.get("token"),
               "holder": (t.get("holder") or {}).get("pid"),
               "apps": (t.get("holder") or {}).get("apps")}
              for r in data.get("resources") or [] for t in r.get("tokens") or []]
    if tokens:
        view["resources"] = tokens
    return view


def render_help(data: dict[str, Any]) -> str:
    commands = data.get("commands") or {}
    width = max((len(usage) for usage in commands), default=0)
    lines = [f"  {usage.ljust(width)}  {summary}" for usage, summary in commands.items()]
    return "\n".join(["Commands:", *lines])


def render_mapping(data: dict[str, Any], indent: str = "") -> str:
    """Scalars first as ``key: value``, then one titled block per list or nested mapping."""
    lines = []
    blocks = []
    for key, value in data.items():
        if isinstance(value, dict):
            inner = render_mapping(value, indent + "  ") if value else f"{indent}  (none)"
            blocks.append(f"{indent}{key}:\n{inner}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks.append(f"{indent}{key}:\n{table(value, indent + '  ')}")
        else:
            lines.append(f"{indent}{key}: {_cell(key, value)}")
    return "\n".join(lines + blocks)


def table(rows: list[dict[str, Any]], indent: str = "") -> str:
    """A fixed-width table of ``rows`` (dicts), columns from the union of their keys."""
    keys = _columns(rows)
    cells = [[_cell(key, row.get(key)) for key in keys] for row in rows]
    headers = [HEADINGS.get(key, key.replace("_", " ").upper()) for key in keys]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    out = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        out.append(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                   .rstrip())
    return "\n".join(out)


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        seen.extend(k for k in row if k not in seen)
    first = [k for k in PREFERRED_COLUMNS if k in seen]
    return first + sorted(k for k in seen if k not in first)


def _setting_cell(key: str, value: Any) -> str:
    # File modes and umasks mean something in octal only (384 is 0o600).
    is_mode = key == "umask" or key.endswith("_mode")
    if is_mode and isinstance(value, int) and not isinstance(value, bool):
        return f"0o{value:03o}"
    return _cell(key, value)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in SECONDS and isinstance(value, int | float):
        return _duration(value)
    if key in TIMESTAMPS and isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list):
        return ", ".join(_cell("", v) for v in value) if value else "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"
