"""Mesa agents: the central government, provincial leaders, civil servants and citizens.

Leaders and the central government are few and decide with Python logic. Civil servants and citizens are many:
their state lives in numpy arrays and their rules run over whole arrays (population.py, with compiled loops in
kernels.py; reference.py states the same rules the direct way, as the reference); the `CivilServant` and `Citizen`
agents here are Mesa views onto one row of those arrays, for inspection, agent-level data and the browser view.
"""

from __future__ import annotations

from typing import ClassVar

import mesa
import numpy as np

from egovsim.config.scenario import (
    CentralConfig,
    CentralState,
    Event,
    LeaderParams,
    Policy,
    ProvinceConfig,
    Scenario,
    apply_event,
    resolve_kinds,
)
from egovsim.model import costs, portable
from egovsim.model.population import CEREMONIAL, GENUINE, NON_USER, StepContext, approach_one


def initial_will(params: LeaderParams, will_effect: float) -> float:
    """W0 = logistic(logit(will_mean) + will_spread x will_effect): a province's conviction under the shared
    hierarchical prior, on the logit scale so no value needs clipping (docs/design-model-v2.md 3.3)."""
    logit = portable.log(params.will_mean / (1.0 - params.will_mean)) + params.will_spread * will_effect
    return float(1.0 / (1.0 + portable.exp(-logit)))


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

    def close(self) -> None:
        """Events not yet fired never will (a merged province's own plans lapse)."""
        self.fired = len(self.events)


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
    """A province's leader: political will, the digitisation of procedures (published and fully online levels),
    the software strategy and its systems, and the IT equipment of the province's agencies.

    Will W starts at the province's W0 (shared prior and its fitted will effect) and moves with roadmap clarity,
    with the gap to the best peer province's supply index (emulation), with citizens' trust, with the press of
    citizens' reports, and down with the informal income officials stand to lose (docs/ODD.md 7.6).
    """

    def __init__(self, model: mesa.Model, index: int, key: str, config: ProvinceConfig, scenario: Scenario):
        super().__init__(model)
        self.index, self.key, self.name = index, key, config.name
        self.params, self.services = scenario.leaders, scenario.services
        self.will0 = self.will = initial_will(scenario.leaders, config.leader.will_effect)
        self.policy: Policy = config.policy
        self.timeline = Timeline(resolve_kinds(config.events, scenario.event_effects))
        self.history: list[tuple[float, str]] = []
        self.published = np.zeros(scenario.services.n_procedures)  # a_pj: online forms, result at the counter
        self.digitised = np.zeros(scenario.services.n_procedures)  # d_pj <= a_pj: fully online
        self.local_capacity = scenario.services.it_capacity0
        self.strategy = self.policy.software_strategy
        self.n_systems = 1.0  # effective number of separate systems (continuous)
        self._pricing = (config, scenario.costs)  # what this province's levers cost (model/costs.py)
        self.software_cost = costs.software_spending(self.policy, *self._pricing)  # bn VND/yr, levers in force
        self.it_waste = 0.0  # bn VND spent on redundant systems since the start
        # agencies' IT equipment: province/district level, commune level; commune staff share = rural share
        self.agency_it_office = self.agency_it_commune = scenario.services.agency_it0
        self.commune_share = 1.0 - config.urban_share
        # share of an informal rent still worth asking for: the province mean of the civil servants' D_i, set
        # by the model's context each step (docs/ODD.md 7.3); max(0, 1 - pi F) until the first step
        self.deterrence = max(0.0, 1.0 - self.policy.detection_prob * self.policy.penalty)
        # after a merger (model/jurisdictions.py): systems the unit's officials work across, and a migration to
        # another province's system (start, years, usability lost at the start, one-off cost)
        self.cross_systems = 1
        self.migration: tuple[float, float, float, float] | None = None

    def fire_events(self, until: float) -> None:
        for event in self.timeline.due(until):
            self.policy = apply_event(self.policy, event)
            self.history.append((event.date, event.name))
            self.software_cost = costs.software_spending(self.policy, *self._pricing)  # levers change only here
        if self.policy.software_strategy != self.strategy:  # a new strategy starts with one system
            self.strategy = self.policy.software_strategy
            self.n_systems = 1.0

    # ---- what the province's state looks like to others -------------------------------------------------

    @property
    def capacity(self) -> float:
        """Implementation capacity: local IT staff's (built with software spending), or, for procured systems
        (fragmented, platform), the vendors' from day one in proportion to the software spending that pays for
        them, up to `vendor_capacity` at the reference spending 1 (a vendor delivers what is paid for)."""
        if self.strategy == "local":
            return self.local_capacity
        return self.services.vendor_capacity * min(1.0, self.policy.software)

    @property
    def usability(self) -> float:
        usability = self.system_usability
        if self.cross_systems > 1:  # officials of a merged unit work across its former provinces' systems
            usability /= 1.0 + self.services.fragmentation_penalty * (self.cross_systems - 1)
        if self.migration is not None:
            usability *= 1.0 - self.migration_dip(self.model.year)
        return usability

    @property
    def system_usability(self) -> float:
        s = self.services
        if self.strategy == "local":
            return s.local_usability
        if self.strategy == "platform":
            return s.platform_usability
        return s.fragmented_usability / (1.0 + s.fragmentation_penalty * (self.n_systems - 1))

    # ---- after a merger (model/jurisdictions.py) ---------------------------------------------------------

    def adopt_policy(self, policy: Policy) -> None:
        """The unit's levers replace this province's (a new software strategy starts with one system)."""
        self.policy = policy
        self.software_cost = costs.software_spending(self.policy, *self._pricing)
        if policy.software_strategy != self.strategy:
            self.strategy = policy.software_strategy
            self.n_systems = 1.0

    def migrate_to(self, platform: ProvincialLeader, date: float, params) -> None:
        """Move to the platform province's system: its procedures online and its capacity from now on; a
        migration (usability dip, one-off cost) where the software strategy changes."""
        if platform.strategy != self.strategy and params.migration_years > 0:
            self.migration = (date, params.migration_years, params.migration_usability_loss, params.migration_cost)
        self.strategy = platform.strategy
        self.follow_platform(platform)

    def follow_platform(self, platform: ProvincialLeader) -> None:
        self.published, self.digitised = platform.published, platform.digitised  # replaced, never changed in place
        self.local_capacity, self.n_systems = platform.local_capacity, platform.n_systems

    def migration_dip(self, now: float) -> float:
        """Share of usability lost to a migration now: the loss at its start, fading linearly over its years."""
        start, years, loss, _cost = self.migration
        return loss * min(1.0, max(0.0, 1.0 - (now - start) / years))

    def migration_spending(self, now: float) -> float:
        """bn VND/yr spent on a migration now: its cost spread evenly over its years."""
        if self.migration is None:
            return 0.0
        start, years, _loss, cost = self.migration
        return cost / years if start <= now < start + years else 0.0

    @property
    def agency_it(self) -> float:
        """K_p: agencies' IT equipment, province/district and commune levels weighted by their staff shares."""
        return (1.0 - self.commune_share) * self.agency_it_office + self.commune_share * self.agency_it_commune

    def enabling(self, roadmap: float) -> float:
        """E_p: how far a clear roadmap, or the province's own plan, enables digitisation and coordinated
        procurement: e_0 + (1 - e_0) max(R, P_own x own_plan)."""
        floor = self.services.enabling_floor
        return floor + (1.0 - floor) * max(roadmap, self.params.own_plan_clarity * self.policy.own_plan)

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
        lp = self.params
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
        enabling = self.enabling(roadmap)
        self.digitise(ctx.rent_rel * rent_mean, enabling, dt)
        self.procure(enabling, dt)
        self.equip_agencies(dt)
        self.will = float(target + (self.will - target) * portable.exp(-lp.adjustment_rate * dt))

    def digitise(self, rent: np.ndarray, enabling: float, dt: float) -> None:
        """Publish procedures (a, level 3) and bring them fully online (d <= a, level 4) at rates prop. to
        will x capacity x enabling; level 4 removes the counter step, so it is slowed where informal income is
        at risk (rent x deterrence: pattern 4), level 3 is not."""
        s = self.services
        rate = s.digitisation_rate * self.will * self.capacity * enabling
        self.published = approach_one(self.published, s.publish_speedup * rate, dt)
        rate_full = rate * portable.exp(-s.rent_slowdown * rent * self.deterrence)
        self.digitised = self.published - (self.published - self.digitised) * portable.exp(-rate_full * dt)

    def procure(self, enabling: float, dt: float) -> None:
        """Fragmented strategy: without a roadmap or own plan, agencies buy redundant systems with the software
        money, dn/dt = software x (1 - E) / tau_proc (up to max_systems; one every tau_proc years at the
        reference spending and no enabling); the redundant share (n - 1) / n of software spending is waste.
        Local IT staff build capacity under the local strategy."""
        s, pol = self.services, self.policy
        if self.strategy == "local":
            self.local_capacity = float(approach_one(self.local_capacity, s.local_capacity_rate * pol.software, dt))
        elif self.strategy == "fragmented":
            growth = pol.software * (1.0 - enabling) / s.procurement_interval
            self.n_systems = min(float(s.max_systems), self.n_systems + dt * growth)
            self.it_waste += dt * self.software_cost * (self.n_systems - 1) / self.n_systems

    def equip_agencies(self, dt: float) -> None:
        """Agencies' IT equipment approaches 1 at k_K x agency_it spending; commune agencies (1 - lambda_c) slower."""
        s = self.services
        rate = s.agency_it_rate * self.policy.agency_it
        self.agency_it_office = float(approach_one(self.agency_it_office, rate, dt))
        self.agency_it_commune = float(approach_one(self.agency_it_commune, rate * (1.0 - s.commune_it_lag), dt))


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
        return self.model.civil_servant(int(self._get("civil_servant")))
