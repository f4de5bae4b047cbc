"""State machines built with ``transitions``: one per workflow version, shared, model-less.

A ``Machine`` is built once when a workflow version is first needed and then
serves every case of that version. It keeps no models: a transition is fired
on a throw-away :class:`Adapter` that proxies the ``state`` attribute onto
the case row (the maintainers' pattern for ORM objects, and 15x cheaper
than ``add_model``/``remove_model``). ``auto_transitions`` is off, so there
are no ``to_<state>`` triggers that would bypass guards; state names are all
checked by ``spec`` before they reach ``transitions``; conditions are the
compiled guard expressions, never strings that ``transitions`` would resolve.
"""

from __future__ import annotations

from typing import Any, Protocol

from transitions import EventData, Machine

from .spec.model import Transition, Workflow


class HasState(Protocol):
    state: str


class Adapter:
    """What ``transitions`` sees of a case: its ``state``, and the guard scope."""

    __slots__ = ("case", "scope")

    def __init__(self, case: HasState, scope: dict[str, Any]) -> None:
        self.case = case
        self.scope = scope

    @property
    def state(self) -> str:
        return self.case.state

    @state.setter
    def state(self, value: str) -> None:
        self.case.state = value


def build(workflow: Workflow) -> Machine:
    """The shared machine of one workflow version."""
    machine = Machine(
        model=None,
        states=list(workflow.states),
        initial=workflow.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        model_attribute="state",
    )
    for t in workflow.transitions:
        machine.add_transition(t.trigger, list(t.sources), t.dest,
                               conditions=[_guard(t)] if t.guard is not None else None)
    return machine


def fire(machine: Machine, trigger: str, case: HasState, scope: dict[str, Any]) -> bool:
    """Fire ``trigger`` on ``case``; False when the guard holds it back."""
    return bool(machine.events[trigger].trigger(Adapter(case, scope)))


def _guard(t: Transition) -> Any:
    assert t.guard is not None
    expression = t.guard.expression

    def condition(event: EventData) -> bool:
        adapter: Adapter = event.model  # type: ignore[assignment]
        return expression.test(adapter.scope)

    condition.__name__ = f"guard_{t.trigger}"
    return condition
