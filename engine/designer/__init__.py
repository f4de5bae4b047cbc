"""The designer's core: drafts, publications laid over the files, publishing with a
state map, and conflicts with the files. Free of Flask: the designer pages
(:mod:`caseloop.views.designer`) and the CLI call in."""
