"""``errand set-contact``, run as a real process against the test server's database: who
role:admins and role:finance reach, and the organization's webhook signing secret."""

import json

from errand.kit.ids import new_id
from tests.api.test_notifications import org_id, queue, settled
from tests.conftest import Org, Server
from tests.test_cli import run_cli, server_env


async def test_set_contact_makes_role_recipients_resolvable(server: Server, org: Org) -> None:
    result = await run_cli("set-contact", "--org", org.name, "--role", "finance", "--phone", "+1 555 000 1234",
                           "--email", "ap@example.com", env=server_env(server))
    assert result.returncode == 0, result.stderr
    said = result.stderr.replace("\n", " ")  # what people read goes to stderr
    assert "+15550001234" in said and "ap@example.com" in said
    execution_id = new_id("exec")
    await queue(server, await org_id(server, org), execution_id, channel="sms", recipients=["role:finance"],
                body="Invoice due")
    (row,) = await settled(server, execution_id)
    assert (row.recipient, row.recipient_role, row.status) == ("+15550001234", "role:finance", "sent")


async def test_set_contact_keeps_what_it_is_not_given_and_prints_json(server: Server, org: Org) -> None:
    env = server_env(server)
    assert (await run_cli("set-contact", "--org", org.name, "--role", "admins", "--email", "ops@example.com",
                          env=env)).returncode == 0
    result = await run_cli("set-contact", "--org", org.name, "--role", "admins", "--phone", "+15550009999", "--json",
                           env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"role": "admins", "email": "ops@example.com", "phone": "+15550009999"}


async def test_set_contact_prints_the_webhook_secret_the_server_signs_with(server: Server, org: Org) -> None:
    result = await run_cli("set-contact", "--org", org.name, "--show-webhook-secret", env=server_env(server))
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert secret == server.settings.notify_webhook_signing_secret(await org_id(server, org))


async def test_set_contact_refuses_bad_input_with_one_readable_line(server: Server, org: Org) -> None:
    env = server_env(server)
    for args, words in [
        (["--org", "No Such Org", "--role", "admins", "--email", "a@example.com"], "No organization"),
        (["--org", org.name, "--role", "owners", "--email", "a@example.com"], "role must be"),
        (["--org", org.name, "--role", "admins", "--email", "not an address"], "e-mail recipient"),
        (["--org", org.name, "--role", "admins", "--phone", "5551234"], "E.164"),
        (["--org", org.name, "--role", "admins"], "e-mail address, a phone number"),
    ]:
        result = await run_cli("set-contact", *args, env=env)
        assert result.returncode != 0
        assert words in " ".join(result.stderr.split()), result.stderr
    assert (await run_cli("set-contact", "--org", org.name, env=env)).returncode == 2
