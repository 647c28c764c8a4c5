"""Mesa agents: the central government, provincial leaders, civil servants and citizens.

Leaders and the central government are few and decide with Python logic. Civil servants and citizens are many:
their state lives in numpy arrays and their rules run over whole arrays (population.py, with compiled loops in
kernels.py; reference.py states the same rules the direct way, as the reference); the `CivilServant` and `Citizen`
agents here are Mesa views onto one row of those arrays, for inspection, agent-level data and the browser view.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import ClassVar

import mesa
import numpy as np

from egovsim.config.scenario import CentralConfig, CentralState, Event, Policy, ProvinceConfig, Scenario
from egovsim.model.population import CEREMONIAL, GENUINE, NON_USER, StepContext, approach_one


def apply_event(levers: typing.Any, event: Event) -> typing.Any:
    """New lever values after `event`: `set` replaces, `add` adds and is clipped to the lever's range."""
    changes = dict(event.set)
    for name, delta in event.add.items():
        f = next(f for f in dataclasses.fields(levers) if f.name == name)
        value = getattr(levers, name) + delta
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        changes[name] = float(np.clip(value, -np.inf if lo is None else lo, np.inf if hi is None else hi))
    return dataclasses.replace(levers, **changes)


class Timeline:
    """Dated events of one agent, fired in date order once each."""

    def __init__(self, events: list[Event]):
        self.events = sorted(events, key=lambda e: e.date)
        self.fired = 0

    def due(self, until: float) -> list[Event]:
        """Events not yet fired dated before `until` (the end of the current step)."""
        start = self.fired
        while self.fired < len(self.events) and self.events[self.fired].date < until:
            self.fired += 1
        return self.events[start : self.fired]


class CentralGovernment(mesa.Agent):
    """Roadmap clarity, the national portal and national mandates, moved by dated national events."""

    def __init__(self, model: mesa.Model, config: CentralConfig):
        super().__init__(model)
        self.enabled = config.enabled
        self.levers = config.initial if config.enabled else CentralState(0.0, 0.0, 0.0, 0.0)
        self.timeline = Timeline(config.events if config.enabled else [])
        self.history: list[tuple[float, str]] = []

    def fire_events(self, until: float) -> None:
        for event in self.timeline.due(until):
            self.levers = apply_event(self.levers, event)
            self.history.append((event.date, event.name))


class ProvincialLeader(mesa.Agent):
    """A province's leader: political will, the digitisation of procedures and the software strategy.

    Will W moves with roadmap clarity, with the gap to the best peer province (emulation), with citizens'
    trust, and down with the informal income officials stand to lose (docs/references/design-v1.md).
    """

    def __init__(self, model: mesa.Model, index: int, key: str, config: ProvinceConfig, scenario: Scenario):
        super().__init__(model)
        self.index, self.key, self.name = index, key, config.name
        self.params, self.services = scenario.leaders, scenario.services
        self.will0 = self.will = config.leader.will0
        self.policy: Policy = config.policy
        self.timeline = Timeline(config.events)
        self.history: list[tuple[float, str]] = []
        self.digitised = np.zeros(scenario.services.n_procedures)
        self.local_capacity = config.it_capacity0
        self.strategy = self.policy.software_strategy
        self.n_systems = 1
        self.next_procurement = scenario.start_year + scenario.services.procurement_interval
        self.it_cost = 0.0
        self.it_waste = 0.0
        # share of an informal rent still worth asking for: the province mean of the civil servants' D_i, set
        # by the model's context each step (docs/ODD.md 7.4); max(0, 1 - pi F) until the first step
        self.deterrence = max(0.0, 1.0 - self.policy.detection_prob * self.policy.penalty)

    def fire_events(self, until: float, now: float) -> None:
        for event in self.timeline.due(until):
            self.policy = apply_event(self.policy, event)
            self.history.append((event.date, event.name))
        if self.policy.software_strategy != self.strategy:  # a new strategy starts with one system
            self.strategy = self.policy.software_strategy
            self.n_systems = 1
            self.next_procurement = now + self.services.procurement_interval

    # ---- what the province's state looks like to others -------------------------------------------------

    @property
    def capacity(self) -> float:
        """Implementation capacity: local IT staff's, or the vendors' from day one."""
        return self.local_capacity if self.strategy == "local" else self.services.vendor_capacity

    @property
    def usability(self) -> float:
        s = self.services
        if self.strategy == "local":
            return s.local_usability
        return s.fragmented_usability / (1.0 + s.fragmentation_penalty * (self.n_systems - 1))

    # ---- the leader's step ------------------------------------------------------------------------------

    def step_province(
        self,
        ctx: StepContext,
        now: float,
        dt: float,
        roadmap: float,
        own_index: float,
        best_peer_index: float,
        trust_mean: float,
        rent_at_risk: float,
        reference_trust: float,
        rent_mean: float,
        press: float = 0.0,
    ) -> None:
        lp, s, pol = self.params, self.services, self.policy
        gap = max(0.0, best_peer_index - own_index)
        target = (
            self.will0
            + lp.roadmap_effect * roadmap
            + lp.emulation_effect * gap
            + lp.satisfaction_effect * (trust_mean - reference_trust)
            - lp.rent_loss_effect * rent_at_risk
            + lp.press_effect * press
        )
        target = min(1.0, max(0.0, target))
        # digitisation: rate prop. to will x capacity, slowed where informal income is at risk (pattern 4)
        rate = (
            s.digitisation_rate
            * self.will
            * self.capacity
            * np.exp(-s.rent_slowdown * rent_mean * ctx.rent_rel * self.deterrence)
        )
        self.digitised = approach_one(self.digitised, rate, dt)
        if self.strategy == "local":
            self.local_capacity = float(approach_one(self.local_capacity, s.local_capacity_rate * pol.software, dt))
        elif pol.software > 0 and now + dt > self.next_procurement:
            self.n_systems = min(s.max_systems, self.n_systems + 1)
            self.next_procurement += s.procurement_interval
        self.it_cost += dt * (pol.infrastructure + pol.training + pol.software + pol.community_digital_teams)
        if self.strategy == "fragmented":
            self.it_waste += dt * pol.software * (self.n_systems - 1) / self.n_systems
        self.will = float(target + (self.will - target) * np.exp(-lp.adjustment_rate * dt))


class CivilServant(mesa.Agent):
    """A view onto one civil servant's row of the vectorised civil service."""

    STATES: ClassVar[dict[int, str]] = {NON_USER: "non-user", CEREMONIAL: "ceremonial", GENUINE: "genuine"}

    def __init__(self, model: mesa.Model, row: int):
        super().__init__(model)
        self.row = row

    @property
    def province(self) -> str:
        return self.model.province_ids[self.model.civil_service.province[self.row]]

    @property
    def use(self) -> str:
        return self.STATES[int(self.model.civil_service.state[self.row])]

    @property
    def skill(self) -> float:
        return float(self.model.civil_service.skill[self.row])

    @property
    def informal_income(self) -> float:
        return float(self.model.civil_service.rent[self.row])

    @property
    def commune_level(self) -> bool:
        return bool(self.model.civil_service.commune[self.row])


class Citizen(mesa.Agent):
    """A view onto one citizen's row of the vectorised population (made on demand: see EGovModel.citizen)."""

    def __init__(self, model: mesa.Model, row: int):
        super().__init__(model)
        self.row = row

    def _get(self, name: str):
        return getattr(self.model.citizens, name)[self.row]

    @property
    def province(self) -> str:
        return self.model.province_ids[int(self._get("province"))]

    urban = property(lambda self: bool(self._get("urban")))
    minority = property(lambda self: bool(self._get("minority")))
    access = property(lambda self: bool(self._get("access")))
    user = property(lambda self: bool(self._get("active")))
    adopted = property(lambda self: bool(self._get("adopted")))
    literacy = property(lambda self: float(self._get("literacy")))
    trust = property(lambda self: float(self._get("trust")))

    @property
    def served_by(self) -> CivilServant:
        return self.model.civil_servant_agents[int(self._get("civil_servant"))]
