"""The image and its containers through buildah and podman: a container is the image's file
system, in which `buildah run --isolation chroot` runs a command as the image's user, with
its environment and the host's network (`podman run` cannot start containers here)."""

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout)


@dataclass(frozen=True)
class Image:
    name: str
    config: dict[str, Any]  # the Docker configuration: User, Env, Entrypoint, Cmd, Healthcheck
    size: int  # bytes, as podman counts them (its layers, uncompressed)

    @classmethod
    def inspect(cls, name: str) -> "Image":
        inspected = json.loads(_run("buildah", "inspect", "--type", "image", name).stdout)
        size = _run("podman", "image", "inspect", "--format", "{{.Size}}", name).stdout
        return cls(name, inspected["Docker"]["config"], int(size))

    @property
    def env(self) -> dict[str, str]:
        return dict(entry.split("=", 1) for entry in self.config.get("Env") or [])


class Container:
    """A working container of the image: removed (with what its commands wrote) on close."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.name = f"hospital-api-test-{secrets.token_hex(4)}"
        _run("buildah", "from", "--pull=never", "--name", self.name, image.name)

    def command(self, *args: str, env: Mapping[str, str] | None = None) -> list[str]:
        options = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return ["buildah", "run", "--isolation", "chroot", *options, self.name, "--", *args]

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, env=env), capture_output=True, text=True, timeout=timeout
        )

    @contextmanager
    def mounted(self) -> Iterator[Path]:
        """The container's root file system, on the host."""
        root = Path(_run("buildah", "mount", self.name).stdout.strip())
        try:
            yield root
        finally:
            _run("buildah", "umount", self.name)

    def close(self) -> None:
        _run("buildah", "rm", self.name)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = []
    pending = [pid]
    while pending:
        for child in children(pending.pop()):
            found.append(child)
            pending.append(child)
    return found


def process_name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid (effective, saved and fs follow it)
    raise AssertionError(f"no Uid line for process {pid}")


def kill_all(runner: subprocess.Popen[str]) -> None:
    """Everything a `buildah run` started: the runner leads its own process group, which its
    command's processes (uvicorn's workers included) stay in."""
    try:
        os.killpg(runner.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    runner.wait()
