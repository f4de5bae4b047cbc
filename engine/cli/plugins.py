"""``caseloop plugins``: what is installed, what it offers, and the CRMs configured."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from .. import plugins
from ..extension import state


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@with_appcontext
def plugins_command(as_json: bool) -> None:
    """List installed plugins with their versions and the hooks they implement,
    the CRM connectors they offer, and the CRMs configured in CASELOOP_CRM.

    Plugins are distributions registering in the 'caseloop' entry-point group
    (e.g. pip install -e plugins/hubspot); CASELOOP_LOAD_PLUGINS=false ignores them.
    """
    st = state()
    pm = st.plugins
    try:
        connectors = plugins.connectors(pm)
    except plugins.PluginError as exc:
        raise click.ClickException(str(exc)) from None
    found = plugins.loaded(pm)
    configured = st.crm.names() if st.crm is not None else []
    if as_json:
        click.echo(json.dumps({
            "plugins": [{"name": p.name, "version": p.version, "hooks": list(p.hooks)}
                        for p in found],
            "connectors": {name: sorted(getattr(cls, "capabilities", ()))
                           for name, cls in sorted(connectors.items())},
            "crm": {"configured": configured, "error": st.crm_error}}, indent=2))
        return
    if not found:
        click.echo("No plugins installed (pip install a caseloop-* plugin, e.g. "
                   "pip install -e plugins/hubspot).")
    for p in found:
        click.echo(f"{p.name} {p.version or '(not installed as a distribution)'}")
        click.echo(f"  hooks: {', '.join(p.hooks) or 'none'}")
    if connectors:
        click.echo("Connectors:")
        for name, cls in sorted(connectors.items()):
            caps = ", ".join(sorted(getattr(cls, "capabilities", ())))
            click.echo(f"  {name}: {caps}")
    if st.crm_error is not None:
        click.echo(f"CASELOOP_CRM: error: {st.crm_error}")
    elif configured:
        click.echo(f"CASELOOP_CRM: {', '.join(configured)}")
    else:
        click.echo("CASELOOP_CRM: no CRM configured")
