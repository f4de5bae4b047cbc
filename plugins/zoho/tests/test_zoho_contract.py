"""The contract test kit against the fake Zoho."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager

import httpx
import pytest
from caseloop_zoho import Zoho
from caseloop_zoho.fake import FakeZoho

from caseloop.crm import Connector, InboundRequest, WebhookAuthError
from caseloop.testing import ConnectorContract, FakeCRM, MemoryTokens


class TestZoho(ConnectorContract):
    def make_fake(self) -> AbstractContextManager[FakeCRM]:
        return FakeZoho()

    def make_connector(self, fake: FakeCRM, http: httpx.Client, tokens: MemoryTokens
                       ) -> Connector:
        assert isinstance(fake, FakeZoho)
        # No api_domain: the connector must take it from the token response.
        return Zoho(fake.settings(), http, tokens)

    #: Zoho signs nothing: a body changed in transit but with the token intact cannot be
    #: told from the real thing, so the kit skips that forgery; this one changes the token.
    signs_body = False

    def test_a_changed_token_is_refused(self, connector: Connector, fake: FakeCRM) -> None:
        now = dt.datetime.now(dt.UTC)
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        good = fake.webhook("contact", crm_id, "updated", now=now)
        body = good.body.replace(b"caseloop-notify-token", b"caseloop-notify-tokeX")
        assert body != good.body
        with pytest.raises(WebhookAuthError):
            connector.verify_webhook(InboundRequest(good.method, good.url, good.headers, body),
                                     now=now)
