"""Model configs: one TOML file per model under test, validated before any request is made."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

RESERVED_KEYS = ("provider", "name", "description", "gates")


class ConfigError(Exception):
    """A model config or gate policy is wrong; names the file and the field."""

    def __init__(self, path: Path | str, field: str | None, message: str) -> None:
        where = f"{path}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ModelConfig:
    """A parsed model config: which provider, its settings, and any gate overrides."""

    name: str
    path: Path
    provider: str
    settings: Mapping[str, Any]
    gate_overrides: Mapping[str, Any]
    description: str = ""

    def public(self) -> dict[str, Any]:
        """The config as reports may show it: settings name env vars, never their values."""
        return {
            "name": self.name,
            "path": str(self.path),
            "provider": self.provider,
            "description": self.description,
            "settings": dict(self.settings),
            "gates": dict(self.gate_overrides),
        }

    @property
    def digest(self) -> str:
        blob = json.dumps(
            {"provider": self.provider, "settings": self.settings, "gates": self.gate_overrides},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_config_path(spec: str, root: Path) -> Path:
    """``NAME`` means ``<root>/model_configs/NAME.toml``; anything with a slash or suffix is a path."""
    if spec.endswith(".toml") or os.sep in spec or "/" in spec:
        path = Path(spec)
        return path if path.is_absolute() else (Path.cwd() / path)
    return root / "model_configs" / f"{spec}.toml"


BUILTIN_REFERENCE = "reference"
"""Outside a checkout with model_configs/reference.toml, ``--model=reference`` still works."""


def load_model_config(spec: str, root: Path) -> ModelConfig:
    path = resolve_config_path(spec, root)
    if spec == BUILTIN_REFERENCE and not path.is_file():
        return ModelConfig(
            name="reference",
            path=Path("<built-in reference>"),
            provider="reference",
            settings={},
            gate_overrides={},
            description="pocketsphinx ASR + transcript rules (offline baseline)",
        )
    if not path.is_file():
        available = sorted(p.stem for p in (root / "model_configs").glob("*.toml"))
        hint = f" (configs in model_configs/: {', '.join(available)})" if available else ""
        raise ConfigError(path, None, f"no such model config{hint}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from None
    provider = table.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ConfigError(path, "provider", "missing; say which adapter serves this model")
    gates = table.get("gates", {})
    if not isinstance(gates, dict):
        raise ConfigError(path, "gates", "must be a table of per-scenario gate overrides")
    settings = {k: v for k, v in table.items() if k not in RESERVED_KEYS}
    return ModelConfig(
        name=str(table.get("name") or path.stem),
        path=path,
        provider=provider,
        settings=settings,
        gate_overrides=gates,
        description=str(table.get("description", "")),
    )


T = typing.TypeVar("T")


def parse_settings(cls: type[T], table: Mapping[str, Any], path: Path | str) -> T:
    """Build the settings dataclass ``cls`` from a TOML table, strictly.

    Unknown fields, missing required fields and wrong types are errors naming the field. A field
    whose name ends in ``_env`` names an environment variable that must be set; its value is read
    by the adapter, never stored in the settings.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(path, key, f"unknown field; known fields: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, fld in known.items():
        required = (
            fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
        )
        if name not in table:
            if required:
                raise ConfigError(path, name, "missing (required)")
            continue
        values[name] = _check_type(table[name], hints[name], path, name)
    for name, value in values.items():
        if name.endswith("_env") and isinstance(value, str) and not os.environ.get(value):
            raise ConfigError(
                path, name, f"environment variable {value} is not set (it must hold the secret)"
            )
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(path, exc.field, exc.message) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(path, None, str(exc)) from None


def _check_type(value: Any, hint: Any, path: Path | str, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        for option in options:
            try:
                return _check_type(value, option, path, name)
            except ConfigError:
                continue
        expected = " or ".join(_type_name(o) for o in options if o is not type(None))
        raise ConfigError(path, name, f"expected {expected}, got {_type_name(type(value))}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(path, name, "expected nothing")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif origin in (dict, Mapping) or hint in (dict, Mapping):
        if isinstance(value, dict):
            return value
    elif origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, list):
            return tuple(value) if (origin or hint) is tuple else value
    elif isinstance(hint, type) and isinstance(value, hint) and not (
        hint is not bool and isinstance(value, bool)
    ):
        return value
    raise ConfigError(
        path, name, f"expected {_type_name(hint)}, got {_type_name(type(value))} ({value!r})"
    )


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is not None:
        return getattr(origin, "__name__", str(hint))
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
