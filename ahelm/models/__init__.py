"""Model adapters behind one interface, looked up by the ``provider`` field of a model config.

Each adapter module exposes a settings dataclass and a ``create(settings)`` factory. Modules are
imported only when their provider is used, so an adapter's optional dependencies stay optional.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ahelm.config import ConfigError, ModelConfig, parse_settings
from ahelm.models.base import Model

__all__ = ["Model", "PROVIDERS", "ProviderSpec", "build_model", "is_remote", "validate_config"]


@dataclass(frozen=True)
class ProviderSpec:
    settings: type
    create: Callable[[Any], Model]
    check: Callable[[Any], None] | None = None
    """Optional deeper validation (raises ValueError), run before any request."""
    remote: Callable[[Any], bool] | None = None
    """Whether the model does its work elsewhere (over HTTP), so that a run asks it from one
    dispatch service process (:mod:`ahelm.service`); None: local."""


def _lazy(module: str) -> Callable[[], ProviderSpec]:
    def load() -> ProviderSpec:
        mod = importlib.import_module(module)
        return ProviderSpec(settings=mod.Settings, create=mod.create,
                            check=getattr(mod, "check", None), remote=getattr(mod, "remote", None))

    return load


PROVIDERS: dict[str, Callable[[], ProviderSpec]] = {
    "reference": _lazy("ahelm.models.reference"),
    "openai-chat": _lazy("ahelm.models.openai_chat"),
    "gemini": _lazy("ahelm.models.gemini"),
    "cascade": _lazy("ahelm.models.cascade"),
    "python": _lazy("ahelm.models.python_object"),
}


def _spec(config: ModelConfig) -> ProviderSpec:
    loader = PROVIDERS.get(config.provider)
    if loader is None:
        raise ConfigError(
            config.path,
            "provider",
            f"unknown provider {config.provider!r}; known providers: {', '.join(sorted(PROVIDERS))}",
        )
    return loader()


def validate_config(config: ModelConfig) -> Any:
    """Check a config completely (provider, fields, types, secrets in the environment)."""
    spec = _spec(config)
    settings: Any = parse_settings(spec.settings, config.settings, config.path)
    if spec.check is not None:
        try:
            spec.check(settings)
        except (ValueError, ImportError, AttributeError) as exc:
            raise ConfigError(config.path, getattr(exc, "field", None), str(exc)) from None
    return settings


def is_remote(config: ModelConfig) -> bool:
    """Whether the config's model works over the network (see ProviderSpec.remote)."""
    spec = _spec(config)
    if spec.remote is None:
        return False
    return bool(spec.remote(parse_settings(spec.settings, config.settings, config.path)))


def build_model(config: ModelConfig) -> Model:
    spec = _spec(config)
    return spec.create(parse_settings(spec.settings, config.settings, config.path))
