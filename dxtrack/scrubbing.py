"""Secrets never leave the process: metadata keys that name one, and credentials in URLs.

A key is a secret's name when, with case ignored, camelCase split and ``-``, ``.`` and spaces
read as ``_``, it is on the denylist or ends in ``_`` and a denylist entry (``db_password``,
``githubToken``). The denylist starts from sentry-python's ``DEFAULT_DENYLIST``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

FILTERED: Final = "[Filtered]"

DEFAULT_DENYLIST: Final = (
    # sentry-python's DEFAULT_DENYLIST (from Relay, Django, WSGI and common frameworks)
    "password", "passwd", "secret", "api_key", "apikey", "auth", "credentials", "mysql_pwd",
    "privatekey", "private_key", "token", "session", "csrftoken", "sessionid", "x_csrftoken",
    "x_forwarded_for", "set_cookie", "cookie", "authorization", "x_api_key", "aiohttp_session",
    "connect_sid", "csrf_token", "csrf", "_csrf", "_csrf_token", "phpsessid", "_session",
    "symfony", "user_session", "_xsrf", "xsrf_token",
    # dxtrack's additions: names AWS, OAuth and databases use
    "access_key", "secret_key", "pwd", "passphrase", "dsn", "credential", "signature",
)  # fmt: skip

_PLAIN: Final = frozenset((str, int, float, bool, type(None)))
_URL_CREDENTIALS: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@\"'<>]+@")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS: Final = re.compile(r"[-.\s]+")
MAX_KNOWN_KEYS: Final = 10_000
MAX_DEPTH: Final = 32
"""Deeper than this (or in a cycle), a value is replaced whole."""
TOO_DEEP: Final = "[Filtered: nested too deep]"


def normalized(key: str) -> str:
    """``key`` as the denylist spells names: ``X-Api-Key`` and ``xApiKey`` give ``x_api_key``."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower()


def url_credentials_filtered(text: str) -> str:
    """``text`` with the user and password of every URL replaced: ``https://[Filtered]@host``."""
    if "@" not in text:
        return text
    return _URL_CREDENTIALS.sub(r"\1" + FILTERED + "@", text)


class Scrubber:
    """Replaces the values of secret keys in metadata, at any depth."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self._denied = frozenset(DEFAULT_DENYLIST) | {normalized(key) for key in extra_keys}
        self._known: dict[Any, bool] = {}

    @property
    def known(self) -> dict[Any, bool]:
        """Keys classified so far: whether each names a secret (the compiled writer reads it,
        and calls ``metadata`` for a key it does not find)."""
        return self._known

    def secret(self, key: object) -> bool:
        """Whether ``key`` names a secret."""
        found = self._known.get(key)
        if found is None:
            name = normalized(key if isinstance(key, str) else str(key))
            found = name in self._denied or any(
                name.endswith("_" + term) for term in self._denied if not term.startswith("_")
            )
            if len(self._known) >= MAX_KNOWN_KEYS:
                self._known.clear()
            self._known[key] = found
        return found

    def metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` itself when it holds no secret and nothing nested, else a scrubbed copy
        (the caller's own objects are never changed)."""
        known = self._known
        for key, value in metadata.items():
            # the common case, without a call: a key known to be harmless, a plain value
            if known.get(key) is not False or value.__class__ not in _PLAIN:
                return self._dict(metadata)
        return metadata

    def _dict(self, mapping: Mapping[Any, Any], depth: int = 0) -> dict[Any, Any]:
        return {
            key: FILTERED if self.secret(key) else self._value(value, depth + 1)
            for key, value in mapping.items()
        }

    def _value(self, value: Any, depth: int) -> Any:
        if not isinstance(value, Mapping | list | tuple):
            return value
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        try:
            if isinstance(value, Mapping):
                return self._dict(value, depth)
            return [self._value(item, depth + 1) for item in value]
        except Exception:  # a Mapping whose items() raises: nothing of it is kept
            return FILTERED
