"""One boto3 session and Firehose client for all the sinks with the same AWS settings, for as
long as any of them is open.

A boto3 session costs about 50 ms of CPU to make and a client as much again, on threads that
hold the GIL the application needs. A ``configure()`` that replaces another makes its sinks
while the previous ones are still open, so it reuses their client: its senders start at once,
and the previous configuration's senders, which deliver what it had left, share the same warm
connections. Once the last sink with those settings closes, so does the client: a later
``configure()`` reads the AWS configuration afresh.

The settings are the configuration's credentials, profile and region, every ``AWS_*``
environment variable, the AWS config and credentials files (by path, size and times, so that
rotated keys are read by the next ``configure()``), and whether moto's in-process mock is
active; they are kept only as a digest. A forked child shares nothing with its parent, even
when its own fork handlers run before this module's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

import xxhash

from dxtrack.config import DEFAULT_REGION, Config


def aws_session(config: Config) -> tuple[Any, Exception | None]:
    """A new boto3 session with the configured credentials, or the error that prevented it."""
    import boto3
    import botocore.exceptions

    try:
        if config.aws_access_key_id and config.aws_secret_access_key:
            return boto3.session.Session(
                aws_access_key_id=config.aws_access_key_id,
                aws_secret_access_key=config.aws_secret_access_key,
            ), None
        if config.profile_name:
            return boto3.session.Session(profile_name=config.profile_name), None
        return boto3.session.Session(), None
    except botocore.exceptions.ProfileNotFound as exc:
        return None, exc


def moto_mock_active() -> bool:
    """Whether moto's in-process ``mock_aws`` is on (its requests never leave the process)."""
    models = sys.modules.get("moto.core.models")
    return bool(getattr(getattr(models, "MockAWS", None), "_mocks_active", False))


class ClientClosed(Exception):
    """The shared client was closed: its last sink stopped using it."""


class SharedClient:
    """A session, and the Firehose client made from it on first use, with a count of the sinks
    that use them."""

    def __init__(self, key: str, config: Config) -> None:
        self.key = key
        self.users = 0
        self.config = config
        self.session, self.session_error = aws_session(config)
        session_region = None if self.session is None else self.session.region_name
        self.region: str = config.region_name or session_region or DEFAULT_REGION
        self.endpoint = "moto:mock_aws" if moto_mock_active() else self._endpoint()
        self.body = threading.local()
        """Each sender thread's request body, handed to botocore by ``_swap_body``."""
        self._client: Any = None
        self._closed = False
        # re-entrant: a collection while the client is made may run the finalizer of a sink
        # that was never closed, on this thread, and its release closes this
        self._lock = threading.RLock()

    def _endpoint(self) -> str:
        """Where requests go: an endpoint from boto3's configuration (``AWS_ENDPOINT_URL``...),
        or AWS itself."""
        if self.session is None:
            return "aws"
        try:
            from botocore.configprovider import ConfiguredEndpointProvider

            inner = self.session._session
            provider = ConfiguredEndpointProvider(
                full_config=inner.full_config,
                scoped_config=inner.get_scoped_config(),
                client_name="firehose",
            )
            return str(provider.provide() or "aws")
        except Exception:  # an older botocore: the variables it has always read
            return os.environ.get("AWS_ENDPOINT_URL_FIREHOSE") or os.environ.get(
                "AWS_ENDPOINT_URL", "aws"
            )

    def client(self) -> Any:
        """The Firehose client, made on the first call (raises what boto3 raises, and
        ``ClientClosed`` once closed)."""
        with self._lock:
            if self._closed:
                raise ClientClosed(self.key)
            if self._client is None:
                client = self._make_client()
                if self._closed:  # closed while it was made (see ``_lock``)
                    with contextlib.suppress(Exception):
                        client.close()
                    raise ClientClosed(self.key)
                self._client = client
            return self._client

    @property
    def started(self) -> bool:
        return self._client is not None

    def _make_client(self) -> Any:
        import botocore.config

        if self.session is None:
            self.session, self.session_error = aws_session(self.config)
            if self.session is None:
                raise LookupError(str(self.session_error))
        client = self.session.client(
            "firehose",
            region_name=self.region,
            config=botocore.config.Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=5,
                read_timeout=15,
                max_pool_connections=MAX_CONNECTIONS,
            ),
        )
        # First, so that every other handler (and any retry) sees the body that is sent.
        client.meta.events.register_first(
            "before-call.firehose.PutRecordBatch", self._swap_body, unique_id="dxtrack:body"
        )
        return client

    def _swap_body(self, params: dict[str, Any], **_: Any) -> None:
        body = getattr(self.body, "data", None)
        if body is not None:
            params["body"] = body

    def close(self) -> None:
        """Close the client's HTTP connections."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
        if client is not None:
            with contextlib.suppress(Exception):  # sockets of a client nobody uses
                client.close()


MAX_CONNECTIONS = 32
"""Kept-alive connections of one shared client: two calls in flight for each of two streams,
for up to eight configurations at once (each ``configure()`` delivers what the one it replaced
had left beside its own). urllib3 opens a connection only when a call needs one; past this many
at once, it closes the extra one after its call and logs a warning."""

_lock = threading.RLock()  # re-entrant for the same reason as ``SharedClient._lock``
_shared: dict[str, SharedClient] = {}
_owner = os.getpid()


def _registry() -> tuple[threading.RLock, dict[str, SharedClient]]:
    """The lock and the clients of this process: a forked child's own, though another fork
    handler (dxtrack's child handler remaking its sinks) ran before this module's."""
    _after_fork_in_child()
    return _lock, _shared


def _file_stamp(variable: str, default: str) -> str:
    """The file botocore reads (its path expanded as botocore does), as it is now: a key
    rotated in place changes its ctime, whatever it does to the size and modification time."""
    path = os.path.expanduser(os.path.expandvars(os.environ.get(variable) or default))
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_size}:{stat.st_ino}"


def settings_key(config: Config) -> str:
    """A digest of everything that decides the session, the region and the endpoint."""
    # a copy of the names, and get(): another thread may change the environment meanwhile
    names = sorted(name for name in list(os.environ) if name.startswith("AWS_"))
    parts = [
        config.aws_access_key_id or "",
        config.aws_secret_access_key or "",
        config.profile_name or "",
        config.region_name or "",
        str(moto_mock_active()),
        _file_stamp("AWS_CONFIG_FILE", "~/.aws/config"),
        _file_stamp("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        *(f"{name}={os.environ.get(name, '')}" for name in names),
    ]
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode())


def acquire(config: Config) -> SharedClient:
    """The shared client for ``config``'s settings, counted as used until ``release``."""
    key = settings_key(config)
    lock, shared_clients = _registry()
    with lock:
        shared = shared_clients.get(key)
        if shared is not None:
            shared.users += 1
            return shared
    made = SharedClient(key, config)  # a boto3 session: not while holding the lock
    lock, shared_clients = _registry()
    with lock:
        shared = shared_clients.setdefault(key, made)
        shared.users += 1
        return shared


def release(shared: SharedClient) -> None:
    """One user fewer; the last one closes the client."""
    lock, shared_clients = _registry()
    with lock:
        shared.users -= 1
        if shared.users > 0:
            return
        if shared_clients.get(shared.key) is shared:
            del shared_clients[shared.key]
    shared.close()


def _after_fork_in_child() -> None:
    global _lock, _shared, _owner
    if _owner != os.getpid():  # once per child, whichever of its callers comes first
        _lock, _shared, _owner = threading.RLock(), {}, os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
