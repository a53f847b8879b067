"""Validators for what owners type into the organization's settings.

The POS-embedding origins go into a response header (CSP `frame-ancestors`), so each must be
exactly an origin: a `;` would end the directive and start another, a space would add a
source, `*` or a bare scheme would let anyone frame the till. They are checked on every write
path (the owners' form, the admin, `set_pos_embed_origins`) and again when the header is
written, so a row saved before these rules cannot reach the header either.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_EMBED_ORIGINS = 20
# A host name label (after IDNA encoding): letters, digits and inner hyphens.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# http is for a POS running on this machine during development; anything else is https.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
ORIGIN_EXAMPLE = "https://pos.example.com"


def _host(text: str) -> str | None:
    """The host, lower-cased and IDNA-encoded, or None if it is not one."""
    if text.startswith("["):  # an IPv6 literal, as origins write it
        if not text.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        ipaddress.IPv4Address(text)
        return text
    except ValueError:
        pass
    try:
        host = text.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 1.2.3 is not a host name, and not an IPv4 address either
        return None
    return host


def embed_origin(text: str) -> str:
    """`text` as an origin (`scheme://host[:port]`, lower-cased), or a ValidationError saying
    what is wrong with it. A trailing `/` is dropped; any other path, a query, a fragment,
    credentials, wildcards and separators are refused."""
    origin, problem = _parse_origin(text)
    if problem:
        raise ValidationError(
            f"{text[:80]!r} is not an origin like {ORIGIN_EXAMPLE}: {problem}.",
            code="invalid_origin",
        )
    return origin


def _split_port(rest: str) -> tuple[str | None, str]:
    if rest.startswith("["):
        end = rest.find("]")
        if end == -1:
            return None, ""
        host, after = rest[: end + 1], rest[end + 1 :]
        if after and not after.startswith(":"):
            return None, ""
        return host, after[1:] if after else ""
    host, colon, port = rest.partition(":")
    if colon and not port:
        return None, ""
    return host, port


def _parse_origin(text: str) -> tuple[str, str]:
    """(the origin normalised, "") or ("", what is wrong with it): parsed once for both."""
    if not text:
        return "", "it is empty"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "", "it holds a space or a control character"
    for mark, what in (("*", "wildcards"), (";", "';'"), (",", "','"), ("'", "quotes"),
                       ('"', "quotes"), ("?", "a query"), ("#", "a fragment"),
                       ("@", "credentials"), ("\\", "backslashes")):  # fmt: skip
        if mark in text:
            verb = "are" if what.endswith("s") else "is"
            return "", f"{what} {verb} not allowed"
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "", "it needs a scheme, https://"
    if scheme.lower() not in ("https", "http"):
        return "", "the scheme must be https"
    rest = rest.removesuffix("/")
    if "/" in rest:
        return "", "it is an origin, without a path"
    host_text, port = _split_port(rest)
    if not host_text:
        return "", "it needs a host"
    host = _host(host_text)
    if host is None:
        return "", f"{host_text[:60]!r} is not a host name"
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "", f"{port[:10]!r} is not a port"
    if scheme.lower() == "http" and host not in LOCAL_HOSTS:
        return "", "the scheme must be https (http only for localhost)"
    return f"{scheme.lower()}://{host}" + (f":{port}" if port else ""), ""


def embed_origins(text: str) -> str:
    """The origins typed one per line (or space-separated), each validated and normalised,
    duplicates dropped, one per line; a ValidationError names the first bad one."""
    origins: list[str] = []
    for item in text.split():
        origin = embed_origin(item)
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_EMBED_ORIGINS:
        raise ValidationError(
            f"At most {MAX_EMBED_ORIGINS} origins may embed the till.", code="too_many_origins"
        )
    return "\n".join(origins)


def valid_embed_origins(stored: str) -> list[str]:
    """The stored origins that are valid, for the header: a row written before these rules
    (or around them) cannot put anything else in it."""
    return list(_valid_embed_origins(stored))


# Every till page and htmx poll frames by the organization's stored origins: validated once
# per distinct stored value, not on every response. Pure, so a cache cannot go stale.
@functools.lru_cache(maxsize=256)
def _valid_embed_origins(stored: str) -> tuple[str, ...]:
    found = []
    for item in stored.split()[:MAX_EMBED_ORIGINS]:
        try:
            found.append(embed_origin(item))
        except ValidationError:
            continue
    return tuple(found)


# --- text that could spoof: the characters, and emails --------------------------------------
# The rules per field are cxcore.text_rules'; the characters and the email rule are here, in
# the lowest layer, so the accounts' own emails (who logs in) keep to the same rule.

BIDI_MARKS = frozenset("\u200e\u200f")
BIDI_REORDERING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
BIDI_CONTROLS = BIDI_MARKS | BIDI_REORDERING


def is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"  # C0, DEL and C1


def name_problem(text: str) -> str:
    """What in `text` it cannot hold as a name or an email ("" if nothing)."""
    for char in text:
        if is_control(char):
            return f"a control character (U+{ord(char):04X})"
        if char in BIDI_CONTROLS:
            return f"a text direction control (U+{ord(char):04X})"
    return ""


def email_problem(value: str) -> str | None:
    """None if `value` is an email address; else why not ("" when it is simply not one).

    Django's EmailValidator, and on top of it exactly one `@` (its quoted local parts allow
    `"a@b"@example.com`), a dot in the domain (it allows `ana@localhost`) and no control or
    bidi character (its domain pattern allows U+202E)."""
    problem = name_problem(value)
    if problem:
        return f"it holds {problem}"
    if value.count("@") != 1:
        return "it needs exactly one @"
    if "." not in value.rpartition("@")[2]:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return None


def validate_strict_email(value: str) -> None:
    """A Django validator: the email rule above, for forms and models."""
    problem = email_problem(value.strip())
    if problem is not None:
        raise ValidationError(
            "Enter a valid email address" + (f": {problem}." if problem else "."),
            code="invalid",
        )
