"""Mesa agents: the central government, provincial leaders, civil servants and citizens.

Leaders and the central government are few and decide with Python logic. Civil servants and citizens are many:
their state lives in numpy arrays and their rules run over whole arrays (population.py, with compiled loops in
kernels.py; reference.py states the same rules the direct way, as the reference); the `CivilServant` and `Citizen`
agents here are Mesa views onto one row of those arrays, for inspection, agent-level data and the browser view.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

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
from egovsim.model.compiled import jit
from egovsim.model.population import CEREMONIAL, GENUINE, NON_USER, StepContext
from egovsim.model.portable import exp_scalar


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

    @property
    def next_date(self) -> float:
        """The date of the next event to fire (infinity if none is left)."""
        return self.events[self.fired].date if self.fired < len(self.events) else float("inf")


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
        self._rates = None  # LeaderRates, as a tuple (made at the first step)

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
        return capacity_of(
            STRATEGIES[self.strategy], self.local_capacity, self.services.vendor_capacity, self.policy.software
        )

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
        return enabling_of(self.services.enabling_floor, roadmap, self.params.own_plan_clarity, self.policy.own_plan)

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
        """The leader's step (province_step, compiled: the same arithmetic as Python's, one call a province)."""
        if self._rates is None:
            self._rates = tuple(LeaderRates.of(self.params, self.services, reference_trust, rent_mean))
        pol = self.policy
        levers = (STRATEGIES[self.strategy], pol.own_plan, pol.software, pol.agency_it, self.software_cost)
        state = (self.will0, self.will, self.local_capacity, self.n_systems, self.it_waste)
        state += (self.agency_it_office, self.agency_it_commune, self.deterrence)
        inputs = (roadmap, own_index, best_peer_index, trust_mean, rent_at_risk, press)
        (
            self.published,
            self.digitised,
            self.will,
            self.local_capacity,
            self.n_systems,
            self.it_waste,
            self.agency_it_office,
            self.agency_it_commune,
        ) = province_step(self.published, self.digitised, ctx.rent_rel, self._rates, levers, state, inputs, dt)


# ---- the leader's rules, compiled (numba): Python's float arithmetic, operation for operation ---------------------

STRATEGIES = {"local": 0, "platform": 1, "fragmented": 2}
LOCAL, PLATFORM, FRAGMENTED = 0, 1, 2


class LeaderRates(NamedTuple):
    """The shared priors a leader's step reads, constant over a run (passed as a plain tuple: see kernels.py)."""

    roadmap_effect: float
    emulation_effect: float
    satisfaction_effect: float
    rent_loss_effect: float
    press_effect: float
    adjustment_rate: float
    own_plan_clarity: float
    enabling_floor: float
    vendor_capacity: float
    digitisation_rate: float
    publish_speedup: float
    rent_slowdown: float
    local_capacity_rate: float
    procurement_interval: float
    max_systems: float
    agency_it_rate: float
    commune_it_lag: float
    reference_trust: float
    rent_mean: float

    @classmethod
    def of(cls, lp, s, reference_trust: float, rent_mean: float) -> LeaderRates:
        return cls(
            lp.roadmap_effect,
            lp.emulation_effect,
            lp.satisfaction_effect,
            lp.rent_loss_effect,
            lp.press_effect,
            lp.adjustment_rate,
            lp.own_plan_clarity,
            s.enabling_floor,
            s.vendor_capacity,
            s.digitisation_rate,
            s.publish_speedup,
            s.rent_slowdown,
            s.local_capacity_rate,
            s.procurement_interval,
            float(s.max_systems),
            s.agency_it_rate,
            s.commune_it_lag,
            reference_trust,
            rent_mean,
        )


@jit
def _approach_one(x: float, rate: float, dt: float) -> float:
    """population.approach_one for one value: the exact solution over dt of dx/dt = rate (1 - x)."""
    return 1.0 - (1.0 - x) * exp_scalar(-rate * dt)


@jit
def enabling_of(floor: float, roadmap: float, own_plan_clarity: float, own_plan: float) -> float:
    """E_p: how far a clear roadmap, or the province's own plan, enables digitisation and coordinated
    procurement: e_0 + (1 - e_0) max(R, P_own x own_plan)."""
    plan = own_plan_clarity * own_plan
    return floor + (1.0 - floor) * (plan if plan > roadmap else roadmap)  # Python's max(roadmap, plan)


@jit
def capacity_of(strategy: int, local_capacity: float, vendor_capacity: float, software: float) -> float:
    """Implementation capacity: local IT staff's (built with software spending), or, for procured systems
    (fragmented, platform), the vendors' from day one in proportion to the software spending that pays for
    them, up to `vendor_capacity` at the reference spending 1 (a vendor delivers what is paid for)."""
    if strategy == LOCAL:
        return local_capacity
    return vendor_capacity * (software if software < 1.0 else 1.0)


@jit
def target_will(
    r,
    will0: float,
    roadmap: float,
    own_index: float,
    best_peer: float,
    trust_mean: float,
    rent_at_risk: float,
    press: float,
) -> float:
    """W* = W0 + roadmap x R + emulation x (gap to the best peer's supply index) + satisfaction x (trust -
    reference) - rent loss x (informal income at risk) + press x (citizens' reports), within [0, 1]."""
    gap = best_peer - own_index
    gap = gap if gap > 0.0 else 0.0
    target = (
        will0
        + r.roadmap_effect * roadmap
        + r.emulation_effect * gap
        + r.satisfaction_effect * (trust_mean - r.reference_trust)
        - r.rent_loss_effect * rent_at_risk
        + r.press_effect * press
    )
    target = target if target > 0.0 else 0.0
    return target if target < 1.0 else 1.0


@jit
def digitise(published, digitised, rent_rel, r, rate: float, deterrence: float, dt: float):
    """Publish procedures (a, level 3) and bring them fully online (d <= a, level 4) at rates prop. to
    will x capacity x enabling; level 4 removes the counter step, so it is slowed where informal income is
    at risk (rent x deterrence: pattern 4), level 3 is not. New arrays (a platform's are shared, never changed)."""
    new_published = np.empty_like(published)
    new_digitised = np.empty_like(digitised)
    publish = exp_scalar(-(r.publish_speedup * rate) * dt)
    for j in range(published.size):
        a = 1.0 - (1.0 - published[j]) * publish
        rate_full = rate * exp_scalar(-r.rent_slowdown * (rent_rel[j] * r.rent_mean) * deterrence)
        new_published[j] = a
        new_digitised[j] = a - (a - digitised[j]) * exp_scalar(-rate_full * dt)
    return new_published, new_digitised


@jit
def procure(
    r,
    strategy: int,
    software: float,
    software_cost: float,
    enabling: float,
    local_capacity: float,
    n_systems: float,
    it_waste: float,
    dt: float,
):
    """Fragmented strategy: without a roadmap or own plan, agencies buy redundant systems with the software
    money, dn/dt = software x (1 - E) / tau_proc (up to max_systems; one every tau_proc years at the
    reference spending and no enabling); the redundant share (n - 1) / n of software spending is waste.
    Local IT staff build capacity under the local strategy. Returns (local capacity, systems, waste)."""
    if strategy == LOCAL:
        local_capacity = _approach_one(local_capacity, r.local_capacity_rate * software, dt)
    elif strategy == FRAGMENTED:
        growth = software * (1.0 - enabling) / r.procurement_interval
        n = n_systems + dt * growth
        n_systems = n if n < r.max_systems else r.max_systems
        it_waste += dt * software_cost * (n_systems - 1) / n_systems
    return local_capacity, n_systems, it_waste


@jit
def province_step(published, digitised, rent_rel, rates, levers, state, inputs, dt):
    """One leader's step, in the order of the rules: digitisation (with the will and capacity at the start of
    the step), procurement, agencies' IT, then will relaxes toward its target. Returns the new published and
    digitised levels, will, local capacity, systems, IT waste, and the offices' and communes' IT."""
    r = LeaderRates(*rates)
    strategy, own_plan, software, agency_it, software_cost = levers
    will0, will, local_capacity, n_systems, it_waste, office, commune, deterrence = state
    roadmap, own_index, best_peer, trust_mean, rent_at_risk, press = inputs
    target = target_will(r, will0, roadmap, own_index, best_peer, trust_mean, rent_at_risk, press)
    enabling = enabling_of(r.enabling_floor, roadmap, r.own_plan_clarity, own_plan)
    capacity = capacity_of(strategy, local_capacity, r.vendor_capacity, software)
    rate = r.digitisation_rate * will * capacity * enabling
    published, digitised = digitise(published, digitised, rent_rel, r, rate, deterrence, dt)
    local_capacity, n_systems, it_waste = procure(
        r, strategy, software, software_cost, enabling, local_capacity, n_systems, it_waste, dt
    )
    # agencies' IT equipment approaches 1 at k_K x agency_it spending; commune agencies (1 - lambda_c) slower
    it_rate = r.agency_it_rate * agency_it
    office = _approach_one(office, it_rate, dt)
    commune = _approach_one(commune, it_rate * (1.0 - r.commune_it_lag), dt)
    will = target + (will - target) * exp_scalar(-r.adjustment_rate * dt)
    return published, digitised, will, local_capacity, n_systems, it_waste, office, commune


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
