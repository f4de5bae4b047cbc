"""Zoho's own Python SDK (zohocrmsdk8-0, the "test" extra) against the fake: if the
vendor's client refreshes its token and parses the watch answer, the fake's shapes are
the real ones. Record calls are not covered: the SDK first downloads field metadata
(settings/fields), which the fake does not serve."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from caseloop_zoho.fake import FakeZoho

sdk = pytest.importorskip("zohocrmsdk.src.com.zoho.crm.api.initializer")


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with FakeZoho() as running:
        yield running


def initialise(fake: FakeZoho, tmp_path: Path) -> Any:
    from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
    from zohocrmsdk.src.com.zoho.api.authenticator.store.file_store import FileStore
    from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
    from zohocrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig

    environment = DataCenter.Environment(fake.url, f"{fake.url}/oauth/v2/token", fake.url)
    token = OAuthToken(client_id=fake.client_id, client_secret=fake.client_secret,
                       refresh_token=fake.refresh_token, find_user=False)
    sdk.Initializer.initialize(environment=environment, token=token,
                               store=FileStore(str(tmp_path / "tokens.csv")),
                               sdk_config=SDKConfig(auto_refresh_fields=False),
                               resource_path=str(tmp_path))
    return token


def test_the_sdk_refreshes_against_the_fake(fake: FakeZoho, tmp_path: Path) -> None:
    token = initialise(fake, tmp_path)
    assert fake.token_refreshes == 1
    assert token.get_access_token() in fake.access_tokens
    assert token.get_api_domain() == fake.url


def test_the_sdk_arms_a_watch_on_the_fake(fake: FakeZoho, tmp_path: Path) -> None:
    from zohocrmsdk.src.com.zoho.crm.api import notifications as n

    initialise(fake, tmp_path)
    watch = n.Notification()
    watch.set_channel_id(fake.channel_id)
    watch.set_events(["Cases.all", "Contacts.edit"])
    expiry = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=23)
    watch.set_channel_expiry(expiry)
    watch.set_token(fake.notify_token)
    watch.set_notify_url(f"https://caseloop.example.com/hook?key={fake.url_secret}")
    body = n.BodyWrapper()
    body.set_watch([watch])
    answer = n.NotificationsOperations().enable_notifications(body)
    assert answer.get_status_code() == 201
    [result] = answer.get_object().get_watch()
    assert isinstance(result, n.SuccessResponse)
    assert result.get_status().get_value() == "success"
    assert len(result.get_details()["events"]) == 2
    assert fake.watches[fake.channel_id]["channel_expiry"] == expiry
