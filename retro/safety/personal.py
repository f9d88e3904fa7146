"""What retro.safety.redact looks for in personal data: contact details, payment and national ids,
street addresses, and the names of people outside the incident (customers, callers).

Secrets are in retro.safety.patterns; this module builds on its Rule. Every numeric kind is
validated (Luhn for cards, mod 97 and the country's length for IBANs, the SSA's reserved ranges
for SSNs), and every name or address rule needs a context that people write around them ("customer
Jane Doe", "Mrs. Okafor", "742 Evergreen Terrace, Springfield"), so service names, team names and
capitalised words stay. docs/redaction.md lists the kinds and the decisions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from retro.safety.patterns import (
    FlagRule,
    LabelledRule,
    Prefilter,
    Rule,
    _rule,
    _words,
    marker,
    word_gate,
)

# --- cards and phone numbers -----------------------------------------------------------------


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


EMAIL = _rule(
    "email",
    # not after "//": ssh://git@host and similar are URLs, not addresses
    r"(?<![A-Za-z0-9._%+-])(?<!//)(?!git@)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])",
    ("@",),
    prefilter=re.compile(r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\."),  # not for <@U024BE7LH> mentions
)
# A login on a host ("ssh priya@bb1.dfw1", "dana@db-3.prod"): not an address, but it names a
# person just the same. Hosts with a digit or no letter-only top label are not mail domains.
USER_LOGIN = _rule(
    "user_login",
    r"(?<![A-Za-z0-9._%+-])(?<!//)(?!git@)[A-Za-z][A-Za-z0-9._-]{1,30}@"
    r"(?=[A-Za-z0-9.-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    r"(?![A-Za-z0-9-])",
    ("@",),
)
# A person's name written right before their email address, as in pasted tickets and mail:
# "Penelope Hargreaves (p@x.example)", "From: Ingrid Solberg <i@x.example>", "Sam Lee here (s@…)",
# and mail signatures with a job title between: "Priya Natarajan, Operations Manager, p@…".
PERSON_NEAR_EMAIL = _rule(
    "person_name",
    r"(?<![\w.-])(?P<secret>[A-Z][a-z'’-]+(?:[ \t]+(?:[A-Z][a-z'’-]+|[a-z]{2,3}))?[ \t]+[A-Z][a-z'’-]+)"
    r"(?:[ \t]+here)?(?:[ \t]*[,|–—][ \t]*[A-Z][A-Za-z&'’ .-]{1,40}?)?[ \t]*[,|–—]?"
    r"[ \t]*[(<\[]?[ \t]*(?=[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.|\[REDACTED:email\])",
    ("@", "redacted:email"),  # needles are tested against the lowercased text
    # "Operations Manager, ops@…" is a job title: every word must be a possible name
    check=lambda name: (0, len(name)) if _name_prefix(name, 2) == len(name) else None,
)
# Phone numbers, cards, SSNs are runs of 10+ digits and separators; most chat lines have none.
_NUMBERISH = re.compile(r"\d[\d ().-]{8,}\d")
_CARD = _rule(
    "credit_card",
    # a whole run of digit groups; the check finds the card inside it
    # after "/" only when grouped: a URL path holds ids like /4111111111111111, never spaces
    r"(?<![\w.+#-])(?:(?<!/)|(?=\d{4}[ -]\d))(?P<secret>\d(?:[ -]?\d){12,40})(?![\w-]|[.,]\d)",
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
_PHONE_NATIONAL = _rule(
    "phone",
    # trunk-0 national numbers: UK-style groups (also Australian and German forms), and French
    # pairs with one separator style ("01 42 68 53 00")
    r"(?<![\w.+/:#-])(?:(?:0\d{2,4}|\(0\d{2,4}\))[ -]\d{3,4}[ -]?\d{3,4}"
    r"|0[1-9](?P<fs>[ .-])\d\d(?:(?P=fs)\d\d){3})(?![\w/:@]|[.-]\d)",
    check=_uk_phone_check,
    prefilter=_NUMBERISH,
)

# --- national ids and bank accounts ----------------------------------------------------------


def _ssn_check(candidate: str) -> tuple[int, int] | None:
    """Not a number the SSA never issues (area 000 or 666, group 00, serial 0000)."""
    d = _NON_DIGIT.sub("", candidate)
    if len(d) != 9 or d[:3] in ("000", "666") or d[3:5] == "00" or d[5:] == "0000":
        return None
    return 0, len(candidate)


_SSN = _rule(
    "ssn",
    r"(?P<secret>\d(?<![\w.+/:#-]\d)\d\d-\d\d-\d{4})(?![\w-]|[.,]\d)",
    check=_ssn_check,
    prefilter=re.compile(r"-\d\d-\d{4}"),  # starts with a literal: a fast scan
)
_SSN_LABELLED = _rule(
    "ssn",
    r"(?i:\b(?:ssn|social security(?: number| no\.?)?)\b[ \t]*(?:#|no\.?|number)?[ \t]*[:=]?[ \t]*)"
    r"(?P<secret>\d{3}[ -]?\d\d[ -]?\d{4})(?![\w-])",
    check=_ssn_check,
    words=word_gate("ssn ssn# security"),
)

# Registered IBAN lengths per country (SWIFT IBAN registry); a candidate must match its country's
# length and pass mod 97, so order numbers and ids that start with two letters stay.
_IBAN_LENGTHS = {
    pair[:2]: int(pair[3:])
    for pair in _words(
        "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BR:29 BY:28 CH:21 CR:22 CY:28 "
        "CZ:24 DE:22 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FO:18 FR:27 GB:22 GE:22 GI:23 GL:18 "
        "GR:27 GT:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 KW:30 KZ:20 LB:28 LC:32 "
        "LI:21 LT:20 LU:20 LV:21 MC:27 MD:24 ME:22 MK:19 MR:27 MT:31 MU:30 NL:18 NO:15 PK:24 "
        "PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 SA:24 SC:31 SE:24 SI:19 SK:24 SM:27 ST:25 SV:28 "
        "TL:23 TN:24 TR:26 UA:29 VA:22 VG:24 XK:20"
    )
}


def _iban_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


_IBAN_START = re.compile(r"(?:^|(?<= ))[A-Z]{2}\d\d")


def _iban_check(candidate: str) -> tuple[int, int] | None:
    """The first IBAN in the run: an id glued before it ("AT024BE7LD DE89 …") must not hide it,
    since the regex takes the whole run at once."""
    for start in _IBAN_START.finditer(candidate):
        found = _iban_at(candidate[start.start() :])
        if found is not None:
            return (start.start() + found[0], start.start() + found[1])
    return None


def _iban_at(candidate: str) -> tuple[int, int] | None:
    """The country's length of characters, ending at a group boundary, passing mod 97."""
    want = _IBAN_LENGTHS.get(candidate[:2])
    if want is None:
        return None
    seen = 0
    for i, ch in enumerate(candidate):
        if ch != " ":
            seen += 1
        if seen == want:
            end = i + 1
            if end < len(candidate) and candidate[end] != " ":
                return None  # the run goes on inside a group: not this IBAN
            return (0, end) if _iban_ok(candidate[:end].replace(" ", "")) else None
    return None


_IBAN = _rule(
    "iban",
    # the lookbehind sits after the first letter, so the regex engine can skip to capitals
    r"(?P<secret>[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d\d(?:[ ]?[A-Z0-9]{1,4}){3,8})(?![a-z0-9])",
    check=_iban_check,
    # every IBAN's account part holds a run of 10+ digits and spaces: shared with cards, phones
    prefilter=_NUMBERISH,
)
_NI_NOT_ISSUED = frozenset(("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"))
_UK_NI = _rule(
    "national_id",
    # HMRC's format, next to "NI", "NINO" or "National Insurance": two prefix letters (D, F, I, Q, U, V never; O never second; and not the
    # administrative prefixes BG GB KN NK NT TN ZZ), six digits, suffix A-D
    r"(?P<secret>[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9].)[A-CEGHJ-NPR-TW-Z]"
    r"(?P<ns> ?)\d\d(?P=ns)\d\d(?P=ns)\d\d(?P=ns)[A-D])(?![A-Za-z0-9])",
    check=lambda v: None if v[:2] in _NI_NOT_ISSUED else (0, len(v)),
    # only near its name: "AB123456C" alone is as likely a booking reference
    words=word_gate("ni nino nin insurance"),
)
_PASSPORT = _rule(
    "passport",
    # only with the word: passport numbers have no checksum a free-text scan could rely on
    r"(?i:\bpassport(?:[ \t]+(?:no\.?|number|num|#))?[ \t]*[:#=]?[ \t]*)"
    r"(?P<secret>(?=[A-Z]{0,2}\d)[A-Z0-9]{6,9})(?![\w-])",
    words=word_gate("passport passport# passport#:"),
)
_DATE = (
    r"\d{4}-\d\d-\d\d|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"
    r"|\d{1,2}(?:st|nd|rd|th)?[ ][A-Z][a-z]{2,8}\.?,?[ ]\d{4}|[A-Z][a-z]{2,8}\.?[ ]\d{1,2},?[ ]\d{4}"
)
_DATE_OF_BIRTH = _rule(
    "date_of_birth",
    r"(?i:\b(?:dob\b|d\.o\.b\b\.?|date[ ]of[ ]birth\b|birth[ ]?date\b)[ \t]*[:=-]?[ \t]*)"
    rf"(?P<secret>{_DATE})(?![\w-])",
    words=word_gate("dob d.o.b d.o.b. birth birthdate"),
)

# --- street addresses ------------------------------------------------------------------------

# Suffixes that name a street on their own ("12 Baker Street"), and ones that also name other
# things ("2 Google Drive folders", "3 Data Place"): those need a postcode, unit or a cue.
_SURE_SUFFIX = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|terrace|parkway|pkwy|highway|hwy|crescent"
)
_LOOSE_SUFFIX = (
    "lane|ln|drive|dr|way|court|ct|place|pl|square|sq|circle|cir|close|row|walk|trail|grove|"
    "plaza|gardens|mews|hill"
)
_ZIP_TAIL = (
    r"(?:,?[ ]+(?i:apt|apartment|suite|ste|unit|flat|fl|floor|\#)\.?[ ]*\#?[A-Za-z0-9-]{1,6})?"
    # a town: capitalised, or lowercase only when a state and ZIP follow ("columbus oh 43004")
    r"(?:,[ ]*(?P<city>[A-Z][a-z]+(?:[ ][A-Z][a-z]+){0,2}"
    r"|[a-z]+(?:[ ][a-z]+){0,2}(?=,?[ ]+[A-Za-z]{2}[ ]+\d{5})))?"
    r"(?:,?[ ]+(?P<zip>[A-Za-z]{2}[ ]+\d{5}(?:-\d{4})?"  # US state and ZIP
    r"|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}))?"  # UK postcode
)
_STREET_FIRST = re.compile(
    # US / UK / AU: number, 1-3 name words, suffix; then unit, city, state + ZIP or postcode
    r"(?<![\w.#/:$€£-])(?P<num>\d{1,5}[A-Za-z]?(?:-\d{1,5})?)[ ]+"
    r"(?P<words>(?:(?:[A-Za-z][a-z]+|[NSEW]\.?|\d{1,3}(?:st|nd|rd|th))[ ]+){1,3})"
    rf"(?P<suffix>(?i:{_SURE_SUFFIX}|{_LOOSE_SUFFIX}))\.?(?![\w-])"
    r"(?:[ ]+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
    rf"{_ZIP_TAIL}"
)
_EU_TAIL = r"(?:,?[ ]+(?P<zip>\d{4,5}|\d{4}[ ]?[A-Z]{2})[ ]+[A-Z][a-zà-ÿ]+(?:[ -][A-Z][a-zà-ÿ]+)?)?"
_STREET_EU = re.compile(
    # German, Dutch, Nordic: one word ending in a street word, then the number ("Hauptstraße 5")
    r"(?<![\w-])(?P<street>[A-ZÄÖÜÅÆØ][a-zäöüßåæø]+(?:straße|strasse|str\.|weg|gasse|platz|allee"
    r"|straat|gracht|laan|plein|kade|singel|gatan|gata|vägen|vej|veien))"
    r"[ ]+(?P<num>\d{1,4}[a-zA-Z]?)(?![\w-])" + _EU_TAIL
)
_STREET_ROMANCE = re.compile(
    # "12 rue de la Paix", "5 avenue Foch"; and "Via Roma 12" or "Calle Mayor 5" with a postcode
    r"(?<![\w-])(?:(?P<num>\d{1,4}(?:[ ]?(?:bis|ter))?),?[ ]+"
    r"(?P<fr>rue|allée|impasse|chemin|quai|boulevard|avenue|place)[ ]+"
    r"|(?P<it>Via|Viale|Piazza|Corso|Calle|Avenida|Rua|Praça|Plaza|Carrer|Paseo)[ ]+)"
    r"(?:(?:de|du|des|la|le|les|del|della|di|da|do|dos|das)[ ]+|[dl]['’])*"
    r"[A-ZÀ-Þ][\w'’-]+(?:[ ][A-ZÀ-Þ][\w'’-]+){0,2}"
    r"(?(it),?[ ]+\d{1,4}[a-zA-Z]?)" + _EU_TAIL
)
_ADDRESS_CUE = re.compile(
    r"(?i:address|lives?[ ]at|ship(?:ped|ping)?[ ]to|deliver(?:ed|y)?[ ]to|located[ ]at|"
    r"mail(?:ed)?[ ]to|send[ ]to|billing|residence|home[ ]at|moved[ ]to)[^\n]{0,24}$"
)
# Cheap gates, so that a chat line without a street word costs nothing: the suffixes and the
# Romance street words as whole words of the line (one split serves every word-gated rule), and
# for German/Dutch/Nordic streets, a street word glued to its name and followed by a number.
_STREET_WORDS = word_gate(
    " ".join(_SURE_SUFFIX.split("|") + _LOOSE_SUFFIX.split("|"))
    + " rue allée impasse chemin quai via viale piazza corso calle avenida rua praça carrer paseo"
)
_GLUED = "straße strasse str. weg gasse platz allee straat gracht laan plein kade singel gatan gata"
_GLUED += " vägen vej veien"


class AddressRule:
    """Street addresses in US/UK and French/Italian/Spanish shapes (number and street word)."""

    kind = "address"
    needles: tuple[str, ...] = ()
    prefilter: Prefilter | None = None
    words = _STREET_WORDS

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Replace each address (with its unit, city and postcode) by one marker."""
        spans = [m.span() for m in _STREET_FIRST.finditer(text) if self._street_ok(m)]
        spans += [m.span() for m in _STREET_ROMANCE.finditer(text) if self._eu_ok(m)]
        return _replace_spans(text, spans, self.kind, counts)

    @staticmethod
    def _street_ok(m: re.Match[str]) -> bool:
        words = m.group("words").split()
        lower = m.group("suffix").islower() or any(w.islower() for w in words if w.isalpha())
        loose = re.fullmatch(_LOOSE_SUFFIX, m.group("suffix").lower()) is not None
        zip_or_unit = m.group("zip") is not None or "," in m.group(0)[m.end("suffix") :]
        cued = _ADDRESS_CUE.search(m.string, 0, m.start()) is not None
        if any(w.lower() in _NOT_STREET_WORDS for w in words):
            return False
        if lower or loose:
            # a lowercase or ambiguous street needs a postcode/ZIP, or words such as "lives at"
            return cued or m.group("zip") is not None or (not lower and zip_or_unit)
        return True

    @staticmethod
    def _eu_ok(m: re.Match[str]) -> bool:
        """ "Via Kafka 3 retries" is not an address: Italian/Spanish forms need a postcode."""
        return not m.group("it") or m.group("zip") is not None


_POSTCODE_STREET = re.compile(
    # any street, then its number, a 5-digit (or Dutch "1015 CJ") postcode and a town:
    # "Kurfürstendamm 21, 10719 Berlin", "Unter den Linden 5, 10117 Berlin"
    r"(?<![\w-])[A-ZÄÖÜÅÆØ][\w'’.-]+(?:[ ](?:[A-ZÄÖÜÅÆØ][\w'’.-]+|de|der|den|van|la|le|di|del)){0,3}"
    r"[ ]+\d{1,4}[a-zA-Z]?,[ ]*(?:\d{5}|\d{4}[ ]?[A-Z]{2})[ ]+[A-ZÄÖÜ][a-zà-ÿ]+(?:[ -][A-Z][a-zà-ÿ]+)?"
)
# One scan for both European shapes: a street word right before a number, or a postcode and a
# town after a comma. Both branches start with a literal, which the regex engine skips to.
_EU_GATE = re.compile(
    r"[ ](?=\d)(?:" + "|".join(f"(?<={re.escape(w)} )" for w in _GLUED.split()) + ")"
    r"|,[ ]*(?:\d{5}|\d{4}[ ]?[A-Z]{2})[ ]+[A-Z]"
)


class EuropeanStreetRule(AddressRule):
    """ "Hauptstraße 5, 10115 Berlin", "Keizersgracht 123", "Kurfürstendamm 21, 10719 Berlin"."""

    prefilter = _EU_GATE
    words = frozenset()

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Replace each street, number, postcode and town by one marker."""
        spans = [m.span() for rx in (_STREET_EU, _POSTCODE_STREET) for m in rx.finditer(text)]
        return _replace_spans(text, spans, self.kind, counts)


def _replace_spans(text: str, spans: list[tuple[int, int]], kind: str, counts: Counter[str]) -> str:
    """One marker per span, left to right; a span overlapping an earlier one is skipped."""
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out += (text[pos:start], marker(kind))
        pos = end
        counts[kind] += 1
    out.append(text[pos:])
    return "".join(out)


# Words that make "<number> <words> <suffix>" something else: "3 Availability Zone Way".
_NOT_STREET_WORDS = _words(
    "of the and or to in on at for with from by per x is are was were our your their this that "
    "google shared data network availability hot cold fast slow happy critical golden"
)

# --- names of people outside the incident ----------------------------------------------------

_UP = "A-ZÀ-ÖØ-Þ"
_LO = "a-zß-öø-ÿ"
_NAME_WORD = rf"(?:Mc|Mac|O['’]|D['’])?[{_UP}][{_LO}]+(?:[-'’][{_UP}]?[{_LO}]+)?"
_PARTICLE = r"(?:van|von|de|der|den|da|dos|das|du|del|della|di|la|le|bin|al|ter|ten|y)"
_FULL_NAME = rf"{_NAME_WORD}(?:[ ]+(?:{_PARTICLE}[ ]+)*{_NAME_WORD}){{1,3}}"
_ONE_OR_MORE = rf"{_NAME_WORD}(?:[ ]+(?:{_PARTICLE}[ ]+)*{_NAME_WORD}){{0,3}}"
_END = r"(?![\w@'’-])"

# Capitalised words that are not names, for the contexts where a name has no honorific:
# "customer Black Friday traffic", "Customer Success team", "user Service Account".
_NOT_NAME = _words(
    "a an the this that these those our your their my his her its all any every each some new "
    "old team teams squad group support success service services account accounts api apis "
    "gateway portal platform engineering operations ops security data cloud checkout payment "
    "payments billing order orders history black friday cyber monday tuesday wednesday thursday "
    "saturday sunday january february march july august september october november december "
    "christmas holiday holidays day week month year weekend manager engineer lead head director "
    "owner admin administrator bot system systems inc ltd llc gmbh corp co company bank store "
    "shop care experience journey center centre desk help helpdesk hub dashboard app apps "
    "mobile web site website server servers database cluster region zone north south east west "
    "central europe america asia africa germany france spain italy india japan china canada "
    "australia premium enterprise plus pro gold silver bronze tier free trial basic standard "
    "business personal public private internal external channel incident postmortem alert "
    "alerts status page update updates issue issues ticket tickets report reports error errors "
    "rate latency traffic load queue worker workers job jobs pipeline deploy deployment release "
    "build test staging production prod dev customer customers client clients user users name "
    "names not found bad request timeout unavailable google amazon microsoft apple stripe slack "
    "jira pagerduty grafana datadog sentry zendesk salesforce shopify visa mastercard amex key "
    "keys vault secrets redis postgres kafka kubernetes docker linux windows chrome firefox "
    "safari android ios iphone cards card cart catalog search login signup sign auth session "
    "sessions email emails mail sms phone phones call calls chat live agent agents tool tools "
    "priority high low medium normal urgent critical severity yes no ok okay thanks thank hi "
    "hello dear regards best kind sincerely cheers yours truly wishes warm many please sir madam "
    "gentlemen everyone folks ladies he she they we you i it dr mr mrs ms mx prof street avenue "
    "road boulevard terrace parkway highway st rd ave blvd"
)
_HONORIFIC = re.compile(
    r"(?<![\w.])(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Mme|Mlle|Herr|Frau|Sra|Srta)\.?[ ]+"
    rf"(?P<secret>{_ONE_OR_MORE}){_END}"
)
_HONORIFIC_PREFILTER = re.compile(
    r"(?:Mrs|M[rsx]|Miss|Dr|Prof|Sir|Dame|Mme|Mlle|Herr|Frau|Sra)\.?[ ]+[A-Z]"
)
# Words that mark the next name as someone outside the incident. Each regex below is tried only
# where one of its words occurs (found with str.find on the lowercased line), never scanned.
_CUES = sorted(
    _words(
        "customer client caller cardholder holder subscriber patient merchant passenger user "
        "requester recipient"
    ),
    key=lambda w: (-len(w), w),
)
_CUED = re.compile(
    # "customer Jane Doe reported", "the cardholder, Liam O'Connor, disputed", "a user named Kim"
    rf"(?i:\b(?:card|account[ ]|policy)?(?:{'|'.join(_CUES)})s?)(?:[ ]*[,:(][ ]*|[ ]+)"
    rf"(?:(?i:named|called)[ ]+(?P<one>{_NAME_WORD}){_END}|(?P<full>{_FULL_NAME}){_END})"
)
_FORM_FIELD = re.compile(
    # a form or ticket pasted line by line: "Name: Ana Silva", "Customer: Tomás Ortega"
    r"(?i:[ \t>*_|+•·-]*(?:\d{1,2}[.)][ \t]*)?(?:name|customer|client|contact|caller|"
    r"recipient|passenger|patient))[ \t]*\**[:：][ \t]*\**"
    rf"(?P<full>{_FULL_NAME}){_END}"
)
_FORM_ANCHORS: tuple[str, ...] = ("name", "customer", "client", "contact", "caller", "recipient")
_FORM_ANCHORS += ("passenger", "patient")
_FORM_WORDS = " ".join(_FORM_ANCHORS)
_PERSON_FIELD = re.compile(
    # labels that always name a person, anywhere: "ticket 4511: Requester: Ana Lucia Silva"
    r"(?i:\b(?:(?:full|customer|client|contact|billing|caller|holder)[ ]name|requester|"
    r"requested[ ]by|submitted[ ]by|(?:account[ ]|card[ ]?)holder))"
    r"[ \t]*\**[:：][ \t]*\**"
    rf"(?P<full>{_FULL_NAME}){_END}"
)
_PERSON_FIELD_ANCHORS: tuple[str, ...] = ("full name", "customer name", "client name")
_PERSON_FIELD_ANCHORS += ("contact name",)
_PERSON_FIELD_ANCHORS += ("billing name", "caller name", "holder name", "requeste", "submitted by")
_PERSON_FIELD_ANCHORS += ("holder",)
_PERSON_FIELD_WORDS = "name requester requested submitted holder cardholder"
_INTRO = re.compile(
    # "my name is Carlos Mendes", "Dear Jane,"
    rf"(?i:\bmy[ ]name[ ]is|\bdear)[ ]+(?P<secret>{_ONE_OR_MORE}){_END}"
)
_SIGN_OFF = re.compile(
    # mail sign-offs: "Kind regards,\n> Henrietta Vos", "Sincerely, Ana"
    r"(?i:\b(?:regards|sincerely|yours[ ]+(?:truly|sincerely|faithfully)|best[ ]+wishes))"
    r"[ \t]*,?[ \t]*(?:\n[ \t>*_]*)?"
    rf"(?P<sign>{_ONE_OR_MORE}){_END}"
)
_SIGN_OFF_WORDS = "regards sincerely yours wishes"
# the fewest words each group must keep: a cue alone ("customer Acme") names a company
_MIN_WORDS = {"secret": 1, "one": 1, "sign": 1, "full": 2}
_WORD = re.compile(r"\S+")


def _name_prefix(name: str, least: int) -> int:
    """How much of name is a person's name: up to the first word that is not a name."""
    end = n = 0
    for m in _WORD.finditer(name):
        word = m.group(0)
        if not word[0].isupper():
            continue  # a particle ("van"): kept only when a name follows it
        if word.lower().strip("'’") in _NOT_NAME:
            break
        end, n = m.end(), n + 1
    return end if n >= least else 0


class NameRule:
    """A person's name in a context that marks them as someone outside the incident.

    The rule runs when the line holds one of its `words` (or its prefilter hits); the regex is
    then tried only where an anchor occurs (at the start of that line when `line` is set), so a
    long line costs a few `str.find` calls, not a regex scan.
    """

    kind = "person_name"
    needles: tuple[str, ...] = ()

    def __init__(
        self,
        rx: re.Pattern[str],
        anchors: tuple[str, ...] = (),
        *,
        words: str = "",
        prefilter: Prefilter | None = None,
        line: bool = False,
    ) -> None:
        self.rx, self.anchors, self.prefilter, self.line = rx, anchors, prefilter, line
        self.words = word_gate(words)

    def apply(self, text: str, counts: Counter[str]) -> str:
        """Replace the name part of each match; the context words stay."""
        return _replace_spans(text, self._names(text), self.kind, counts)

    def _names(self, text: str) -> list[tuple[int, int]]:
        """Spans of accepted names; a rejected match is retried one character later, so
        "Mrs. Mrs. Okafor" still finds Okafor."""
        low = text.lower()
        if self.anchors and len(low) == len(text):  # lower() kept offsets: anchor on finds
            starts: set[int] = set()
            for anchor in self.anchors:
                i = low.find(anchor)
                while i >= 0:
                    starts.add(text.rfind("\n", 0, i) + 1 if self.line else i)
                    i = low.find(anchor, i + 1)
            tries: Iterator[re.Match[str] | None] = (
                self.rx.match(text, start) for start in sorted(starts)
            )
        else:
            tries = self._scan(text)
        spans: list[tuple[int, int]] = []
        for m in tries:
            span = self._accept(m) if m else None
            if span and (not spans or span[0] >= spans[-1][1]):
                spans.append(span)
        return spans

    def _scan(self, text: str) -> Iterator[re.Match[str] | None]:
        pos = 0
        while (m := self.rx.search(text, pos)) is not None:
            yield m
            pos = m.end() if self._accept(m) else m.start() + 1

    @staticmethod
    def _accept(m: re.Match[str]) -> tuple[int, int] | None:
        group = next(g for g in _MIN_WORDS if g in m.re.groupindex and m.group(g))
        keep = _name_prefix(m.group(group), _MIN_WORDS[group])
        return (m.start(group), m.start(group) + keep) if keep else None


# --- the order they run in -------------------------------------------------------------------

# After secrets and emails, before cards and phones: an IBAN's digits could pass as a card, a
# street number and ZIP as parts of a phone number.
RuleLike = Rule | LabelledRule | FlagRule | AddressRule | NameRule
PERSONAL: tuple[RuleLike, ...] = (
    _IBAN,
    _UK_NI,
    _SSN,
    _SSN_LABELLED,
    _PASSPORT,
    _DATE_OF_BIRTH,
    AddressRule(),
    EuropeanStreetRule(),
    NameRule(_HONORIFIC, prefilter=_HONORIFIC_PREFILTER),
    NameRule(_CUED, tuple(_CUES), words=" ".join(_CUES) + " policyholder"),
    NameRule(_FORM_FIELD, _FORM_ANCHORS, words=_FORM_WORDS, line=True),
    NameRule(_PERSON_FIELD, _PERSON_FIELD_ANCHORS, words=_PERSON_FIELD_WORDS),
    NameRule(_INTRO, ("my name", "dear"), words="name dear"),
    NameRule(_SIGN_OFF, ("regards", "sincerely", "yours", "best wishes"), words=_SIGN_OFF_WORDS),
    _CARD,
    _PHONE_INTL,
    _PHONE_NANP,
    _PHONE_NATIONAL,
)
