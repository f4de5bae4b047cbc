"""The connector contract, run against the fake Salesforce org."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from caseloop_salesforce import SalesforceConnector
from caseloop_salesforce.fake import FakeSalesforce

from caseloop.crm import InboundRequest, WebhookAuthError
from caseloop.testing import ConnectorContract, FakeCRM, MemoryTokens


def settings(fake: FakeSalesforce, **more: Any) -> dict[str, Any]:
    return {"login_url": fake.url, "client_id": fake.client_id,
            "client_secret": fake.client_secret, "refresh_token": next(iter(fake.refresh_tokens)),
            "organization_id": fake.organization_id, "url_secret": fake.url_secret, **more}


class TestSalesforce(ConnectorContract):
    def make_fake(self) -> FakeSalesforce:
        return FakeSalesforce()

    def make_connector(self, fake: FakeCRM, http: httpx.Client, tokens: MemoryTokens
                       ) -> SalesforceConnector:
        assert isinstance(fake, FakeSalesforce)
        return SalesforceConnector(settings(fake), http, tokens)

    #: An Outbound Message has no signature over its bytes (and XML allows whitespace
    #: after the root element), so the kit's changed-body forgery is skipped; these are
    #: the forgeries that can be caught.
    signs_body = False

    def test_outbound_message_forgeries_are_refused(self, connector: Any, fake: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        good = fake.webhook("contact", crm_id, "updated", now=now)
        wrong_key = InboundRequest(good.method, good.url + "x", good.headers, good.body)
        other_org = fake.outbound_message([("contact", crm_id)],
                                          organization_id="00D000000000001AAA")
        not_om = InboundRequest(good.method, good.url, good.headers,
                                good.body.replace(b"notifications", b"notes"))
        for forged in (wrong_key, other_org, not_om):
            with pytest.raises(WebhookAuthError):
                connector.verify_webhook(forged, now=now)
