"""A Keycloak of the bench's own on PostgreSQL, for comparing like with like: identity runs on PostgreSQL in
``make bench``, so Keycloak does too (``kc.sh start --db postgres``), not the shared development Keycloak on
8080 (``start-dev``, H2), which the bench never touches.

The distribution is the one ``deploy/keycloak.sh`` downloads (its zip in ``var/cache``), unpacked into a
folder of the bench's own (a ``--db postgres`` build rewrites the distribution's ``lib/quarkus``), and it
listens on ``BENCH_KEYCLOAK_PORT`` (default 8180, management 9180) with its database
``klients_bench_keycloak`` (kept between runs: creating Keycloak's schema takes a minute).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("KEYCLOAK_VERSION", "26.7.3")
PORT = int(os.environ.get("BENCH_KEYCLOAK_PORT", "8180"))
MANAGEMENT_PORT = PORT + 1000
DATABASE = "klients_bench_keycloak"


def _var() -> Path:
    return Path(os.environ.get("KLIENTS_VAR_DIR", ROOT / "var"))


def _zip() -> Path:
    for var in (ROOT / "var", _var(), Path("/work/main/var")):
        candidate = var / "cache" / f"keycloak-quarkus-dist-{VERSION}.zip"
        if candidate.is_file():
            return candidate
    subprocess.run(["bash", str(ROOT / "deploy" / "keycloak.sh")], check=True)  # downloads it (and starts 8080)
    return ROOT / "var" / "cache" / f"keycloak-quarkus-dist-{VERSION}.zip"


def _home() -> Path:
    home = ROOT / "var" / "bench" / f"keycloak-{VERSION}"
    if not (home / "bin" / "kc.sh").is_file():
        home.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(_zip()) as archive:
            archive.extractall(home.parent)
        for script in (home / "bin").glob("*.sh"):
            script.chmod(0o755)
    return home


def _database_url() -> str:
    """The bench database's JDBC URL, on the PostgreSQL and role the other databases use."""
    base = os.environ["IDENTITY_DATABASE_URL"].rsplit("/", 1)[0]
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}) is None:
            conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    engine.dispose()
    return f"jdbc:postgresql://{engine.url.host}:{engine.url.port or 5432}/{DATABASE}"


class KeycloakOnPostgres:
    """``with KeycloakOnPostgres() as kc:`` starts it; ``kc.url`` is its base URL, ``kc.pid`` the root of its
    processes (kc.sh and the JVM under it)."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{PORT}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> KeycloakOnPostgres:
        home = _home()
        url = _database_url()
        user = create_engine(os.environ["IDENTITY_DATABASE_URL"]).url
        env = {**os.environ, "KC_BOOTSTRAP_ADMIN_USERNAME": os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
               "KC_BOOTSTRAP_ADMIN_PASSWORD": os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
               "JAVA_OPTS_KC_HEAP": "-Xms256m -Xmx1g"}
        for jdk in ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/java-21-openjdk-amd64"):
            if "JAVA_HOME" not in env and Path(jdk, "bin", "java").is_file():
                env["JAVA_HOME"] = jdk
        log = (_var() / "log")
        log.mkdir(parents=True, exist_ok=True)
        with (log / "keycloak-bench.log").open("ab") as out:
            # A session of its own: kc.sh starts the JVM as its child, and both are stopped together.
            self.proc = subprocess.Popen(
                [str(home / "bin" / "kc.sh"), "start", "--db=postgres", f"--db-url={url}",
                 f"--db-username={user.username}", f"--db-password={user.password}",
                 "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={PORT}", "--hostname-strict=false",
                 "--health-enabled=true", f"--http-management-port={MANAGEMENT_PORT}", "--log-level=warn"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bench Keycloak exited ({self.proc.returncode}); see {log}/keycloak-bench.log")
            try:
                if requests.get(f"http://127.0.0.1:{MANAGEMENT_PORT}/health/ready", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        self.__exit__()
        raise RuntimeError("the bench Keycloak did not become ready within 300 s")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this class started: kc.sh and its JVM
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
