"""Finding a customer in the CRMs while an agent waits (intake prefill).

The one CRM call made inside a request, so it runs on the short-timeout client
and never fails the page: a CRM that is slow or down is reported next to the
answers of the others, and the form works as if no CRM were connected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import select

from ..models import DbSession
from .connections import Connections, CRMSetupError
from .errors import CRMError
from .inbound import remember
from .tables import CRMLink, CRMProfile


def e164(raw: str, region: str, *, valid_only: bool = False) -> str | None:
    """A phone number as CRMs are searched (E.164, the install's default region), or
    None when it cannot be read (or, with ``valid_only``, is no real number)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if valid_only and not phonenumbers.is_valid_number(number):
        return None
    found: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return found


@dataclass
class Found:
    customers: list[dict[str, Any]] = field(default_factory=list)
    #: CRMs that could not answer now, with why.
    unavailable: list[dict[str, str]] = field(default_factory=list)


def find(session: DbSession, conns: Connections, *, email: str | None, phone: str | None,
         now: dt.datetime) -> Found:
    """Customers matching the email or phone in every CRM that can search, with
    their profiles (fetched and remembered for the case page)."""
    out = Found()
    for name in conns.names():
        try:
            conn = conns.get(name)
            if "find" not in conn.capabilities:
                continue
            connector = conns.lookup_connector(name)
            refs = connector.find_customers(email=email.lower() if email else None,
                                            phone_e164=phone, limit=3)
            for ref in refs:
                entry: dict[str, Any] = {"crm": name, "external_id": ref.external_id,
                                         "url": safe_url(ref.url)}
                if "profile" in conn.capabilities:
                    row = remember(session, conn, connector.get_profile(ref), now)
                    entry.update(profile_json(row))
                out.customers.append(entry)
        except (CRMError, CRMSetupError) as exc:
            out.unavailable.append({"crm": name, "reason": str(exc)})
    return out


def safe_url(url: str | None) -> str | None:
    """A link out only when it is http(s): a CRM's answer is not trusted to be one."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def profile_json(row: CRMProfile) -> dict[str, Any]:
    return {"display_name": row.display_name, "segment": row.segment,
            "value_tier": row.value_tier, "lifecycle_stage": row.lifecycle_stage,
            "url": safe_url(row.url), "emails": row.data.get("emails", []),
            "phones": row.data.get("phones", []),
            "open_tickets": row.data.get("open_tickets"),
            "fetched_at": row.fetched_at.isoformat() if row.fetched_at else None}


def status(session: DbSession, case_id: int) -> list[dict[str, Any]]:
    """A case's CRM records and how its last sync went (case page and API)."""
    links = session.execute(select(CRMLink).where(CRMLink.case_id == case_id)
                            .order_by(CRMLink.crm, CRMLink.object_type)).scalars()
    out = []
    for link in links:
        entry: dict[str, Any] = {
            "crm": link.crm, "object_type": link.object_type, "external_id": link.external_id,
            "url": safe_url(link.url), "status": link.status, "last_error": link.last_error,
            "synced_at": link.synced_at.isoformat() if link.synced_at else None}
        if link.object_type == "contact" and link.external_id:
            profile = session.get(CRMProfile, (link.crm, link.external_id))
            if profile is not None:
                entry["profile"] = profile_json(profile)
        out.append(entry)
    return out
