"""``errand`` commands: serve, migrate, and API key management."""

import asyncio
import json
import os
from typing import Annotated

import typer
from rich.console import Console

from errand.identity import service as identity_service
from errand.identity.schemas import IssuedKey
from errand.kit import crypto
from errand.kit.config import Settings, get_settings
from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.kit.migrations import upgrade_to_head

app = typer.Typer(help="Errand: an execution gateway for AI agents.", no_args_is_help=True)
console = Console(stderr=True)

DEMO_ORG = "Demo"


def _fail(exc: DomainError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(code=1)


async def _with_db(settings: Settings, work):  # type: ignore[no-untyped-def]
    crypto.configure(crypto.load_or_create_key(settings.secret_key, settings.data_dir))
    db = Database(settings.effective_database_url)
    try:
        async with db.unit_of_work() as session:
            return await work(session)
    finally:
        await db.dispose()


async def _mint_demo_keys(settings: Settings) -> list[IssuedKey]:
    async def work(session):  # type: ignore[no-untyped-def]
        if await identity_service.has_organizations(session):
            return []
        all_scenarios = list(identity_service.SCENARIOS)
        return [
            await identity_service.create_api_key(session, organization_name=DEMO_ORG, env="live", prefix="ar",
                                                  scenarios=all_scenarios, name="demo live key"),
            await identity_service.create_api_key(session, organization_name=DEMO_ORG, env="test", prefix="ar",
                                                  scenarios=all_scenarios, name="demo test key"),
            await identity_service.create_api_key(session, organization_name=DEMO_ORG, env="live", prefix="ar",
                                                  scenarios=all_scenarios, role="admin", name="demo admin key"),
        ]

    return await _with_db(settings, work)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (SQLite or PostgreSQL, from ERRAND_DATABASE_URL)."""
    settings = get_settings()
    asyncio.run(upgrade_to_head(settings.effective_database_url))
    console.print("Database is up to date.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run background work in this process.")] = False,
) -> None:
    """Start Errand: every dialect, the sandbox marketplace and the in-process runner."""
    import uvicorn

    # The app is built by the composition root from the environment, as in any deployment.
    os.environ.update(ERRAND_HOST=host, ERRAND_PORT=str(port), ERRAND_WORKER=str(not no_worker).lower())
    get_settings.cache_clear()
    settings = get_settings()
    asyncio.run(upgrade_to_head(settings.effective_database_url))
    keys = asyncio.run(_mint_demo_keys(settings))
    if keys:
        console.print(f"[bold]First start: created the organization '{DEMO_ORG}' and these keys.[/bold]")
        console.print("They are shown once and stored only as hashes; copy them now.")
        for key in keys:
            console.print(f"  {key.env} {key.role:5} key: [green]{key.plaintext}[/green]")
    console.print(f"Errand listening on http://{host}:{port}  (database: {settings.effective_database_url})")
    uvicorn.run("errand.main:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command("create-api-key")
def create_api_key(
    org: Annotated[str, typer.Option(help="Organization name; created if it does not exist.")],
    env: Annotated[str, typer.Option(help="live or test (test keys only reach sandbox providers).")] = "live",
    scenarios: Annotated[str, typer.Option(help="Comma-separated: restaurant,hotel,flight,activity.")] = "restaurant,hotel,flight,activity",
    prefix: Annotated[str, typer.Option(help="Key prefix: ogk or ar.")] = "ogk",
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
    expires_in_days: Annotated[int | None, typer.Option(help="Expire the key after N days.")] = None,
    role: Annotated[str, typer.Option(help="agent (acts) or admin (also manages policies and decides approvals).")] = "agent",
    rate_limit_per_day: Annotated[int, typer.Option(help="Requests this key may make per day.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Mint an API key. The plaintext key is printed once, alone on the last line."""
    settings = get_settings()
    wanted = [s.strip() for s in scenarios.split(",") if s.strip()]
    if not as_json:
        console.print(f"Creating a {env} {role} key for organization '{org}' (scenarios: {', '.join(wanted)}).")

    async def work(session):  # type: ignore[no-untyped-def]
        return await identity_service.create_api_key(
            session, organization_name=org, env=env, scenarios=wanted, prefix=prefix, role=role, name=name,
            expires_in_days=expires_in_days, rate_limit_per_day=rate_limit_per_day,
        )

    try:
        key = asyncio.run(_with_db(settings, work))
    except DomainError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({
            "id": key.id, "organization": key.organization_name, "prefix": key.prefix, "env": key.env,
            "role": key.role, "scenarios": list(key.scenarios),
            "expiresAt": key.expires_at.isoformat() if key.expires_at else None, "key": key.plaintext,
        }))
        return
    console.print(f"Key {key.id} ({key.prefix}…) created. Store it now: it cannot be shown again.")
    typer.echo(key.plaintext)


@app.command("revoke-api-key")
def revoke_api_key(
    prefix: Annotated[str, typer.Argument(help="The key's displayed prefix (first 12 characters) or its id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revoke an API key; it stops working at once."""
    if not yes and not typer.confirm(f"Revoke the API key {prefix}? Agents using it will stop working."):
        raise typer.Exit(code=1)
    settings = get_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        return await identity_service.revoke_api_key(session, prefix)

    try:
        key = asyncio.run(_with_db(settings, work))
    except DomainError as exc:
        _fail(exc)
    console.print(f"Revoked {key.id} ({key.prefix}…).")


if __name__ == "__main__":
    app()
