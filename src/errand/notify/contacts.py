"""Who a role recipient names: ``role:traveler`` (the traveler of the event's job) and the
organization's contacts for ``role:admins`` and ``role:finance`` (``errand set-contact``)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.errors import InvalidRequest
from errand.kit.ids import new_id
from errand.models import Job, Organization, OrganizationContact
from errand.notify.channels import email, sms
from errand.notify.errors import RecipientUnresolved
from errand.notify.schemas import CONTACT_ROLES, Contact


async def set_contact(session: AsyncSession, organization_name: str, role: str, *,
                      email_address: str | None = None, phone: str | None = None) -> Contact:
    """Set who ``role`` (admins | finance) reaches in the organization named ``organization_name``.

    An address given replaces the stored one; one not given is kept. Raises InvalidRequest (no
    such organization, an unknown role, nothing to set) or InvalidRecipient (a malformed address)."""
    if role not in CONTACT_ROLES:
        raise InvalidRequest(f"The role must be one of {', '.join(CONTACT_ROLES)}.")
    if email_address is None and phone is None:
        raise InvalidRequest("Give an e-mail address, a phone number or both.")
    org = await organization_named(session, organization_name)
    checked_email = email.address(email_address) if email_address is not None else None
    checked_phone = sms.address(phone) if phone is not None else None
    row = (await session.execute(select(OrganizationContact).where(
        OrganizationContact.organization_id == org.id, OrganizationContact.role == role))).scalar_one_or_none()
    if row is None:
        row = OrganizationContact(id=new_id("oct"), organization_id=org.id, role=role)
        session.add(row)
    if checked_email is not None:
        row.email = checked_email
    if checked_phone is not None:
        row.phone = checked_phone
    await session.flush()
    return Contact(organization_id=org.id, role=role, email=row.email, phone=row.phone)


async def organization_named(session: AsyncSession, name: str) -> Organization:
    """The organization called ``name``; InvalidRequest when there is none."""
    org = (await session.execute(select(Organization).where(Organization.name == name.strip()))).scalar_one_or_none()
    if org is None:
        raise InvalidRequest(f"No organization named {name!r}.")
    return org


async def resolve(session: AsyncSession, organization_id: str, env: str, channel: str, role: str,
                  event_payload: dict[str, Any]) -> str:
    """The address on ``channel`` of ``role`` (traveler | admins | finance); RecipientUnresolved
    when the role names nobody with such an address (chat and webhook have no role addresses)."""
    if channel not in ("email", "sms"):
        raise RecipientUnresolved(f"role:{role} has no {channel} address; name the {channel} recipient itself.")
    if role == "traveler":
        found = await _traveler(session, organization_id, env, event_payload)
    elif role in CONTACT_ROLES:
        row = (await session.execute(select(OrganizationContact).where(
            OrganizationContact.organization_id == organization_id, OrganizationContact.role == role))
        ).scalar_one_or_none()
        if row is None:
            raise RecipientUnresolved(f"No contact is set for role:{role} (errand set-contact --role {role}).")
        found = {"email": row.email, "phone": row.phone}
    else:
        raise RecipientUnresolved(f"Unknown role role:{role}; use role:traveler, role:admins or role:finance.")
    value = found.get(channel if channel == "email" else "phone")
    if not isinstance(value, str) or not value.strip():
        raise RecipientUnresolved(f"role:{role} has no {'e-mail address' if channel == 'email' else 'phone number'}.")
    if channel == "sms":
        number = sms.normalize(value)
        if number is None:
            raise RecipientUnresolved(f"The phone number of role:{role} is not in E.164 form (+15551234567).")
        return number
    try:
        return email.address(value)
    except InvalidRequest:
        raise RecipientUnresolved(f"The e-mail address of role:{role} is not usable.") from None


async def _traveler(session: AsyncSession, organization_id: str, env: str,
                    event_payload: dict[str, Any]) -> dict[str, Any]:
    job_id = event_payload.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise RecipientUnresolved("role:traveler needs the event's job_id, and the event has none.")
    profile = (await session.execute(select(Job.profile).where(
        Job.id == job_id[:40], Job.organization_id == organization_id, Job.key_env == env))).scalar_one_or_none()
    if not isinstance(profile, dict):
        raise RecipientUnresolved("role:traveler: the event's job is not one of this organization's.")
    return profile
