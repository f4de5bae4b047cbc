"""The contract kit, run against the fake HubSpot (OAuth mode, API 2026-03)."""

from __future__ import annotations

import httpx
from caseloop_hubspot import HubSpot
from caseloop_hubspot.fake import FakeHubSpot

from caseloop.testing import ConnectorContract, MemoryTokens


class TestHubSpot(ConnectorContract):
    def make_fake(self) -> FakeHubSpot:
        return FakeHubSpot()

    def make_connector(self, fake: FakeHubSpot, http: httpx.Client,  # type: ignore[override]
                       tokens: MemoryTokens) -> HubSpot:
        # No settle delay: the fake's search index has no lag.
        return HubSpot({**fake.oauth_settings(), "poll_settle_seconds": 0}, http, tokens)
