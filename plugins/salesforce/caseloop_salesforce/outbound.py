"""Salesforce Outbound Messages: the SOAP notifications a workflow rule or flow
sends, read safely.

An Outbound Message carries no signature. What makes one believable here:
a secret ``key`` in the endpoint URL (configured in Salesforce with the URL),
the sending org's ``OrganizationId``, both compared in constant time, and
Caseloop re-fetching each record by id rather than trusting the payload's
field values. Parsing goes through ``defusedxml`` with DTDs forbidden, so an
entity bomb is refused before anything is expanded.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import defusedxml
import defusedxml.ElementTree as SafeET

from caseloop.crm import InboundRequest, WebhookAuthError

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
#: A message holds at most 100 notifications; a few MB is far beyond any real one.
MAX_BODY = 4 * 1024 * 1024

#: What Salesforce expects back; anything else and it retries the message (for 24 h).
ACK = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
       b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
       b'<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>')


@dataclass(frozen=True)
class Notification:
    """One ``<Notification>``: its id (the deduplication key) and the record."""

    id: str
    sobject: str
    record_id: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    organization_id: str
    action_id: str
    notifications: tuple[Notification, ...]


def parse(body: bytes) -> Message:
    """The message in ``body``; ValueError saying why when it is not one."""
    if len(body) > MAX_BODY:
        raise ValueError(f"the body is {len(body)} bytes, more than an Outbound Message holds")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise ValueError(f"the XML declares a DTD or entities ({type(exc).__name__}); "
                         "Outbound Messages never do") from None
    except ET.ParseError as exc:
        raise ValueError(f"the body is not well-formed XML ({exc})") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise ValueError(f"the root element is {root.tag}, not a SOAP Envelope")
    notes = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if notes is None:
        raise ValueError("the SOAP Body holds no <notifications> element")
    org = (notes.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") or "").strip()
    if not org:
        raise ValueError("the message has no OrganizationId")
    out = []
    for item in notes.findall(f"{{{OUTBOUND_NS}}}Notification"):
        note_id = (item.findtext(f"{{{OUTBOUND_NS}}}Id") or "").strip()
        sobj = item.find(f"{{{OUTBOUND_NS}}}sObject")
        if not note_id or sobj is None:
            raise ValueError("a <Notification> lacks its Id or sObject")
        # xsi:type="sf:Case": the prefix is bound on the element; the name follows it.
        kind = (sobj.get(f"{{{XSI_NS}}}type") or "").rpartition(":")[2]
        values = {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in sobj}
        if not kind or not values.get("Id"):
            raise ValueError(f"notification {note_id} names no sObject type or record Id")
        out.append(Notification(note_id, kind, values["Id"], values))
    action = (notes.findtext(f"{{{OUTBOUND_NS}}}ActionId") or "").strip()
    return Message(org, action, tuple(out))


def verify(request: InboundRequest, *, organization_id: str | None,
           url_secret: str | None) -> Message:
    """The message if the call is believable; WebhookAuthError otherwise."""
    if not organization_id or not url_secret:
        raise WebhookAuthError("Salesforce Outbound Messages are not set up: configure "
                               "organization_id and url_secret (the endpoint URL's ?key=)")
    if request.method.upper() != "POST":
        raise WebhookAuthError(f"Outbound Messages are POSTed; this was a {request.method}")
    keys = parse_qs(urlsplit(request.url).query).get("key", [])
    if len(keys) != 1 or not hmac.compare_digest(keys[0].encode(), url_secret.encode()):
        raise WebhookAuthError("the endpoint URL's key is missing or wrong: the call is not "
                               "from the configured Outbound Message")
    try:
        message = parse(request.body)
    except ValueError as exc:
        raise WebhookAuthError(f"not a Salesforce Outbound Message: {exc}") from None
    # 15- and 18-character forms name the same org; the 18th-character suffix only
    # encodes the case of the first 15.
    if not hmac.compare_digest(message.organization_id[:15].encode(),
                               organization_id[:15].encode()):
        raise WebhookAuthError("the Outbound Message comes from another Salesforce org "
                               "(OrganizationId does not match organization_id)")
    return message
