"""Build retro/safety/data/first_names.v1.txt: given names a draft must not carry (`make names`).

A chat line can name a person the bundle's user lists never mention ("Wen is on the db"). The
redactor replaces such names with "a teammate" when they are on this list. Sources, both free
to ship:

- The 1990 US Census given-name lists (public domain, a work of the US government), as
  packaged in `names` 0.3.0 (MIT).
- The given-name lists of Faker 40.63.0's person providers (MIT), Latin-script names only,
  across its locales (Europe, the Americas, Africa, South and East Asia romanised). Its plain
  "en" list carries words ("General", "Less"): from it, only names that Webster's Second (web2,
  public domain, read through `english-words` 2.0.2, MIT, at build time only) does not list
  in lower case.

Left out: names of fewer than three letters, and names that are English words people write in
lower case (the lower-case words of the labelled sentences, training/sentences and
training/candidates, and the kept list in `training/name_words.txt`): "Will", "May", "Mark", "Page" stay words.

Reproducible: the same three packages give the same file. Needs `pip install faker==40.63.0
names==0.3.0 english-words==2.0.2` (the make target installs them into the venv; the runtime
never imports them).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import unicodedata
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "retro" / "safety" / "data" / "first_names.v1.txt"
WORDS = ROOT / "training" / "name_words.txt"
CORPUS = ROOT / "training" / "sentences"
CANDIDATES = ROOT / "training" / "candidates"
# Faker's plain "en" list is every name ever given in US birth records, words included
# ("General", "Less", "Hence"); the census lists cover US names with fewer oddities.
SKIP_LOCALES = frozenset({"en"})
ATTRS = (
    "first_names",
    "first_names_male",
    "first_names_female",
    "first_names_nonbinary",
    "first_romanized_names",
)


def latin(name: str) -> bool:
    return name.isalpha() and all("LATIN" in unicodedata.name(c, "") for c in name)


def census() -> set[str]:
    out: set[str] = set()
    for fname in ("dist.male.first", "dist.female.first"):
        text = (resources.files("names") / fname).read_text("utf-8")
        out.update(line.split()[0].title() for line in text.splitlines() if line.strip())
    return out


def faker_names(locales: frozenset[str] | None = None) -> set[str]:
    """Faker's given names: of every locale but SKIP_LOCALES, or of `locales` only."""
    import faker.providers.person as person

    out: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        if module.name in SKIP_LOCALES if locales is None else module.name not in locales:
            continue
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attr in ATTRS:
            value = provider.__dict__.get(attr)
            if isinstance(value, dict):
                value = list(value)
            if isinstance(value, list | tuple):
                out.update(v for v in value if isinstance(v, str))
    return out


def english_words() -> set[str]:
    words = {w.strip().casefold() for w in WORDS.read_text("utf-8").splitlines()}
    words = {w for w in words if w and not w.startswith("#")}
    token = re.compile(r"(?<![\w@.-])[a-z]{3,}(?![\w@-])")
    for path in sorted([*CORPUS.glob("*.jsonl"), *CANDIDATES.glob("*.jsonl")]):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                words.update(token.findall(json.loads(line)["text"]))
    return words


def dictionary_words() -> set[str]:
    """Words Webster's Second (web2, public domain; via `english-words` 2.0.2, MIT) lists in
    lower case: common nouns, adjectives, verbs. Its proper nouns are capitalised."""
    from english_words import get_english_words_set

    return {w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w.islower()}


def build() -> list[str]:
    words = english_words()
    # Faker's plain "en" list, minus every word the dictionary lists in lower case ("General",
    # "Less" and "Hence" go; "Ignatius" and "Casimir" stay)
    common = dictionary_words()
    us = {n for n in faker_names(frozenset(SKIP_LOCALES)) if n.casefold() not in common}
    names = {n for n in census() | faker_names() | us if latin(n) and len(n) >= 3}
    one: dict[str, str] = {}  # one spelling per name: the plain capitalised one when listed
    for n in sorted(names, key=lambda n: (n != n.capitalize(), n)):
        one.setdefault(n.casefold(), n)
    return [one[k] for k in sorted(one) if k not in words]


def main() -> int:
    names = build()
    header = (
        "# Given names retro removes from drafts when no user list names the person.\n"
        "# Built by `make names` (training/build_names.py) from the 1990 US Census given-name lists\n"
        "# (public domain; via the `names` 0.3.0 package, MIT) and Faker 40.63.0's person\n"
        "# providers (MIT, Copyright (c) 2012 Daniele Faraglia; first_names.LICENSE), minus\n"
        "# English words (its plain en list also minus Webster's Second's lower-case words).\n"
    )
    OUT.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    print(f"names: wrote {OUT.relative_to(ROOT)} ({len(names)} names)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
