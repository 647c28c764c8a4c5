"""EGovModel: the Mesa model that ties the agents of a scenario together and steps them month by month."""

from __future__ import annotations

from types import SimpleNamespace

import mesa
import numpy as np

from egovsim.config.engine import ENGINES, default_engine
from egovsim.config.scenario import Scenario
from egovsim.errors import InputError, clipped
from egovsim.model import costs, population, reference
from egovsim.model.agents import CentralGovernment, Citizen, CivilServant, ProvincialLeader
from egovsim.model.outcomes import COL, COLUMNS
from egovsim.model.population import (
    MINORITY_BLOCK,
    URBAN_BLOCK,
    Citizens,
    CivilService,
    StepContext,
    income_factor,
    mean_access_rate,
)


def make_citizens(engine: str | None, scenario: Scenario, rng: np.random.Generator, civil_service: CivilService):
    engine = engine or default_engine()
    if engine == "numba":
        return Citizens(scenario, rng, civil_service)
    if engine == "plain":
        return reference.PlainCitizens(scenario, rng, civil_service)
    raise ValueError(f"unknown engine {clipped(engine)}: expected one of {', '.join(ENGINES)}")


class EGovModel(mesa.Model):
    """E-government adoption in one or several provinces under a scenario.

    Each step is one month (1 / steps_per_year). Within a step: dated events fire; then citizens, civil
    servants and leaders apply their rules, each reading the others' state from the start of the step; then
    the outcomes of every province are recorded (`records`, and Mesa's DataCollector for the browser view).

    The validated egovsim Scenario is `model.config`: Mesa 3.5 reserves `model.scenario` for its own
    Scenario class (SolaraViz inspects it on Reset), so the model keeps Mesa's there.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, *, collect: bool = True, engine: str | None = None):
        unresolved = costs.unresolved_holds(scenario)
        if unresolved:  # a hold needs the baseline file: load_with_budgets resolves it into dated events
            raise InputError(
                scenario.name,
                f"provinces.{unresolved[0]}.budget",
                "a budget hold must be resolved against its baseline first (egovsim run / compare do it)",
            )
        seed = scenario.seed if seed is None else int(seed)
        super().__init__(rng=seed)  # Mesa wants a plain int: np.int64 raises TypeError (docs/references/stack-notes.md)
        self.seed = seed
        self.config = scenario
        self.dt = scenario.dt
        self.n_steps = scenario.n_steps
        self.step_index = 0
        self.province_ids = list(scenario.provinces)
        J = scenario.services.n_procedures
        # procedures' informal rents spread evenly from 0 to twice the mean (relative to the mean)
        self.rent_rel = (np.arange(J) + 0.5) / J * 2.0

        self.central = CentralGovernment(self, scenario.central)
        engine = engine or default_engine()
        direct = engine == "plain"  # civil servants and outcomes the direct way too
        self.civil_service = (reference.PlainCivilService if direct else CivilService)(scenario, self.rng)
        self.citizens = make_citizens(engine, scenario, self.rng, self.civil_service)
        self.citizens_per_servant = np.bincount(self.citizens.civil_servant, minlength=self.civil_service.n)
        self.civil_service.serve(self.citizens_per_servant)
        self._measure = reference.measure if direct else population.measure
        w = scenario.supply_index
        self.supply_weights = np.array(
            [w.infrastructure, w.internal_use, w.portal, w.online_services, w.ceremonial_weight]
        )
        self.leaders = [
            ProvincialLeader(self, i, key, cfg, scenario) for i, (key, cfg) in enumerate(scenario.provinces.items())
        ]
        self.civil_servant_agents = [CivilServant(self, row) for row in range(self.civil_service.n)]
        self._citizen_views: dict[int, Citizen] = {}

        self.records = np.full((self.n_steps + 1, len(self.leaders), len(COLUMNS)), np.nan)
        self._policy_key = None  # the _policy_version that _pa was computed for
        self._policy_version = 0
        self._online_cache = None  # (key, online) measured after the last step, reused by the next context
        self._portal = None  # (portal level, what the national portal puts online)
        self._leader_reads = [COL["supply_index"], COL["trust_mean"]]  # leaders emulate peers' supply index
        self._fire_events()
        self.spend_cumulative = np.zeros(len(self.leaders))  # bn VND spent on the levers since the start
        self._spend = (None, None)  # (_policy_version, bn VND/yr per province)
        self.records[0] = self._measure(self)
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters()) if collect else None
        if self.datacollector is not None:
            self.datacollector.collect(self)

    # ---- time ---------------------------------------------------------------------------------------------

    @property
    def year(self) -> float:
        """Decimal calendar year of the current state."""
        return self.config.start_year + self.step_index * self.dt

    def _fire_events(self) -> None:
        """Fire events dated before the end of the coming step (events before the start fire at once)."""
        year = self.year
        until = year + self.dt
        central = self.central
        before = central.timeline.fired
        central.fire_events(until)
        changed = central.timeline.fired != before
        for leader in self.leaders:
            before = (leader.timeline.fired, leader.strategy)
            leader.fire_events(until)
            changed = changed or (leader.timeline.fired, leader.strategy) != before
        if changed:  # policies or levers changed: what the context takes from them is recomputed
            self._policy_version += 1

    def step(self) -> None:
        if self.step_index >= self.n_steps:
            self.running = False
            return
        self._fire_events()
        ctx = self.context()
        k, dt, prev = self.step_index, self.dt, self.records[self.step_index]
        # mean informal income at risk per civil servant of each province (rent x deterrence)
        rent_at_risk = self.civil_service.rent_mean_of_province * ctx.deterrence
        self.citizens.step(ctx, self.rng)
        converts = self.civil_service.step(ctx)
        self.citizens.servants_became_genuine(converts)
        index, trust = prev[:, self._leader_reads].T.tolist()
        rent_at_risk = rent_at_risk.tolist()
        roadmap, year = self.central.levers.roadmap_clarity, self.year
        reference_trust, rent_mean = self.config.citizens.reference_trust, self.config.civil_servants.rent_mean
        for p, leader in enumerate(self.leaders):
            best_peer = max(index[:p] + index[p + 1 :], default=index[p])
            leader.step_province(
                ctx, year, dt, roadmap, index[p], best_peer, trust[p], rent_at_risk[p], reference_trust, rent_mean
            )
        self.spend_cumulative += self.spending_rate() * dt  # at the levers in force during this step
        self.step_index = k + 1
        self._measure(self, out=self.records[self.step_index])
        if self.datacollector is not None:
            self.datacollector.collect(self)
        if self.step_index >= self.n_steps:
            self.running = False

    def run(self, progress=None) -> np.ndarray:
        """Run to the end of the scenario; `progress(steps_done)` is called after each step."""
        while self.step_index < self.n_steps:
            self.step()
            if progress is not None:
                progress(self.step_index)
        return self.records

    # ---- what the agents read each step -------------------------------------------------------------------

    def context(self) -> StepContext:
        sc, leaders = self.config, self.leaders
        key = self._policy_version
        if key != self._policy_key:
            self._policy_key = key
            self._policy_arrays()
        online, services_online_share = self._online(key)
        pa = self._pa
        # internet at home: a base rate, a step up at the mobile-broadband take-off (exact over the step), and
        # imitation of those online; citizens beyond the ceiling never get access (their threshold is infinite)
        access_share = self.records[self.step_index, :, COL["access_share"]]
        rate = mean_access_rate(sc.access, self.year, self.dt) + sc.access.imitation * access_share
        access_hazard = rate[:, None] * pa["access_factor"]
        return StepContext(
            k=self.step_index,
            online=online,
            rent_rel=self.rent_rel,
            online_share=services_online_share,
            usability=np.array([leader.usability for leader in leaders]),
            deterrence=pa["deterrence"],
            access_hazard=access_hazard.reshape(-1),
            literacy_rate=pa["literacy_rate"],
            trust_rate=pa["trust_rate"],
            leader_pull=np.array([leader.will for leader in leaders]) * pa["monitoring"],
            agency_it=np.array([(leader.agency_it_office, leader.agency_it_commune) for leader in leaders]),
            mandate=pa["mandate"],
            training=pa["training"],
            literacy_step=pa["literacy_step"],
            trust_step=pa["trust_step"],
            ask=pa["ask"],
            trust_moves=pa["trust_moves"],
        )

    def _policy_arrays(self) -> None:
        """What the context takes from policies and levers: recomputed only when an event has fired."""
        sc, leaders = self.config, self.leaders
        c, cs = sc.citizens, sc.civil_servants
        policies = [leader.policy for leader in leaders]
        urban_share = np.array([cfg.urban_share for cfg in sc.provinces.values()])
        # infrastructure spending per capita in urban and rural areas (province mean = the lever)
        infra = np.array([p.infrastructure for p in policies])
        targeting = np.array([p.rural_targeting for p in policies])
        denom = urban_share + (1 - urban_share) * targeting
        urban_pc = np.where(denom > 0, infra / np.where(denom > 0, denom, 1), 0.0)
        per_capita = np.stack([urban_pc * targeting, urban_pc * targeting, urban_pc, urban_pc], axis=1)
        rural, minority = ~URBAN_BLOCK, MINORITY_BLOCK
        a = sc.access
        group_factor = np.where(rural, a.rural_factor, 1.0) * np.where(minority, a.minority_factor, 1.0)
        income = np.array([income_factor(a, cfg.grdp_per_capita) for cfg in sc.provinces.values()])
        training = np.array([p.training for p in policies])
        teams = np.array([p.community_digital_teams for p in policies])
        literacy_rate = c.literacy_training_effect * np.where(
            rural, training[:, None] * (1 - cs.cascade_loss) + teams[:, None], training[:, None]
        )
        trust_rate = np.array([p.feedback for p in policies])
        deterrence = np.array([leader.deterrence for leader in leaders])
        self._pa = {
            "access_factor": income[:, None] * group_factor * (1 + a.infrastructure_effect * per_capita),  # (P, 4)
            "literacy_rate": literacy_rate.reshape(-1),
            "literacy_step": np.exp(-literacy_rate.reshape(-1) * self.dt),
            "trust_rate": trust_rate,
            "trust_step": np.exp(-(c.trust_feedback_rate * trust_rate) * self.dt),
            "trust_moves": bool(c.trust_feedback_rate and np.any(trust_rate)),
            # chance an informal payment is asked for each procedure at the counter, per province
            "ask": np.minimum(1.0, c.informal_ask_prob * self.rent_rel[None, :] * deterrence[:, None]),
            "deterrence": deterrence,
            "monitoring": np.array([p.monitoring for p in policies]),
            "mandate": np.maximum([p.mandate for p in policies], self.central.levers.mandate),
            "training": training,
        }

    def spending_rate(self) -> np.ndarray:
        """bn VND/yr each province spends on its levers now (model/costs.py), recomputed when an event fires."""
        if self._spend[0] != self._policy_version:
            provinces = self.config.provinces.values()
            rate = [
                costs.total_spending(leader.policy, cfg, self.config.costs)
                for leader, cfg in zip(self.leaders, provinces)
            ]
            self._spend = (self._policy_version, np.array(rate))
        return self._spend[1]

    def spending_columns(self) -> np.ndarray:
        """(provinces, 2): the `spend` (bn VND/yr) and `spend_cumulative` (bn VND) outcomes now."""
        return np.stack([self.spending_rate(), self.spend_cumulative], axis=1)

    def _online(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(P, J) chance each procedure is fully online and its mean per province; those measured after the
        last step when no event has fired since (digitisation moves only in the leaders' step)."""
        if self._online_cache is None or self._online_cache[0] != key:
            self.online_now(key)
        return self._online_cache[1], self._online_cache[2]

    def online_now(self, key: int | None = None) -> np.ndarray:
        """(P, J) chance each procedure is fully online in the current state: ProvincialLeader.online for
        every leader, with the national portal's part computed once per portal level."""
        portal_services = self.central.levers.portal_services
        if self._portal is None or self._portal[0] != portal_services:
            nothing_digitised = SimpleNamespace(digitised=np.zeros(self.rent_rel.size))
            self._portal = (portal_services, ProvincialLeader.online(nothing_digitised, self.rent_rel, portal_services))
        online = np.maximum(np.array([leader.digitised for leader in self.leaders]), self._portal[1])
        self._online_cache = (self._policy_version, online, online.sum(axis=1) / self.rent_rel.size)
        return online

    def services_online_share(self) -> np.ndarray:
        """Per province, the share of procedures fully online now (the mean of `online_now()`)."""
        self.online_now()
        return self._online_cache[2]

    # ---- inspection ---------------------------------------------------------------------------------------

    def citizen(self, row: int) -> Citizen:
        """The citizen in `row` as a Mesa agent (made on first request, so large runs carry no objects)."""
        if not 0 <= row < self.citizens.n:
            raise IndexError(f"no citizen {row}: this run has {self.citizens.n}")
        if row not in self._citizen_views:
            self._citizen_views[row] = Citizen(self, row)
        return self._citizen_views[row]

    def outcome(self, column: str, province: str | None = None) -> np.ndarray:
        """Time series of one outcome (all steps so far) for one province (default: the first)."""
        p = self.province_ids.index(province) if province else 0
        return self.records[: self.step_index + 1, p, COL[column]]

    def _reporters(self) -> dict:
        def reporter(p: int, col: int):
            return lambda m: m.records[m.step_index, p, col]

        return {f"{key}/{name}": reporter(p, COL[name]) for p, key in enumerate(self.province_ids) for name in COLUMNS}


def simulate(scenario: Scenario, seed: int | None = None, progress=None) -> np.ndarray:
    """Run a scenario once and return its records (steps + 1, provinces, outcome columns)."""
    model = EGovModel(scenario, seed, collect=False)
    return model.run(progress)
