"""The CRM tables: tokens, links between cases and CRM records, inbound events,
poll cursors and fetched profiles. On Caseloop's metadata (``caseloop_crm_*``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base, Id, Json, UTCDateTime, utcnow


class CRMToken(Base):
    """The token of one connection, shared by every process; refreshed under a
    row lock so that N workers mint one token, not N (Zoho allows 10 per 10 min)."""

    __tablename__ = "caseloop_crm_tokens"

    crm: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    extra: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    #: Tokens minted so far (how often the CRM was asked).
    refreshes: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CRMLink(Base):
    """A case's record in a CRM (the pushed ticket, the customer's contact) and
    how the last sync went: what agents and admins see on the case."""

    __tablename__ = "caseloop_crm_links"
    __table_args__ = (UniqueConstraint("case_id", "crm", "object_type",
                                       name="uq_caseloop_crm_links_case"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("caseloop_cases.id", ondelete="CASCADE"), index=True)
    crm: Mapped[str] = mapped_column(String(64))
    #: "case" (the CRM's ticket/case) or "contact".
    object_type: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    url: Mapped[str | None] = mapped_column(Text)
    #: pending (queued), synced, retrying, failed (dead letter), skipped
    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_error: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CRMInbound(Base):
    """An inbound CRM event, stored once (the unique key deduplicates webhook
    redeliveries and overlapping polls) and handled by the worker."""

    __tablename__ = "caseloop_crm_inbound"
    __table_args__ = (UniqueConstraint("crm", "event_id", name="uq_caseloop_crm_inbound_event"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    crm: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(300))
    object_type: Mapped[str] = mapped_column(String(32))
    external_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    action: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: webhook or poll
    source: Mapped[str] = mapped_column(String(16))
    raw: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class CRMCursor(Base):
    """Where polling a CRM got to, and when it last ran."""

    __tablename__ = "caseloop_crm_cursors"

    crm: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    polled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    subscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CRMProfile(Base):
    """A customer's profile as last fetched from a CRM, mapped to Caseloop's values."""

    __tablename__ = "caseloop_crm_profiles"

    crm: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    segment: Mapped[str | None] = mapped_column(String(100))
    value_tier: Mapped[str | None] = mapped_column(String(100))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
