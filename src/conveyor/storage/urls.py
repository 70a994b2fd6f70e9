"""Parsing of the Redis URLs Conveyor accepts (pure; ``storage.redis`` builds the clients).

* ``redis://[user:password@]host:port/db``, ``rediss://...``, ``unix:///path?db=0``:
  one server (redis-py's own URL handling).
* ``redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]
  [?sentinel_password=...]``: the master that Sentinel names; clients follow failovers.
* ``redis+cluster://[user:password@]host:port[,host:port...]``: a Redis Cluster; each queue's
  keys share one hash slot, so every script of a queue runs on one node.

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS to the data nodes.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

from ..errors import ConfigurationError

__all__ = ["RedisTarget", "parse_url", "redact_url"]

#: What stands in for a secret in anything shown: banners, logs, errors, API answers.
MASK = "***"
#: A query parameter whose name contains one of these carries a secret (``password``,
#: ``sentinel_password``, ``ssl_password``, ...); its value is never shown.
_SECRET_PARAM_WORDS = ("pass", "secret", "token", "auth", "cred")
_QUERY_PARAM = re.compile(r"([?&])([^=&#]*)=([^&#]*)")
#: Secrets shorter than this are not searched for in the shown text (they would match by chance).
_MIN_SEARCHED_SECRET = 3


@dataclasses.dataclass(frozen=True, slots=True)
class RedisTarget:
    kind: str  # "standalone", "sentinel" or "cluster"
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def _hosts(netloc: str, url: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        if not host:
            raise ConfigurationError(f"no host in Redis URL {redact_url(url)!r}")
        try:
            hosts.append((host.strip("[]"), int(port) if port else default_port))
        except ValueError:
            raise ConfigurationError(
                f"invalid port {port!r} in Redis URL {redact_url(url)!r}"
            ) from None
    return tuple(hosts)


def parse_url(url: str) -> RedisTarget:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"Redis URL {redact_url(url)!r} has no scheme (e.g. redis://host:6379/0)"
        )
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget("standalone", url)
    if scheme not in ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"):
        raise ConfigurationError(
            f"unknown Redis URL scheme {scheme!r}; use redis, rediss, unix, redis+sentinel "
            "or redis+cluster"
        )
    # urlsplit cannot parse "h1:1,h2:2", so split the credentials and hosts by hand.
    netloc, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    credentials, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    kind = scheme.partition("+")[2]
    ssl = scheme.startswith("rediss")
    if kind == "cluster":
        return RedisTarget(
            "cluster", url, _hosts(hostlist, url, 6379), None, 0, username, password, None, ssl
        )
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ConfigurationError(
            f"Sentinel URL {redact_url(url)!r} must name the master: .../<name>[/db]"
        )
    try:
        db = int(parts[1]) if len(parts) > 1 else int(params.get("db", 0))
    except ValueError:
        raise ConfigurationError(
            f"invalid database number in Redis URL {redact_url(url)!r}"
        ) from None
    return RedisTarget(
        "sentinel",
        url,
        _hosts(hostlist, url, 26379),
        unquote(parts[0]),
        db,
        username,
        password,
        params.get("sentinel_password"),
        ssl,
    )


def redact_url(url: str) -> str:
    """``url`` with every secret replaced by ``***``: the password of the user part, and the
    value of any query parameter that names a secret. The one redaction used wherever a URL is
    shown.

    It errs on the side of hiding: everything before the last ``@`` counts as credentials (a
    password may contain ``@``, ``:``, ``/`` or ``?``), and if a secret as the URL parsers read
    it still shows, only the scheme is left.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest = _QUERY_PARAM.sub(_mask_secret_param, rest)
    userinfo, at, after = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        # Without a ':' the lone user part may well be the password, so it goes too.
        shown_user = f"{user}:" if colon and not set(user) & set("/?#") else ""
        rest = f"{shown_user}{MASK}@{after}"
    shown = f"{scheme}{sep}{rest}"
    if any(_shows(secret, shown) for secret in _secrets(url)):
        return f"{scheme}{sep}{MASK}"
    return shown


def _is_secret_param(name: str) -> bool:
    name = unquote_plus(name).lower()
    return any(word in name for word in _SECRET_PARAM_WORDS)


def _mask_secret_param(match: re.Match[str]) -> str:
    lead, name, value = match.groups()
    return f"{lead}{name}={MASK if _is_secret_param(name) else value}"


def _secrets(url: str) -> set[str]:
    """The secrets of ``url`` as the URL parsers behind the clients read them: redis-py's
    (``urlsplit``) and ``parse_url``'s own split of Sentinel and Cluster URLs."""
    rest = url.partition("://")[2] or url
    netloc, _, path_query = rest.partition("/")
    found = {unquote(netloc.rpartition("@")[0].partition(":")[2])}
    queries = [path_query.partition("?")[2], netloc.partition("?")[2]]
    try:
        parts = urlsplit(url)
        found.add(parts.password or "")
        queries.append(parts.query)
    except ValueError:
        pass
    for query in queries:
        for name, values in parse_qs(query).items():
            if _is_secret_param(name):
                found.update(values)
    return {secret for secret in found if len(secret) >= _MIN_SEARCHED_SECRET}


def _shows(secret: str, text: str) -> bool:
    return any(form in text for form in (secret, quote(secret), quote(secret, safe="")))
