"""EGovModel: the Mesa model that ties the agents of a scenario together and steps them month by month."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import mesa
import numpy as np

from egovsim.config.scenario import KEEP, Scenario
from egovsim.engine import ENGINES, default_engine
from egovsim.errors import InputError, clipped
from egovsim.model import costs, kernels, population, portable, reference
from egovsim.model.agents import CentralGovernment, Citizen, CivilServant, ProvincialLeader
from egovsim.model.jurisdictions import Jurisdictions, retained_after_tier_removal
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

# Reports per person-year at which press on the leader is full: Hue-S had about 80,000 reports from mid-2019 to late
# 2022 for 1,154,310 people, 0.020 per person-year (calibration/observations.yaml citizen_targets.hue_s_downloads,
# provinces.hue.population); Hue-S reports cover every kind of problem, model reports only payments and failures
PRESS_FULL = 0.02


def portal_levels(rent_rel: np.ndarray, portal_services: float) -> np.ndarray:
    """Chance each procedure can be done on the national portal: it offers the lowest-rent share
    `portal_services` of procedures (procedures are in order of rent)."""
    return np.clip(portal_services * rent_rel.size - np.arange(rent_rel.size), 0.0, 1.0)


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
        self.outside_peers = [cfg.leader.outside_peers for cfg in scenario.provinces.values()]
        # who governs each province (model/jurisdictions.py); training's share reaching communes and rural citizens
        self.jurisdictions = Jurisdictions(scenario)
        self.cascade_retained = np.full(len(self.leaders), 1 - scenario.civil_servants.cascade_loss)
        # Mesa agent views of single citizens and civil servants, made on request (a run carries no objects)
        self._citizen_views: dict[int, Citizen] = {}
        self._servant_views: dict[int, CivilServant] = {}

        self.records = np.full((self.n_steps + 1, len(self.leaders), len(COLUMNS)), np.nan)
        self._policy_key = None  # the _policy_version that _pa was computed for
        self._policy_version = 0
        self._channels_cache = None  # the channels measured after the last step, reused by the next context
        self._national_cache = None  # (central levers, the national portal's channel) they were computed for
        self._next_event = -float("inf")  # the date of the next event of any agent (_fire_events)
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
        until = self.year + self.dt
        if until <= self._next_event and not self.jurisdictions.merged:
            return  # nothing is due: most steps (the merged units' policies are shared below in any case)
        central = self.central
        before = central.timeline.fired
        central.fire_events(until)
        changed = central.timeline.fired != before
        jurisdictions = self.jurisdictions
        for merger in jurisdictions.due(until):
            self._merge(merger)
            changed = True
        if jurisdictions.tier_due(until):
            self._remove_district_tier()
            changed = True
        for leader in self.leaders:
            before = (leader.timeline.fired, leader.strategy)
            leader.fire_events(until)
            changed = changed or (leader.timeline.fired, leader.strategy) != before
        if jurisdictions.merged:
            changed = self._share_policies() or changed
        if changed:  # policies or levers changed: what the context takes from them is recomputed
            self._policy_version += 1
        self._next_event = min(
            central.timeline.next_date,
            jurisdictions.next_date,
            *(leader.timeline.next_date for leader in self.leaders),
        )

    # ---- jurisdictions (model/jurisdictions.py) ------------------------------------------------------------

    def _merge(self, merger) -> None:
        """A merger takes effect: one will, one policy set, the systems kept or consolidated."""
        members, platform = self.jurisdictions.apply(merger)
        j, leaders = self.jurisdictions, self.leaders
        for p in members:
            leader = leaders[p]
            head = leaders[j.head[p]]
            leader.will0, leader.will = head.will0, head.will
            if j.policy_from[p] != p:
                leader.timeline.close()  # its own later plans lapse: the unit's apply
            if platform is None:
                if merger.policy != KEEP:  # one administration working across the members' systems
                    leader.cross_systems = len(members)
            elif p != platform:
                leader.migrate_to(leaders[platform], merger.date, self.config.merger)
            leader.history.append((merger.date, merger.name))

    def _share_policies(self) -> bool:
        """Merged provinces take their unit's levers (each keeps its software strategy unless its system was
        consolidated, when it takes the platform's); True if any lever changed."""
        j, leaders, changed = self.jurisdictions, self.leaders, False
        for p, leader in enumerate(leaders):
            source = leaders[j.policy_from[p]].policy
            strategy = leaders[j.platform_of[p]].strategy
            wanted = (
                source
                if source.software_strategy == strategy
                else dataclasses.replace(source, software_strategy=strategy)
            )
            if leader.policy != wanted:
                leader.adopt_policy(wanted)
                changed = True
        return changed

    def _remove_district_tier(self) -> None:
        """Training reaches commune staff and rural citizens through one tier instead of two."""
        retained = retained_after_tier_removal(self.config.civil_servants.cascade_loss)
        self.cascade_retained[:] = retained
        self.civil_service.set_commune_cascade(retained)

    def _leader_inputs(self, index, trust, rent_at_risk, press):
        """What each leader reads: its province's values, or once merged under one leader, its unit's."""
        j = self.jurisdictions
        people = self.citizens.province_sizes.astype(float)
        return (
            j.unit_inputs(index, people),
            j.unit_inputs(trust, people),
            j.unit_inputs(rent_at_risk, self.civil_service.counts.astype(float)),
            j.unit_inputs(press, people),
        )

    def step(self) -> None:
        if self.step_index >= self.n_steps:
            self.running = False
            return
        self._fire_events()
        ctx = self.context()
        k, dt, prev = self.step_index, self.dt, self.records[self.step_index]
        self.citizens.step(ctx, self.rng)
        self.civil_service.step(ctx)
        self.citizens.servants_changed(self.civil_service.changed)
        # press: citizens' reports of the last 12 months, relative to Hue-S's volume
        press = [1.0 if x > 1.0 else x for x in (prev[:, COL["reports_per_capita_12m"]] / PRESS_FULL).tolist()]
        index, trust = prev[:, COL["supply_index"]].tolist(), prev[:, COL["trust_mean"]].tolist()
        rent_at_risk = ctx.rent_at_risk.tolist()
        roadmap, year = self.central.levers.roadmap_clarity, self.year
        reference_trust, rent_mean = self.config.citizens.reference_trust, self.config.civil_servants.rent_mean
        merged = self.jurisdictions.merged
        if merged:
            index, trust, rent_at_risk, press = self._leader_inputs(index, trust, rent_at_risk, press)
        for p, leader in enumerate(self.leaders):
            if merged:
                best_peer = self.jurisdictions.best_peer(p, index)
            else:
                best_peer = max(index[:p] + index[p + 1 :], default=index[p])
            outside = self.outside_peers[p]
            if outside is not None:  # peers the run does not simulate (a calibrated province alone)
                best_peer = max(best_peer, outside.at(year))
            leader.step_province(
                ctx,
                year,
                dt,
                roadmap,
                index[p],
                best_peer,
                trust[p],
                rent_at_risk[p],
                reference_trust,
                rent_mean,
                press=press[p],
            )
        if merged:  # provinces on a consolidated system see the platform's state
            for p, leader in enumerate(self.leaders):
                if self.jurisdictions.platform_of[p] != p:
                    leader.follow_platform(self.leaders[self.jurisdictions.platform_of[p]])
        self.spend_cumulative += self.spending_rate() * dt  # at the levers in force during this step
        self.step_index = k + 1
        self._measure(self, out=self.records[self.step_index])
        if self.datacollector is not None:
            self.datacollector.collect(self)
        if self.step_index >= self.n_steps:
            self.running = False

    def run(self, progress=None) -> np.ndarray:
        """Run to the end of the scenario; `progress(steps_done)` is called after each step.

        The rules are stepped directly, not through Mesa's step(): Mesa's clock pops, runs and reschedules an
        event and formats a log line every step, about a seventh of a 10,000-citizen step (benchmarks/README.md).
        egovsim schedules no Mesa events of its own, so Mesa's step event is paused for the run and its clock
        (time, steps) left where step() would have left it; the browser view steps through Mesa as usual."""
        schedule = self._default_schedule
        schedule.pause()
        try:
            while self.step_index < self.n_steps:
                self.steps += 1  # Mesa moves its clock first: the DataCollector stamps a step's row with its time
                self.time += 1.0
                type(self).step(self)  # the class's step: Mesa replaced the instance's with its clock's wrapper
                if progress is not None:
                    progress(self.step_index)
        finally:
            schedule.resume()
        return self.records

    # ---- what the agents read each step -------------------------------------------------------------------

    def context(self) -> StepContext:
        sc, leaders = self.config, self.leaders
        key = self._policy_version
        if key != self._policy_key:
            self._policy_key = key
            self._policy_arrays()
        ch = self._channels(key)
        pa = self._pa
        # enforcement: reports processed in the last 12 months are detections (from the next step on)
        servant_deterrence, deterrence, rent_at_risk = self.civil_service.deterrence_now(
            pa["detection"], pa["feedback"], pa["penalty"], self.reported_share()
        )
        for leader, d in zip(leaders, deterrence.tolist()):
            leader.deterrence = d
        # internet at home: a base rate, a step up at the mobile-broadband take-off (exact over the step), and
        # imitation of those online; citizens beyond the ceiling never get access (their threshold is infinite)
        access_share = self.records[self.step_index, :, COL["access_share"]]
        mean_rate = mean_access_rate(sc.access, self.year, self.dt)
        access_hazard = kernels.access_hazard(mean_rate, sc.access.imitation, access_share, pa["access_factor"])
        return StepContext(
            k=self.step_index,
            online=ch.online,
            rent_rel=self.rent_rel,
            online_share=ch.online_share,
            usability=ch.usability,
            deterrence=deterrence,
            access_hazard=access_hazard,
            literacy_rate=pa["literacy_rate"],
            trust_rate=pa["trust_rate"],
            leader_pull=np.array([leader.will for leader in leaders]) * pa["monitoring"],
            agency_it=np.array([(leader.agency_it_office, leader.agency_it_commune) for leader in leaders]),
            mandate=pa["mandate"],
            training=pa["training"],
            literacy_step=pa["literacy_step"],
            trust_step=pa["trust_step"],
            trust_moves=pa["trust_moves"],
            digitised=ch.digitised,
            portal=ch.portal,
            national_share=ch.national_share,
            login_failure=ch.login_failure,
            useful_share=ch.useful_share,
            ease_usability=ch.ease_usability,
            servant_deterrence=servant_deterrence,
            rent_at_risk=rent_at_risk,
            report_prob=pa["report_prob"],
        )

    def reported_share(self) -> np.ndarray:
        """Per province, the share of informal payments asked in the last 12 months that were reported (0 if
        none was asked)."""
        cit, k = self.citizens, self.step_index
        first = max(0, k + 1 - cit.steps_per_year)  # the dealings of the last 12 steps: rows first..k
        # counts: where none was asked, none was reported (0 / 1)
        return kernels.reported_share(cit.payments_per_step, cit.reported_payments_per_step, first, k)

    def _policy_arrays(self) -> None:
        """What the context takes from policies and levers: recomputed only when an event has fired."""
        sc, leaders = self.config, self.leaders
        c = sc.citizens
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
            rural, training[:, None] * self.cascade_retained[:, None] + teams[:, None], training[:, None]
        )
        feedback = np.array([p.feedback for p in policies])
        trust_rate = feedback
        self._pa = {
            "access_factor": income[:, None] * group_factor * (1 + a.infrastructure_effect * per_capita),  # (P, 4)
            "literacy_rate": literacy_rate.reshape(-1),
            "literacy_step": portable.exp(-literacy_rate.reshape(-1) * self.dt),
            "trust_rate": trust_rate,
            "trust_step": portable.exp(-(c.trust_feedback_rate * trust_rate) * self.dt),
            "trust_moves": bool(c.trust_feedback_rate and np.any(trust_rate)),
            "detection": np.array([p.detection_prob for p in policies]),
            "penalty": np.array([p.penalty for p in policies]),
            "feedback": feedback,
            "report_prob": c.report_prob * feedback,  # times the citizen's access, in the dealing
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
        if self.jurisdictions.merged:  # a system migration's one-off cost, spread over its years
            return self._spend[1] + np.array([leader.migration_spending(self.year) for leader in self.leaders])
        return self._spend[1]

    def spending_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The `spend` (bn VND/yr) and `spend_cumulative` (bn VND) outcomes now, per province (both engines
        record these, from the levers, not from agents)."""
        return self.spending_rate(), self.spend_cumulative

    def _channels(self, key: int) -> SimpleNamespace:
        """The channels of the current state (channels_now), those measured after the last step when no event
        has fired since (digitisation and software move only in the leaders' step)."""
        if self._channels_cache is None or self._channels_cache[0] != key:
            self.channels_now()
        return self._channels_cache[1]

    def channels_now(self) -> SimpleNamespace:
        """The two channels of an online dealing in the current state (docs/ODD.md 7.3): each province's own
        fully-online level d_pj (`leader.digitised`) and the national portal's portal_j; the usability of each,
        the chance a citizen who can use both picks the national portal, U_nat / (U_nat + U_p), and the chance
        its login fails; for adoption, the useful share mean_j [d + (1 - d) portal (1 - f_login)] and the
        usability of the channels weighted by availability; `online` = either channel, `online_share` its mean;
        `provincial_share` the mean of d_pj, the province's own."""
        portal, national_usability, login_failure = self._national_portal()
        digitised = np.array([leader.digitised for leader in self.leaders])
        usability = np.array([leader.usability for leader in self.leaders])
        online, online_share, national_share, useful_share, ease_usability, provincial_share = kernels.channels(
            digitised, portal, usability, national_usability, login_failure
        )
        channels = SimpleNamespace(
            digitised=digitised,
            portal=portal,
            online=online,
            online_share=online_share,
            usability=usability,
            national_share=national_share,
            login_failure=float(login_failure),
            useful_share=useful_share,
            ease_usability=ease_usability,
            provincial_share=provincial_share,
        )
        self._channels_cache = (self._policy_version, channels)
        return channels

    def _national_portal(self) -> tuple[np.ndarray, float, float]:
        """The national portal's procedures (portal_levels), usability and chance a login fails, from the central
        levers (portal services, VNeID); recomputed only when those change."""
        central, portal_params = self.central.levers, self.config.portal
        key = (central.portal_services, central.vneid)
        if self._national_cache is None or self._national_cache[0] != key:
            vneid = central.vneid * portal_params.vneid_effect
            national_usability = portal_params.usability + vneid * (1.0 - portal_params.usability)
            login_failure = float(portal_params.login_failure * (1.0 - vneid))
            portal = portal_levels(self.rent_rel, central.portal_services)
            self._national_cache = (key, (portal, national_usability, login_failure))
        return self._national_cache[1]

    def services_online_share(self) -> np.ndarray:
        """Per province, the share of procedures fully online now, on either channel."""
        return self.channels_now().online_share

    # ---- inspection ---------------------------------------------------------------------------------------

    def citizen(self, row: int) -> Citizen:
        """The citizen in `row` as a Mesa agent (made on first request, so large runs carry no objects)."""
        return self._view(Citizen, self._citizen_views, row, self.citizens.n, "citizen")

    def civil_servant(self, row: int) -> CivilServant:
        """The civil servant in `row` as a Mesa agent (made on first request, like citizen())."""
        return self._view(CivilServant, self._servant_views, row, self.civil_service.n, "civil servant")

    def _view(self, kind: type, views: dict, row: int, n: int, what: str):
        if not 0 <= row < n:
            raise IndexError(f"no {what} {row}: this run has {n}")
        if row not in views:
            views[row] = kind(self, row)
        return views[row]

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
