"""The connector contract, run against the fake Fxiaoke."""

from __future__ import annotations

from typing import Any

import httpx

from caseloop.testing import ConnectorContract, MemoryTokens
from caseloop_fxiaoke import Fxiaoke
from caseloop_fxiaoke.fake import FakeFxiaoke


def settings(fake: FakeFxiaoke, **more: Any) -> dict[str, Any]:
    return {"base_url": fake.url, "app_id": "FSAID_caseloop", "app_secret": "app-secret",
            "permanent_code": "PERMANENT", "operator_mobile": "13800000000", **more}


class TestFxiaoke(ConnectorContract):
    def make_fake(self) -> FakeFxiaoke:
        return FakeFxiaoke()

    def make_connector(self, fake: Any, http: httpx.Client, tokens: MemoryTokens) -> Fxiaoke:
        return Fxiaoke(settings(fake), http, tokens)
