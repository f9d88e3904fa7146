"""Settings and secrets.

Each value resolves in this order: command-line flag, environment variable, `retro.toml` (or
`[tool.retro]` in pyproject.toml), default. Tokens also come from a 0600 keys file in the user
directory (`RETRO_USER_PATH` overrides it). Config is never logged.

Core settings are declared once, in `Settings` (pydantic-settings: each field names its
environment variable, default and description). Connector settings are each connector's own
pydantic `Config` model, resolved by `connector_config` the same way plus the keys file;
connectors cannot depend on this module, so their models stay plain pydantic.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from retro.errors import ConfigError, MissingCredential


class Settings(BaseSettings):
    """retro's own settings: flag > environment > retro.toml / [tool.retro] > default."""

    model_config = SettingsConfigDict(
        extra="ignore", toml_file="retro.toml", pyproject_toml_table_header=("tool", "retro")
    )

    user_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("RETRO_USER_PATH", "user_path"),
        description="Folder for keys, the default index and caches (default: the user data dir)",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RETRO_DATABASE_URL", "database_url"),
        description="Similarity index: sqlite:///path or postgresql://user@host/db",
    )
    embedder: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RETRO_EMBEDDER", "embedder"),
        description="minilm (default, offline), sentence-transformers, or openai[:model]",
    )
    openai_embed_model: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RETRO_OPENAI_EMBED_MODEL", "openai_embed_model"),
        description="Embedding model for RETRO_EMBEDDER=openai",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"),
        description="Key for the openai engine and embedder (or `retro keys set openai`)",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"),
        description="An OpenAI-compatible endpoint (Azure, Ollama, vLLM, llama.cpp)",
    )
    prompts_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("RETRO_PROMPTS_DIR", "prompts_dir"),
        description="Folder whose templates override the packaged prompts",
    )
    debug: bool = Field(
        default=False,
        validation_alias=AliasChoices("RETRO_DEBUG", "debug"),
        description="Show tracebacks instead of one-line errors",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # retro.toml wins over [tool.retro]; both lose to the environment and to flags.
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls),
            PyprojectTomlConfigSettingsSource(settings_cls),
        )


def settings(**flags: Any) -> Settings:
    """The settings now (the environment is read on each call; flags that are None are unset)."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v not in (None, "")})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "?"
        raise ConfigError(
            f"setting {where}: {err['msg']}", hint="check the environment and retro.toml"
        ) from None


def user_dir() -> Path:
    """Where retro keeps keys, the default index and caches."""
    override = settings().user_path
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("retro", appauthor=False))


def keys_path() -> Path:
    return user_dir() / "keys.json"


def load_keys() -> dict[str, str]:
    path = keys_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise ConfigError(
            f"{path}: not valid JSON", hint="fix it or delete it and run `retro keys set` again"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: must hold a JSON object", hint="delete it and run `retro keys set` again"
        )
    return {str(k): str(v) for k, v in data.items()}


def save_key(name: str, value: str) -> Path:
    """Store a key; the file is created with mode 0600 before anything is written to it."""
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = load_keys()
    keys[name] = value
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keys, fh, indent=2, sort_keys=True)
    os.chmod(path, 0o600)
    return path


def project_settings(start: Path | None = None) -> dict[str, Any]:
    """`retro.toml`, or `[tool.retro]` in pyproject.toml, from the current folder."""
    folder = start or Path.cwd()
    toml_path = folder / "retro.toml"
    try:
        if toml_path.is_file():
            return tomllib.loads(toml_path.read_text(encoding="utf-8"))
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            return dict(data.get("tool", {}).get("retro", {}))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{toml_path if toml_path.is_file() else folder / 'pyproject.toml'}: invalid TOML ({exc})",
            hint="fix the syntax",
        ) from None
    return {}


def setting(name: str, flag: Any = None, *, env: str | None = None, default: Any = None) -> Any:
    """Resolve one core setting: flag, env var, retro.toml, default."""
    if flag not in (None, ""):
        return flag
    if env and os.environ.get(env):
        return os.environ[env]
    value = project_settings().get(name)
    return default if value is None else value


def field_env(model: type[BaseModel], field: str) -> str | None:
    extra = model.model_fields[field].json_schema_extra
    if isinstance(extra, dict):
        env = extra.get("env")
        return str(env) if env else None
    return None


def connector_config(
    name: str, title: str, model: type[BaseModel], overrides: dict[str, Any] | None = None
) -> BaseModel:
    """Build a connector's Config from flags, env vars, the keys file, retro.toml and defaults."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    keys = load_keys()
    toml = project_settings().get("connectors", {}).get(name, {})
    values: dict[str, Any] = {}
    for field, info in model.model_fields.items():
        env = field_env(model, field)
        is_secret = info.annotation is SecretStr or "SecretStr" in str(info.annotation)
        if field in overrides:
            values[field] = overrides[field]
        elif env and os.environ.get(env):
            values[field] = os.environ[env]
        elif is_secret and (f"{name}.{field}" in keys or name in keys):
            values[field] = keys.get(f"{name}.{field}", keys.get(name))
        elif field in toml:
            values[field] = toml[field]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        env = field_env(model, field) if field in model.model_fields else None
        if err["type"] == "missing" and env:
            raise MissingCredential(title, env, key_name=name) from None
        raise ConfigError(
            f"{name}: setting {field}: {err['msg']}",
            hint=f"set {env}" if env else "check retro.toml",
        ) from None
