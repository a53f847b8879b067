"""Sending one webhook request: the SSRF guard and a connection pinned to the checked address.

The guard resolves the host at send time and refuses anything that is not a public address
(webhooks.rules.is_public_address) unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on. Checking a name
and then letting the HTTP client resolve it again would leave a window for DNS rebinding (the
second answer could be 127.0.0.1), so the request connects to the very address that was
checked: PinnedAdapter hands urllib3 that IP as the pool's host, while the Host header, TLS
SNI and certificate check still use the URL's name. Redirects are never followed (a 3xx is a
failed attempt), and proxies from the environment are ignored.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from webhooks.rules import is_public_address

# Success is a 2xx within this many seconds.
TIMEOUT_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5.0
# What the log keeps of a response, and the most we read of one (more closes the connection).
KEPT_BYTES = 2048
READ_AT_MOST = 64 * 1024
USER_AGENT = "Comeback-Webhooks/1.0"


class TargetRefused(Exception):
    """The URL may not be sent to (scheme, or an address that is not public)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def check_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL we may send to, before any DNS: https only, unless private
    targets are allowed (development and tests), where http is accepted too."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("Not a valid URL.") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused("Webhook URLs must use https.")
    if not parts.hostname:
        raise TargetRefused("The URL names no host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL may not carry a user name or password.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, *, allow_private: bool) -> Target:
    """Where to connect for `url`, resolved now; every address the name has must be public."""
    scheme, host, port = check_url(url, allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"Cannot resolve {host}.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"Cannot resolve {host}.")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to {refused[0]}, which is not a public address.")
    return Target(scheme, host, port, addresses[0])


class PinnedAdapter(HTTPAdapter):
    """Connects to `target.address` whatever the URL's host resolves to by then."""

    def __init__(self, target: Target, **kwargs: Any):
        self.target = target
        super().__init__(**kwargs)

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params = {**host_params, "host": self.target.address}
        if host_params["scheme"] == "https":
            # The certificate is checked against the name in the URL, not the address.
            pool_kwargs = {
                **pool_kwargs,
                "server_hostname": self.target.host,
                "assert_hostname": self.target.host,
            }
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


@dataclass
class Reply:
    status_code: int | None
    body: str = ""
    error: str = ""
    retry_after: str | None = None
    duration_ms: int = 0


class Sender:
    """Sends requests, keeping one connection pool per checked address for a run."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private
        self.sessions: dict[Target, requests.Session] = {}

    def _session(self, target: Target) -> requests.Session:
        session = self.sessions.get(target)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
            adapter = PinnedAdapter(target, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self.sessions[target] = session
        return session

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> Reply:
        started = time.monotonic()
        try:
            target = resolve(url, allow_private=self.allow_private)
        except TargetRefused as exc:
            return Reply(None, error=str(exc))
        headers = {
            **headers,
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            response = self._session(target).post(
                url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_SECONDS, TIMEOUT_SECONDS),
                allow_redirects=False,
                stream=True,
            )
            try:
                content = b""
                for chunk in response.iter_content(8192):
                    content += chunk
                    if len(content) >= READ_AT_MOST:
                        break
            finally:
                response.close()
        except requests.RequestException as exc:
            return Reply(None, error=_describe(exc), duration_ms=_ms(started))
        elapsed = time.monotonic() - started
        reply = Reply(
            response.status_code,
            body=content[:KEPT_BYTES].decode("utf-8", "replace"),
            retry_after=response.headers.get("Retry-After"),
            duration_ms=_ms(started),
        )
        if elapsed > TIMEOUT_SECONDS:
            reply.error = f"Answered after {elapsed:.1f} s (more than {TIMEOUT_SECONDS:.0f} s)."
        return reply

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"No answer within {TIMEOUT_SECONDS:.0f} s."
    if isinstance(exc, requests.ConnectionError):
        return "Could not connect."
    return type(exc).__name__
