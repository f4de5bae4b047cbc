"""A plugin's notification channel (register_channels): `caseloop check` knows it only
when installed; the worker delivers through it, records the message like an email's,
and retries or dead-letters by what the channel raised."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop.extension import state
from caseloop.jobs import Executor
from caseloop.models import Job, Notification, utcnow
from caseloop.notify import deliver
from caseloop.plugins import Channel, PluginError
from caseloop.spec.extensions import Extensions
from caseloop.worker import executor_for

from .plugins_fixture import example_plugin
from .test_api import make_user
from .test_cases import write_definitions
from .test_plugin_field_types import (
    DELIVERY,
    PARCEL,
    check,
    errors,
    plugin_app,
    serving,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from serving(tmp_path)

@pytest.fixture(autouse=True)
def pager() -> Iterator[list[tuple[str, str, str, Any]]]:
    example_plugin.SENT.clear()
    example_plugin.FAILURE["mode"] = None
    yield example_plugin.SENT
    example_plugin.FAILURE["mode"] = None


def served_case(app: Flask, **data: Any) -> int:
    """A parcel case taken to 'served', whose on-enter notify goes to the pager."""
    client = app.test_client()
    agent = make_user(app, f"agent{len(data)}{id(data)}", roles=["agent"])
    made = client.post("/api/cases", headers=agent, json={"workflow": "parcel", "data": {
        "title": "Sofa", "postcode": "100081", **data}})
    assert made.status_code == 201, made.get_json()
    case_id = int(made.get_json()["id"])
    served = client.post(f"/api/cases/{case_id}/transitions/serve", headers=agent,
                         json={"data": {}})
    assert served.status_code == 200, served.get_json()
    return case_id


def work(app: Flask, *, at: dt.datetime | None = None, with_plugins: bool = True
         ) -> Counter[str]:
    """Run the notify jobs due ``at`` (by default soon: every job written so far) with
    the executor, as the worker would."""
    st = state()
    st.db.session.commit()
    moment = at or utcnow() + dt.timedelta(minutes=1)
    executor = Executor(st.db.engine, st.registry, {"notify": deliver}, settings=app.config,
                        clock=lambda: moment, plugins=st.plugins if with_plugins else None)
    done: Counter[str] = executor.run_due()
    st.db.session.expire_all()
    return done


def the_job(case_id: int) -> Job:
    return state().db.session.execute(select(Job).where(
        Job.case_id == case_id, Job.kind == "notify")).scalar_one()


def notes(case_id: int) -> list[Notification]:
    return list(state().db.session.execute(select(Notification).where(
        Notification.case_id == case_id)).scalars())


# -- caseloop check ---------------------------------------------------------------------
def test_check_knows_the_channel_only_when_the_plugin_is_installed(tmp_path: Path) -> None:
    plain = DELIVERY.replace("type: postcode", "type: text").replace("type: percent",
                                                                     "type: integer")
    flow = PARCEL.replace('"in_service_area(postcode)"', '"filled(postcode)"')
    (tmp_path / "defs").mkdir()
    folder = write_definitions(tmp_path / "defs", {"delivery.yaml": plain, "parcel.yaml": flow})
    bare = plugin_app(tmp_path / "bare", with_plugin=False)
    code, problems = check(bare, folder)
    assert (code, errors(problems)) == (1, [(
        "CL014", 13, 20, "states.served.on_enter[0].notify.channel: unknown value 'pager' "
        "(known: email, inbox, sms)")])
    plugged = plugin_app(tmp_path / "plugged")
    assert check(plugged, folder)[0] == 0
    (tmp_path / "typo").mkdir()
    typo = write_definitions(tmp_path / "typo", {"delivery.yaml": plain, "parcel.yaml":
                                                 flow.replace("channel: pager", "channel: pagr")})
    code, problems = check(plugged, typo)
    assert (code, errors(problems)) == (1, [(
        "CL014", 13, 20, "states.served.on_enter[0].notify.channel: unknown value 'pagr' "
        "(did you mean 'pager'?)")])


# -- delivery -----------------------------------------------------------------------------
def test_the_worker_delivers_through_the_channel_and_records_it(
        app: Flask, pager: list[tuple[str, str, str, Any]]) -> None:
    with app.app_context():
        case_id = served_case(app, pager="555-0100")
        state().db.session.commit()
        # The executor `caseloop worker` runs: the app's plugins reach the handler.
        assert executor_for(app).run_due() == Counter(done=1)
        state().db.session.expire_all()
        job = the_job(case_id)
        assert (job.status, job.result) == ("done", "pager: 1 (sent)")
        ((to, subject, body, settings),) = pager
        assert to == "555-0100"
        # In the customer's language (the default, Chinese: the case does not say).
        assert (subject, body) == ("[PAR-2026-000001] parcel",
                                   "我们服务您的地区\n\n案件编号：PAR-2026-000001，当前状态：served")
        assert settings["CASELOOP_PLUGINS"] == [example_plugin.NAME]  # the app's settings
        (note,) = notes(case_id)
        assert (note.channel, note.address, note.status, note.subject, note.body, note.job_id) \
            == ("pager", "555-0100", "sent", subject, body, job.id)


@pytest.mark.parametrize(("mode", "outcome", "error", "delay"), [
    ("retry", "retry", "pager: the pager gateway is busy", dt.timedelta(seconds=120)),
    ("network", "retry", "pager unreachable: ConnectionRefusedError: pager gateway refused "
     "the connection", None),
    ("refused", "dead", "pager could not send: RuntimeError: the pager number is blocked",
     None),
])
def test_what_the_channel_raises_decides_retry_or_dead_letter(
        app: Flask, pager: list[Any], mode: str, outcome: str, error: str,
        delay: dt.timedelta | None) -> None:
    example_plugin.FAILURE["mode"] = mode
    with app.app_context():
        case_id = served_case(app, pager="555-0100")
        later = utcnow() + dt.timedelta(minutes=1)
        assert work(app, at=later) == Counter({outcome: 1})
        job = the_job(case_id)
        assert job.last_error == error
        assert notes(case_id) == [] and pager == []  # nothing recorded for a failed send
        if delay is not None:  # the gateway's retry_after, not the backoff
            assert job.run_at.replace(tzinfo=dt.UTC) == later + delay
        if outcome == "retry":
            example_plugin.FAILURE["mode"] = None
            again = Executor(state().db.engine, state().registry, {"notify": deliver},
                             settings=app.config, plugins=state().plugins,
                             clock=lambda: later + dt.timedelta(hours=7))
            assert again.run_due() == Counter(done=1)
            assert len(pager) == 1


def test_a_customer_without_an_address_for_the_channel_is_skipped(app: Flask) -> None:
    with app.app_context():
        case_id = served_case(app)  # no pager number
        assert work(app) == Counter(cancelled=1)
        assert the_job(case_id).result == ("nobody to notify: the customer has no address "
                                           "for pager")


def test_a_worker_without_the_plugin_dead_letters_the_job_saying_why(app: Flask) -> None:
    with app.app_context():
        case_id = served_case(app, pager="555-0100")
        assert work(app, with_plugins=False) == Counter(dead=1)
        assert the_job(case_id).last_error == (
            "unknown channel 'pager' (known: inbox, email, sms); install the plugin that "
            "provides it, or change the workflow's notify action")


@pytest.mark.parametrize("name", ["email", "inbox", "sms", "webhook"])
def test_a_channel_named_like_a_builtin_one_is_refused(name: str) -> None:
    with pytest.raises(PluginError, match=f"notification channel '{name}', which is built in"):
        Extensions(channels={name: Channel(name, lambda *args: None)})


def test_a_simulation_records_a_plugin_channel_as_not_sent() -> None:
    from types import SimpleNamespace
    from typing import cast

    from caseloop.jobs import Context
    from caseloop.simulation import handlers

    ctx = cast(Context, SimpleNamespace(payload={"channel": "pager"}))
    assert handlers()["notify"](ctx) == "not sent (simulation): pager"
