"""Strict YAML -> dataclass loading, shared by recipes, eval tasks and scaling specs.

A YAML mapping maps 1:1 onto a (nested) dataclass. Loading fails before any work starts, with one line that
names the offending key, on

* an unknown key (and suggests the closest valid one),
* a value of the wrong type (``lr: fast`` where a float is expected),
* a name that its registry does not hold (``simulator: burger`` -> did you mean ``burgers``).

A field declares its registry with ``field(metadata={"registry": SIMULATORS})``; the check is then done
here, so every config class gets it for free. ``--key value`` overrides address fields by dotted path
(``--training.learning_rate 3e-4``) or, where unambiguous, by leaf name (``--learning_rate 3e-4``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from sfm.errors import ConfigError, UnknownNameError, did_you_mean

T = TypeVar("T")

_NONE = type(None)


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that reads ``1e-4`` and ``1.0e30`` as floats (YAML 1.2), not strings (YAML 1.1)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text safely (no Python objects), with YAML 1.2 floats."""
    return yaml.load(text, Loader=_Loader)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning syntax errors and non-mappings into one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, strictly.

    Args:
        cls: A dataclass type (possibly with nested dataclass fields).
        data: Plain data as loaded from YAML.
        where: A prefix for messages (a file name).

    Raises:
        ConfigError: on unknown keys, wrong types, missing required keys or unknown registry names.
    """
    return _build(cls, data, prefix="", where=where)


# Line breaks a quoted key or value may carry (str.splitlines breaks on all of them): escaped, so an error
# stays the one line the CLI promises even when a YAML key is "\n" or an override value spans lines.
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with every line break escaped (``\\n``), for error messages that quote user input."""
    return text.translate(_LINE_BREAKS)


def _fail(where: str, msg: str) -> typing.NoReturn:
    raise ConfigError(one_line(f"{where}: {msg}" if where else msg))


def _build(cls: type, data: Any, *, prefix: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        _fail(where, f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            _fail(where, f"unknown key '{prefix}{key}'{did_you_mean(str(key), fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], key=key, where=where)
            registry = f.metadata.get("registry")
            if registry is not None and kwargs[name] is not None:
                _check_names(registry, kwargs[name], key=key, where=where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            _fail(where, f"missing required key '{key}'")
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a nested check that already names its key
        _fail(where, str(exc))
    except (ValueError, TypeError, UnknownNameError) as exc:  # __post_init__ validation
        _fail(where, f"{prefix.rstrip('.') or cls.__name__}: {exc}")


def _check_names(registry: Any, value: Any, *, key: str, where: str) -> None:
    names = value if isinstance(value, list | tuple) else [value]
    for name in names:
        if name not in registry:
            _fail(
                where,
                f"{key}: unknown {registry.kind} {name!r}{did_you_mean(str(name), registry.names())}",
            )


def _show(value: Any) -> str:
    text = repr(value)
    return (text[:40] + "...") if len(text) > 43 else text


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, *, key: str, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; convert where it is lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        options = [a for a in args if a is not _NONE]
        if len(options) == 1:  # Optional[X]: X's own message names the key precisely
            return _coerce(options[0], value, key=key, where=where)
        for arg in options:
            try:
                return _coerce(arg, value, key=key, where=where)
            except ConfigError:
                continue
        _fail(where, f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {_show(value)}")
    if origin is typing.Literal:
        if value not in args:
            _fail(
                where,
                f"{key}: {value!r} is not one of {', '.join(map(repr, args))}"
                f"{did_you_mean(str(value), [str(a) for a in args])}",
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _build(tp, value, prefix=key + ".", where=where)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            _fail(where, f"{key}: expected a list, got {_show(value)}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key=f"{key}[{i}]", where=where) for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                _fail(where, f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _coerce(a, v, key=f"{key}[{i}]", where=where) for i, (a, v) in enumerate(zip(args, value))
            )
        item = args[0] if args else Any
        out = [_coerce(item, v, key=f"{key}[{i}]", where=where) for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            _fail(where, f"{key}: expected a mapping, got {_show(value)}")
        kt, vt = args if args else (Any, Any)
        return {
            _coerce(kt, k, key=f"{key}.{k}", where=where): _coerce(vt, v, key=f"{key}.{k}", where=where)
            for k, v in value.items()
        }
    if tp in _SCALARS:
        return _coerce_scalar(tp, value, key=key, where=where)
    if isinstance(tp, type):
        if not isinstance(value, tp):
            _fail(where, f"{key}: expected {tp.__name__}, got {_show(value)}")
        return value
    return value


_SCALARS = (bool, int, float, str, Path)


def _coerce_scalar(tp: Any, value: Any, *, key: str, where: str) -> Any:
    """``bool``/``int``/``float``/``str``/``Path`` checks; conversions only where nothing is lost."""
    if tp is bool:
        if not isinstance(value, bool):
            _fail(where, f"{key}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            _fail(where, f"{key}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            # YAML 1.1 reads "3e-4" (no dot) as a string; accept any numeric string
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            _fail(where, f"{key}: expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            _fail(where, f"{key}: expected a string, got {_show(value)}")
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            _fail(where, f"{key}: expected a path, got {_show(value)}")
        return Path(value)
    return value


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain data (YAML/JSON ready); the inverse of :func:`from_dict`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def leaf_paths(cls: type, prefix: str = "") -> dict[str, str]:
    """Map every dotted field path of dataclass ``cls`` to itself, and unique leaf names to their path."""
    paths: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        path = prefix + f.name
        if dataclasses.is_dataclass(tp):
            paths.update(leaf_paths(tp, path + "."))
        else:
            paths[path] = path
    return paths


def parse_overrides(cls: type, argv: Sequence[str]) -> dict[str, Any]:
    """Turn ``["--training.lr", "1e-4", "--seed=3"]`` into a nested override mapping for ``cls``.

    Values are parsed as YAML scalars (``true``, ``3``, ``[1, 2]``), then type-checked when the mapping is
    merged and loaded. Leaf names that are unique across sections may be used without their section.
    """
    full = leaf_paths(cls)
    leaves: dict[str, list[str]] = {}
    for path in full:
        leaves.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    out: dict[str, Any] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        if not arg.startswith("--"):
            raise ConfigError(one_line(f"unexpected argument {arg!r}: overrides look like --key value"))
        key = arg[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
        else:
            if i + 1 >= len(items):
                raise ConfigError(one_line(f"override --{key} has no value"))
            i += 1
            raw = items[i]
        key = key.replace("-", "_")
        if key in full:
            path = key
        elif key in leaves and len(leaves[key]) == 1:
            path = leaves[key][0]
        elif key in leaves:
            raise ConfigError(
                one_line(
                    f"override --{key} is ambiguous: use one of {', '.join('--' + p for p in leaves[key])}"
                )
            )
        else:
            raise ConfigError(
                one_line(f"unknown override --{key}{did_you_mean(key, list(full) + list(leaves))}")
            )
        try:
            value = yaml_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        i += 1
    return out


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read YAML ``path``, apply ``--key value`` overrides, and build ``cls`` strictly."""
    data = merge(read_yaml(path), parse_overrides(cls, overrides))
    return from_dict(cls, data, where=str(path))


def sfm_home() -> Path:
    """Where relative data paths resolve: ``$SFM_HOME`` or the current folder."""
    return Path(os.environ.get("SFM_HOME", "."))
