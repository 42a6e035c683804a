"""``dxtrack doctor``: checks what the environment configures, and says how to fix what is wrong."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from rich.text import Text

from dxtrack.cli import render
from dxtrack.config import Config


@dataclass
class Check:
    """One check's answer; ``fix`` says what to do when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_config() -> tuple[Check, Config | None]:
    """The configuration that ``dxtrack.configure()`` would build from the environment."""
    from dxtrack.config import build_config

    try:
        config = build_config(context=os.environ.get("DXTRACK_CONTEXT") or "dxtrack-doctor")
    except ValueError as exc:
        return Check("configuration", False, str(exc), "set or correct the variable named"), None
    where = config.output_dir if config.stage == "test" else "Kinesis Firehose"
    return Check("configuration", True, f"stage {config.stage}: records go to {where}"), config


def check_output_dir(config: Config) -> Check:
    """Stage test: the output directory can be written."""
    directory = config.output_dir.absolute()
    probe = directory / f".dxtrack-doctor-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Check("output directory", False, f"{directory}: {exc}", "set DXTRACK_OUTPUT_DIR")
    return Check("output directory", True, f"{directory} is writable")


def _session(config: Config) -> Any:
    from dxtrack.sinks.aws_clients import aws_session as firehose_session

    session, error = firehose_session(config)
    if session is None:
        raise RuntimeError(f"AWS profile {config.profile_name!r} not found ({error})")
    return session


def check_credentials(config: Config) -> Check:
    """AWS credentials are found and accepted (STS GetCallerIdentity)."""
    import botocore.exceptions

    fix = "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a role"
    try:
        session = _session(config)
        if session.get_credentials() is None:
            return Check("AWS credentials", False, "no credentials were found", fix)
        region = config.region_name or session.region_name
        identity = session.client("sts", region_name=region).get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return Check("AWS credentials", False, str(exc), fix)
    except RuntimeError as exc:
        return Check("AWS credentials", False, str(exc), "fix DXTRACK_PROFILE_NAME")
    return Check("AWS credentials", True, f"accepted: {identity.get('Arn', '?')}")


def check_stream(config: Config, name: str) -> Check:
    """The delivery stream exists and is active."""
    import botocore.exceptions

    title = f"stream {name}"
    try:
        session = _session(config)
        client = session.client("firehose", region_name=config.region_name or session.region_name)
        described = client.describe_delivery_stream(DeliveryStreamName=name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return Check(
            title,
            False,
            str(exc),
            "deploy infra/dxtrack.yaml in this account and region, or set the stream names "
            "(DXTRACK_ERROR_STREAM, DXTRACK_METRIC_STREAM) and the region (AWS_DEFAULT_REGION)",
        )
    except RuntimeError as exc:
        return Check(title, False, str(exc), "fix DXTRACK_PROFILE_NAME")
    status = described["DeliveryStreamDescription"]["DeliveryStreamStatus"]
    if status != "ACTIVE":
        return Check(title, False, f"status {status}", "wait until the stream is ACTIVE")
    return Check(title, True, "exists and is ACTIVE")


def check_spool(config: Config) -> Check:
    """The spool directory is safe (private, no symbolic links) and has free space."""
    from dxtrack.delivery.private_dir import UnsafeDirectory, open_private_dir
    from dxtrack.wiring import default_spool_dir

    root = Path(config.spool_dir or default_spool_dir())
    fix = "set DXTRACK_SPOOL_DIR to a directory of your own, on a disk with space"
    try:
        fd = open_private_dir(root / ".doctor", private_depth=2)
        os.close(fd)
        os.rmdir(root / ".doctor")
    except (UnsafeDirectory, OSError) as exc:
        return Check("spool directory", False, f"{root}: {exc}", fix)
    free = shutil.disk_usage(root).free
    if free < config.max_spool_bytes:
        detail = (
            f"{root}: {free:,} bytes free, less than max_spool_bytes ({config.max_spool_bytes:,})"
        )
        return Check("spool directory", False, detail, fix)
    return Check("spool directory", True, f"{root}: safe, {free / 2**30:.1f} GiB free")


def check_papertrail(config: Config) -> Check:
    """Papertrail's endpoint answers a connection (TLS when that is the transport)."""
    if config.papertrail_hostport:
        host, _, port_text = config.papertrail_hostport.rpartition(":")
        port = int(port_text)
        tls = config.papertrail_transport == "tls"
        cafile = config.papertrail_ca_file
        if config.papertrail_transport == "udp":
            return Check("Papertrail", True, f"UDP to {host}:{port}: not checked (no answer)")
    else:
        parts = urlsplit(config.papertrail_url)
        host, port, tls, cafile = parts.hostname or "", parts.port or 443, True, None
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            if tls:
                context = ssl.create_default_context(cafile=cafile)
                with context.wrap_socket(raw, server_hostname=host):
                    pass
    except (OSError, ValueError) as exc:
        return Check(
            "Papertrail",
            False,
            f"{host}:{port}: {exc}",
            "check DXTRACK_PAPERTRAIL_HOSTPORT (or the URL), the firewall, and the CA file",
        )
    return Check("Papertrail", True, f"{host}:{port} answers{' over TLS' if tls else ''}")


def run_checks() -> list[Check]:
    """Every check that applies to the environment's configuration."""
    first, config = check_config()
    checks = [first]
    if config is None:
        return checks
    steps: list[Callable[[], Check]] = []
    if config.stage == "test":
        steps.append(lambda: check_output_dir(config))
    else:
        steps.append(lambda: check_credentials(config))
        for stream in (config.error_stream, config.metric_stream):
            steps.append(lambda stream=stream: check_stream(config, stream))  # type: ignore[misc]
        steps.append(lambda: check_spool(config))
    if config.ships_to_papertrail:
        steps.append(lambda: check_papertrail(config))
    checks += [step() for step in steps]
    return checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def doctor(as_json: bool) -> None:
    """Check the configuration the environment gives, the AWS credentials, the streams, the
    spool directory and Papertrail; exits 1 when something is wrong."""
    checks = run_checks()
    if as_json:
        render.emit_json([check.__dict__ for check in checks])
    else:
        for check in checks:
            line = Text(
                "  ok  " if check.ok else " FAIL ", style="green" if check.ok else "bold red"
            )
            line.append(f"{check.name}: ", style="bold")
            line.append(check.detail)
            render.console.print(line)
            if not check.ok and check.fix:
                render.console.print(Text(f"       fix: {check.fix}", style="yellow"))
    if not all(check.ok for check in checks):
        raise SystemExit(1)
