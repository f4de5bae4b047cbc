"""The plugin system: discovery, the hooks as documented, `caseloop plugins`, and the
README's minimal plugin really working."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from caseloop import hookimpl, hooks, plugins
from caseloop.crm import CaseSnapshot, Connector, UnsupportedOperation, http_client
from caseloop.testing import serve, snapshot

from .conftest import ROOT, make_app

README = (ROOT / "README.md").read_text("utf-8")
SHIPPED = ("hubspot", "zoho", "salesforce", "fxiaoke", "webhook")


def _signature(fn: Any) -> str:
    # The annotations stay strings (from __future__ import annotations): as written.
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{fn.__name__}({params}) -> {sig.return_annotation}"


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    specs = [fn for name, fn in vars(hooks).items()
             if callable(fn) and hasattr(fn, "caseloop_spec")]
    table = README.split("### Hooks", 1)[1].split("###", 1)[0].replace("\\|", "|")
    documented = re.findall(r"^\| `([a-z_]+\(.*?\) -> .+?)` \|", table, re.M)
    assert sorted(documented) == sorted(_signature(fn) for fn in specs)
    assert len(specs) >= 5


def test_a_plugin_module_is_registered_and_its_hooks_listed() -> None:
    module = types.ModuleType("caseloop_example")

    class Example:
        name = "example"
        capabilities = frozenset({"cases"})

    @hookimpl
    def register_connectors() -> list[type]:
        return [Example]

    module.register_connectors = register_connectors  # type: ignore[attr-defined]
    pm = plugins.manager(load_entry_points=False, extra=[module])
    assert plugins.connectors(pm) == {"example": Example}
    [loaded] = plugins.loaded(pm)
    assert loaded == plugins.Loaded("caseloop_example", None, ("register_connectors",))


def test_two_plugins_claiming_one_connector_name_are_refused() -> None:
    def plugin(label: str) -> types.ModuleType:
        module = types.ModuleType(label)
        cls = type("C", (), {"name": "same"})
        module.register_connectors = hookimpl(lambda: [cls])  # type: ignore[attr-defined]
        module.register_connectors.__name__ = "register_connectors"
        return module

    pm = plugins.manager(load_entry_points=False, extra=[plugin("one"), plugin("two")])
    with pytest.raises(plugins.PluginError, match="two plugins register the connector 'same'"):
        plugins.connectors(pm)


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(f"caseloop-{name}")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def test_entry_point_discovery_finds_the_installed_connectors_and_can_be_switched_off() -> None:
    present = [n for n in SHIPPED if _installed(n)]
    if not present:
        pytest.skip("no connector from plugins/ is installed (pip install -e plugins/hubspot)")
    found = plugins.connectors(plugins.manager())
    assert set(present) <= set(found)
    for name in present:
        assert isinstance(found[name].capabilities, frozenset)
    assert plugins.connectors(plugins.manager(load_entry_points=False)) == {}


def test_the_plugins_command_lists_versions_hooks_and_connectors(tmp_path: Path) -> None:
    present = [n for n in SHIPPED if _installed(n)]
    if not present:
        pytest.skip("no connector from plugins/ is installed (pip install -e plugins/hubspot)")
    env = {"CASELOOP_LOAD_PLUGINS": "true", "CASELOOP_DATABASE_URL":
           f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin:/bin"}
    cli = str(Path(sys.executable).with_name("caseloop"))
    out = subprocess.run([cli, "plugins"], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for name in present:
        version = importlib.metadata.version(f"caseloop-{name}")
        assert f"caseloop-{name} {version}\n  hooks: register_connectors" in out
        assert re.search(rf"^  {name}: .*cases", out, re.M), out
    assert "CASELOOP_CRM: no CRM configured" in out
    listing = json.loads(subprocess.run([cli, "plugins", "--json"], env=env, cwd=ROOT,
                                        capture_output=True, text=True, timeout=120,
                                        check=True).stdout)
    assert {p["name"] for p in listing["plugins"]} >= {f"caseloop-{n}" for n in present}
    off = subprocess.run([cli, "plugins"], env={**env, "CASELOOP_LOAD_PLUGINS": "false"},
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert off.stdout.startswith("No plugins installed")


def test_a_misconfigured_crm_is_reported_not_fatal(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
                   CASELOOP_CRM={"nosuch": {"x": 1}})
    result = app.test_cli_runner().invoke(args=["plugins"])
    assert "CASELOOP_CRM: error: CASELOOP_CRM.nosuch: no connector 'nosuch' is installed" \
        in result.output
    reply = app.test_client().post("/api/hooks/nosuch", data=b"{}")
    assert reply.status_code == 503
    assert reply.get_json()["error"]["code"] == "crm_misconfigured"


# -- the README's minimal plugin ---------------------------------------------------------
def _readme_plugin() -> types.ModuleType:
    source = README.split("A minimal plugin", 1)[1]
    code = re.search(r"```python\n(.+?)\n```", source, re.S)
    assert code is not None
    module = types.ModuleType("caseloop_mycrm")
    exec(compile(code.group(1), "README.md", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.fixture
def ticket_system() -> Iterator[tuple[str, dict[str, Any]]]:
    """What the README's plugin talks to: PUT /tickets/<id> with an API key."""
    tickets: dict[str, Any] = {}

    @Request.application
    def app(request: Request) -> Response:
        if request.headers.get("X-Api-Key") != "secret":
            return Response('{"error": "bad key"}', 401, content_type="application/json")
        key = request.path.rsplit("/", 1)[1]
        created = key not in tickets
        tickets[key] = request.get_json()
        return Response(json.dumps({"id": f"T{len(tickets)}" if created else "T1"}),
                        201 if created else 200, content_type="application/json")

    with serve(app) as url:
        yield url, tickets


def test_the_readme_plugin_works(ticket_system: tuple[str, dict[str, Any]]) -> None:
    url, tickets = ticket_system
    module = _readme_plugin()
    pm = plugins.manager(load_entry_points=False, extra=[module])
    cls = plugins.connectors(pm)["mycrm"]
    with http_client() as http:
        connector = cls({"base_url": url, "api_key": "secret"}, http, None)
        assert isinstance(connector, Connector)
        first = connector.upsert_case(snapshot("CMP-1"))
        again = connector.upsert_case(snapshot("CMP-1", category="done"))
        assert (first.created, again.created, first.external_id) == (True, False, "T1")
        assert tickets == {"CMP-1": {"subject": "Parcel arrived damaged", "status": "done"}}
        with pytest.raises(UnsupportedOperation):
            connector.find_customers(email="a@example.com")
    assert isinstance(snapshot(), CaseSnapshot)
