"""``caseloop docs NAME``: a Markdown page per workflow or form, for review in pull requests."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from .. import outline
from ..extension import state
from ..hints import suggest
from .common import _refuse_broken_definitions

#: Where the pages go unless --out says otherwise.
DEFAULT_OUT = "docs/definitions"


@click.command("docs")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "every", is_flag=True, help="Every workflow and form.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the labels and of the page.")
@click.option("--out", default=DEFAULT_OUT, show_default=True, metavar="DIR",
              help="Folder for NAME.md ('-': print the pages instead).")
@with_appcontext
def docs_command(names: tuple[str, ...], every: bool, lang: str, out: str) -> None:
    """Write a Markdown page for each named workflow or form of the definitions.

    A workflow's page has its diagram (mermaid), transitions, fields, field
    permissions per state and service levels; a form's page its fields. The
    pages change only when the definitions do: commit them next to the YAML so
    that a pull request shows what a change does. A name that is both a
    workflow and a form (its form) gives the workflow's page.
    """
    st = state()
    _refuse_broken_definitions(st, "write the docs")
    definitions = st.registry.current
    known = outline.names(definitions)
    if every and names:
        raise click.UsageError("Give names or --all, not both.")
    if not every and not names:
        raise click.UsageError("Name a workflow or form (e.g. 'caseloop docs complaint'), "
                               "or give --all.")
    for name in names:
        if name not in known:
            hint = suggest(name, known)
            listed = f"; known: {', '.join(known)}" if hint.startswith(" (did you") else ""
            raise click.ClickException(f"no workflow or form named '{name}'{hint}{listed}")
    wanted = known if every else list(dict.fromkeys(names))
    pages = {name: outline.markdown(definitions, name, lang) for name in wanted}
    if out == "-":
        click.echo("\n".join(pages.values()), nl=False)
        return
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, page in pages.items():
            path = folder / f"{name}.md"
            path.write_text(page, "utf-8", newline="\n")
            click.echo(f"wrote {path}")
    except OSError as exc:
        raise click.ClickException(f"cannot write into {folder}: {exc.strerror or exc} "
                                   "(choose another folder with --out)") from None
