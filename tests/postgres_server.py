"""A real PostgreSQL server for the tests: Debian's `postgresql` package, started on 127.0.0.1
in a temporary directory on a free port, with password authentication.

initdb refuses to run as root; as root the server runs as the `postgres` user the package
creates (or a `kubebot-pg` user made here when it is missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.conftest import free_port

ADMIN = "kubebot"
SERVICE_USER = "postgres"
FALLBACK_USER = "kubebot-pg"


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed: `make system-deps` installs Debian's postgresql")
    return Path(pg_ctl).parent


def _run_as() -> str | None:
    """The user to run the server as, or None to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in (SERVICE_USER, FALLBACK_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_USER], check=True)
    return FALLBACK_USER


@dataclass
class PostgresServer:
    root: Path
    port: int
    password: str
    user: str | None
    bin: Path = field(default_factory=server_binaries)
    databases: int = 0

    @classmethod
    def create(cls) -> PostgresServer:
        user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="kubebot-pg-"))
        password = secrets.token_hex(12)
        server = cls(root=root, port=free_port(), password=password, user=user)
        server.password_file.write_text(password + "\n", encoding="utf-8")
        if user is not None:
            shutil.chown(root, user)
            shutil.chown(server.password_file, user)
        server._as_owner(
            str(server.bin / "initdb"),
            "-D",
            str(server.data),
            "-U",
            ADMIN,
            "--auth=scram-sha-256",
            f"--pwfile={server.password_file}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return server

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ADMIN}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user is not None else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        # fsync off: a test server's data need not survive a power cut, and it halves the run.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._as_owner(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"
        )

    def stop(self) -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        self.databases += 1
        name = f"kb{self.databases}"
        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
