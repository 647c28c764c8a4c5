"""EGovModel: the Mesa model that ties the agents of a scenario together and steps them month by month."""

from __future__ import annotations

import mesa
import numpy as np

from .agents import CentralGovernment, Citizen, CivilServant, ProvincialLeader
from .outcomes import COL, COLUMNS, measure
from .population import Citizens, CivilService, StepContext
from .scenario import Scenario


class EGovModel(mesa.Model):
    """E-government adoption in one or several provinces under a scenario.

    Each step is one month (1 / steps_per_year). Within a step: dated events fire; then citizens, civil
    servants and leaders apply their rules, each reading the others' state from the start of the step; then
    the outcomes of every province are recorded (`records`, and Mesa's DataCollector for the browser view).
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, *, collect: bool = True):
        seed = scenario.seed if seed is None else int(seed)
        super().__init__(rng=seed)  # Mesa wants a plain int: np.int64 raises TypeError (stack-notes.md)
        self.seed = seed
        self.scenario = scenario
        self.dt = scenario.dt
        self.n_steps = scenario.n_steps
        self.step_index = 0
        self.province_ids = list(scenario.provinces)
        J = scenario.services.n_procedures
        # procedures' informal rents spread evenly from 0 to twice the mean (relative to the mean)
        self.rent_rel = (np.arange(J) + 0.5) / J * 2.0

        self.central = CentralGovernment(self, scenario.central)
        self.civil_service = CivilService(scenario, self.rng)
        self.citizens = Citizens(scenario, self.rng, self.civil_service.of_province, self.civil_service.commune)
        self.citizens_per_servant = np.bincount(self.citizens.civil_servant, minlength=self.civil_service.n)
        self.leaders = [ProvincialLeader(self, i, key, cfg, scenario)
                        for i, (key, cfg) in enumerate(scenario.provinces.items())]
        self.civil_servant_agents = [CivilServant(self, row) for row in range(self.civil_service.n)]
        self._citizen_views: dict[int, Citizen] = {}

        self.records = np.full((self.n_steps + 1, len(self.leaders), len(COLUMNS)), np.nan)
        self._fire_events()
        self.records[0] = measure(self)
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters()) if collect else None
        if self.datacollector is not None:
            self.datacollector.collect(self)

    # ---- time ---------------------------------------------------------------------------------------------

    @property
    def year(self) -> float:
        """Decimal calendar year of the current state."""
        return self.scenario.start_year + self.step_index * self.dt

    def _fire_events(self) -> None:
        """Fire events dated before the end of the coming step (events before the start fire at once)."""
        until = self.year + self.dt
        self.central.fire_events(until)
        for leader in self.leaders:
            leader.fire_events(until, self.year)

    def step(self) -> None:
        if self.step_index >= self.n_steps:
            self.running = False
            return
        self._fire_events()
        ctx = self.context()
        k, dt, prev = self.step_index, self.dt, self.records[self.step_index]
        reliability = self.civil_service.reliability()[self.citizens.civil_servant]
        rent_at_risk = np.bincount(self.civil_service.province,
                                   weights=self.civil_service.rent_at_risk(ctx.deterrence),
                                   minlength=len(self.leaders)) / np.bincount(self.civil_service.province)
        self.citizens.step(ctx, reliability, self.rng)
        self.civil_service.step(ctx)
        index = prev[:, COL["egov_index"]]
        for p, leader in enumerate(self.leaders):
            peers = np.delete(index, p)
            leader.step_province(ctx, self.year, dt, self.central.levers.roadmap_clarity, index[p],
                                 peers.max() if peers.size else index[p], prev[p, COL["trust_mean"]],
                                 rent_at_risk[p], self.scenario.citizens.reference_trust,
                                 self.scenario.civil_servants.rent_mean)
        self.step_index = k + 1
        self.records[self.step_index] = measure(self)
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
        sc, leaders = self.scenario, self.leaders
        c, cs = sc.citizens, sc.civil_servants
        policies = [leader.policy for leader in leaders]
        portal = self.central.levers.portal_services
        online = np.array([leader.online(self.rent_rel, portal) for leader in leaders])
        urban_share = np.array([cfg.urban_share for cfg in sc.provinces.values()])

        # infrastructure spending per capita in urban and rural areas (province mean = the lever)
        infra = np.array([p.infrastructure for p in policies])
        targeting = np.array([p.rural_targeting for p in policies])
        denom = urban_share + (1 - urban_share) * targeting
        urban_pc = np.where(denom > 0, infra / np.where(denom > 0, denom, 1), 0.0)
        per_capita = np.stack([urban_pc * targeting, urban_pc * targeting, urban_pc, urban_pc], axis=1)
        rural = ~np.array([False, False, True, True])
        minority = np.array([False, True, False, True])
        group_factor = np.where(rural, c.rural_access_factor, 1.0) * np.where(minority, c.minority_access_factor, 1.0)
        # internet at home spreads as a diffusion of its own: a base rate plus imitation of those online
        online_share = self.records[self.step_index, :, COL["access_share"]][:, None]
        access_hazard = ((c.access_rate + c.access_imitation * online_share) * group_factor
                         * (1 + c.infrastructure_effect * per_capita))

        training = np.array([p.training for p in policies])
        teams = np.array([p.community_digital_teams for p in policies])
        literacy_rate = c.literacy_training_effect * np.where(
            rural, training[:, None] * (1 - cs.cascade_loss) + teams[:, None], training[:, None])

        return StepContext(
            k=self.step_index,
            online=online,
            rent_rel=self.rent_rel,
            online_share=online.mean(axis=1),
            usability=np.array([leader.usability for leader in leaders]),
            deterrence=np.array([leader.deterrence for leader in leaders]),
            access_hazard=access_hazard.reshape(-1),
            literacy_rate=literacy_rate.reshape(-1),
            trust_rate=np.array([p.feedback for p in policies]),
            leader_pull=np.array([leader.will * p.monitoring for leader, p in zip(leaders, policies)]),
            mandate=np.maximum([p.mandate for p in policies], self.central.levers.mandate),
            training=training,
        )

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
        return {f"{key}/{name}": reporter(p, COL[name])
                for p, key in enumerate(self.province_ids) for name in COLUMNS}


def simulate(scenario: Scenario, seed: int | None = None, progress=None) -> np.ndarray:
    """Run a scenario once and return its records (steps + 1, provinces, outcome columns)."""
    model = EGovModel(scenario, seed, collect=False)
    return model.run(progress)
