"""The connector contract, run against the fake in-house system."""

from __future__ import annotations

from typing import Any

import httpx

from caseloop.testing import ConnectorContract, MemoryTokens
from caseloop_webhook import Webhook
from caseloop_webhook.fake import FakeReceiver


class TestWebhook(ConnectorContract):
    refreshes_tokens = False  # a shared secret, no tokens

    def make_fake(self) -> FakeReceiver:
        return FakeReceiver()

    def make_connector(self, fake: Any, http: httpx.Client, tokens: MemoryTokens) -> Webhook:
        return Webhook({"cases_url": f"{fake.url}/cases", "lookup_url": f"{fake.url}/customers",
                        "secret": fake.secret, "inbound_secret": fake.inbound_secret},
                       http, tokens)
