"""What retro.safety.redact looks for in secrets: vendor tokens, and credentials found by their
label, header, flag or sentence ("password=…", "X-Edge-Key: …", "--token …", "the password is
…"), whatever the vendor. Personal data is in retro.safety.personal.

Each rule is a regex compiled once at import, plus a cheap gate: lowercase "needles"
(substrings that must be present for the rule to run), whole `words`, or a prefilter regex, so
that an ordinary chat line costs a few substring tests. retro.safety.redact applies the rules;
docs/redaction.md lists them.
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


@dataclass(frozen=True, slots=True)
class Lowered:
    """A prefilter matched against the lowercased line: case-insensitive regexes are slow."""

    pattern: re.Pattern[str]

    def search(self, low: str) -> re.Match[str] | None:
        return self.pattern.search(low)


Prefilter = re.Pattern[str] | Lowered


# --- validators ------------------------------------------------------------------------------


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


_CORE = re.compile(r"[A-Za-z0-9]{12,}")


def _random_core(value: str) -> tuple[int, int] | None:
    """A labelled value that is a credential: random-looking as a whole (trailing punctuation
    aside) and holding a run of 12+ letters and digits with both in it, which a host or
    resource name ("acme-prod-eu-west-1-blue") does not."""
    bare = value.rstrip(".-~")
    if not high_entropy(bare):
        return None
    for run in _CORE.findall(bare):
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return (0, len(bare))
    return None


def _password_part(value: str) -> tuple[int, int] | None:
    """The password in `the password is <value>`: a digit, a symbol or mixed case; not a word."""
    bare = value.rstrip(".,;:?)")
    symbols = [c for c in bare if not c.isalnum() and c not in "-'’"]
    if len(bare) < 4 or "://" in bare or bare.startswith(("$", "/", "~", "{", "%", "<")):
        return None
    if bare.isdigit():
        return (0, len(bare)) if len(bare) >= 6 else None  # "is 2048 bits" is a size
    mixed = not (bare.islower() or bare.isupper() or bare.istitle())
    looks = any(c.isdigit() for c in bare) or bool(symbols) or mixed
    return (0, len(bare)) if looks and not MARKER_RE.search(bare) else None


# --- simple rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One regex; the named group `secret` (or the whole match) becomes the marker."""

    kind: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...] = ()
    check: Check | None = None
    guard_markers: bool = False  # user patterns may match inside our own markers
    prefilter: Prefilter | None = None  # a cheap scan that must hit before the rule runs
    words: frozenset[str] = frozenset()  # instead of needles: whole words of the line

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
    r"|(?:(?:\\[rn]|\s)*+(?:[A-Za-z0-9+/=]{16,}[^\s\"'\\]*|(?:Proc-Type|DEK-Info|Comment):[^\n\\]*))*)",
    ("-----begin",),
)
_URL_PASSWORD = _rule(
    "url_password",
    r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/@?#\[\]\"'<>|]*:"
    # a "#" people paste unescaped ("postgres://app:Xk7#pR2v@db:5432") is the password's
    r"(?P<secret>[^\s/?\"'<>|]+)@(?=[A-Za-z0-9\[])",
    ("://",),
)
_SLACK_WEBHOOK = _rule(
    "slack_token",
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>T[A-Z0-9]{2,}(?:/[A-Za-z0-9_-]+){2,3})",
    ("hooks.slack.com",),
)

# Webhook URLs whose path is the credential: anyone holding the URL can post.
_WEBHOOKS = (
    _rule(
        "webhook_token",
        r"discord(?:app)?\.com/api/webhooks/\d+/(?P<secret>[A-Za-z0-9_-]{20,})",
        ("/api/webhooks/",),
    ),
    _rule(
        "webhook_token",
        r"\.webhook\.office\.com/webhookb2/(?P<secret>[^\s\"'<>|]+)",
        ("webhook.office.com",),
    ),
    _rule(
        "webhook_token",
        r"hooks\.zapier\.com/hooks/catch/(?P<secret>\d+/[A-Za-z0-9]+)",
        ("hooks.zapier.com",),
    ),
    _rule(
        "webhook_token",
        r"events\.pagerduty\.com/integration/(?P<secret>[0-9a-f]{32})",
        ("events.pagerduty.com",),
    ),
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
    # 32 characters and an 8-hex checksum; a few more or fewer are still a Grafana token
    ("grafana_token", _TOK + r"glsa_[A-Za-z0-9]{24,48}_[A-Fa-f0-9]{8}(?![\w-])", ("glsa_",)),
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
    prefilter=Lowered(
        re.compile(r"(?:secret|token|password|passwd|credential|key)s?[ \t]+(?:is|was|->|→)")
    ),
)
# "log in with token kd-prod-7f3b9c2e41aa8d06e5", "api token for the provider: shl_live_…": a
# random-looking value a few words after the word that names it, with no "is" between
_NEAR_LABEL_SECRET = _rule(
    "generic_secret",
    r"(?i:(?<![\w-])(?:token|secret|password|passwd|passphrase|credential|api[ _-]?key)s?\b)"
    r"[^\n`\"']{0,40}?(?<![\w+/=\-.~])(?P<secret>[A-Za-z0-9+/=_\-.~]{16,})",
    ("token", "secret", "pass", "credential", "key"),
    check=_random_core,
)
# "shl_live_7Qm2…", "xyz_test_…": the live/test key shape many vendors copied from Stripe's
_LIVE_KEY = _rule(
    "generic_secret",
    # (a publishable key, pk_live_…, is public)
    _TOK + r"(?!pk_)[A-Za-z]{2,10}_(?:live|test|prod)_(?P<secret>[A-Za-z0-9]{16,})(?![A-Za-z0-9])",
    ("_live_", "_test_", "_prod_"),
    check=_entropy_check,
)
_PASSWORD_WORD = r"(?:password|passwd|passphrase|passcode|pwd|pw)"
_PROSE_PASSWORD = _rule(
    "authorization",
    # "the password is Tr0ub4dor&3", "password for svc-x was Xk9#mQ2v", "changed the admin
    # password to Gr33n-Apple!"; the check keeps "the password is wrong" and "... in 1Password"
    rf"(?i:(?<![\w-]){_PASSWORD_WORD}(?:[ \t]+(?:for|on|of)[ \t]+(?:the[ \t]+)?\S{{1,64}})?[ \t]+"
    r"(?:(?:is|was)(?:[ \t]+(?:now|still|just))?|(?:is[ \t]+|was[ \t]+|has[ \t]+been[ \t]+)?"
    r"(?:set|changed|reset|updated)[ \t]+to|->|→)"
    r"|(?:set|changed?|reset|updated?|rotated?)[ \t]+(?:\S+[ \t]+){0,2}?"
    rf"{_PASSWORD_WORD}[ \t]+to)[ \t]+[\"'`]?(?!{_PASSWORD_WORD}\b)(?P<secret>[^\s\"'`<>]{{4,128}})",
    ("pass", "pw"),
    check=lambda value: _password_part(value),
    prefilter=Lowered(re.compile(r"(?:password|passwd|passphrase|passcode|pwd|pw)[ \t]+\S")),
)
_PASSWORD_SYMBOLS = frozenset("#!$%^&*?@")
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_EMAIL_SHAPE = re.compile(r"\w@[\w-]+\.\w")
_REFERENCE = re.compile(r"(?P<name>[\w.-]+)[#!@]\d+")  # repo#1434, project!12 (a merge request)


def _mixed_with_digit(name: str) -> bool:
    """Upper case, lower case and a digit: a password's head, not a repository's name."""
    return (
        any(c.isupper() for c in name)
        and any(c.islower() for c in name)
        and any(c.isdigit() for c in name)
    )


def _password_shaped(value: str) -> tuple[int, int] | None:
    """A generated password with no label around it ("creds: admin / Qz4!kLm9"): lower case,
    upper case, a digit and a symbol in one 8-64 character token. Paths, key=value pairs, URL
    escapes, emails and template variables are not passwords."""
    bare = value.rstrip(".,;:)")
    if not 8 <= len(bare) <= 64 or bare[0] in "$%{<" or "://" in bare:
        return None
    if any(c in bare for c in "/=:") or _URL_ESCAPE.search(bare) or _EMAIL_SHAPE.search(bare):
        return None
    if (ref := _REFERENCE.fullmatch(bare)) is not None and not _mixed_with_digit(ref["name"]):
        return None  # "repo#1434", "project!12"; not "Blu3-Sparrow!92"
    if not (
        any(c.islower() for c in bare)
        and any(c.isupper() for c in bare)
        and any(c.isdigit() for c in bare)
        and any(c in _PASSWORD_SYMBOLS for c in bare.rstrip("!?"))  # not a sentence's "!"
    ):
        return None
    return None if MARKER_RE.search(bare) else (0, len(bare))


_SHAPED_PASSWORD = _rule(
    "authorization",
    r"(?:(?<=[\s\"'`(\[])|^)(?P<secret>[^\s\"'`<>()\[\]]{8,64})(?=$|[\s\"'`)\],;.])",
    check=_password_shaped,
    prefilter=re.compile(r"[#!$%^&*?@]"),
)
_CLI_PASSWORD = _rule(
    "authorization",
    # mysql -pSECRET (glued: `-p` alone prompts), sshpass -p X, redis-cli -a X, mongo -p X,
    # docker login -p X
    r"(?:\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlsh|mariadb|mariadb-dump"
    r"|mariadb-admin|mycli)\b[^\n|;&]{0,300}?[ \t]-p"
    r"|\bsshpass\b[^\n|;&]{0,100}?[ \t]-p[ \t]*"
    r"|\bredis-cli\b[^\n|;&]{0,300}?[ \t]-a[ \t]+"
    r"|\bmongo(?:sh|dump|restore)?\b[^\n|;&]{0,300}?[ \t]-p[ \t]+"
    r"|\b(?:docker|podman|helm)[ \t]+(?:registry[ \t]+)?login\b[^\n|;&]{0,200}?[ \t]-p[ \t]+"
    # any command that names a user (-U/-u/--user) and then a password flag: ipmitool, psql
    # wrappers, vendor CLIs ("-U admin -P 'x'", "--user ops --password x")
    r"|[ \t](?:-[uU]|--user(?:name)?)[ \t=]+\S+[^\n|;&]{0,120}?[ \t](?:-P|--pass(?:word)?)[ \t=]+(?!\d+\b))"
    r"(?P<secret>'[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)",
    (" -p", " -a"),
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
          |(?P<uv>\[REDACTED:[a-z0-9_]+\]
               |(?:[^\s"'`,;&<>()\[\]{}\\=:|]|[&,;:=](?![\s"'`&,;]|$|[\w.\[\]-]*=)){1,2048}
                ={0,2}))
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_LABEL_NEEDLES = ("pass", "pw", "secret", "token", "key", "auth", "credential", "sig")
_LABEL_PREFILTER = Lowered(
    re.compile(r"(?:pass|pw|secret|token|key|auth|credential|sig)[\w.-]*(?:\\?[\"'])?[ \t]*[:=]")
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def word_gate(text: str) -> frozenset[str]:
    """Lowercase words as `str.split` leaves them in a line: plural, and with the punctuation
    that follows a label or a list item ("customer,", "name:", "regards,")."""
    return frozenset(
        f"{word}{plural}{end}"
        for word in text.split()
        for plural in ("", "s")
        for end in ("", ",", ":", ";", ".", ")", "*", ":*", ":**")
    )


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


# Keys that name an id or a hash, not a credential: dedup_key, Idempotency-Key, cache_key,
# "public_key", Sec-WebSocket-Key (a nonce). A key label outside both lists is a credential only
# when its value looks random and is not a hex hash or UUID (relay_key, tls.key, X-Edge-Key).
_ID_KEYS = _words(
    "idempotency cache dedup dedupe incident group sort partition primary foreign public object "
    "issue project event message row hash shard bucket index lookup unique composite natural "
    "websocket socket request trace correlation span alert map i18n locale translation s3 kid"
)
_ALWAYS_WORDS = {"auth", "signature", "sig", "pw"}  # X-Custom-Auth, X-Hub-Signature-256, sig=
LabelTest = tuple[str, str]  # (kind, "any" | "entropy" | "random")


def label_test(label: str) -> LabelTest | None:
    """The kind a value under this label is redacted as and what the value must look like."""
    words = [w for w in _WORD_SPLIT.split(_CAMEL.sub("_", label).lower()) if w]
    if words[:1] == ["x"]:
        words = words[1:]
    while words and words[-1].isdigit():  # X-Hub-Signature-256
        words.pop()
    if not words or words[-1] in _NOT_SECRET_TAILS:
        return None
    joined, last = " ".join(words), words[-1]
    prev = words[-2] if len(words) > 1 else ""
    if "aws" in words and ("secret" in words or "session" in words):
        return "aws_key", "any"
    if joined.endswith("secret access key"):  # SecretAccessKey in STS/IAM JSON
        return "aws_key", "any"
    if (
        last in _EXPLICIT
        or last in _ALWAYS_WORDS
        or last.endswith(_EXPLICIT_SUFFIXES)
        or (last == "key" and prev in _EXPLICIT_KEY)
        or (last == "pass" and prev != "")  # DB_PASS, smtpPass; a lone "pass" is a test result
    ):
        return "authorization", "any"
    if _GENERIC_WORDS.intersection(words) or (last == "key" and prev in _KEY_QUALIFIERS):
        return "generic_secret", "entropy"
    if last == "key" and prev and prev not in _ID_KEYS:
        # a header (X-Edge-Key) names a credential; a field (relay_key) may name an id
        return ("authorization", "any") if "-" in label else ("generic_secret", "random")
    return None


def label_kind(label: str) -> str | None:
    """The kind a value under this key/label is redacted as, or None if it is not a secret."""
    test = label_test(label)
    return test[0] if test else None


_HASH_OR_UUID = re.compile(
    r"(?i)[0-9a-f]{7,64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def value_passes(test: str, value: str) -> bool:
    """Whether a labelled value looks like what its label's test asks for."""
    if test == "any":
        return True
    if not high_entropy(value):
        return False
    return test == "entropy" or _HASH_OR_UUID.fullmatch(value) is None


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


_NEXT_LABEL = re.compile(r"[A-Za-z][\w-]*:")
_HEADER_VALUE = re.compile(r"(?:(?!\[REDACTED:)[^\s\"'`<>\\])+")


def _flag_value_ok(value: str) -> bool:
    """`--flag value` (no `=`): a word follows flags too, so ask for a credential's look."""
    return _prose_value_ok(value) and (len(value) >= 6 or any(c.isdigit() for c in value))


class LabelledRule:
    """Values after credential labels: headers, key=value, `"key": "value"`, YAML, querystrings."""

    kind = "authorization"
    needles = _LABEL_NEEDLES
    prefilter = _LABEL_PREFILTER
    words: frozenset[str] = frozenset()

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Redact labelled values; matches are only label+separator, so labels never hide labels."""
        out: list[str] = []
        pos = 0
        for m in _LABELLED.finditer(text):
            group = "qv" if m.group("q") else "uv"
            start, end = m.span(group)
            if start < pos:
                continue
            value = m.group(group)
            header = "-" in m.group("label") and m.group("sep") == ":"
            if group == "uv" and header and not value.startswith(MARKER_PREFIX):
                # a header's value is one token, = , ; included (Stripe-Signature: t=1,v1=ab)
                header = _HEADER_VALUE.match(text, start)
                value = header.group(0) if header else value
            if group == "uv":
                end = start + len(value.rstrip(".?,;"))
                if header and _NEXT_LABEL.fullmatch(value):
                    continue  # "X-Key: Requester: Ana": the next label, not a value
            kind = self._judge(m, value)
            if kind is None:
                continue
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
        test = label_test(label)
        bare = value.rstrip(".?,;")
        if test is None or is_placeholder(bare) or (not m.group("q") and not bare):
            return None
        kind, need = test
        if is_directory(label, value) or not value_passes(need, value):
            return None
        prose = m.group("sep") == ":" and not m.group("lq") and not m.group("q")
        if need == "any" and prose and not _prose_value_ok(bare):
            return None
        return kind


class FlagRule:
    """Command-line flags: `--token X`, `--api-key=X`, `--password 'X'` (label rules apply)."""

    kind = "authorization"
    words: frozenset[str] = frozenset()
    needles = ("--", "config set", "configure set")
    prefilter = Lowered(
        re.compile(
            r"(?:--|config(?:ure)? set[ \t]+)[\w.-]*(?:pass|pw|secret|token|key|auth|cred|sig)"
        )
    )
    # `--label value` / `--label=value`, and `aws configure set label value` (label, then value)
    _FLAG = re.compile(
        r"(?:(?<![\w-])--|\bconfig(?:ure)?[ \t]+set[ \t]+)(?P<label>[A-Za-z][\w.-]{1,50})"
        r"(?P<sep>=|[ \t]+)"
        r"(?P<value>'[^'\n]*'|\"[^\"\n]*\"|(?:[^\s'\"`|;&<>()]|&(?![\s&]|$))+)"
    )

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Redact each credential flag's value, quotes included."""
        found: list[str] = []

        def repl(m: re.Match[str]) -> str:
            test = label_test(m.group("label"))
            value = m.group("value")
            bare = value.strip("'\"")
            if test is None or not bare or value.startswith("-") or bare.endswith((":", "=")):
                return m.group(0)  # no value, the next flag, or the next label ("--token X-Key:")
            if is_placeholder(bare):
                return m.group(0)
            if bare.startswith(("$", "/", "~", "./")) or not value_passes(test[1], bare):
                return m.group(0)  # $(cat file), a path, or not random enough for its label
            spaced = m.group("sep") != "="
            if test[1] == "any" and spaced and not _flag_value_ok(bare):
                return m.group(0)  # "--auth basic", "--token none", "--token Mrs. Okafor"
            found.append(test[0])
            return m.group(0)[: m.start("value") - m.start()] + marker(test[0])

        out = self._FLAG.sub(repl, text)
        for kind in found:
            counts[kind] += 1
        return out


# --- the built-in rule order -----------------------------------------------------------------


BUILTIN_HEAD: tuple[Rule | LabelledRule | FlagRule, ...] = (
    _GCP_SERVICE_ACCOUNT,
    _PEM,
    _URL_PASSWORD,
    _SLACK_WEBHOOK,
    *_WEBHOOKS,
    *(_rule(kind, rx, needles) for kind, rx, needles in _PREFIXED),
    _COOKIE,
    _CURL_USER,
    _CLI_PASSWORD,
    FlagRule(),
    LabelledRule(),
    _PROSE_SECRET,
    _PROSE_PASSWORD,
    _SHAPED_PASSWORD,
    _NEAR_LABEL_SECRET,
    _LIVE_KEY,
)
SCHEME = re.compile(
    r"(?i)(?:bearer|basic|token|geniekey|bot|ssws|apikey|oauth|jwt|splunk)[ \t]+(?:token=)?"
)
