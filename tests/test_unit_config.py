"""Unit tests of model configs: locating and reading them, strict settings, provider validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ahelm.config import ConfigError, ModelConfig, load_model_config, parse_settings
from ahelm.models import build_model, validate_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (REPO / "model_configs").glob("*.toml"))
CANARY = "sk-canary-9f3b2c1d7e"


def write_config(root: Path, name: str, text: str) -> Path:
    path = root / "model_configs" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- load_model_config ----------------------------------------------------------------------------


def test_name_resolves_under_root(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "mine",
        """\
name = "My model"
description = "a test model"
provider = "python"
object = "pkg.mod:factory"
max_concurrency = 2

[options]
size = 3

[gates.mini]
instance = "wer <= 0.5"
""",
    )
    config = load_model_config("mine", tmp_path)
    assert config.path == path
    assert config.name == "My model"
    assert config.description == "a test model"
    assert config.provider == "python"
    assert dict(config.settings) == {
        "object": "pkg.mod:factory",
        "max_concurrency": 2,
        "options": {"size": 3},
    }
    assert dict(config.gate_overrides) == {"mini": {"instance": "wer <= 0.5"}}
    public = config.public()
    assert public["path"] == str(path) and public["gates"] == {"mini": {"instance": "wer <= 0.5"}}


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    write_config(tmp_path, "plain", 'provider = "reference"\n')
    config = load_model_config("plain", tmp_path)
    assert config.name == "plain"
    assert config.settings == {} and config.gate_overrides == {} and config.description == ""


def test_digest_changes_with_settings_not_with_name(tmp_path: Path) -> None:
    a = load_model_config(
        str(write_config(tmp_path, "a", 'provider = "reference"\nmax_concurrency = 1\n')), tmp_path
    )
    b = load_model_config(
        str(write_config(tmp_path, "b", 'provider = "reference"\nmax_concurrency = 1\n')), tmp_path
    )
    c = load_model_config(
        str(write_config(tmp_path, "c", 'provider = "reference"\nmax_concurrency = 2\n')), tmp_path
    )
    assert a.digest == b.digest
    assert a.digest != c.digest


def test_absolute_path_with_toml_suffix(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "x.toml"
    path.parent.mkdir()
    path.write_text('provider = "reference"\n')
    config = load_model_config(str(path), tmp_path / "unrelated_root")
    assert config.path == path and config.name == "x"


def test_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "m.toml").write_text('provider = "reference"\n')
    (tmp_path / "local.toml").write_text('provider = "python"\nobject = "a:b"\n')
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "root"
    assert load_model_config("cfgs/m.toml", root).path == tmp_path / "cfgs" / "m.toml"
    # a bare file name with .toml is a path too, not a config name
    assert load_model_config("local.toml", root).provider == "python"


def test_path_with_slash_but_no_suffix_is_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "m").write_text('provider = "reference"\n')
    monkeypatch.chdir(tmp_path)
    config = load_model_config("cfgs/m", tmp_path / "root")
    assert config.path == tmp_path / "cfgs" / "m"


def test_missing_config_lists_the_available_ones(tmp_path: Path) -> None:
    write_config(tmp_path, "alpha", 'provider = "reference"\n')
    write_config(tmp_path, "beta", 'provider = "reference"\n')
    with pytest.raises(ConfigError) as info:
        load_model_config("gamma", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "model_configs" / "gamma.toml") in message
    assert "no such model config" in message
    assert "alpha, beta" in message
    assert info.value.field is None


def test_missing_config_without_any_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such model config$"):
        load_model_config("gamma", tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "broken", 'provider = "python"\nobject = \n')
    with pytest.raises(ConfigError) as info:
        load_model_config("broken", tmp_path)
    assert info.value.path == str(path)
    assert "not valid TOML" in str(info.value)


@pytest.mark.parametrize("text", ['name = "x"\n', 'provider = ""\n', "provider = 3\n"])
def test_missing_provider(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, "noprov", text)
    with pytest.raises(ConfigError) as info:
        load_model_config("noprov", tmp_path)
    assert info.value.field == "provider"
    assert str(info.value).startswith(f"{path}: field 'provider': missing")


def test_gates_must_be_a_table(tmp_path: Path) -> None:
    write_config(tmp_path, "g", 'provider = "reference"\ngates = ["wer <= 0.1"]\n')
    with pytest.raises(ConfigError) as info:
        load_model_config("g", tmp_path)
    assert info.value.field == "gates"


def test_builtin_reference_when_no_file(tmp_path: Path) -> None:
    config = load_model_config("reference", tmp_path)
    assert config.provider == "reference"
    assert config.name == "reference"
    assert str(config.path) == "<built-in reference>"
    assert config.settings == {}
    assert validate_config(config) is not None


def test_reference_file_wins_over_builtin(tmp_path: Path) -> None:
    path = write_config(tmp_path, "reference", 'provider = "reference"\nmax_concurrency = 2\n')
    config = load_model_config("reference", tmp_path)
    assert config.path == path
    assert config.settings == {"max_concurrency": 2}


# -- parse_settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    name: str
    count: int = 1
    ratio: float = 0.5
    enabled: bool = False
    label: str | None = None
    token_env: str | None = None
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def test_parse_settings_full() -> None:
    settings = parse_settings(
        Demo,
        {
            "name": "n",
            "count": 3,
            "ratio": 0.25,
            "enabled": True,
            "label": "L",
            "tags": ["a"],
            "extra": {"k": 1},
        },
        "demo.toml",
    )
    assert settings == Demo("n", 3, 0.25, True, "L", None, ["a"], {"k": 1})


def test_parse_settings_defaults() -> None:
    assert parse_settings(Demo, {"name": "n"}, "demo.toml") == Demo("n")


def test_unknown_field_is_an_error_listing_known_fields() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(Demo, {"name": "n", "cuont": 2}, "demo.toml")
    assert info.value.field == "cuont"
    assert info.value.path == "demo.toml"
    assert "unknown field" in str(info.value)
    assert "count, enabled, extra, label, name, ratio, tags, token_env" in str(info.value)


def test_missing_required_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(Demo, {"count": 2}, "demo.toml")
    assert info.value.field == "name"
    assert str(info.value) == "demo.toml: field 'name': missing (required)"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("count", True),  # a bool is not an int
        ("count", 2.5),
        ("count", "3"),
        ("ratio", "0.5"),
        ("ratio", False),
        ("enabled", 1),
        ("enabled", "yes"),
        ("name", 5),
        ("name", True),
        ("label", 7),
        ("tags", "a"),
        ("extra", ["k"]),
    ],
)
def test_wrong_type_names_the_field(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(Demo, {"name": "n", key: value}, "demo.toml")
    assert info.value.field == key
    assert "expected" in str(info.value)


def test_int_accepted_for_float() -> None:
    settings = parse_settings(Demo, {"name": "n", "ratio": 1}, "demo.toml")
    assert settings.ratio == 1.0 and type(settings.ratio) is float


def test_optional_accepts_none_and_its_type() -> None:
    assert parse_settings(Demo, {"name": "n", "label": None}, "d.toml").label is None
    assert parse_settings(Demo, {"name": "n", "label": "x"}, "d.toml").label == "x"


def test_env_field_needs_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AHELM_UNIT_TOKEN", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_settings(Demo, {"name": "n", "token_env": "AHELM_UNIT_TOKEN"}, "demo.toml")
    assert info.value.field == "token_env"
    assert "AHELM_UNIT_TOKEN is not set" in str(info.value)
    monkeypatch.setenv("AHELM_UNIT_TOKEN", "")
    with pytest.raises(ConfigError, match="AHELM_UNIT_TOKEN is not set"):
        parse_settings(Demo, {"name": "n", "token_env": "AHELM_UNIT_TOKEN"}, "demo.toml")


def test_env_field_set_keeps_the_secret_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AHELM_UNIT_TOKEN", CANARY)
    settings = parse_settings(Demo, {"name": "n", "token_env": "AHELM_UNIT_TOKEN"}, "demo.toml")
    assert settings.token_env == "AHELM_UNIT_TOKEN"
    assert CANARY not in repr(settings)
    assert CANARY not in str(vars(settings))


def test_parse_settings_needs_a_dataclass() -> None:
    with pytest.raises(TypeError):
        parse_settings(dict, {}, "x.toml")


# -- validate_config ------------------------------------------------------------------------------


def test_shipped_configs_are_found() -> None:
    assert {"reference", "gpt-4o-audio", "qwen2-audio-vllm"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_validates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(variable, CANARY)
    config = load_model_config(name, REPO)
    assert config.path == REPO / "model_configs" / f"{name}.toml"
    settings = validate_config(config)
    assert CANARY not in repr(settings)
    assert CANARY not in repr(config.public())


def test_gpt4o_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = load_model_config("gpt-4o-audio", REPO)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert info.value.field == "api_key_env"
    assert info.value.path == str(config.path)
    assert "OPENAI_API_KEY" in str(info.value)


def test_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, "u", 'provider = "tensorflow-magic"\n')
    with pytest.raises(ConfigError) as info:
        validate_config(load_model_config("u", tmp_path))
    assert info.value.field == "provider"
    assert info.value.path == str(path)
    assert "'tensorflow-magic'" in str(info.value)
    assert "openai-chat, python, reference" in str(info.value)


def test_unknown_setting_for_a_provider(tmp_path: Path) -> None:
    path = write_config(tmp_path, "r", 'provider = "reference"\nthreads = 4\n')
    with pytest.raises(ConfigError) as info:
        validate_config(load_model_config("r", tmp_path))
    assert info.value.field == "threads"
    assert info.value.path == str(path)


def test_openai_value_error_names_the_config_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "bad", 'provider = "openai-chat"\nmodel = "m"\nbase_url = "localhost:8000/v1"\n'
    )
    with pytest.raises(ConfigError) as info:
        validate_config(load_model_config("bad", tmp_path))
    assert info.value.field == "base_url"
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("no_colon_here", "should look like 'package.module:factory'"),
        (":factory", "should look like"),
        ("json:", "should look like"),
        ("ahelm_no_such_module_xyz:create", "cannot import 'ahelm_no_such_module_xyz'"),
        ("json:no_such_factory", "module 'json' has no attribute 'no_such_factory'"),
    ],
)
def test_python_provider_bad_object_names_the_field(
    tmp_path: Path, target: str, fragment: str
) -> None:
    path = write_config(tmp_path, "py", f'provider = "python"\nobject = "{target}"\n')
    with pytest.raises(ConfigError) as info:
        validate_config(load_model_config("py", tmp_path))
    assert info.value.field == "object"
    assert info.value.path == str(path)
    assert fragment in str(info.value)


class Echo:
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def generate(self, request: Any) -> str:
        return self.prefix + request.prompt


def test_python_provider_good_object_builds(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        "py",
        f'provider = "python"\nobject = "{__name__}:Echo"\n[options]\nprefix = ">"\n',
    )
    config = load_model_config("py", tmp_path)
    settings = validate_config(config)
    assert settings.object == f"{__name__}:Echo"
    model = build_model(config)
    assert model.fingerprint == f'python/{__name__}:Echo/{{"prefix": ">"}}'
    assert model.max_concurrency == 4


def test_python_provider_options_must_be_a_table(tmp_path: Path) -> None:
    write_config(tmp_path, "py", f'provider = "python"\nobject = "{__name__}:Echo"\noptions = 3\n')
    with pytest.raises(ConfigError) as info:
        validate_config(load_model_config("py", tmp_path))
    assert info.value.field == "options"


def test_model_config_is_frozen(tmp_path: Path) -> None:
    config = load_model_config("reference", tmp_path)
    assert isinstance(config, ModelConfig)
    with pytest.raises(AttributeError):
        config.provider = "python"  # type: ignore[misc]
