"""The SQLite database (with its -wal and -shm) and the secret key file are readable by their owner only.

Run under the usual umask (022), which would otherwise leave them world-readable: a fresh
data dir is created 0700 and the files in it 0600, whether Errand starts through the CLI
or through ``create_app``; files an older Errand left readable are narrowed on the next start.
"""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from errand.identity import service as identity_service
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from tests.conftest import free_port, running

ERRAND = str(Path(sys.executable).parent / "errand")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRAND_")}
    env["ERRAND_DATA_DIR"] = str(data_dir)
    return subprocess.run([ERRAND, *args], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(0o022))


def test_migrate_and_create_api_key_make_a_private_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    migrated = cli("migrate", data_dir=data_dir)
    assert migrated.returncode == 0, migrated.stderr
    created = cli("create-api-key", "--org", "Modes", data_dir=data_dir)
    assert created.returncode == 0, created.stderr

    assert mode(data_dir) == 0o700
    assert mode(data_dir / "errand.db") == 0o600
    assert mode(data_dir / "secret.key") == 0o600
    assert [p.name for p in data_dir.iterdir() if mode(p) & 0o077] == []


def test_files_an_older_errand_left_readable_are_narrowed_on_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    (data_dir / "secret.key").write_text(Fernet.generate_key().decode())
    (data_dir / "errand.db").touch()
    for name in ("secret.key", "errand.db"):
        os.chmod(data_dir / name, 0o644)

    assert cli("migrate", data_dir=data_dir).returncode == 0
    created = cli("create-api-key", "--org", "Modes", data_dir=data_dir)
    assert created.returncode == 0, created.stderr

    assert mode(data_dir / "errand.db") == 0o600
    assert mode(data_dir / "secret.key") == 0o600
    assert mode(data_dir) == 0o755  # a directory the operator made is theirs to set


async def test_a_running_server_keeps_its_database_wal_shm_and_key_private(
    tmp_path: Path, usual_umask: None
) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(data_dir=data_dir, port=free_port())
    await upgrade_to_head(settings.effective_database_url)
    async with running(settings) as base_url:
        db = Database(settings.effective_database_url)
        try:
            async with db.unit_of_work() as session:
                issued = await identity_service.create_api_key(
                    session, organization_name="Modes", env="live", scenarios=["restaurant"], prefix="ar")
        finally:
            await db.dispose()
        async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {issued.plaintext}"}) as client:
            booked = await client.post("/api/v1/agent/restaurant/book", json={
                "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
                "datetime": "2027-06-01T19:00:00", "customer": {"name": "Modes Test"}})
            assert booked.status_code == 201, booked.text
        # While the server runs, SQLite keeps its write-ahead log and shared memory beside the file.
        names = {p.name: mode(p) for p in data_dir.iterdir()}

    assert mode(data_dir) == 0o700
    assert {"errand.db", "errand.db-wal", "errand.db-shm", "secret.key"} <= set(names), names
    assert {name: m for name, m in names.items() if m != 0o600} == {}
