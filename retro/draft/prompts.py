"""Versioned prompt templates: the packaged ones, overridden file by file from a user folder.

Lookup order for a name such as `draft.v1.md`:
1. the user folder: `RETRO_PROMPTS_DIR`, else `<user dir>/prompts`;
2. the `retro._prompts` package data (the wheel maps `prompts/` there);
3. `<repo>/prompts` (an editable install from a source checkout).

A template holds a system part and a user part separated by a line `--- user ---`, with
`{placeholders}`. Only known placeholders are substituted, once, so braces in the filled-in data
are never expanded again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from retro.config import settings, user_dir
from retro.errors import ConfigError

SEPARATOR = re.compile(r"^---\s*user\s*---\s*$", re.MULTILINE)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


def user_prompts_dir() -> Path:
    """The folder whose files override the packaged prompts."""
    override = settings().prompts_dir
    return Path(override).expanduser() if override else user_dir() / "prompts"


def _packaged(name: str) -> str | None:
    try:
        # A plain folder inside the retro package, so no __init__.py is needed in prompts/.
        ref = resources.files("retro").joinpath("_prompts", name)
        if ref.is_file():
            return ref.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    path = REPO_PROMPTS / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def load_text(name: str) -> tuple[str, str]:
    """Return (text, origin) of the named template; the user folder wins."""
    user = user_prompts_dir() / name
    if user.is_file():
        return user.read_text(encoding="utf-8"), str(user)
    text = _packaged(name)
    if text is None:
        raise ConfigError(
            f"prompt template {name} not found",
            hint=f"reinstall retro or put {name} in {user_prompts_dir()}",
        )
    return text, f"package:{name}"


@dataclass(frozen=True)
class Template:
    """One prompt template, split into its system and user parts."""

    name: str
    system: str
    user: str
    origin: str

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.system + "\x00" + self.user).encode("utf-8")).hexdigest()[:16]

    def render(self, **values: str) -> tuple[str, str]:
        """Fill the placeholders of both parts; a placeholder with no value is an error."""
        return fill(self.system, values, self.name), fill(self.user, values, self.name)


def fill(text: str, values: dict[str, str], name: str = "template") -> str:
    """Replace each `{key}` with values[key] in one pass."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(
                f"prompt {name}: no value for {{{key}}}",
                hint="remove the placeholder from your override or use a known one",
            )
        return values[key]

    return PLACEHOLDER.sub(sub, text)


def load(name: str) -> Template:
    """Load a template by file name, e.g. `draft.v1.md`."""
    text, origin = load_text(name)
    parts = SEPARATOR.split(text, maxsplit=1)
    if len(parts) != 2:
        raise ConfigError(
            f"prompt {origin}: no `--- user ---` line",
            hint="separate the system part from the user part with a line `--- user ---`",
        )
    return Template(name, parts[0].strip() + "\n", parts[1].strip() + "\n", origin)
