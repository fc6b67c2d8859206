"""Generate the settings reference (``docs/settings.md``) from the core registry.

``python -m gunicorn.config.docs > docs/settings.md`` (``make docs``). A test compares the
committed file with this output, so the reference cannot drift from the code.
"""

from __future__ import annotations

from gunicorn.config.registry import Registry, Setting
from gunicorn.config.settings import core_registry

INTRO = """\
# Settings

This reference is generated from the settings registry by `python -m gunicorn.config.docs`
(`make docs`); edit the settings modules in `gunicorn/config/settings/`, not this file.

Settings come from, lowest precedence first: the defaults (some read from the environment),
settings provided by the application, the config file (`-c FILE`, `-c python:MODULE`, or
`./gunicorn.conf.py` when present), `$GUNICORN_CMD_ARGS`, and the command line. In a config
file, every module-level name that is a setting is applied. Plugins such as gunicorn-http2
and gunicorn-dirty add their own sections; `gunicorn --help` lists everything installed.
"""


def _anchor(section: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in section.lower()).strip("-")


def _default(setting: Setting) -> str:
    return setting.default_doc if setting.default_doc is not None else repr(setting.default)


def _flags(setting: Setting) -> str:
    if not setting.cli:
        return "none (config file only)"
    if setting.action in ("store", "append"):
        meta = setting.meta or setting.name.upper()
        if setting.nargs == "?":
            meta = f"[{meta}]"
        shown = [f"`{flag} {meta}`" for flag in setting.cli]
    else:
        shown = [f"`{flag}`" for flag in setting.cli]
    text = ", ".join(shown)
    if setting.action == "append":
        text += " (repeatable)"
    return text


def render_setting(setting: Setting) -> str:
    lines = [
        f"### `{setting.name}`",
        "",
        f"* Command line: {_flags(setting)}",
        f"* Default: `{_default(setting)}`",
    ]
    if setting.choices:
        lines.append(f"* Values: {', '.join(f'`{c}`' for c in setting.choices)}")
    lines += ["", setting.doc, ""]
    return "\n".join(lines)


def render(registry: Registry) -> str:
    """The whole reference as Markdown."""
    sections = registry.sections()
    parts = [INTRO, "## Sections\n"]
    parts.append("\n".join(f"* [{name}](#{_anchor(name)})" for name in sections) + "\n")
    for name, settings in sections.items():
        parts.append(f"## {name}\n")
        parts.extend(render_setting(setting) for setting in settings)
    return "\n".join(parts).rstrip("\n") + "\n"


def main() -> None:
    print(render(core_registry()), end="")


if __name__ == "__main__":
    main()
