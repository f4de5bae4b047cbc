"""Plugins the tests register with CASELOOP_PLUGINS (by import name)."""
