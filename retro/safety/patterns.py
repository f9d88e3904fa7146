"""What retro.redact looks for: one rule per kind of secret or personal data.

Each rule is a regex compiled once at import, plus lowercase "needles" (substrings that must be
present for the rule to run) and an optional prefilter regex, so that an ordinary chat line
costs a few substring tests. retro.redact applies the rules; docs/redaction.md lists them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MARKER_PREFIX = "[REDACTED:"
MARKER_RE = re.compile(r"\[REDACTED:[a-z0-9_]+\]")

# A check gets the candidate secret and returns the (start, end) part of it to redact (e.g.
# without a number glued onto a card number), or None to keep the text as it is.
Check = Callable[[str], tuple[int, int] | None]


def marker(kind: str) -> str:
    """The replacement text for one finding of kind."""
    return f"{MARKER_PREFIX}{kind}]"


# --- validators ------------------------------------------------------------------------------


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """Issuer prefix and length are plausible; rules out epoch-millisecond timestamps and ids."""
    n, p2, p3, p4 = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p2 in (36, 38, 39) or 300 <= p3 <= 305:
        return 14 <= n <= 19
    # Discover, UnionPay, JCB; Maestro's wide 5x/6x ranges are left out on purpose: they made
    # long numeric ids (URL fragments, trace ids) look like cards
    if p4 == 6011 or p2 in (62, 65) or 644 <= p3 <= 649 or 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    return False


_GROUP = re.compile(r"[\d()]+")
_NON_DIGIT = re.compile(r"\D")


def _card_check(candidate: str) -> tuple[int, int] | None:
    """The longest run of whole digit groups that is a plausible card number."""
    groups = [m.span() for m in _GROUP.finditer(candidate)]
    for i, (start, _) in enumerate(groups):
        for _, end in reversed(groups[i:]):
            digits = _NON_DIGIT.sub("", candidate[start:end])
            if len(digits) < 13:
                break
            if len(digits) <= 19 and _card_brand_ok(digits) and _luhn_ok(digits):
                return start, end
    return None


def _intl_phone_check(candidate: str) -> tuple[int, int] | None:
    """Whole leading digit groups with an E.164 length (exactly 11 digits for +1)."""
    for m in reversed(list(_GROUP.finditer(candidate))):
        digits = _NON_DIGIT.sub("", candidate[: m.end()])
        plausible = len(digits) == 11 if digits.startswith("1") else 8 <= len(digits) <= 15
        if plausible:
            return 0, m.end()
    return None


def _uk_phone_check(candidate: str) -> tuple[int, int] | None:
    ok = 10 <= sum(c.isdigit() for c in candidate) <= 11
    return (0, len(candidate)) if ok else None


_SECRETISH = re.compile(r"[A-Za-z0-9+/=_\-.~]{16,}")


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def high_entropy(value: str) -> bool:
    """Looks like a random credential: 16+ token chars, two character classes, ≥3 bits/char."""
    if not _SECRETISH.fullmatch(value):
        return False
    classes = (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
    )
    return classes >= 2 and _entropy(value) >= 3.0


def _entropy_check(candidate: str) -> tuple[int, int] | None:
    return (0, len(candidate)) if high_entropy(candidate) else None


# --- simple rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One regex; the named group `secret` (or the whole match) becomes the marker."""

    kind: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...] = ()
    check: Check | None = None
    guard_markers: bool = False  # user patterns may match inside our own markers
    prefilter: re.Pattern[str] | None = None  # a cheap scan that must hit before the rule runs

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Redact every finding in text."""
        spans = _marker_spans(text) if self.guard_markers else ()
        found = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal found
            has_group = "secret" in self.pattern.groupindex and m.group("secret") is not None
            start, end = m.span("secret") if has_group else m.span()
            secret = m.string[start:end]
            if not secret or secret.startswith(MARKER_PREFIX) or _overlaps(spans, start, end):
                return m.group(0)
            if self.check is not None:
                part = self.check(secret)
                if part is None:
                    return m.group(0)
                start, end = start + part[0], start + part[1]
            found += 1
            return m.string[m.start() : start] + marker(self.kind) + m.string[end : m.end()]

        out = self.pattern.sub(repl, text)
        if found:
            counts[self.kind] += found
        return out


def _marker_spans(text: str) -> tuple[tuple[int, int], ...]:
    if MARKER_PREFIX not in text:
        return ()
    return tuple(m.span() for m in MARKER_RE.finditer(text))


def _overlaps(spans: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def _rule(kind: str, pattern: str, needles: tuple[str, ...] = (), **kw: Any) -> Rule:
    return Rule(kind, re.compile(pattern), needles, **kw)


_TOK = r"(?<![\w-])"  # a token starts at a word boundary that is not inside a hyphenated word

_GCP_SERVICE_ACCOUNT = _rule(
    "gcp_key",
    r"""(?P<q>\\?["'])private_key(?P=q)\s*:\s*\\?["'](?P<secret>-----BEGIN(?:[^"'\\]|\\.)*)""",
    ("private_key",),
)
_PEM = _rule(
    "private_key",
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:(?:(?!-----BEGIN)[\s\S]){0,16384}?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
    # no END line: a pasted key cut short; take the base64 lines and headers that follow
    r"|(?:(?:\\[rn]|\s)*+(?:[A-Za-z0-9+/=]{16,}|(?:Proc-Type|DEK-Info|Comment):[^\n\\]*))*)",
    ("-----begin",),
)
_URL_PASSWORD = _rule(
    "url_password",
    r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/@?#\[\]\"'<>|]*:"
    r"(?P<secret>[^\s/?#\"'<>|]+)@(?=[A-Za-z0-9\[])",
    ("://",),
)
_SLACK_WEBHOOK = _rule(
    "slack_token",
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>T[A-Z0-9]{6,}(?:/[A-Za-z0-9_-]+){2,3})",
    ("hooks.slack.com",),
)

# (kind, regex, needles) for credentials with a recognisable vendor prefix.
_PREFIXED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("slack_token", _TOK + r"xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]{10,}", ("xox",)),
    ("slack_token", _TOK + r"xapp-\d-[A-Za-z0-9-]{10,}", ("xapp-",)),
    (
        "aws_key",
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        ("akia", "asia", "abia", "acca"),
    ),
    ("gcp_key", _TOK + r"AIza[0-9A-Za-z_-]{35}(?![\w-])", ("aiza",)),
    ("gcp_key", _TOK + r"GOCSPX-[0-9A-Za-z_-]{20,}", ("gocspx-",)),
    ("gcp_key", r"(?<![\w.-])ya29\.[0-9A-Za-z_-]{20,}", ("ya29.",)),
    (
        "github_token",
        _TOK + r"gh[pousr]_[A-Za-z0-9]{20,255}(?![A-Za-z0-9])",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    ("github_token", _TOK + r"github_pat_[A-Za-z0-9_]{20,255}", ("github_pat_",)),
    ("anthropic_key", _TOK + r"sk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",)),
    (
        "openai_key",
        # project/service keys have a word after sk-; legacy keys are one long alphanumeric run,
        # which keeps hyphenated names such as sk-payments-api-7d9f8 out
        _TOK + r"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,}(?![\w-]))",
        ("sk-",),
    ),
    (
        "stripe_key",
        _TOK + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
        ("_live_", "_test_"),
    ),
    ("stripe_key", _TOK + r"whsec_[A-Za-z0-9+/=]{20,}", ("whsec_",)),
    ("twilio_key", _TOK + r"SK[0-9a-fA-F]{32}(?![\w-])", ("sk",)),
    ("sendgrid_key", _TOK + r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", ("sg.",)),
    ("npm_token", _TOK + r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", ("npm_",)),
    (
        "gitlab_token",
        _TOK + r"gl(?:pat|ptt|dt|rt|cbt|soat|ft|imt|oas)-[A-Za-z0-9_-]{20,}",
        ("glpat-", "glptt-", "gldt-", "glrt-", "glcbt-", "glsoat-", "glft-", "glimt-", "gloas-"),
    ),
    ("atlassian_token", _TOK + r"AT[AC]TT3[A-Za-z0-9_=-]{30,}", ("atatt3", "atctt3")),
    ("grafana_token", _TOK + r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?![\w-])", ("glsa_",)),
    ("grafana_token", _TOK + r"glc_[A-Za-z0-9+/]{32,}={0,2}", ("glc_",)),
    ("grafana_token", _TOK + r"eyJrIjoi[A-Za-z0-9+/]{20,}={0,2}", ("eyjrijoi",)),
    ("vault_token", r"(?<![\w.-])hv[sbr]\.[A-Za-z0-9_-]{24,}", ("hvs.", "hvb.", "hvr.")),
    ("huggingface_token", _TOK + r"hf_[A-Za-z0-9]{30,}(?![A-Za-z0-9])", ("hf_",)),
    ("digitalocean_token", _TOK + r"do[por]_v1_[a-f0-9]{64}", ("_v1_",)),
    ("shopify_token", _TOK + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", ("shp",)),
    ("pypi_token", _TOK + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}", ("pypi-",)),
    ("jwt", _TOK + r"eyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){2,4}", ("eyj",)),
)

_COOKIE = _rule(
    "authorization",
    # every cookie can be a session, so the whole header value goes (it always has name=value)
    r"(?i)(?<![\w-])(?:set-)?cookie[ \t]*:[ \t]*(?P<secret>[^\n\"'\\]+)",
    ("cookie",),
    check=lambda value: (0, len(value.rstrip())) if "=" in value else None,
)
_CURL_USER = _rule(
    "authorization",
    # only after curl: `docker run -u 1000:1000` is a uid, not a password
    r"\bcurl\b[^\n]{0,400}?(?<![\w-])(?:-u|--user)[ =]?[\"']?[^\s:\"'/]{0,64}:"
    r"(?P<secret>[^\s\"']{1,256})",
    ("curl",),
)
_PROSE_SECRET = _rule(
    "generic_secret",
    r"(?i:(?<![\w-])(?:secret|token|password|passwd|credential|api[ _-]?key|key)s?"
    r"[ \t]+(?:is|was|->|→)[ \t]+)(?P<secret>[A-Za-z0-9+/=_\-.~]{16,})",
    ("secret", "token", "pass", "credential", "key"),
    check=_entropy_check,
)
EMAIL = _rule(
    "email",
    # not after "//": ssh://git@host and similar are URLs, not addresses
    r"(?<![A-Za-z0-9._%+-])(?<!//)(?!git@)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])",
    ("@",),
    prefilter=re.compile(r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\."),  # not for <@U024BE7LH> mentions
)
# A person's name written right before their email address, as in pasted tickets and mail:
# "Penelope Hargreaves (p@x.example)", "From: Ingrid Solberg <i@x.example>", "Sam Lee here (s@…)",
# and mail signatures with a job title between: "Priya Natarajan, Operations Manager, p@…".
PERSON_NEAR_EMAIL = _rule(
    "person_name",
    r"(?<![\w.-])(?P<secret>[A-Z][a-z'’-]+(?:[ \t]+(?:[A-Z][a-z'’-]+|[a-z]{2,3}))?[ \t]+[A-Z][a-z'’-]+)"
    r"(?:[ \t]+here)?(?:[ \t]*[,|–—][ \t]*[A-Z][A-Za-z&'’ .-]{1,40}?)?[ \t]*[,|–—]?"
    r"[ \t]*[(<\[]?[ \t]*(?=[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.|\[REDACTED:email\])",
    ("@", "REDACTED:email"),
)
# Phone numbers and cards are runs of 10+ digits and separators; most chat lines have none.
_NUMBERISH = re.compile(r"\d[\d ().-]{8,}\d")
_CARD = _rule(
    "credit_card",
    # a whole run of digit groups; the check finds the card inside it
    r"(?<![\w.+/#-])(?P<secret>\d(?:[ -]?\d){12,40})(?![\w-]|[.,]\d)",
    check=_card_check,
    prefilter=_NUMBERISH,
)
_PHONE_INTL = _rule(
    "phone",
    r"(?<![\w+])(?P<secret>\+[1-9]\d{0,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d++){1,6})"
    r"(?![\w/:@]|[.-]\d)",
    ("+",),
    check=_intl_phone_check,
    prefilter=_NUMBERISH,
)
_PHONE_NANP = _rule(
    "phone",
    # (415) 555-0100, 415-555-0100, 415.555.0100, 1-800-555-0199; one separator style per
    # number and valid area/exchange codes, so "2024-05-01" or "200 300 1200" never match
    r"(?<![\w.+/:#-])(?:1[ .-])?(?:\([2-9]\d\d\)[ ]?[2-9]\d\d[ -]"
    r"|[2-9]\d\d(?P<s1>[.-])[2-9]\d\d(?P=s1))\d{4}(?![\w/:@]|[.-]\d)",
    prefilter=_NUMBERISH,
)
_PHONE_UK = _rule(
    "phone",
    r"(?<![\w.+/:#-])(?:0\d{2,4}|\(0\d{2,4}\))[ -]\d{3,4}[ -]?\d{3,4}(?![\w/:@]|[.-]\d)",
    check=_uk_phone_check,
    prefilter=_NUMBERISH,
)


# --- labelled credentials: key/value pairs and headers ---------------------------------------

_LABELLED = re.compile(
    r"""
    (?P<lq>\\?["'])?
    (?<![\w.-])(?P<label>[A-Za-z][\w.-]{0,63}(?:[ ][A-Za-z][\w.-]{0,63})?)
    (?(lq)(?P=lq))
    [ \t]*(?P<sep>=>|:=|[:=])[ \t]*
    (?=
      (?P<q>\\?["'`])?
      (?P<scheme>(?:bearer|basic|token|geniekey|bot|ssws|apikey|oauth|jwt|splunk)[ \t]+
         (?:token=["']?)?)?
      (?(q)(?P<qv>(?:(?!(?P=q))[^\n]){1,2048}?)(?P=q)
          |(?P<uv>\[REDACTED:[a-z0-9_]+\]|[^\s"'`,;&<>()\[\]{}\\=:|]{1,2048}={0,2}))
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_LABEL_NEEDLES = ("pass", "pwd", "secret", "token", "key", "auth", "credential")
_LABEL_PREFILTER = re.compile(
    r"(?i)(?:pass|pwd|secret|token|key|auth|credential)[\w.-]*(?:\\?[\"'])?[ \t]*[:=]"
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[-_. ]+")
_EXPLICIT = {"password", "passwd", "pwd", "passphrase", "passcode", "secret", "token", "apikey"}
_EXPLICIT |= {"authorization", "cookie"}  # headers, e.g. Proxy-Authorization, Set-Cookie
_EXPLICIT_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey")  # PGPASSWORD
_EXPLICIT_KEY = {"api", "app", "application", "secret"}  # api_key, X-Api-Key, DD_APP_KEY …
_GENERIC_WORDS = {"secret", "secrets", "token", "password", "passwd", "pwd", "credential"}
_GENERIC_WORDS |= {"credentials", "apikey"}
_KEY_QUALIFIERS = _words(
    "access private signing sign encryption encrypt enc auth master client service license "
    "licence integration routing webhook deploy ssh session hmac jwt shared admin root "
    "account storage subscription consumer bot write read ingest"
)
# Labels that name something about a secret rather than the secret: secret_name, token_count …
_NOT_SECRET_TAILS = _words(
    "id ids name names arn ref path file filename url uri version count type ttl expiry "
    "expires expiration at in age length len size hash fingerprint kind field header scope "
    "scopes usage used limit limits prefix suffix policy rotation rotated env source provider "
    "format store manager mount location dir enabled required label algorithm alg index "
    "status tokens"
)
_PLACEHOLDER = re.compile(
    r"(?i)(?:null|none|nil|undefined|true|false|redacted|filtered|hidden|masked|n/a|"
    r"[*x•.]{3,}|\$\{?\w*\}?|%\w|\{\{.*|<[^>]*>|\[(?:redacted|filtered|hidden)\])"
)


def label_kind(label: str) -> str | None:
    """The kind a value under this key/label is redacted as, or None if it is not a secret."""
    words = [w for w in _WORD_SPLIT.split(_CAMEL.sub("_", label).lower()) if w]
    if words[:1] == ["x"]:
        words = words[1:]
    if not words or words[-1] in _NOT_SECRET_TAILS:
        return None
    joined, last = " ".join(words), words[-1]
    prev = words[-2] if len(words) > 1 else ""
    if "aws" in words and ("secret" in words or "session" in words):
        return "aws_key"
    if joined.endswith("secret access key"):  # SecretAccessKey in STS/IAM JSON
        return "aws_key"
    if (
        last in _EXPLICIT
        or last.endswith(_EXPLICIT_SUFFIXES)
        or (last == "key" and prev in _EXPLICIT_KEY)
    ):
        return "authorization"
    if _GENERIC_WORDS.intersection(words) or (last == "key" and prev in _KEY_QUALIFIERS):
        return "generic_secret"
    return None


def is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.fullmatch(value.strip())) or MARKER_RE.fullmatch(value) is not None


def is_directory(label: str, value: str) -> bool:
    """PWD=/srv/app is the shell's working directory, not a password."""
    return label.lower().endswith("pwd") and value.startswith(("/", "~"))


def _prose_value_ok(value: str) -> bool:
    """For `label: value` in chat, skip plain words ("token: rotated") but not credentials."""
    return (
        len(value) >= 12
        or any(c.isdigit() for c in value)
        or not value.isalpha()
        or not (value.islower() or value.isupper() or value.istitle())
    )


class LabelledRule:
    """Values after credential labels: headers, key=value, `"key": "value"`, YAML, querystrings."""

    kind = "authorization"
    needles = _LABEL_NEEDLES
    prefilter = _LABEL_PREFILTER

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Redact labelled values; matches are only label+separator, so labels never hide labels."""
        out: list[str] = []
        pos = 0
        for m in _LABELLED.finditer(text):
            group = "qv" if m.group("q") else "uv"
            start, end = m.span(group)
            if start < pos:
                continue
            kind = self._judge(m, m.group(group))
            if kind is None:
                continue
            if group == "uv":
                end = start + len(m.group(group).rstrip(".!?"))
            out += (text[pos:start], marker(kind))
            pos = end
            counts[kind] += 1
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    @staticmethod
    def _judge(m: re.Match[str], value: str) -> str | None:
        label = m.group("label")
        kind = label_kind(label)
        if kind is None or is_placeholder(value) or (not m.group("q") and not value.rstrip(".!?")):
            return None
        if is_directory(label, value):
            return None
        if kind == "generic_secret":
            return kind if high_entropy(value) else None
        prose = m.group("sep") == ":" and not m.group("lq") and not m.group("q")
        if prose and not _prose_value_ok(value.rstrip(".!?")):
            return None
        return kind


# --- the built-in rule order -----------------------------------------------------------------


BUILTIN_HEAD: tuple[Rule | LabelledRule, ...] = (
    _GCP_SERVICE_ACCOUNT,
    _PEM,
    _URL_PASSWORD,
    _SLACK_WEBHOOK,
    *(_rule(kind, rx, needles) for kind, rx, needles in _PREFIXED),
    _COOKIE,
    _CURL_USER,
    LabelledRule(),
    _PROSE_SECRET,
)
BUILTIN_TAIL: tuple[Rule, ...] = (_CARD, _PHONE_INTL, _PHONE_NANP, _PHONE_UK)
SCHEME = re.compile(
    r"(?i)(?:bearer|basic|token|geniekey|bot|ssws|apikey|oauth|jwt|splunk)[ \t]+(?:token=)?"
)
