"""Generate the typed settings view from the settings registry.

``python -m gunicorn.config.typed_gen`` prints ``gunicorn/config/typed.py``: a
:class:`typing.Protocol` named ``CoreSettings`` declaring every core setting as a read-only
attribute with its value type, plus the derived values of :mod:`gunicorn.config.derived`.
``python -m gunicorn.config.typed_gen --plugin NAME`` prints the plugin's module (for example
``gunicorn/dirty/typed_settings.py``) with ``class <Name>Settings(CoreSettings, Protocol)``
declaring only the settings that plugin adds. ``make typed`` (part of ``make docs``) writes them;
a test compares the committed files with this output.

A setting's type is its ``Setting.type`` when given, otherwise the return annotation of its
validator (``choice()`` validators say ``Literal[...]``, ``hook()`` validators a ``Callable`` of
the hook's arity), with ``| None`` added when the default is ``None``. A setting whose type is
neither given nor derivable (a validator annotated ``-> Any``) is an error here, so every
setting added to the registry gets a type.
"""

from __future__ import annotations

import collections.abc
import sys
import types
import typing
from typing import Any

from gunicorn.config.derived import DerivedValues
from gunicorn.config.registry import Registry, Setting
from gunicorn.config.settings import core_registry

_HEADER = '''"""{doc}

Generated from the settings registry by ``{command}``
(``make typed``): do not edit. Change the settings (their validator's return annotation, or
``Setting.type``) and regenerate.
"""

from __future__ import annotations
'''

_CORE_DOC = """The typed view of the core settings: ``cfg: CoreSettings``.

Every core setting is a read-only attribute with its value type; the derived values of
:mod:`gunicorn.config.derived` (``uid``, ``is_ssl``, ``worker_class``, ...) follow, and replace the
settings they shadow. :class:`~gunicorn.config.Config` satisfies this Protocol."""

_PLUGIN_DOC = """The typed view of the settings the ``{name}`` plugin adds: ``cfg: {cls}``.

The plugin's own code reads its settings through this view; the core never does (it does not
know the plugin). :class:`~gunicorn.config.Config` satisfies this Protocol, so the plugin's hooks
may declare ``cfg: {cls}``; a configuration the relay hands over as a value typed
``CoreSettings`` (``SidecarContext.cfg``) is narrowed with :func:`{func}`."""


class TypeGenError(Exception):
    """A setting whose value type cannot be derived (give it ``Setting.type``)."""


class _Renderer:
    """Renders type objects as source text, collecting the imports they need."""

    def __init__(self) -> None:
        self.imports: set[tuple[str, str]] = set()

    def render(self, tp: Any) -> str:
        if isinstance(tp, str):
            return tp
        if tp is None or tp is type(None):
            return "None"
        if tp is Ellipsis:
            return "..."
        if tp is Any:
            self.imports.add(("typing", "Any"))
            return "Any"
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            return " | ".join(self.render(arg) for arg in args)
        if origin is typing.Literal:
            self.imports.add(("typing", "Literal"))
            return f"Literal[{', '.join(_literal(arg) for arg in args)}]"
        if origin is collections.abc.Callable:
            self.imports.add(("collections.abc", "Callable"))
            params, result = args[0], args[-1]  # get_args: ([params], result) or (..., result)
            if params is Ellipsis:
                shown = "..."
            else:
                shown = "[" + ", ".join(self.render(p) for p in params) + "]"
            return f"Callable[{shown}, {self.render(result)}]"
        if origin is not None:
            return f"{self.render(origin)}[{', '.join(self.render(arg) for arg in args)}]"
        if isinstance(tp, type):
            if tp.__module__ != "builtins":
                self.imports.add((tp.__module__, tp.__qualname__))
            return tp.__qualname__
        raise TypeGenError(f"cannot render the type {tp!r}")


def _literal(value: Any) -> str:
    # Double quotes, as in the rest of the code; repr() for anything that is not a plain string.
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def setting_type(setting: Setting) -> Any:
    """The value type of ``setting``: ``Setting.type``, or its validator's return annotation."""
    if setting.type is not None:
        return setting.type
    try:
        found = typing.get_type_hints(setting.validator).get("return", Any)
    except (NameError, TypeError) as exc:
        raise TypeGenError(f"setting {setting.name!r}: cannot read the validator's return "
                           f"annotation ({exc}); give the Setting a type") from exc
    if found is Any:
        raise TypeGenError(f"setting {setting.name!r}: its validator returns Any; give the "
                           "Setting a type")
    if setting.default is None and type(None) not in typing.get_args(found):
        return found | None
    return found


def _derived() -> dict[str, Any]:
    """The derived properties of Config and their return types, in definition order."""
    found = {}
    for name, member in vars(DerivedValues).items():
        if isinstance(member, property) and not name.startswith("_"):
            found[name] = typing.get_type_hints(member.fget).get("return", Any)
    return found


def _prop(renderer: _Renderer, name: str, tp: Any) -> list[str]:
    return ["    @property", f"    def {name}(self) -> {renderer.render(tp)}: ..."]


def _module(doc: str, command: str, renderer: _Renderer, base: str, cls: str,
            body: list[str], extra_imports: list[str]) -> str:
    lines = [_HEADER.format(doc=doc, command=command)]
    lines += _import_lines(renderer.imports, extra_imports)
    lines += ["", "", f"class {cls}({base}):", f'    """{cls.removesuffix("Settings")} settings, '
              'one read-only attribute each."""', ""]
    lines += body
    return "\n".join(lines).rstrip("\n") + "\n"


def _import_lines(imports: set[tuple[str, str]], extra: list[str]) -> list[str]:
    # Types from gunicorn modules are imported for the type checker only: importing the view
    # at run time must not import every module a setting's type names.
    stdlib: dict[str, set[str]] = {}
    local: dict[str, set[str]] = {}
    for module, name in imports | {("typing", "Protocol")}:
        (local if module.startswith("gunicorn") else stdlib).setdefault(module, set()).add(name)
    if local:
        stdlib["typing"].add("TYPE_CHECKING")
    lines = [f"from {m} import {_names(n)}" for m, n in sorted(stdlib.items())]
    lines += ["", *extra]
    if local:
        lines += ["", "if TYPE_CHECKING:"]
        lines += [f"    from {m} import {_names(n)}" for m, n in sorted(local.items())]
    return lines


def _names(names: set[str]) -> str:
    # isort's order (as ruff applies it): CONSTANTS, then Classes, then functions.
    return ", ".join(sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n)))


def _section_body(renderer: _Renderer, registry: Registry, skip: set[str]) -> list[str]:
    body: list[str] = []
    for section, settings in registry.sections().items():
        body.append(f"    # -- {section} " + "-" * max(3, 86 - len(section)))
        for setting in settings:
            tp = setting_type(setting)  # also for a shadowed setting: every setting has a type
            if setting.name not in skip:
                body += _prop(renderer, setting.name, tp)
        body.append("")
    return body


def render_core() -> str:
    """The source of ``gunicorn/config/typed.py``."""
    renderer = _Renderer()
    derived = _derived()
    body = _section_body(renderer, core_registry(), set(derived))
    body.append("    # -- derived values (gunicorn.config.derived) " + "-" * 42)
    for name, tp in derived.items():
        body += _prop(renderer, name, tp)
    return _module(_CORE_DOC, "python -m gunicorn.config.typed_gen", renderer,
                   "ConfigAccess, Protocol", "CoreSettings", body,
                   ["from gunicorn.config.access import ConfigAccess"])


def class_name(plugin: str) -> str:
    """``dirty`` -> ``DirtySettings``, ``http2`` -> ``Http2Settings``."""
    return "".join(part.capitalize() for part in plugin.replace("-", "_").split("_")) + "Settings"


_NARROW = '''

def {func}(cfg: CoreSettings) -> {cls}:
    """``cfg`` (a configuration the relay handed over, e.g. ``SidecarContext.cfg``) seen
    through this plugin's view; PluginError when the plugin's settings are not registered in
    it (the plugin was not loaded through the relay)."""
    if "{first}" not in cfg.registry:
        raise PluginError("the {name} plugin's settings are not registered in this configuration")
    return cast("{cls}", cfg)
'''


def render_plugin(name: str) -> str:
    """The source of the plugin's ``typed_settings.py``."""
    from gunicorn.config.docs import plugin_registry

    renderer = _Renderer()
    renderer.imports.add(("typing", "cast"))
    cls = class_name(name)
    registry = plugin_registry(name)
    body = _section_body(renderer, registry, set())
    first = next(iter(registry)).name
    func = f"{name.replace('-', '_')}_settings"
    source = _module(_PLUGIN_DOC.format(name=name, cls=cls, func=func),
                     f"python -m gunicorn.config.typed_gen --plugin {name}", renderer,
                     "CoreSettings, Protocol", cls, body,
                     ["from gunicorn.config.typed import CoreSettings",
                      "from gunicorn.errors import PluginError"])
    return source + _NARROW.format(func=func, cls=cls, first=first, name=name)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--plugin":
        print(render_plugin(args[1]), end="")
    elif not args:
        print(render_core(), end="")
    else:
        sys.exit("usage: python -m gunicorn.config.typed_gen [--plugin NAME]")


if __name__ == "__main__":
    main()
