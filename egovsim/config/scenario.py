"""Scenario files: a YAML file in, one validated, typed `Scenario` out.

Every default of the model lives on the fields below (one place), with its range, its unit, where it comes
from, and, for behavioural parameters, its *neutral* value: the setting that switches its rule off. With every
rule neutral, well-mixed contact and full internet access, citizen adoption is the Bass model
(scenarios/validation/bass.yaml; docs/ODD.md).

Values marked "prior" come from a stated range in the literature or are assumptions awaiting calibration;
values marked with a source are read in calibration/observations.yaml.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from egovsim.config.schema import KEY, NAME, build, check_range, convert, field_at, param, suggest, to_plain, type_hints
from egovsim.config.yamlfile import load_yaml_text, read_with_extends
from egovsim.errors import InputError, clipped

# the scenario `make run`, `egovsim serve` and the browser view use when none is named
DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "three_provinces.yaml"

PROB = {"lo": 0.0, "hi": 1.0}
RATE = {"lo": 0.0, "hi": 50.0, "unit": "per year"}
WEIGHT = {"lo": -50.0, "hi": 50.0}
SPEND = {"lo": 0.0, "hi": 100.0, "unit": "spending intensity, 1 = reference level"}
MAX_PROVINCES = 100  # Vietnam has 63 provinces (34 since 2025)
MAX_CITIZENS = 100_000_000  # simulated in one run: Vietnam's whole population at scale 1, about 15 GB of memory


@dataclass
class NetworkParams:
    """Who influences whom among citizens (docs/references/design-v1.md 'Network')."""

    kind: Literal["blocks", "well_mixed"] = param(
        "blocks",
        neutral="well_mixed",
        doc="blocks: stochastic block model over urban/rural x minority blocks, small-world inside blocks; "
        "well_mixed: every citizen sees the adopted share of the whole province (Bass)",
    )
    mean_degree: int = param(
        8,
        lo=1,
        hi=200,
        doc="mean number of contacts per citizen",
        source="prior; Goldenberg, Libai & Muller 2001: 6-12",
    )
    homophily: float = param(
        0.9,
        **PROB,
        doc="share of a citizen's contacts inside their own block",
        source="prior; McPherson, Smith-Lovin & Cook 2001: 0.8-0.95",
    )
    rewiring: float = param(
        0.1,
        **PROB,
        doc="share of within-block ring contacts rewired at random (small-world; Watts & Strogatz 1998)",
        source="prior",
    )


@dataclass
class CitizenParams:
    """Citizen behaviour, shared by all provinces (per-province initial states are on ProvinceConfig)."""

    p0: float = param(
        0.005,
        **RATE,
        doc="Bass innovation rate of adopting online public services",
        source="prior; Sultan, Farley & Lehmann 1990: 0.002-0.03",
    )
    q0: float = param(
        0.25,
        **RATE,
        doc="Bass imitation rate (times the share of contacts who use)",
        source="prior; Van den Bulte & Stremersch 2004: 0.1-0.5",
    )
    beta_usefulness: float = param(
        1.0,
        **WEIGHT,
        neutral=0.0,
        doc="log-hazard weight of usefulness (share online x reliability)",
        source="prior, calibrate",
    )
    beta_ease: float = param(
        1.5,
        **WEIGHT,
        neutral=0.0,
        doc="log-hazard weight of ease of use (usability x literacy x language)",
        source="prior, calibrate",
    )
    beta_trust: float = param(
        1.0, **WEIGHT, neutral=0.0, doc="log-hazard weight of trust in government online", source="prior, calibrate"
    )
    reference_usefulness: float = param(0.5, **PROB, doc="covariate value at which p0, q0 apply unchanged")
    reference_ease: float = param(0.5, **PROB, doc="covariate value at which p0, q0 apply unchanged")
    reference_trust: float = param(0.5, **PROB, doc="covariate value at which p0, q0 apply unchanged")
    need_rate: float = param(
        1.0,
        lo=0.0,
        hi=12.0,
        unit="per year",
        doc="rate of dealings with government (need events), at most one per step",
        source="prior; docs/references/design-v1.md: 0.5-3 a year, calibrate",
    )
    access_rate: float = param(
        0.002,
        **RATE,
        doc="hazard of getting internet at home at reference infrastructure",
        source="prior, calibrate to PAPI internet at home 2016-2023",
    )
    access_imitation: float = param(
        0.15,
        **RATE,
        neutral=0.0,
        doc="extra access hazard per unit share of the province already online "
        "(internet at home spreads as a diffusion itself)",
        source="prior, calibrate to PAPI internet at home 2016-2023",
    )
    rural_access_factor: float = param(
        0.6,
        lo=0.0,
        hi=10.0,
        neutral=1.0,
        doc="multiplier on the access hazard for rural citizens",
        source="prior, calibrate",
    )
    minority_access_factor: float = param(
        0.6,
        lo=0.0,
        hi=10.0,
        neutral=1.0,
        doc="multiplier on the access hazard for ethnic-minority citizens",
        source="prior; PAPI: minority access 10-20 points below Kinh",
    )
    infrastructure_effect: float = param(
        1.0,
        lo=0.0,
        hi=100.0,
        neutral=0.0,
        doc="access hazard x (1 + effect x per-capita infrastructure spending)",
        source="prior, calibrate",
    )
    literacy_training_effect: float = param(
        0.05,
        **RATE,
        neutral=0.0,
        doc="rate at which training (and community teams) close the literacy gap, per unit spending",
        source="prior",
    )
    language_penalty: float = param(
        0.3,
        **PROB,
        neutral=0.0,
        doc="share of ease of use lost by citizens whose mother tongue is not Vietnamese",
        source="prior; seed report (East Asia Forum)",
    )
    trust_feedback_rate: float = param(
        0.3, **RATE, neutral=0.0, doc="rate at which a responsive feedback channel raises trust", source="prior"
    )
    failure_trust_loss: float = param(
        0.2, **PROB, neutral=0.0, doc="share of trust lost after a failed online transaction", source="prior"
    )
    lapse_prob: float = param(
        0.3,
        **PROB,
        neutral=0.0,
        doc="probability a user stops using online services after a failed transaction",
        source="prior",
    )
    informal_ask_prob: float = param(
        0.3,
        **PROB,
        doc="probability a counter transaction for a procedure of average rent "
        "involves an informal payment, with no enforcement",
        source="prior; calibrate to PAPI petty corruption items",
    )
    report_prob: float = param(
        0.1,
        lo=0.0,
        hi=0.3,
        neutral=0.0,
        doc="rho_fb: chance a citizen asked for an informal payment, or whose online dossier failed, reports it "
        "through a feedback channel of responsiveness 1 (times policy.feedback and internet access)",
        source="prior [0, 0.3]; East Asia Forum (Pham & Truong): 'the instantaneous feedback system ... allows anyone "
        "to report ... A large proportion of user feedback calls out behaviours ... that imply corruption'; the upper "
        "end keeps reports below the Hue-S volume (calibration/observations.yaml citizen_targets.hue_s_downloads)",
    )
    online_ask_share: float = param(
        0.3,
        lo=0.0,
        hi=0.6,
        neutral=0.0,
        doc="theta_on: chance of an informal payment for an online dossier relative to the counter ('speed money')",
        source="prior [0, 0.6]; East Asia Forum (Pham & Truong): feedback calls out 'prolonging document processing "
        "time'",
    )


@dataclass
class CivilServantParams:
    """Civil servants' use of the e-office system (docs/references/design-v1.md 'Civil servants')."""

    p: float = param(
        0.01, **RATE, doc="innovation rate of genuine use", source="prior; Teng, Grover & Guttler 2002: ~0-0.01"
    )
    q: float = param(
        0.8,
        **RATE,
        doc="imitation rate of genuine use (times share of colleagues who use)",
        source="prior; Teng, Grover & Guttler 2002: 0.2-1.0",
    )
    weight_usability: float = param(1.0, **WEIGHT, neutral=0.0, source="prior")
    weight_skill: float = param(1.5, **WEIGHT, neutral=0.0, source="prior")
    weight_leader: float = param(2.0, **WEIGHT, neutral=0.0, doc="weight of leader will x monitoring", source="prior")
    weight_rent: float = param(
        3.0,
        **WEIGHT,
        neutral=0.0,
        doc="weight of informal income at risk, max(0, r - pi F r)",
        source="prior; seed report: fear of losing informal payments",
    )
    mandate_rate: float = param(
        1.0, **RATE, neutral=0.0, doc="hazard of logging in ceremonially under a mandate of strength 1", source="prior"
    )
    training_effect: float = param(
        0.2, **RATE, neutral=0.0, doc="rate at which training closes the skill gap per unit spending", source="prior"
    )
    cascade_loss: float = param(
        0.5,
        **PROB,
        neutral=0.0,
        doc="share of training effect lost at commune level (and for rural citizens)",
        source="prior; seed report: training cascades poorly to local level",
    )
    failure_ceremonial: float = param(
        0.4,
        lo=0.0,  # the neutral value; the prior range is in the source
        hi=0.8,
        neutral=0.0,
        doc="f_cer: chance an online dossier handled by a ceremonial user (logs in, works on paper) stalls",
        source="prior [0.1, 0.8]; East Asia Forum (Pham & Truong): feedback calls out 'prolonging document "
        "processing time'",
    )
    redirect_non_user: float = param(
        0.9,
        lo=0.0,  # the neutral value; the prior range is in the source
        hi=1.0,
        neutral=0.0,
        doc="f_non: chance an online dossier handled by a non-user is sent back to the counter ('come in person': "
        "no trust lost, no lapse)",
        source="prior [0.5, 1]: a non-user does not process online dossiers",
    )
    learning_by_doing: float = param(
        0.2,
        lo=0.0,
        hi=0.5,
        unit="per year",
        neutral=0.0,
        doc="lambda_ld: extra rate at which ceremonial users' skill approaches one",
        source="prior [0, 0.5]: 'sustained ceremonial use can become genuine' (issue 15); no Vietnamese source",
    )
    enforcement_spread: float = param(
        0.9,
        lo=0.0,  # the neutral value; the prior range is in the source
        hi=1.5,
        neutral=0.0,
        doc="sigma_e: spread of the log enforcement multiplier m_i = exp(sigma z_i - sigma^2 / 2) of each civil "
        "servant (mean 1); 0: every official faces pi F",
        source="prior [0.5, 1.5]: the ranges of policy.detection_prob (0.01-0.2) and policy.penalty (1-10) span "
        "factors of 20 and 10; sigma 0.9 gives a 5-95% spread of m of x20",
    )
    skill_mean: float = param(0.3, **PROB, doc="mean initial digital skill", source="prior")
    rent_mean: float = param(
        0.5, **PROB, doc="mean informal income at stake per civil servant (relative)", source="prior"
    )
    offices_degree: int = param(
        6, lo=2, hi=50, doc="colleagues per civil servant in the office network", source="prior"
    )


@dataclass
class LeaderParams:
    """How provincial leaders' political will moves (docs/references/design-v1.md 'Provincial leader').

    Will relaxes toward a target W* = W0 + roadmap_effect x R + emulation_effect x (gap to the best peer's
    index) + satisfaction_effect x (citizens' trust - reference) - rent_loss_effect x (informal income at
    risk): leaders keep their own conviction W0 (Hue's consistent vision) while the forces of docs/references/design-v1.md shift it.
    """

    adjustment_rate: float = param(0.5, **RATE, doc="rate at which will moves toward its target", source="prior")
    roadmap_effect: float = param(
        0.3, lo=0.0, hi=5.0, neutral=0.0, doc="shift of target will per unit roadmap clarity", source="prior"
    )
    emulation_effect: float = param(
        0.5,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="shift per unit e-government index gap to the best peer province",
        source="prior",
    )
    satisfaction_effect: float = param(
        0.3,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="shift per unit of citizens' mean trust above the reference",
        source="prior",
    )
    rent_loss_effect: float = param(
        0.3,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="downward shift per unit informal income officials stand to lose",
        source="prior; seed report (East Asia Forum)",
    )
    press_effect: float = param(
        0.2,
        lo=0.0,
        hi=0.5,
        neutral=0.0,
        doc="a_press: shift of target will at full press (reports per capita in 12 months at the Hue-S level)",
        source="prior [0, 0.5]; field-trip report (Dao Hung, 2024): Hue-S lets residents 'quickly connect with "
        "local officials'",
    )


@dataclass
class PortalParams:
    """The national public-service portal as a channel beside the provinces' own (docs/ODD.md 7.3)."""

    usability: float = param(
        0.5,
        lo=0.3,
        hi=0.8,
        doc="U_nat0: usability of the national portal before VNeID",
        source="prior [0.3, 0.8]; bracketed by the local and fragmented usability priors",
    )
    login_failure: float = param(
        0.4,
        lo=0.0,  # the neutral value; the prior range is in the source
        hi=0.8,
        neutral=0.0,
        doc="f_login0: chance logging in to the national portal fails before VNeID",
        source="prior [0.1, 0.8]; accounts created 1.2-3.0% vs use 4.1-4.9% of respondents "
        "(calibration/observations.yaml citizen_targets.national_portal_use) shows login was a barrier",
    )
    vneid_effect: float = param(
        0.5,
        lo=0.0,
        hi=0.9,
        neutral=0.0,
        doc="v_id: once central vneid = 1, usability U_nat0 + v_id (1 - U_nat0), login failure f_login0 (1 - v_id)",
        source="prior [0, 0.9]; VNeID the single account from 1 July 2024 (calibration/observations.yaml timeline); "
        "VNeID accounts are a hold-out (holdout_validation.vneid_accounts)",
    )


@dataclass
class ServiceParams:
    """Digitisation of administrative procedures and the software that carries them."""

    n_procedures: int = param(
        20,
        lo=1,
        hi=2000,
        doc="procedure types, with informal rents spread evenly from 0 to 2 x the mean",
        source="modelling choice",
    )
    digitisation_rate: float = param(
        0.6, **RATE, doc="rate of bringing procedures fully online at will x capacity = 1", source="prior, calibrate"
    )
    rent_slowdown: float = param(
        3.0,
        lo=0.0,
        hi=50.0,
        neutral=0.0,
        doc="procedures with informal income at risk are digitised exp(-k x risk) slower",
        source="prior; reference pattern 4",
    )
    local_usability: float = param(
        0.8,
        **PROB,
        doc="usability of one integrated, locally built system",
        source="prior; field trip: Hue's user-friendly system",
    )
    fragmented_usability: float = param(0.6, **PROB, doc="usability U0 of a procured system", source="prior")
    fragmentation_penalty: float = param(
        0.3, lo=0.0, hi=10.0, neutral=0.0, doc="psi in U = U0 / (1 + psi (n_systems - 1))", source="prior"
    )
    procurement_interval: float = param(
        3.0,
        lo=0.25,
        hi=50.0,
        unit="years",
        doc="a fragmented province buys another system this often",
        source="prior; field trip: repeated, redundant IT programmes in Daklak",
    )
    max_systems: int = param(5, lo=1, hi=100, source="prior")
    vendor_capacity: float = param(
        0.6, **PROB, doc="implementation capacity of procured software from day one", source="prior"
    )
    local_capacity_rate: float = param(
        0.25, **RATE, doc="rate local IT staff build capacity per unit software spending", source="prior"
    )


@dataclass
class IndexWeights:
    """E-government index = weighted mean of four pillars modelled on the MIC index's sub-indices
    (IT infrastructure, internal IT use, online public services, portal/citizen uptake); docs/ODD.md."""

    infrastructure: float = param(0.25, lo=0.0, hi=1.0, doc="weight of internet access share")
    internal_use: float = param(0.25, lo=0.0, hi=1.0, doc="weight of civil servants' genuine use share")
    online_services: float = param(0.25, lo=0.0, hi=1.0, doc="weight of share of procedures fully online")
    citizen_uptake: float = param(0.25, lo=0.0, hi=1.0, doc="weight of citizens' adopted share")

    def validate(self, source: str, path: str) -> None:
        total = self.infrastructure + self.internal_use + self.online_services + self.citizen_uptake
        if abs(total - 1.0) > 1e-9:
            raise InputError(source, path or "egov_index", f"weights must sum to 1, they sum to {total:g}")


@dataclass
class Policy:
    """A province's policy levers. Events can change any of them at a date."""

    software_strategy: Literal["local", "fragmented", "platform"] = param(
        "fragmented",
        doc="local: one integrated system built by local IT staff; fragmented: separately procured systems; "
        "platform: one vendor's integrated platform (the VNPT i-gate/i-office kind)",
    )
    own_plan: float = param(
        0.0,
        **PROB,
        doc="1 once the province has its own e-government action plan (events of kind own_action_plan)",
    )
    agency_it: float = param(1.0, **SPEND, doc="spending on government agencies' IT equipment")
    infrastructure: float = param(1.0, **SPEND, doc="infrastructure spending (raises internet access)")
    rural_targeting: float = param(
        1.0, lo=0.0, hi=10.0, doc="per-capita infrastructure spending in rural areas relative to urban"
    )
    training: float = param(1.0, **SPEND, doc="training spending (civil-servant skill, citizen literacy)")
    community_digital_teams: float = param(
        0.0, **SPEND, doc="community digital teams (rural literacy, no cascade loss)"
    )
    software: float = param(1.0, **SPEND, doc="software spending (local capacity, or new procurements)")
    detection_prob: float = param(
        0.05,
        **PROB,
        doc="pi: chance an informal payment is detected",
        source="prior; docs/references/design-v1.md: 0.01-0.2",
    )
    penalty: float = param(
        2.0,
        lo=0.0,
        hi=100.0,
        doc="F: penalty in multiples of the rent",
        source="prior; docs/references/design-v1.md: 1-10",
    )
    feedback: float = param(0.0, **PROB, doc="responsiveness of the citizen feedback channel")
    mandate: float = param(0.0, **PROB, doc="strength of a mandate to use the e-office system")
    monitoring: float = param(0.5, **PROB, doc="how closely the leader monitors civil servants' use")


@dataclass
class Event:
    """A dated change of levers: `set` gives new values, `add` adds to numeric ones."""

    date: float = param(lo=1900.0, hi=2200.0, unit="decimal year")
    name: str = param()
    set: dict[str, Any] = param(dict)
    add: dict[str, float] = param(dict)
    source: str = param("", doc="where the date and the change come from")


@dataclass
class CentralState:
    """Levers of the central government that events can change."""

    roadmap_clarity: float = param(0.1, **PROB, doc="R: clarity of the central e-government roadmap")
    portal_services: float = param(0.0, **PROB, doc="share of procedures offered on the national portal")
    mandate: float = param(0.0, **PROB, doc="national mandate to use e-office systems (floor for provinces)")
    vneid: float = param(0.0, **PROB, doc="1 once VNeID is the national portal's single login (1 July 2024)")


@dataclass
class CentralConfig:
    enabled: bool = param(True, doc="a central government agent; off: roadmap clarity is 0 throughout")
    initial: CentralState = param(CentralState)
    events: list[Event] = param(list)

    def validate(self, source: str, path: str) -> None:
        for i, ev in enumerate(self.events):
            check_event(ev, CentralState, source, f"{path}.events[{i}]")


@dataclass
class LeaderInit:
    will0: float = param(
        0.5, **PROB, doc="initial political will W0", source="prior; docs/references/design-v1.md ranges"
    )


@dataclass
class ProvinceConfig:
    name: str = param()
    population: int = param(lo=1, hi=150_000_000, doc="real population (people)")
    urban_share: float = param(**PROB)
    minority_share: float = param(**PROB)
    scale: float = param(0.01, lo=0.0, hi=1.0, lo_open=True, doc="simulated citizens per real person")
    access_initial: float = param(
        0.05,
        **PROB,
        neutral=1.0,
        doc="share of citizens with internet at home at the start",
        source="prior, calibrate (PAPI national 0.31 in 2016)",
    )
    literacy_urban: float = param(0.5, **PROB, doc="mean initial digital literacy of urban citizens", source="prior")
    literacy_rural: float = param(0.3, **PROB, doc="mean initial digital literacy of rural citizens", source="prior")
    trust_initial: float = param(0.5, **PROB, doc="mean initial trust in government online", source="prior")
    civil_servants: int = param(
        200, lo=2, hi=1_000_000, doc="civil servants simulated (a representative sample; shares are reported)"
    )
    it_capacity0: float = param(0.1, **PROB, doc="local IT capacity at the start", source="prior")
    leader: LeaderInit = param(LeaderInit)
    policy: Policy = param(Policy)
    events: list[Event] = param(list)
    sources: dict[str, str] = param(dict, doc="where each structural value comes from, or 'prior: ...'")

    def validate(self, source: str, path: str) -> None:
        for i, ev in enumerate(self.events):
            check_event(ev, Policy, source, f"{path}.events[{i}]")
        if round(self.population * self.scale) < 1:
            raise InputError(
                source, f"{path}.scale", f"population {self.population} x scale {self.scale:g} simulates no citizen"
            )


@dataclass
class Scenario:
    name: str = param(text=NAME, doc=f"names the results folder: {NAME.rule}")
    start_year: int = param(lo=1900, hi=2200, doc="simulation starts on 1 January of this year")
    end_year: int = param(lo=1900, hi=2200, doc="simulation ends on 31 December of this year")
    provinces: dict[str, ProvinceConfig] = param(keys=KEY, doc=f"by key: {KEY.rule}")
    description: str = param("")
    seed: int = param(0, lo=0, hi=2**63 - 1)
    steps_per_year: int = param(12, lo=1, hi=365, doc="12: monthly steps (dt = 1/12 year)")
    report_years: list[int] = param(lambda: [2017, 2022], doc="years summarised in summary.json")
    network: NetworkParams = param(NetworkParams)
    citizens: CitizenParams = param(CitizenParams)
    civil_servants: CivilServantParams = param(CivilServantParams)
    leaders: LeaderParams = param(LeaderParams)
    services: ServiceParams = param(ServiceParams)
    portal: PortalParams = param(PortalParams)
    central: CentralConfig = param(CentralConfig)
    egov_index: IndexWeights = param(IndexWeights)

    def validate(self, source: str, path: str) -> None:
        if self.start_year > self.end_year:
            raise InputError(
                source, "end_year", f"must not be before start_year ({self.start_year}), got {self.end_year}"
            )
        if not self.provinces:
            raise InputError(source, "provinces", "at least one province is required")
        if len(self.provinces) > MAX_PROVINCES:
            raise InputError(source, "provinces", f"at most {MAX_PROVINCES} provinces, got {len(self.provinces)}")
        citizens = sum(round(p.population * p.scale) for p in self.provinces.values())
        if citizens > MAX_CITIZENS:
            raise InputError(
                source, "provinces", f"population x scale simulates {citizens:,} citizens, more than {MAX_CITIZENS:,}"
            )

    @property
    def dt(self) -> float:
        return 1.0 / self.steps_per_year

    @property
    def n_steps(self) -> int:
        return (self.end_year - self.start_year + 1) * self.steps_per_year

    def to_dict(self) -> dict:
        return to_plain(self)


def years(scenario: Scenario, n_rows: int) -> np.ndarray:
    """The decimal year of every row of a run's records (row 0: the start of `start_year`)."""
    return scenario.start_year + np.arange(n_rows) * scenario.dt


def row_of_year(scenario: Scenario, n_rows: int, year: float) -> int:
    """Row holding the state at mid-`year` (the value reported for a calendar year), clipped to the run."""
    k = round((year + 0.5 - scenario.start_year) / scenario.dt)
    return min(max(k, 0), n_rows - 1)


def check_event(ev: Event, target: type, source: str, path: str) -> None:
    """Event keys must name levers of `target`; values must fit their type and range."""
    hints = type_hints(target)
    fields = {f.name: f for f in dataclasses.fields(target)}
    for op, changes in (("set", ev.set), ("add", ev.add)):
        for key, value in changes.items():
            where = f"{path}.{op}.{key}"
            if key not in fields:
                raise InputError(source, where, "not a lever that events can change" + suggest(key, fields))
            tp = hints[key]
            if op == "add" and tp is not float:
                raise InputError(source, where, "only numeric levers can be added to")
            value = convert(tp, value, where, source)
            if op == "set":
                check_range(fields[key], value, where, source)
            changes[key] = value


# ---- loading: extends:, --set overrides, validation -------------------------------------------------------


def load_scenario(path: str | Path, overrides: list[str] | None = None, scale: float | None = None) -> Scenario:
    """Read a scenario file (following `extends:`), apply `--set key.path=value` overrides and an optional
    scale for every province, and return the validated Scenario."""
    path = Path(path)
    data = read_with_extends(path, seen=())
    for item in overrides or []:
        apply_override(data, item, source=str(path))
    if scale is not None:
        if not (0 < scale <= 1):
            raise InputError(str(path), "--scale", f"must be in (0, 1], got {clipped(scale)}")
        for prov in (data.get("provinces") or {}).values():
            if isinstance(prov, dict):
                prov["scale"] = scale
    return build(Scenario, data, str(path))


def scenario_from_dict(data: dict, source: str = "<scenario>") -> Scenario:
    return build(Scenario, copy.deepcopy(data), source)


def check_real_parameter(
    scenario: Scenario, name: str, low: float | None, high: float | None, source: str, field: str
) -> None:
    """A parameter that calibration or sensitivity analysis varies continuously must be a real-valued key of
    the scenario, valid at both ends of its range (so no run fails halfway through a design)."""
    node: Any = scenario.to_dict()
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise InputError(source, field, f"{clipped(name)} is not a numeric key of the scenario")
    found = (
        field_at(ProvinceConfig, ".".join(name.split(".")[2:]))
        if name.startswith("provinces.")
        else field_at(Scenario, name)
    )
    if found is not None and found[1] is not float:
        raise InputError(
            source, field, f"{clipped(name)} takes whole numbers or choices; it cannot be varied continuously"
        )
    for end in (low, high):
        if end is not None:
            try:
                with_values(scenario, {name: float(end)}, source)
            except InputError as exc:
                raise InputError(source, field, exc.message) from None


def with_values(scenario: Scenario, values: dict[str, Any], source: str = "<parameters>") -> Scenario:
    """A copy of `scenario` with dotted keys set (e.g. {"citizens.q0": 0.4,
    "provinces.hue.leader.will0": 0.9}), validated like a file. Used by sweeps, sensitivity and calibration."""
    data = scenario.to_dict()
    for key, value in values.items():
        _set_path(data, key, value, source)
    return build(Scenario, data, source)


def apply_override(data: dict, item: str, source: str) -> None:
    """Apply one `key.path=value` override (the value is parsed as YAML: 0.3, true, [1, 2], local)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(source, f"--set {item}", "expected key.path=value")
    try:
        value = load_yaml_text(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        raise InputError(
            source, f"--set {key}", f"cannot parse value {clipped(raw)}" + (f" ({problem})" if problem else "")
        ) from None
    _set_path(data, key, value, source, label=f"--set {key}")


def _set_path(data: dict, key: str, value: Any, source: str, label: str | None = None) -> None:
    label = label or key
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            if _is_mapping_path(parts[: i + 1]):
                nxt = node[part] = {}
            else:
                raise InputError(
                    source, label, f"{clipped('.'.join(parts[: i + 1]))} is unknown" + _suggest_path(parts[: i + 1])
                )
        if not isinstance(nxt, dict):
            raise InputError(source, label, f"{clipped('.'.join(parts[: i + 1]))} is not a section")
        node = nxt
    node[parts[-1]] = value


def _is_mapping_path(parts: list[str]) -> bool:
    """Sections that may be absent from a file but exist in the schema (so --set can create them)."""
    if parts and parts[0] == "provinces" and len(parts) >= 2:
        return len(parts) == 2 or field_at(ProvinceConfig, ".".join(parts[2:])) is not None
    return field_at(Scenario, ".".join(parts)) is not None


def _suggest_path(parts: list[str]) -> str:
    fields = [f.name for f in dataclasses.fields(Scenario)] if len(parts) == 1 else []
    return suggest(parts[-1], fields) if fields else ""


def expand_wildcards(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any]:
    """`provinces.*.policy.training: 2` sets the lever in every province of the scenario."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        parts = key.split(".")
        if len(parts) > 2 and parts[0] == "provinces" and parts[1] == "*":
            for province in scenario.provinces:
                out[".".join(["provinces", province, *parts[2:]])] = value
        else:
            out[key] = value
    return out


def apply_values(scenario: Scenario, values: Mapping[str, Any], source: str = "<parameters>") -> Scenario:
    """The scenario with a design point's values set (validated like a file); `provinces.*` wildcards expand."""
    return with_values(scenario, expand_wildcards(scenario, values), source) if values else scenario
