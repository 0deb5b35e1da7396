"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder, unix socket only.

One server per test session (conftest's ``postgres_server``), one fresh database per test. The server
listens on no TCP address: its socket lies in the temporary folder (mode 0700), so only this user (and
root) can reach it, and no port can clash with another server. PostgreSQL refuses to run as root: under
root the folder is given to the unprivileged user ``nobody`` and every server command runs as that user
(``subprocess``'s ``user=``/``group=``); the tests, as root, still connect through the socket.
fsync is off: the data is thrown away, and a killed client is rolled back by the server either way.
The test databases sort text under ICU's en-US collation where the server has ICU ('alpha' before
'Zeta', unlike SQLite), so the store's frame() must ask for SQLite's order to pass.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BINARIES = ("initdb", "pg_ctl", "postgres")
EXTRA_FOLDERS = (Path("/usr/local/pgsql/bin"),)  # a source build's default prefix
RUN_AS_WHEN_ROOT = "nobody"


def binaries_folder() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    candidates = [Path(p).resolve().parent for p in (shutil.which("pg_ctl"),) if p]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    candidates += EXTRA_FOLDERS
    return next((d for d in candidates if all((d / b).is_file() for b in BINARIES)), None)


def missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (a line for pytest.skip), or None."""
    if binaries_folder() is None:
        return ("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or under "
                "/usr/lib/postgresql/*/bin: install PostgreSQL (apt-get install postgresql) to run these tests")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]'): the store reaches PostgreSQL through it"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS_WHEN_ROOT)
        except KeyError:
            return f"running as root, and there is no user {RUN_AS_WHEN_ROOT!r} to run the PostgreSQL server as"
    return None


def _free_port() -> int:
    # The server listens on no TCP address; the port only names its socket file. A free one all the same.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl start on construction; ``url(name)`` creates a database; ``stop()`` removes it all."""

    def __init__(self) -> None:
        self.bin = binaries_folder()
        assert self.bin is not None, missing()
        self.root = Path(tempfile.mkdtemp(prefix="benchmarks-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self._as: dict = {}
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam(RUN_AS_WHEN_ROOT)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self._count = 0
        try:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                      "--no-sync")
            options = f"-F -p {self.port} -k {self.root} -c listen_addresses='' -c max_connections=60"
            self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")
        except BaseException:
            self.stop()
            raise

    def _run(self, program: str, *args: object) -> None:
        done = subprocess.run([str(self.bin / program), *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"}, **self._as)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}{log}")

    def url(self, name: str | None = None) -> str:
        """A new, empty database on the server (named ``name``, else numbered): its URL."""
        import psycopg

        self._count += 1
        name = name or f"db{self._count}"
        with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as con:
            try:  # a collation that sorts unlike SQLite ('alpha' < 'Zeta'), as a real server's often does
                con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE \'en-US\'')
            except psycopg.Error:  # a server built without ICU
                con.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
