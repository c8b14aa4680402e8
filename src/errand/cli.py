"""``errand`` commands: serve, worker, sandbox, migrate, API key management, credit allocations and notification contacts."""

import asyncio
import errno
import importlib
import json
import os
import socket
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from sqlalchemy.engine import make_url

from errand.automations import service as automations_service
from errand.identity import service as identity_service
from errand.identity.schemas import IssuedKey
from errand.kit import crypto
from errand.kit.config import Settings, get_settings
from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.notify import service as notify_service

app = typer.Typer(help="Errand: an execution gateway for AI agents.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # messages stay whole lines, whatever the terminal width

DEMO_ORG = "Demo"
# The worker process is assembled by the composition root (it needs every module's periodic
# work), which the CLI sits beside and does not import: like `serve`, which hands uvicorn
# "errand.main:create_app", `worker` names its entry point and loads it when it runs.
WORKER_ENTRY_POINT = "errand.main:run_worker"
APP_FACTORY = "errand.main:create_app"
SANDBOX_APP_FACTORY = "errand.main:create_sandbox_app"


def _fail(exc: DomainError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(code=1)


def _settings() -> Settings:
    """The settings from the environment; a misconfiguration is one readable line, not a traceback."""
    get_settings.cache_clear()
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            console.print(f"[red]error:[/red] {'ERRAND_' + where.upper() + ': ' if where else ''}{message}")
        raise typer.Exit(code=2) from None


def _display_url(settings: Settings) -> str:
    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


async def _upgrade(url: str, queue: bool) -> bool:
    """Errand's schema, and on PostgreSQL (with ``queue``) the job queue's tables; whether the queue's were created."""
    # Alembic is imported here, not at the top: `errand mcp` never migrates and starts faster without it.
    from errand.kit.migrations import upgrade_queue_schema, upgrade_to_head

    await upgrade_to_head(url)
    return queue and await upgrade_queue_schema(url)


def _upgrade_now(url: str, queue: bool = True) -> bool:
    return asyncio.run(_upgrade(url, queue))


def _upgrade_apart(url: str, queue: bool = True) -> bool:
    """:func:`_upgrade` in a short-lived child process, for the commands that go on to serve.

    Alembic and procrastinate, once imported, would stay in the server's memory for nothing
    (about 20 MB of a ~150 MB process); the child takes them away when it exits. Errors from
    the database propagate as they would in-process.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_upgrade_now, url, queue).result()


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
    """Bring the database schema up to date (SQLite or PostgreSQL, from ERRAND_DATABASE_URL).

    On PostgreSQL this also creates the job queue's tables (procrastinate's) if they are missing.
    """
    settings = _settings()
    if _upgrade_now(settings.effective_database_url):
        console.print("Created the job queue's tables (procrastinate).")
    console.print("Database is up to date.")


def _reachable(host: str) -> str:
    """``host`` as it goes in a URL that reaches it: a wildcard bind address is reached on the loopback one."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _listen(host: str, port: int, command: str = "serve") -> socket.socket:
    """A socket bound to ``host:port`` and listening, handed to uvicorn; a busy port ends the command.

    Bound before anything else happens, so a port in use never costs the demo keys: they
    are minted (and shown once) only by a start that will serve."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(code=1) from None
    try:
        # As uvicorn does: a port left in TIME_WAIT by the previous run is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "it is already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        console.print(f"[red]error:[/red] cannot listen on {host}:{port}: {reason}. Stop what is using it, "
                      f"or choose another port: errand {command} --port N"
                      + (" (make run PORT=N)." if command == "serve" else "."))
        raise typer.Exit(code=1) from None
    return sock


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.", envvar="ERRAND_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1-65535).", envvar="ERRAND_PORT",
                                      min=1, max=65535)] = 3000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run background work in this process.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes sharing the port (more than 1 "
                                                              "needs PostgreSQL).")] = 1,
) -> None:
    """Start Errand: every dialect, the sandbox marketplace and background work.

    Background work is the in-process runner by default; with ERRAND_RUNNER=procrastinate
    jobs go to the queue on PostgreSQL and this process also consumes it, unless
    --no-worker leaves that to `errand worker` processes. On SQLite nothing but this
    process can run jobs, so --no-worker is refused there. With ERRAND_SANDBOX_URL naming
    another server (`errand sandbox`) the sandbox is not mounted here. The port is checked
    before anything else: a busy one ends the command with exit code 1.

    --workers N starts N uvicorn worker processes on the one port, each with its own runner
    and periodic work (jobs are claimed in the database, so each runs once). Migrations and
    the demo keys happen once, here, before they start. It needs PostgreSQL (SQLite takes one
    writer at a time; refused there with exit code 2), and should have ERRAND_REDIS_URL, else
    each worker counts rate limits in its own memory (a key may make N times its limit).
    """
    import uvicorn

    # The app is built by the composition root from the environment, as in any deployment.
    os.environ.update(ERRAND_HOST=host, ERRAND_PORT=str(port), ERRAND_WORKER=str(not no_worker).lower())
    settings = _settings()
    on_postgres = settings.effective_database_url.startswith("postgresql")
    if no_worker and not on_postgres:
        console.print("[red]error:[/red] --no-worker on SQLite would accept jobs that nothing ever runs. "
                      "With SQLite, run `errand serve` (its in-process runner runs jobs); or use PostgreSQL "
                      "(ERRAND_DATABASE_URL=postgresql+asyncpg://…) with ERRAND_RUNNER=procrastinate and "
                      "`errand worker` processes beside `errand serve --no-worker`.")
        raise typer.Exit(code=2)
    if workers > 1 and not on_postgres:
        console.print("[red]error:[/red] --workers on SQLite would only make processes wait for each other: "
                      "SQLite takes one writer at a time. Run one `errand serve`, or use PostgreSQL "
                      "(ERRAND_DATABASE_URL=postgresql+asyncpg://…) for several workers.")
        raise typer.Exit(code=2)
    if workers > 1 and not settings.redis_url:
        console.print("[yellow]note:[/yellow] without ERRAND_REDIS_URL each worker counts rate limits in its own "
                      f"memory, so a key may make up to {workers} times its limit.")
    sock = _listen(host, port)
    _upgrade_apart(settings.effective_database_url)
    keys = asyncio.run(_mint_demo_keys(settings))
    if keys:
        console.print(f"[bold]First start: created the organization '{DEMO_ORG}' and these keys.[/bold]")
        console.print("They are shown once and stored only as hashes; copy them now.")
        for key in keys:
            console.print(f"  {key.env} {key.role:5} key: [green]{key.plaintext}[/green]")
    runner = settings.runner + ("" if settings.worker else ", jobs left to `errand worker`")
    sandbox = "" if settings.sandbox_embedded_here else f"; sandbox: {settings.effective_sandbox_url}"
    processes = f"; {workers} workers" if workers > 1 else ""
    console.print(f"Errand listening on http://{host}:{port}  (database: {_display_url(settings)}; "
                  f"runner: {runner}{sandbox}{processes})")
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, log_level="warning", workers=workers)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


@app.command("sandbox")
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1-65535).", min=1, max=65535)] = 3001,
) -> None:
    """Serve the sandbox marketplace alone, for `errand serve` processes pointed at it by ERRAND_SANDBOX_URL.

    Its API and pages live under http://HOST:PORT/sandbox/, as when `errand serve` mounts
    it, so `ERRAND_SANDBOX_URL=http://HOST:PORT/sandbox errand serve` uses it unchanged (and
    mounts no sandbox of its own). Its database is ERRAND_SANDBOX_DATABASE_URL, else its own
    SQLite file DATA_DIR/sandbox.db, migrated before it serves. It releases lapsed holds every
    30 s and tells Errand at ERRAND_PROVIDER_EVENTS_URL (default: the `errand serve` at
    ERRAND_HOST:ERRAND_PORT). It must share ERRAND_SECRET_KEY (or the data dir) with Errand:
    the API tokens and the provider events' secrets derive from it.
    """
    import uvicorn

    # Its own public URL roots its links and handoff URLs; ERRAND_PORT stays Errand's (provider events go there).
    if not os.environ.get("ERRAND_SANDBOX_URL"):
        os.environ["ERRAND_SANDBOX_URL"] = f"http://{_reachable(host)}:{port}/sandbox"
    settings = _settings()
    sock = _listen(host, port, "sandbox")
    _upgrade_apart(settings.effective_sandbox_database_url, queue=False)
    database = make_url(settings.effective_sandbox_database_url).render_as_string(hide_password=True)
    console.print(f"Sandbox listening on http://{host}:{port}/sandbox/  (database: {database}; "
                  f"provider events to {settings.effective_provider_events_url})")
    config = uvicorn.Config(SANDBOX_APP_FACTORY, factory=True, host=host, port=port, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, max=64, help="Jobs run at once (default: ERRAND_JOB_CONCURRENCY).")] = None,
) -> None:
    """Run jobs from the procrastinate queue on PostgreSQL, beside any number of `serve --no-worker` processes.

    Also does the periodic work of the embedded runner (approval expiry, hold release) and,
    once per 15 s across all workers, job recovery. Stops gracefully on SIGTERM or SIGINT: no
    new jobs, running ones get ERRAND_WORKER_SHUTDOWN_SECONDS to finish; a second signal
    exits at once (other workers recover what was running).
    """
    # A worker consumes the queue whatever ERRAND_RUNNER says; the queue needs PostgreSQL.
    if not _settings().effective_database_url.startswith("postgresql"):
        console.print("[red]error:[/red] errand worker consumes the job queue, which needs PostgreSQL: "
                      "set ERRAND_DATABASE_URL=postgresql+asyncpg://… (and ERRAND_RUNNER=procrastinate everywhere)")
        raise typer.Exit(code=2)
    os.environ["ERRAND_RUNNER"] = "procrastinate"
    settings = _settings()
    console.print(f"Errand worker on {_display_url(settings)} (concurrency {concurrency or settings.job_concurrency}).")
    module, name = WORKER_ENTRY_POINT.split(":")
    run_worker = getattr(importlib.import_module(module), name)
    try:
        asyncio.run(run_worker(settings, concurrency=concurrency))
    except DomainError as exc:
        _fail(exc)
    console.print("Worker stopped.")


# Like `worker`, `mcp` is assembled by the composition root (the CLI may not import the
# dialects it sits beside): it names its entry point and loads it when it runs.
MCP_ENTRY_POINT = "errand.composition:run_mcp_stdio"


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve the MCP tools over stdin/stdout for a desktop MCP client, acting as ERRAND_API_KEY.

    The client starts this command itself (see the README for its configuration block);
    nothing but the protocol is written to stdout. Jobs created here are run by `errand
    serve` or `errand worker` on the same database.
    """
    key = os.environ.get("ERRAND_API_KEY", "").strip()
    if not key:
        console.print("[red]error:[/red] ERRAND_API_KEY is not set: export the API key the MCP tools should act as "
                      "(errand create-api-key mints one).")
        raise typer.Exit(code=1)
    settings = get_settings()
    module, name = MCP_ENTRY_POINT.split(":")
    run_mcp_stdio = getattr(importlib.import_module(module), name)
    try:
        asyncio.run(run_mcp_stdio(settings, key))
    except DomainError as exc:
        if exc.kind == "unauthorized":
            console.print(f"[red]error:[/red] ERRAND_API_KEY was refused: {exc.message}")
            raise typer.Exit(code=1) from None
        _fail(exc)
    except KeyboardInterrupt:
        pass


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
    """Revoke an API key; running servers refuse it within 1 s (they cache a key at most ERRAND_AUTH_CACHE_SECONDS)."""
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


@app.command("set-credits")
def set_credits(
    org: Annotated[str, typer.Option(help="Organization name (it must exist).")],
    allocation: Annotated[int, typer.Option(min=0, help="Credits the organization may spend each UTC calendar "
                                                        "month on its agents' AI steps.")],
) -> None:
    """Set an organization's monthly credit allocation (default 100,000); it applies to this month at once."""
    settings = get_settings()
    console.print(f"Setting the monthly credits of organization '{org}' to {allocation:,}.")

    async def work(session):  # type: ignore[no-untyped-def]
        return await automations_service.set_allocation(session, org, allocation)

    try:
        previous = asyncio.run(_with_db(settings, work))
    except DomainError as exc:
        _fail(exc)
    console.print(f"Monthly credits of '{org}': {previous:,} -> {allocation:,}.")


@app.command("set-contact")
def set_contact(
    org: Annotated[str, typer.Option(help="Organization name (it must exist).")],
    role: Annotated[str | None, typer.Option(help="admins or finance: who role:admins / role:finance reach "
                                                  "in automations' notification steps.")] = None,
    email: Annotated[str | None, typer.Option(help="The role's e-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="The role's phone number, E.164 (+15551234567).")] = None,
    show_webhook_secret: Annotated[bool, typer.Option(
        "--show-webhook-secret", help="Also print the whsec_ secret the organization's webhook notifications "
                                      "are signed with.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Set who an organization's role:admins or role:finance notifications reach (an address not given is kept)."""
    settings = get_settings()
    if role is None and not show_webhook_secret:
        raise typer.BadParameter("give --role (with --email and/or --phone), or --show-webhook-secret", param_hint="--role")
    if role is not None and not as_json:
        console.print(f"Setting the {role} contact of organization '{org}'.")

    async def work(session):  # type: ignore[no-untyped-def]
        contact = None
        if role is not None:
            contact = await notify_service.set_contact(session, org, role, email=email, phone=phone)
        secret = await notify_service.webhook_secret(session, settings, org) if show_webhook_secret else None
        return contact, secret

    try:
        contact, secret = asyncio.run(_with_db(settings, work))
    except DomainError as exc:
        _fail(exc)
    if as_json:
        out: dict[str, object] = {}
        if contact is not None:
            out.update(role=contact.role, email=contact.email, phone=contact.phone)
        if secret is not None:
            out["webhookSecret"] = secret
        typer.echo(json.dumps(out))
        return
    if contact is not None:
        console.print(f"role:{contact.role} of '{org}' now reaches e-mail {contact.email or '(none)'}, "
                      f"phone {contact.phone or '(none)'}.", markup=False)
    if secret is not None:
        typer.echo(secret)


if __name__ == "__main__":
    app()
