"""Access logs never print the query string of a lookup: it carries a phone number, an email
or a name (`/api/v1/customers/?phone=…`, `/pos/lookup/?q=…`), and access logs are kept
longer, and read by more people, than the data they would leak.

One list of such paths, used by gunicorn's access log (`AccessLogger`, named in
gunicorn.conf.py) and by runserver's (`RedactLookupQueries`, a filter on the `django.server`
logger in settings.LOGGING). The query becomes `?[redacted]`, so a reader still sees that
there was one; a Referer naming such a page is cut the same way. Clients that do not want
the identifier in the URL at all (proxies and browsers keep URLs too) POST it in the body
instead: every one of these lookups takes POST.

Links that are themselves a credential carry it in the path instead: an invitation, a password
reset, a till's pairing link, a Square notification URL. Their secret segment becomes
`[redacted]` in every log line and Referer, so whoever reads the logs cannot use a link that
has not been used yet.

No Django here: gunicorn's master imports this before any app is loaded.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

REDACTED = "[redacted]"
# Paths whose query may carry a phone, an email or a name; and the login pages, whose `next`
# may be one of them (an expired session sent to log in from a lookup).
LOOKUP_PATHS = re.compile(
    r"^/(?:"
    r"api/v1/customers/(?:lookup/)?|api/v1/sidebar/|"
    r"customers/|customers/\d+/merge/|pos/lookup/|"
    r"accounts/login/|admin/login/"
    r")$"
)


# Paths whose segment after the prefix is a secret token (group 2).
SECRET_PATHS = re.compile(
    r"^(/accounts/invitations/|/accounts/reset/[^/]+/(?!set-password/)|/till/pair/|"
    r"/api/v1/connectors/square/)([^/?]+)"
)


def is_lookup_path(path: str) -> bool:
    return bool(LOOKUP_PATHS.match(path))


def redact_path(path: str) -> str:
    """A path with the token of a credential link redacted (`/till/pair/[redacted]/`)."""
    return SECRET_PATHS.sub(rf"\1{REDACTED}", path, count=1)


def redact_target(target: str) -> str:
    """A request target (`/path?query`) with the query of a lookup path, and the token of a
    credential link, redacted."""
    path, mark, query = target.partition("?")
    if mark and query and is_lookup_path(path):
        return f"{path}?{REDACTED}"
    return redact_path(path) + mark + query


def redact_url(url: str) -> str:
    """A full URL (a Referer) with the query of a lookup path redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.query and is_lookup_path(parts.path):
        return urlunsplit(parts._replace(query=REDACTED, fragment=""))
    path = redact_path(parts.path)
    return urlunsplit(parts._replace(path=path)) if path != parts.path else url


def redact_request_line(line: str) -> str:
    """`GET /pos/lookup/?q=0555 HTTP/1.1` → `GET /pos/lookup/?[redacted] HTTP/1.1`."""
    method, space, rest = line.partition(" ")
    target, space2, protocol = rest.rpartition(" ")
    if not space or not space2:  # not a request line: nothing to cut
        return redact_target(line) if line.startswith("/") else line
    return f"{method} {redact_target(target)} {protocol}"


class AccessLogger(Logger):
    """gunicorn's logger with lookups' queries redacted from every access-log atom that
    carries them: the request line, the path's query, the Referer, and the environ's."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        path = environ.get("PATH_INFO", "")
        if redact_path(path) != path:
            atoms["r"] = redact_request_line(atoms["r"])
            atoms["U"] = redact_path(atoms.get("U", path))
            for key in ("{raw_uri}e", "{request_uri}e", "{path_info}e"):
                if atoms.get(key):
                    atoms[key] = redact_target(atoms[key])
        elif is_lookup_path(path):
            atoms["r"] = redact_request_line(atoms["r"])
            if atoms.get("q"):
                atoms["q"] = REDACTED
            for key in ("{query_string}e", "{raw_uri}e", "{request_uri}e"):
                if atoms.get(key):
                    atoms[key] = REDACTED if key == "{query_string}e" else redact_target(atoms[key])
        referer = environ.get("HTTP_REFERER")
        if referer:
            atoms["f"] = redact_url(referer)
            atoms["{referer}i"] = atoms["f"]
        return atoms


class RedactLookupQueries(logging.Filter):
    """For the `django.server` logger (runserver): its message is `"%s" %s %s` with the
    request line first among the arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            record.args = (redact_request_line(args[0]), *args[1:])
        return True
