"""The designer's core: drafts, publishing with a state map, the overlay on the files,
conflicts with them (caseloop.designer), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop.designer import drafts
from caseloop.designer.overlay import text_hash
from caseloop.designer.publish import PublishError, history, plan, publish, take_file
from caseloop.extension import state
from caseloop.models import Case, Draft, Event, Publication
from caseloop.registry import Registry

from .conftest import postgresql_url
from .test_cases import dispose
from .test_cli_commands import TICKET_V1, TICKET_V2, _cases, _open, _ticket_app


@pytest.fixture(params=["sqlite", "postgresql"])
def tickets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = _ticket_app(tmp_path, postgresql_url() if request.param == "postgresql" else "")
    yield app
    dispose(app)


def _draft(app: Flask, text: str, kind: str = "workflow", name: str = "ticket") -> None:
    with app.app_context():
        st = state()
        draft = drafts.start(st.db.session, st.registry, kind, name, "dora")
        drafts.save(st.db.session, draft, text, draft.revision, "dora")
        st.db.session.commit()


def _publish(app: Flask, **options: object) -> Publication:
    with app.app_context():
        st = state()
        session = st.db.session
        draft = drafts.find(session, "workflow", "ticket")
        assert draft is not None
        try:
            done = publish(session, st.registry, draft, "dora", **options)  # type: ignore[arg-type]
        except PublishError:
            session.rollback()
            raise
        session.commit()
        st.registry.refresh(session, force=True)
        session.expunge(done)
        return done


def test_a_draft_starts_from_the_text_in_effect_and_saves_by_revision(tickets: Flask) -> None:
    with tickets.app_context():
        st = state()
        session = st.db.session
        draft = drafts.start(session, st.registry, "workflow", "ticket", "dora")
        assert draft.text == TICKET_V1 and draft.base == text_hash(TICKET_V1)
        assert drafts.start(session, st.registry, "workflow", "ticket", "eve").id == draft.id
        drafts.save(session, draft, TICKET_V2, 1, "dora")
        assert draft.revision == 2
        with pytest.raises(drafts.StaleRevision, match="dora saved this draft"):
            drafts.save(session, draft, TICKET_V1, 1, "eve")
        assert draft.text == TICKET_V2
        with pytest.raises(drafts.DraftError, match="there is no workflow 'tickt'"):
            drafts.start(session, st.registry, "workflow", "tickt", "dora")


def test_the_check_is_caseloop_checks_with_positions(tickets: Flask) -> None:
    with tickets.app_context():
        st = state()
        draft = drafts.start(st.db.session, st.registry, "workflow", "ticket", "dora")
        broken = TICKET_V1.replace("to: done", "to: closd")
        checked = drafts.check(st.registry, draft, broken)
        assert not checked.ok
        first = next(p for p in checked.problems if p.is_error)
        line = next(i for i, text in enumerate(broken.splitlines(), 1) if "closd" in text)
        assert "closd" in first.message and first.path.endswith("ticket.yaml")
        assert (first.line, first.col) == (line, broken.splitlines()[line - 1].index("closd") + 1)


def test_publish_with_a_state_map_moves_open_cases_and_keeps_closed_ones(
        tickets: Flask) -> None:
    triage, new, done = _open(tickets, "sort"), _open(tickets), _open(tickets, "finish")
    before = _cases(tickets)
    _draft(tickets, TICKET_V2)
    with tickets.app_context():
        st = state()
        draft = drafts.find(st.db.session, "workflow", "ticket")
        assert draft is not None
        dry = plan(st.db.session, st.registry, draft)
        (change,) = dry.changes
        assert change.removed == ("triage",) and change.stranded == 1
        mapped = plan(st.db.session, st.registry, draft, {"ticket": {"triage": "assessing"}})
        assert mapped.changes[0].stranded == 0
        report = mapped.changes[0].report
        assert report is not None and report.count == 2
        assert [(m.from_state, m.to_state) for m in report.moves] == [
            ("new", "new"), ("triage", "assessing")]
    with pytest.raises(PublishError, match="1 open 'ticket' case"):
        _publish(tickets)
    assert _cases(tickets) == before
    done_pub = _publish(tickets, state_map={"ticket": {"triage": "assessing"}}, migrate=True,
                        note="rename triage")
    after = _cases(tickets)
    new_version = done_pub.versions["workflow:ticket"]
    assert after[triage][:2] == (new_version, "assessing")
    assert after[new][:2] == (new_version, "new")
    assert after[done] == before[done]  # closed: kept its version
    assert done_pub.published_by == "dora" and done_pub.note == "rename triage"
    assert done_pub.migrated["ticket"]["count"] == 2  # type: ignore[index]
    with tickets.app_context():
        st = state()
        assert st.registry.workflow("ticket").version == new_version  # type: ignore[union-attr]
        assert drafts.find(st.db.session, "workflow", "ticket") is None
        kinds = st.db.session.execute(select(Event.kind).where(
            Event.case_id == triage)).scalars().all()
        assert kinds[-1] == "migrated"
        versions, publications = history(st.db.session, st.registry, "workflow", "ticket")
        assert new_version in [v.version for v in versions]
        assert [p.sequence for p in publications] == [1]


def test_publish_without_migrating_leaves_cases_on_their_version(tickets: Flask) -> None:
    triage = _open(tickets, "sort")
    before = _cases(tickets)
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    pub = _publish(tickets)
    assert _cases(tickets) == before
    with tickets.app_context():
        st = state()
        session = st.db.session
        wf = st.registry.workflow("ticket")
        assert wf is not None and wf.version == pub.versions["workflow:ticket"]
        case = session.get(Case, triage)
        assert case is not None and case.definition_version != wf.version
        # New cases use the published version.
    fresh = _open(tickets)
    assert _cases(tickets)[fresh][0] == pub.versions["workflow:ticket"]


def test_invalid_yaml_never_publishes(tickets: Flask) -> None:
    _draft(tickets, TICKET_V1 + "states: {}\n")
    with pytest.raises(PublishError) as caught:
        _publish(tickets)
    assert caught.value.problems[0].line == len(TICKET_V1.splitlines()) + 1
    with tickets.app_context():
        assert state().db.session.execute(select(Publication)).first() is None


def test_a_publication_survives_a_restart_and_the_file_catching_up(
        tickets: Flask, tmp_path: Path) -> None:
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    pub = _publish(tickets)
    version = pub.versions["workflow:ticket"]
    with tickets.app_context():  # a restart: the files read again, then the overlay
        st = state()
        fresh = Registry(st.registry.paths)
        fresh.load()
        assert fresh.workflow("ticket").version != version  # type: ignore[union-attr]
        assert fresh.refresh(st.db.session)
        assert fresh.workflow("ticket").version == version  # type: ignore[union-attr]
        assert fresh.effect.conflicts == ()
        assert not fresh.refresh(st.db.session, force=True)  # nothing new since
    # caseloop export wrote the file: file and publication agree.
    (tmp_path / "workflows" / "ticket.yaml").write_text(pub.text, "utf-8")
    with tickets.app_context():
        st = state()
        st.registry.load()
        assert st.registry.workflow("ticket").version == version  # type: ignore[union-attr]
        assert not st.registry.effect.published and st.registry.effect.conflicts == ()


def test_a_file_changed_after_a_publication_is_a_conflict_not_an_overwrite(
        tickets: Flask, tmp_path: Path) -> None:
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    pub = _publish(tickets)
    edited = TICKET_V1.replace("Finish", "Complete")
    (tmp_path / "workflows" / "ticket.yaml").write_text(edited, "utf-8")
    with tickets.app_context():
        st = state()
        st.registry.load()
        (conflict,) = st.registry.effect.conflicts
        assert conflict.name == "ticket" and "changed since workflow 'ticket'" in \
            conflict.message()
        # The publication stays in effect; the file's change is not applied silently.
        assert st.registry.workflow("ticket").version == pub.versions["workflow:ticket"]  # type: ignore[union-attr]
        session = st.db.session
        draft = drafts.start(session, st.registry, "workflow", "ticket", "dora")
        drafts.save(session, draft, pub.text.replace("Sort out", "Sort it"), draft.revision,
                    "dora")
        with pytest.raises(PublishError, match="changed since workflow 'ticket' was published"):
            publish(session, st.registry, draft, "dora")
        session.rollback()
        # Taking the file's side publishes the file's text.
        draft = take_file(session, st.registry, "workflow", "ticket", "dora")
        assert draft.text == edited
        publish(session, st.registry, draft, "dora")
        session.commit()
        st.registry.refresh(session, force=True)
        assert st.registry.effect.conflicts == ()
        assert "Complete" in st.registry.workflow("ticket").source  # type: ignore[union-attr]


def test_a_draft_goes_stale_when_the_definition_changes_under_it(tickets: Flask) -> None:
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    with tickets.app_context():
        st = state()
        session = st.db.session
        mine = drafts.find(session, "workflow", "ticket")
        assert mine is not None
        # Someone publishes the same definition another way meanwhile (simulated by
        # moving the draft's base, as a reloaded file would).
        mine.base = text_hash("older text")
        session.commit()
        assert drafts.stale(st.registry, mine)
        with pytest.raises(PublishError, match="changed since this draft was started"):
            publish(session, st.registry, mine, "dora")
        session.rollback()
        mine = drafts.find(session, "workflow", "ticket")
        assert mine is not None
        drafts.rebase(st.registry, mine, "dora")
        assert not drafts.stale(st.registry, mine)
        publish(session, st.registry, mine, "dora")
        session.commit()


def test_new_definitions_start_from_a_template_that_passes_the_check(tickets: Flask) -> None:
    with tickets.app_context():
        st = state()
        session = st.db.session
        form = drafts.create(session, st.registry, "form", "warranty", "dora")
        assert form.path.endswith("forms/warranty.yaml")
        assert drafts.check(st.registry, form).ok, drafts.check(st.registry, form).problems
        flow = drafts.create(session, st.registry, "workflow", "warranty", "dora")
        checked = drafts.check(st.registry, flow)
        assert checked.ok, checked.problems
        with pytest.raises(drafts.DraftError, match="exists already"):
            drafts.create(session, st.registry, "workflow", "ticket", "dora")
        with pytest.raises(drafts.DraftError, match="cannot name a form"):
            drafts.create(session, st.registry, "form", "Bad Name", "dora")
        assert session.execute(select(Draft)).scalars().all()


# -- caseloop export ---------------------------------------------------------------------


def test_export_writes_publications_back_and_refuses_a_changed_file(
        tickets: Flask, tmp_path: Path) -> None:
    runner = tickets.test_cli_runner()
    nothing = runner.invoke(args=["export"])
    assert nothing.exit_code == 0 and "nothing to export" in nothing.output
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    pub = _publish(tickets)
    path = tmp_path / "workflows" / "ticket.yaml"
    dry = runner.invoke(args=["export", "--dry-run"])
    assert dry.exit_code == 0 and f"would write {path}" in dry.output
    assert path.read_text("utf-8") == TICKET_V1
    done = runner.invoke(args=["export", "ticket"])
    assert done.exit_code == 0, done.output
    assert f"wrote {path} (workflow 'ticket', publication #1 by dora)" in done.output
    assert path.read_text("utf-8") == pub.text
    # Published again, then the file is edited by hand: a conflict, left alone.
    _draft(tickets, pub.text.replace("Finish", "Complete"))
    _publish(tickets)
    path.write_text("# edited in git\n" + pub.text, "utf-8")
    with tickets.app_context():
        state().registry.load()
    refused = runner.invoke(args=["export"])
    assert refused.exit_code == 1
    assert "conflict:" in refused.output and "caseloop export --force" in refused.output
    assert path.read_text("utf-8").startswith("# edited in git")
    forced = runner.invoke(args=["export", "--force"])
    assert forced.exit_code == 0 and "Complete" in path.read_text("utf-8")
    unknown = runner.invoke(args=["export", "tickt"])
    assert unknown.exit_code == 2 and "no form or workflow named tickt" in unknown.output


def test_cases_migrate_to_current_means_the_published_version(tickets: Flask) -> None:
    triage = _open(tickets, "sort")
    _draft(tickets, TICKET_V2)
    pub = _publish(tickets, state_map={"ticket": {"triage": "assessing"}})
    assert _cases(tickets)[triage][1] == "triage"  # published without moving anyone
    with tickets.app_context():  # another process: it has not seen the publication yet
        state().registry.load()
    moved = tickets.test_cli_runner().invoke(args=[
        "cases", "migrate", "ticket", "--to", "current", "--map", "triage=assessing"])
    assert moved.exit_code == 0, moved.output
    assert _cases(tickets)[triage][:2] == (pub.versions["workflow:ticket"], "assessing")


def test_a_definition_made_in_the_browser_is_published_used_and_exported(
        tickets: Flask, tmp_path: Path) -> None:
    with tickets.app_context():
        st = state()
        session = st.db.session
        for kind in ("form", "workflow"):
            draft = drafts.create(session, st.registry, kind, "warranty", "dora")
            publish(session, st.registry, draft, "dora")
            session.commit()
            st.registry.refresh(session, force=True)
        wf = st.registry.workflow("warranty")
        assert wf is not None and wf.form.name == "warranty"
        assert set(st.registry.effect.published) == {("form", "warranty"),
                                                     ("workflow", "warranty")}
    done = tickets.test_cli_runner().invoke(args=["export"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "forms" / "warranty.yaml").read_text("utf-8").startswith(
        "form: warranty\n")
    assert (tmp_path / "workflows" / "warranty.yaml").exists()
    with tickets.app_context():  # a restart reads the exported files: they agree
        st = state()
        fresh = Registry(st.registry.paths)
        fresh.load()
        fresh.refresh(st.db.session)
        assert fresh.effect.published == {} and fresh.effect.conflicts == ()
        assert fresh.workflow("warranty") is not None


def test_once_exported_a_later_edit_of_the_file_takes_effect(
        tickets: Flask, tmp_path: Path) -> None:
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    _publish(tickets)
    runner = tickets.test_cli_runner()
    assert runner.invoke(args=["export"]).exit_code == 0
    path = tmp_path / "workflows" / "ticket.yaml"
    edited = path.read_text("utf-8").replace("Finish", "Complete")
    path.write_text(edited, "utf-8")  # a later change in git, deployed
    with tickets.app_context():
        st = state()
        fresh = Registry(st.registry.paths)
        fresh.load()
        fresh.refresh(st.db.session)
        assert fresh.effect.conflicts == () and fresh.effect.published == {}
        assert "Complete" in fresh.workflow("ticket").source  # type: ignore[union-attr]
    with tickets.app_context():
        state().registry.load()  # as the next command's process would
    again = runner.invoke(args=["export"])
    assert "nothing to export" in again.output and path.read_text("utf-8") == edited


def test_the_registry_keeps_publications_as_values_not_rows_of_a_finished_request(
        tickets: Flask) -> None:
    _draft(tickets, TICKET_V1.replace("Sort", "Sort out"))
    _publish(tickets)
    with tickets.app_context():
        st = state()
        st.registry.load()
        st.registry.refresh(st.db.session, force=True)  # a request takes them up …
        st.db.session.commit()  # … commits (which expires its rows) and ends
        st.db.session.remove()
    with tickets.app_context():  # another request, another thread's session
        pub = state().registry.effect.published[("workflow", "ticket")]
        assert (pub.published_by, pub.sequence) == ("dora", 1)


def test_a_map_to_a_state_the_new_version_lacks_is_refused_whole(tickets: Flask) -> None:
    triage = _open(tickets, "sort")
    before = _cases(tickets)
    _draft(tickets, TICKET_V2)
    for migrate in (False, True):
        with pytest.raises(PublishError, match="sends 'triage' to 'nowhere'"):
            _publish(tickets, state_map={"ticket": {"triage": "nowhere"}}, migrate=migrate)
    assert _cases(tickets) == before and _cases(tickets)[triage][1] == "triage"
    with tickets.app_context():
        session = state().db.session
        assert session.execute(select(Publication)).first() is None
        assert drafts.find(session, "workflow", "ticket") is not None


def test_a_case_changed_during_the_migration_leaves_nothing_published(
        tickets: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import caseloop.designer.publish as publishing

    triage = _open(tickets, "sort")
    before = _cases(tickets)
    _draft(tickets, TICKET_V2)
    with tickets.app_context():
        engine = state().db.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("on SQLite the publishing transaction already holds the write lock: no "
                    "other writer can change a case meanwhile")
    original = publishing.move

    def racing(*args: object, **kwargs: object) -> object:
        def meanwhile() -> None:  # another writer moves the case on under the migration
            with engine.begin() as other:
                other.execute(Case.__table__.update().where(Case.id == triage).values(
                    version=Case.version + 1))
        return original(*args, record=meanwhile, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publishing, "move", racing)
    with pytest.raises(PublishError, match="nothing was published: some 'ticket' cases "
                                           "changed while they were being migrated"):
        _publish(tickets, state_map={"ticket": {"triage": "assessing"}}, migrate=True)
    after = _cases(tickets)[triage]
    assert after[:3] == before[triage][:3] and after[3] == before[triage][3] + 1
    with tickets.app_context():
        assert state().db.session.execute(select(Publication)).first() is None
