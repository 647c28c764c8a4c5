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
import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import yaml

from egovsim.config.schema import (
    KEY,
    LABEL,
    MAX_REAL,
    NAME,
    build,
    check_range,
    convert,
    field_at,
    param,
    suggest,
    to_plain,
    type_hints,
)
from egovsim.config.yamlfile import load_yaml_text, read_with_extends
from egovsim.errors import InputError, clipped

# the scenario `make run`, `egovsim serve` and the browser view use when none is named
# the calibrated three provinces: what a user sees first is the model fitted to the data (docs/calibration.md)
DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "calibrated" / "three_provinces.yaml"

PROB = {"lo": 0.0, "hi": 1.0}
RATE = {"lo": 0.0, "hi": 50.0, "unit": "per year"}
WEIGHT = {"lo": -50.0, "hi": 50.0}
SPEND = {"lo": 0.0, "hi": 100.0, "unit": "spending intensity, 1 = reference level"}
MAX_PROVINCES = 100  # Vietnam has 63 provinces (34 since 2025)
NATIONAL = "national"  # province of an outcome statistic: the population-weighted mean of the run's provinces
MAX_GRDP = 10_000.0  # million VND per person: far above any province's
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
        source="prior [6, 12]; Goldenberg, Libai & Muller 2001: 6-12",
    )
    homophily: float = param(
        0.9,
        **PROB,
        doc="share of a citizen's contacts inside their own block",
        source="prior [0.8, 0.95]; McPherson, Smith-Lovin & Cook 2001: 0.8-0.95",
    )
    rewiring: float = param(
        0.1,
        **PROB,
        doc="share of within-block ring contacts rewired at random (small-world; Watts & Strogatz 1998)",
        source="prior [0, 0.3]",
    )


# the source of the covariates' reference values: they centre the adoption hazard, so p0 and q0 are its rates there;
# moving one moves what p0 and q0 mean, and the calibration refits them (not a free parameter of their own)
CENTRING = "centring: p0 and q0 are the rates at this value (the calibration fits p0 and q0 at it)"
# the supply index's weights: the MIC IT-application index publishes its four government pillars, not their weights
EQUAL_PILLARS = (
    "prior [0.1, 0.4]: equal weights of the four government pillars of the MIC IT-application index (the index "
    "publishes its pillars, not their weights; calibration/observations.yaml mic_index_2017)"
)


@dataclass
class CitizenParams:
    """Citizen behaviour and initial states, one value for all provinces (docs/design-model-v2.md 3.4, 8)."""

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        "access_rate": "access.base_rate (and access.broadband_rate, access.takeoff_year)",
        "access_imitation": "access.imitation",
        "rural_access_factor": "access.rural_factor",
        "minority_access_factor": "access.minority_factor",
        "infrastructure_effect": "access.infrastructure_effect",
    }

    p0: float = param(
        0.005,
        **RATE,
        doc="Bass innovation rate of adopting online public services",
        source="prior [0.002, 0.03]; Sultan, Farley & Lehmann 1990: 0.002-0.03",
    )
    q0: float = param(
        0.25,
        **RATE,
        doc="Bass imitation rate (times the share of contacts who use)",
        source="prior [0.1, 0.5]; Van den Bulte & Stremersch 2004: 0.1-0.5",
    )
    beta_usefulness: float = param(
        1.0,
        **WEIGHT,
        neutral=0.0,
        doc="log-hazard weight of usefulness (share online x reliability)",
        source="prior [0, 3], calibrate",
    )
    beta_ease: float = param(
        1.5,
        **WEIGHT,
        neutral=0.0,
        doc="log-hazard weight of ease of use (usability x literacy x language)",
        source="prior [0, 3], calibrate",
    )
    beta_trust: float = param(
        1.0,
        **WEIGHT,
        neutral=0.0,
        doc="log-hazard weight of trust in government online",
        source="prior [0, 3], calibrate",
    )
    reference_usefulness: float = param(
        0.5, **PROB, doc="covariate value at which p0, q0 apply unchanged", source=CENTRING
    )
    reference_ease: float = param(0.5, **PROB, doc="covariate value at which p0, q0 apply unchanged", source=CENTRING)
    reference_trust: float = param(
        0.5,
        **PROB,
        doc="covariate value at which p0, q0 apply unchanged; the leader's reference of citizens' satisfaction",
        source=CENTRING + "; as the leader's reference, prior [0.3, 0.7]",
    )
    need_rate: float = param(
        1.0,
        lo=0.0,
        hi=12.0,
        unit="per year",
        doc="rate of dealings with government (need events), at most one per step",
        source="prior [0.5, 3]; docs/references/design-v1.md: 0.5-3 a year, calibrate",
    )
    literacy_urban: float = param(
        0.5,
        **PROB,
        doc="mean initial digital literacy of urban citizens",
        source="prior [0.35, 0.65] (one value for all provinces)",
    )
    literacy_rural: float = param(
        0.3,
        **PROB,
        doc="mean initial digital literacy of rural citizens",
        source="prior [0.15, 0.45] (one value for all provinces)",
    )
    trust_initial: float = param(
        0.5,
        **PROB,
        doc="mean initial trust in government online",
        source="prior [0.3, 0.7] (one value for all provinces)",
    )
    trait_concentration: float = param(
        5.0,
        lo=0.5,
        hi=1000.0,
        doc="a + b of the Beta distributions of citizens' initial literacy and trust around their means: the "
        "spread between citizens (at mean 0.5, sd 0.5 / sqrt(1 + a + b): 0.20 at 5)",
        source="prior [2, 20]: no source gives the spread of digital literacy or trust between people",
    )
    literacy_training_effect: float = param(
        0.05,
        **RATE,
        neutral=0.0,
        doc="rate at which training (and community teams) close the literacy gap, per unit spending",
        source="prior [0, 0.2]",
    )
    language_penalty: float = param(
        0.3,
        **PROB,
        neutral=0.0,
        doc="share of ease of use lost by citizens whose mother tongue is not Vietnamese",
        source="prior [0, 0.5]; seed report (East Asia Forum)",
    )
    trust_feedback_rate: float = param(
        0.3, **RATE, neutral=0.0, doc="rate at which a responsive feedback channel raises trust", source="prior [0, 1]"
    )
    failure_trust_loss: float = param(
        0.2, **PROB, neutral=0.0, doc="share of trust lost after a failed online transaction", source="prior [0, 0.5]"
    )
    lapse_prob: float = param(
        0.3,
        **PROB,
        neutral=0.0,
        doc="probability a user stops using online services after a failed transaction",
        source="prior [0, 0.6]",
    )
    informal_ask_prob: float = param(
        0.3,
        **PROB,
        doc="probability a counter transaction for a procedure of average rent "
        "involves an informal payment, with no enforcement",
        source="prior [0.1, 0.6]; calibrate to PAPI petty corruption items",
    )
    report_prob: float = param(
        0.1,
        lo=0.0,
        hi=0.3,
        neutral=0.0,
        doc="rho_fb: chance a citizen asked for an informal payment, or whose online dossier failed, reports it "
        "through a feedback channel of responsiveness 1 (times policy.feedback and internet access)",
        source="prior [0, 0.3]; East Asia Forum (Pham & Truong): 'the instantaneous feedback system ... allows anyone "
        "to report ... A large proportion of user feedback calls out behaviours ... that imply corruption'; not fitted. "
        "At 0.1 Hue's simulated reports (0.025-0.040 per person-year from 2021) exceed the Hue-S volume of every kind "
        "of problem (0.020: calibration/observations.yaml citizen_targets.hue_s_downloads), so Hue's press is at its "
        "ceiling (docs/ODD.md 9)",
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
class AccessParams:
    """Internet access at home (docs/design-model-v2.md section 5). A citizen's fixed draw v decides both
    initial access (v < initial) and reachability (v < ceiling: nested sets); reachable citizens without access
    get it with hazard [base_rate + broadband_rate x 1{t >= takeoff_year} + imitation x A_p]
    x f_rural x f_minority x (y_p / income_reference)^income_elasticity x (1 + infrastructure_effect x e_g)."""

    initial: float = param(
        0.08,
        **PROB,
        neutral=1.0,
        doc="share of citizens with internet at home at the start (the same in every province)",
        source="prior [0.02, 0.26]; upper end: internet users 26% of people in 2009 "
        "(calibration/observations.yaml connectivity.internet_users_share, low-medium), households fewer",
    )
    base_rate: float = param(
        0.02,
        **RATE,
        doc="access hazard before mobile broadband took off (fixed internet, 3G)",
        source="prior [0, 0.06]; 3G from October 2009 reached 18% of people by mid-2012 and 'had been "
        "unsuccessful' (calibration/observations.yaml connectivity.users_3g_mid_2012, "
        "prior.mobile_broadband_takeoff_year)",
    )
    takeoff_year: float = param(
        2017.3,
        lo=1900.0,
        hi=2200.0,
        unit="decimal year",
        doc="T_mb: from this date the access hazard gains broadband_rate (mobile broadband take-off)",
        source="prior [2015, 2019] (calibration/observations.yaml prior.mobile_broadband_takeoff_year); "
        "centred near 4G nationwide on 18 April 2017 (calibration/observations.yaml connectivity.mobile_generations)",
    )
    broadband_rate: float = param(
        0.4,
        **RATE,
        neutral=0.0,
        doc="extra access hazard from the mobile-broadband take-off on",
        source="prior [0.1, 1.0]; PAPI home internet 0.31 (2016) to 0.60 (2019) "
        "(calibration/observations.yaml citizen_targets.internet_at_home_national)",
    )
    ceiling: float = param(
        0.9,
        **PROB,
        doc="A_max: share of citizens who can ever get access (the rest never do)",
        source="prior [0.85, 0.95] (calibration/observations.yaml prior.internet_access_ceiling)",
    )
    imitation: float = param(
        0.0,
        **RATE,
        neutral=0.0,
        doc="extra access hazard per unit share of the province already online (off by default: it trades off "
        "with broadband_rate)",
        source="prior [0, 0.3]",
    )
    rural_factor: float = param(
        0.6,
        lo=0.0,
        hi=10.0,
        neutral=1.0,
        doc="multiplier on the access hazard for rural citizens",
        source="prior [0.3, 1.0]",
    )
    minority_factor: float = param(
        0.6,
        lo=0.0,
        hi=10.0,
        neutral=1.0,
        doc="multiplier on the access hazard for ethnic-minority citizens",
        source="prior [0.3, 1.0]; minority internet access 10-20 points below Kinh "
        "(calibration/observations.yaml citizen_targets.ethnic_gap)",
    )
    income_elasticity: float = param(
        1.0,
        lo=-10.0,
        hi=10.0,
        neutral=0.0,
        doc="the access hazard scales as (province GRDP per capita / income_reference) to this power",
        source="prior [0, 2]; East Asia Forum (Pham & Truong): lagging regions have 'low GDP growth rates, "
        "low urbanisation rates and a larger population of minority ethnic groups'",
    )
    income_reference: float = param(
        24.56,
        lo=0.0,
        hi=MAX_GRDP,
        lo_open=True,
        unit="million VND per person, 2010 prices",
        doc="GRDP per capita at which the income factor is 1",
        source="derived: mean of the three provinces' 2018 GRDP per capita, (25.97 + 24.22 + 23.50) / 3 "
        "(calibration/observations.yaml provinces.*.grdp_per_capita_2010_prices_mVND)",
    )
    infrastructure_effect: float = param(
        1.0,
        lo=0.0,
        hi=100.0,
        neutral=0.0,
        doc="access hazard x (1 + effect x per-capita infrastructure spending)",
        source="prior [0, 2]",
    )

    def validate(self, source: str, path: str) -> None:
        if self.ceiling < self.initial < 1.0:  # initial 1 (its neutral value: everyone online) needs no ceiling
            raise InputError(
                source,
                f"{path}.initial" if path else "access.initial",
                f"{self.initial:g} is above access.ceiling {self.ceiling:g}: citizens online at the start are "
                "within the ceiling by definition (raise the ceiling to at least the initial share)",
            )


@dataclass
class CivilServantParams:
    """Civil servants' use of the e-office system (docs/references/design-v1.md 'Civil servants')."""

    p: float = param(
        0.01,
        **RATE,
        doc="innovation rate of genuine use",
        source="prior [0, 0.01]; Teng, Grover & Guttler 2002: ~0-0.01",
    )
    q: float = param(
        0.8,
        **RATE,
        doc="imitation rate of genuine use (times share of colleagues who use)",
        source="prior [0.2, 1.0]; Teng, Grover & Guttler 2002: 0.2-1.0",
    )
    weight_usability: float = param(1.0, **WEIGHT, neutral=0.0, source="prior [0, 3]")
    weight_skill: float = param(1.5, **WEIGHT, neutral=0.0, source="prior [0, 3]")
    weight_leader: float = param(
        2.0, **WEIGHT, neutral=0.0, doc="weight of leader will x monitoring", source="prior [0, 4]"
    )
    weight_rent: float = param(
        3.0,
        **WEIGHT,
        neutral=0.0,
        doc="weight of informal income at risk, r_i D_i (D_i = max(0, 1 - pi_eff F m_i), docs/ODD.md 7.5)",
        source="prior [0, 5]; seed report: fear of losing informal payments",
    )
    mandate_rate: float = param(
        1.0,
        **RATE,
        neutral=0.0,
        doc="hazard of logging in ceremonially under a mandate of strength 1",
        source="prior [0.2, 2]",
    )
    training_effect: float = param(
        0.2,
        **RATE,
        neutral=0.0,
        doc="rate at which training closes the skill gap per unit spending",
        source="prior [0, 0.5]",
    )
    cascade_loss: float = param(
        0.5,
        **PROB,
        neutral=0.0,
        doc="share of training effect lost at commune level (and for rural citizens)",
        source="prior [0.2, 0.8]; seed report: training cascades poorly to local level",
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
    skill_mean: float = param(0.3, **PROB, doc="mean initial digital skill", source="prior [0.1, 0.5]")
    skill_concentration: float = param(
        5.0,
        lo=0.5,
        hi=1000.0,
        doc="a + b of the Beta distribution of civil servants' initial skill around its mean (spread between them)",
        source="prior [2, 20]: no source gives the spread of civil servants' digital skill",
    )
    rent_mean: float = param(
        0.5, **PROB, doc="mean informal income at stake per civil servant (relative)", source="prior [0.2, 0.8]"
    )
    rent_shape: float = param(
        2.0,
        lo=0.1,
        hi=1000.0,
        doc="a: each civil servant's informal income is 2 x rent_mean x Beta(a, a), from 0 to twice the mean (1: "
        "uniform; larger: closer to the mean)",
        source="prior [1, 5]: no source gives how informal income is spread between officials",
    )
    offices_degree: int = param(
        6, lo=2, hi=50, doc="colleagues per civil servant in the office network", source="prior [4, 10]"
    )
    offices_rewiring: float = param(
        0.1,
        **PROB,
        doc="share of office links rewired to a random colleague of the province (a small world); offices are "
        "linked within their province only",
        source="prior [0, 0.3], as network.rewiring",
    )


@dataclass
class LeaderParams:
    """How provincial leaders' political will moves (docs/references/design-v1.md 'Provincial leader').

    Will relaxes toward a target W* = W0 + roadmap_effect x R + emulation_effect x (gap to the best peer's
    index) + satisfaction_effect x (citizens' trust - reference) - rent_loss_effect x (informal income at
    risk): leaders keep their own conviction W0 (Hue's consistent vision) while the forces of docs/references/design-v1.md shift it.
    """

    will_mean: float = param(
        0.5,
        lo=0.01,
        hi=0.99,
        doc="mu_W: initial will W0 of a province whose will_effect is 0 (hierarchical prior, "
        "W0 = logistic(logit(will_mean) + will_spread x will_effect))",
        source="prior [0.3, 0.7]: no province-free source; centred (docs/design-model-v2.md 3.3)",
    )
    will_spread: float = param(
        0.5,
        lo=0.0,
        hi=5.0,
        unit="logit units",
        doc="tau_W: spread of provinces' initial will around will_mean per unit will_effect",
        source="prior [0, 1]: tau_W = 1 lets will_effect = +-2 span W0 = 0.12-0.88 (docs/design-model-v2.md 3.3)",
    )
    adjustment_rate: float = param(
        0.5, **RATE, doc="rate at which will moves toward its target", source="prior [0.2, 1]"
    )
    roadmap_effect: float = param(
        0.3, lo=0.0, hi=5.0, neutral=0.0, doc="shift of target will per unit roadmap clarity", source="prior [0, 1]"
    )
    emulation_effect: float = param(
        0.5,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="shift per unit supply index gap to the best peer province",
        source="prior [0, 1]",
    )
    satisfaction_effect: float = param(
        0.3,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="shift per unit of citizens' mean trust above the reference",
        source="prior [0, 1]",
    )
    rent_loss_effect: float = param(
        0.3,
        lo=0.0,
        hi=5.0,
        neutral=0.0,
        doc="downward shift per unit informal income officials stand to lose",
        source="prior [0, 1]; seed report (East Asia Forum)",
    )
    own_plan_clarity: float = param(
        0.8,
        **PROB,
        doc="P_own: how clearly a province's own e-government action plan enables digitisation, as roadmap "
        "clarity does (E = e_0 + (1 - e_0) max(R, P_own x own_plan))",
        source="prior [0.3, 1]; field-trip report (Dao Hung, 2024): Hue's 2006 vision consistently implemented",
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
        0.6,
        **RATE,
        doc="rate of bringing procedures fully online at will x capacity = 1",
        source="prior [0.1, 2], calibrate",
    )
    enabling_floor: float = param(
        0.1,
        lo=0.0,
        hi=1.0,
        neutral=1.0,
        doc="e_0: enabling level without a roadmap or own plan; E = e_0 + (1 - e_0) max(R, P_own x own_plan) "
        "scales digitisation and slows redundant procurement (1: no enabling condition)",
        source="prior [0, 0.3]; field-trip report (Dao Hung, 2024): without a clear central roadmap localities "
        "like Daklak adopted experimental policies",
    )
    publish_speedup: float = param(
        3.0,
        lo=1.0,
        hi=50.0,
        doc="psi_pub: procedures are published with online forms (level 3) this many times faster than they are "
        "brought fully online (level 4), and are not slowed by informal rents",
        source="prior [1, 6]; fitted through Hue's level counts (calibration/observations.yaml software_history.hue)",
    )
    rent_slowdown: float = param(
        3.0,
        lo=0.0,
        hi=50.0,
        neutral=0.0,
        doc="procedures with informal income at risk are digitised exp(-k x risk) slower",
        source="prior [0, 5]; reference pattern 4",
    )
    local_usability: float = param(
        0.8,
        **PROB,
        doc="usability of one integrated, locally built system",
        source="prior [0.6, 0.9]; field trip: Hue's user-friendly system",
    )
    fragmented_usability: float = param(0.6, **PROB, doc="usability U0 of a procured system", source="prior [0.4, 0.7]")
    platform_usability: float = param(
        0.65,
        **PROB,
        doc="usability of one vendor's integrated platform (software_strategy platform)",
        source="prior [0.5, 0.8]; Ben Tre's MIC 2017 sub-ranks portal 36, online services 37 vs. infrastructure 58 "
        "(calibration/observations.yaml targets.mic_index_2017.source) suggest a mid-table front end",
    )
    fragmentation_penalty: float = param(
        0.3, lo=0.0, hi=10.0, neutral=0.0, doc="psi in U = U0 / (1 + psi (n_systems - 1))", source="prior [0, 1]"
    )
    procurement_interval: float = param(
        3.0,
        lo=0.25,
        hi=50.0,
        unit="years",
        doc="tau_proc: a fragmented province at reference software spending and with no enabling condition (E = 0) "
        "buys another system this often; dn/dt = software x (1 - E) / tau_proc",
        source="prior [1, 5]; field trip: repeated, redundant IT programmes in Daklak",
    )
    max_systems: int = param(5, lo=1, hi=100, source="prior [2, 8]")
    vendor_capacity: float = param(
        0.6, **PROB, doc="implementation capacity of procured software from day one", source="prior [0.4, 0.8]"
    )
    local_capacity_rate: float = param(
        0.25, **RATE, doc="rate local IT staff build capacity per unit software spending", source="prior [0.1, 0.5]"
    )
    it_capacity0: float = param(
        0.1,
        **PROB,
        doc="local IT capacity at the start (the same in every province)",
        source="prior [0.05, 0.3]; a province's head start comes from its own plan and local strategy, "
        "not from a province value (docs/design-model-v2.md 3.4)",
    )
    agency_it_rate: float = param(
        0.3,
        lo=0.0,
        hi=50.0,
        unit="per year",
        doc="k_K: agencies' IT equipment K approaches 1 at k_K x agency_it spending",
        source="prior [0.1, 1]",
    )
    commune_it_lag: float = param(
        0.5,
        **PROB,
        neutral=0.0,
        doc="lambda_c: commune agencies are equipped (1 - lambda_c) times as fast as province/district agencies",
        source="prior [0, 0.8]; field-trip report (Dao Hung, 2024), Ben Tre: a 10 km journey into rural regions "
        "reveals a stark absence of digital transformation",
    )
    agency_it0: float = param(
        0.2,
        **PROB,
        neutral=1.0,
        doc="K at the start: share of agencies' IT equipment in place (multiplies civil servants' genuine-use hazard)",
        source="prior [0.05, 0.4]",
    )


@dataclass
class SupplyIndexWeights:
    """Supply index S = weighted mean of four pillars built like the government pillars of the MIC
    IT-application index (IT infrastructure of agencies, internal IT use, portal, online public services);
    docs/ODD.md section 7.8."""

    infrastructure: float = param(0.25, lo=0.0, hi=1.0, doc="weight of agencies' IT equipment K", source=EQUAL_PILLARS)
    internal_use: float = param(
        0.25,
        lo=0.0,
        hi=1.0,
        doc="weight of internal use as agencies report it: genuine + omega x ceremonial share",
        source=EQUAL_PILLARS,
    )
    portal: float = param(
        0.25, lo=0.0, hi=1.0, doc="weight of the provincial portal: usability x published share", source=EQUAL_PILLARS
    )
    online_services: float = param(
        0.25,
        lo=0.0,
        hi=1.0,
        doc="weight of the share of procedures the province offers fully online",
        source=EQUAL_PILLARS,
    )
    ceremonial_weight: float = param(
        1.0,
        **PROB,
        doc="omega: share of ceremonial log-ins counted as internal use (agencies' reports count log-ins)",
        source="prior [0, 1]; the MIC methodology is not in calibration/observations.yaml",
    )

    def validate(self, source: str, path: str) -> None:
        total = self.infrastructure + self.internal_use + self.portal + self.online_services
        if abs(total - 1.0) > 1e-9:
            raise InputError(source, path or "supply_index", f"weights must sum to 1, they sum to {total:g}")


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
        source="prior [0.01, 0.2]; docs/references/design-v1.md: 0.01-0.2",
    )
    penalty: float = param(
        2.0,
        lo=0.0,
        hi=100.0,
        doc="F: penalty in multiples of the rent",
        source="prior [1, 10]; docs/references/design-v1.md: 1-10",
    )
    feedback: float = param(0.0, **PROB, doc="responsiveness of the citizen feedback channel")
    mandate: float = param(0.0, **PROB, doc="strength of a mandate to use the e-office system")
    monitoring: float = param(0.5, **PROB, doc="how closely the leader monitors civil servants' use")


EventKind = Literal["operations_centre", "performance_scoring", "feedback_app", "own_action_plan"]


@dataclass
class EventEffects:
    """What a province event of each kind does, one size for all provinces (docs/design-model-v2.md 3.2): a
    province file names an event's kind and date, never its size."""

    operations_centre: float = param(
        0.2,
        **PROB,
        doc="an intelligent operations centre opens: monitoring += this",
        source="prior [0.1, 0.3]",
    )
    performance_scoring: float = param(
        0.1,
        **PROB,
        doc="the province scores its own agencies' digital performance: monitoring += this",
        source="prior [0, 0.2]",
    )
    feedback_app: float = param(
        0.9,
        **PROB,
        doc="a citizen feedback app is launched: feedback := this (responsiveness)",
        source="prior [0.8, 0.98]: about 80% of reporters satisfied (2022), >98% of reports processed (2025) "
        "(calibration/observations.yaml citizen_targets.hue_s_downloads)",
    )

    def changes(self, kind: str) -> tuple[dict[str, Any], dict[str, float]]:
        """(set, add) of an event of `kind`; own_action_plan sets the own_plan lever (no size)."""
        return {
            "operations_centre": ({}, {"monitoring": self.operations_centre}),
            "performance_scoring": ({}, {"monitoring": self.performance_scoring}),
            "feedback_app": ({"feedback": self.feedback_app}, {}),
            "own_action_plan": ({"own_plan": 1.0}, {}),
        }[kind]


@dataclass
class Event:
    """A dated change of levers: `set` gives new values, `add` adds to numeric ones; a province event may
    instead name a `kind`, whose change is the shared one of `event_effects` (resolve_kinds)."""

    date: float = param(lo=1900.0, hi=2200.0, unit="decimal year")
    name: str = param()  # any length: egovsim names the events it makes from what they change (costs.py)
    kind: EventKind | None = param(None, doc="a province event's kind; its size is in event_effects")
    set: dict[str, Any] = param(dict)
    add: dict[str, float] = param(dict)
    source: str = param("", doc="where the date and the change come from")


@dataclass
class CentralState:
    """Levers of the central government that events can change."""

    roadmap_clarity: float = param(
        0.1,
        **PROB,
        doc="R: clarity of the central e-government roadmap",
        source="prior [0, 0.2] in 2006: no national e-government roadmap before 2015 (scenarios/common/national.yaml "
        "dates each step)",
    )
    portal_services: float = param(
        0.0,
        **PROB,
        doc="share of procedures offered on the national portal",
        source="0 until the portal opened (December 2019: calibration/observations.yaml timeline)",
    )
    mandate: float = param(
        0.0,
        **PROB,
        doc="national mandate to use e-office systems (floor for provinces)",
        source="0 until the first national mandate (scenarios/common/national.yaml)",
    )
    vneid: float = param(
        0.0,
        **PROB,
        doc="1 once VNeID is the national portal's single login (1 July 2024)",
        source="0 until 1 July 2024 (calibration/observations.yaml timeline)",
    )


@dataclass
class CentralConfig:
    enabled: bool = param(True, doc="a central government agent; off: roadmap clarity is 0 throughout")
    initial: CentralState = param(CentralState)
    events: list[Event] = param(list)

    def validate(self, source: str, path: str) -> None:
        for i, ev in enumerate(self.events):
            if ev.kind is not None:
                raise InputError(source, f"{path}.events[{i}].kind", "kinds are for province events")
            check_event(ev, CentralState, source, f"{path}.events[{i}]")


# ---- costs of the levers, and budgets (docs/design-model-v2.md 4.8) ---------------------------------------

PER_MILLION = "bn VND/yr per million people at intensity 1"
PER_PROVINCE = "bn VND/yr per province at intensity 1"
LEVER_COST_SOURCE = "(design-model-v2 4.8); no per-lever cost found in calibration/observations.yaml lever_costs"


def _prior_cost(lo: float, hi: float, basis: str = LEVER_COST_SOURCE) -> str:
    """The source of a lever's cost: a prior with its range (the parameter's lo, hi) and what it rests on."""
    return f"prior [{lo:g}, {hi:g}] {basis}"


@dataclass
class CostParams:
    """What the provincial levers cost a province's budget, in billion VND (nominal) a year ("bn VND/yr"):
    cost = c_scale x sum over levers of c_l x lever value x size, size = population / 1e6 (per-capita levers),
    rural population / 1e6 (community teams) or 1 (per-province levers). Costs depend only on lever values and
    sourced structure, never on simulated state. The penalty (a legal change) and the central levers (roadmap,
    portal, VNeID) are in no provincial budget. Ranges are the prior ranges (lo, hi)."""

    c_scale: float = param(
        1.0,
        lo=0.2,
        hi=2.1,
        doc="common multiplier of every lever's cost; at 1 a Hue-sized province spends about 19 bn VND/yr at "
        "reference levers",
        source="prior [0.2, 2.1]: the range spans the sourced 4-41 bn VND/yr: calibration/observations.yaml "
        "lever_costs.reference_other_provinces.kon_tum_it_in_state_agencies_2016_2020_bn_vnd (22 bn over "
        "2016-2020 = 4.4/yr), lever_costs.hue_smart_urban_services_project (325 bn over 2018-2025 = 40.6/yr); "
        "prior.provincial_digital_budget_bn_vnd_per_year (its top, Ben Tre's 1,300 bn with private funds, left out)",
    )
    infrastructure: float = param(
        4.0, lo=1.0, hi=10.0, unit=PER_MILLION, doc="citizen connectivity", source=_prior_cost(1.0, 10.0)
    )
    agency_it: float = param(
        4.0, lo=1.0, hi=10.0, unit=PER_MILLION, doc="government agencies' IT equipment", source=_prior_cost(1.0, 10.0)
    )
    software: float = param(
        5.0,
        lo=1.0,
        hi=12.0,
        unit=PER_PROVINCE,
        doc="local IT staff or procurements (a platform licence: x platform_cost_ratio)",
        source=_prior_cost(1.0, 12.0),
    )
    platform_cost_ratio: float = param(
        1.0,
        lo=0.5,
        hi=1.5,
        unit="multiple of the software cost",
        doc="cost of software spending under the platform strategy relative to the others",
        source=_prior_cost(0.5, 1.5, "(design-model-v2 4.8); vnpt_igate_ioffice_contract_values null in observations"),
    )
    training: float = param(
        2.0,
        lo=0.5,
        hi=5.0,
        unit=PER_MILLION,
        doc="civil-servant and citizen training",
        source="prior [0.5, 5]: per-person cost not found (calibration/observations.yaml "
        "lever_costs.training_cost_per_civil_servant null)",
    )
    community_digital_teams: float = param(
        2.0,
        lo=0.5,
        hi=5.0,
        unit="bn VND/yr per million rural people at intensity 1",
        doc="community digital teams in rural communes",
        source=_prior_cost(0.5, 5.0),
    )
    monitoring: float = param(
        3.0,
        lo=0.3,
        hi=6.0,
        unit="bn VND/yr per province at monitoring 1",
        doc="operations centre and performance monitoring",
        source="prior [0.3, 6]: Ha Giang IOC 2 bn VND in total (calibration/observations.yaml "
        "lever_costs.reference_other_provinces.ha_giang_ioc_bn_vnd)",
    )
    feedback: float = param(
        1.0,
        lo=0.2,
        hi=3.0,
        unit="bn VND/yr per province at responsiveness 1",
        doc="running a responsive citizen feedback channel",
        source=_prior_cost(0.2, 3.0),
    )
    detection_prob: float = param(
        0.2,
        lo=0.05,
        hi=0.5,
        unit="bn VND/yr per million people per 0.01 of detection probability",
        doc="inspection staff",
        source=_prior_cost(0.05, 0.5),
    )
    mandate: float = param(
        0.2,
        lo=0.0,
        hi=1.0,
        unit="bn VND/yr per province at mandate strength 1",
        doc="compliance reporting under a mandate",
        source=_prior_cost(0.0, 1.0),
    )


# levers a budget-neutral what-if may rescale: the provincial levers with a cost
FUNDABLE = (
    "infrastructure",
    "agency_it",
    "software",
    "training",
    "community_digital_teams",
    "monitoring",
    "feedback",
    "detection_prob",
    "mandate",
)


@dataclass
class BudgetHold:
    """`budget: {hold: baseline, funded_by: [software, training]}` in a what-if file: the province's spending
    is held equal to the baseline's (the file it extends) at every step by scaling the funded_by levers by a
    common factor (model/costs.py hold_spending_equal)."""

    hold: Literal["baseline"] = param(doc="the scenario whose spending path is held: the file this one extends")
    funded_by: list[str] = param(doc=f"levers scaled to hold spending: some of {', '.join(FUNDABLE)}")

    def validate(self, source: str, path: str) -> None:
        if not self.funded_by:
            raise InputError(source, f"{path}.funded_by", "name at least one lever")
        for i, lever in enumerate(self.funded_by):
            if lever not in FUNDABLE:
                raise InputError(
                    source,
                    f"{path}.funded_by[{i}]",
                    f"{clipped(lever)} is not a lever with a cost (one of {', '.join(FUNDABLE)})"
                    + suggest(lever, FUNDABLE),
                )
        if len(set(self.funded_by)) < len(self.funded_by):
            raise InputError(source, f"{path}.funded_by", "a lever is named twice")


def check_budget(value: Any, source: str, path: str) -> Any:
    """A province's budget: `baseline`, a number of bn VND/yr (>= 0), or a BudgetHold mapping."""
    if value == "baseline":
        return value
    if isinstance(value, dict):
        return build(BudgetHold, value, source, path)
    if isinstance(value, BudgetHold):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) <= MAX_REAL else math.inf  # float() of a huge int would overflow
        if math.isfinite(number) and number >= 0:
            return number
    raise InputError(
        source,
        path,
        "expected baseline, a budget in bn VND/yr (a number >= 0) or {hold: baseline, funded_by: [levers]}, "
        f"got {clipped(value)}",
    )


@dataclass
class OutsidePeers:
    """The provinces a leader compares itself with (emulation, docs/ODD.md 7.6) that the run does not simulate:
    the best supply index among them on each 1 January. A province calibrated beside others and run alone keeps
    them this way (`egovsim calibrate` writes it into each province's calibrated file, from runs of the whole
    calibrated scenario); without it a province alone has no peer, and its leader no pull to catch up."""

    provinces: list[str] = param(doc="the peer provinces the path stands for (keys, as in the calibrated whole)")
    from_year: int = param(lo=1900, hi=2200, doc="the year on whose 1 January `index` starts")
    index: list[float] = param(
        doc="the best outside peer's supply index (0-1) on 1 January of from_year, from_year + 1, ...; linear "
        "in between, held at the first value before and at the last after"
    )
    source: str = param("", doc="where the path comes from")

    def validate(self, source: str, path: str) -> None:
        if not self.provinces:
            raise InputError(source, f"{path}.provinces", "name the peer provinces the path stands for")
        if twice := next((q for q in self.provinces if self.provinces.count(q) > 1), None):
            raise InputError(source, f"{path}.provinces", f"{clipped(twice)} is listed twice")
        if not self.index:
            raise InputError(source, f"{path}.index", "give at least one value")
        for i, v in enumerate(self.index):
            if not 0.0 <= v <= 1.0:
                raise InputError(source, f"{path}.index[{i}]", f"a supply index is within [0, 1], got {v:g}")

    def at(self, year: float) -> float:
        """The outside peers' best supply index at a decimal year (called by every leader every step)."""
        years, index = self._knots
        return float(np.interp(year, years, index))

    @functools.cached_property
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        """The path's 1 Januaries and values as arrays, made once, not at every step."""
        return self.from_year + np.arange(len(self.index), dtype=float), np.asarray(self.index, dtype=float)


@dataclass
class LeaderInit:
    MOVED_KEYS: ClassVar[dict[str, str]] = {"will0": "will_effect (W0 comes from leaders.will_mean and will_spread)"}

    will_effect: float = param(
        0.0,
        lo=-2.5,
        hi=2.5,
        doc="eta_p: the province's initial will in logit units of leaders.will_spread from leaders.will_mean",
        source="fitted; prior N(0, 1), so a province's will departs from the mean only if the data ask for it "
        "(docs/design-model-v2.md 3.3)",
    )
    outside_peers: OutsidePeers | None = param(
        None,
        doc="peer provinces outside the run that the leader emulates (OutsidePeers); null: none",
        source="egovsim calibrate writes it into a province's own calibrated file, from runs of the whole calibrated "
        "scenario (docs/ODD.md 7.6)",
    )


@dataclass
class ProvinceConfig:
    """A province: sourced structure, its leader's fitted will effect, levers at reference values and dated
    events of named kinds (docs/design-model-v2.md 3.1-3.4). Behavioural values are shared, not here."""

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        "literacy_urban": "citizens.literacy_urban (one value for all provinces)",
        "literacy_rural": "citizens.literacy_rural (one value for all provinces)",
        "trust_initial": "citizens.trust_initial (one value for all provinces)",
        "it_capacity0": "services.it_capacity0 (one value for all provinces)",
        "access_initial": "access.initial (one value for all provinces)",
    }

    name: str = param(text=LABEL, doc=f"the province's name in reports: {LABEL.rule}")
    population: int = param(lo=1, hi=150_000_000, doc="real population (people)")
    urban_share: float = param(**PROB)
    minority_share: float = param(**PROB)
    grdp_per_capita: float | None = param(
        None,
        lo=0.0,
        hi=MAX_GRDP,
        lo_open=True,
        unit="million VND per person, 2010 prices",
        doc="GRDP per capita (sets the income factor of the access hazard); null: access.income_reference",
    )
    scale: float = param(0.01, lo=0.0, hi=1.0, lo_open=True, doc="simulated citizens per real person")
    civil_servants: int = param(
        200, lo=2, hi=1_000_000, doc="civil servants simulated (a representative sample; shares are reported)"
    )
    leader: LeaderInit = param(LeaderInit)
    policy: Policy = param(Policy)
    events: list[Event] = param(list)
    sources: dict[str, str] = param(dict, doc="where each structural value comes from, or 'prior: ...'")
    budget: Any = param(
        "baseline",
        doc="baseline (the province's spending path in its scenario), a budget in bn VND/yr reported beside "
        "simulated spending, or in a what-if {hold: baseline, funded_by: [levers]} (spending held equal)",
    )

    def validate(self, source: str, path: str) -> None:
        self.budget = check_budget(self.budget, source, f"{path}.budget" if path else "budget")
        for i, ev in enumerate(self.events):
            check_event(ev, Policy, source, f"{path}.events[{i}]")
        if round(self.population * self.scale) < 1:
            raise InputError(
                source, f"{path}.scale", f"population {self.population} x scale {self.scale:g} simulates no citizen"
            )


# ---- jurisdictions: dated mergers of provinces (docs/ODD.md 7.10, docs/reorganisation.md) ----------------------

KEEP = "keep"  # a merger's leader / policy: each former province keeps its own
REBALANCING = "Budget-neutral rebalancing"  # name of the events a budget hold becomes (model/costs.py)


@dataclass
class MergerParams:
    """What consolidating the systems of merged provinces costs, shared by every merger (priors: no source gives
    the cost or the disruption of a provincial system migration)."""

    migration_years: float = param(
        1.0,
        lo=0.0,
        hi=10.0,
        unit="years",
        neutral=0.0,
        doc="how long the usability dip of a migration lasts (it shrinks linearly to nothing)",
        source="prior [0.5, 2] (calibration/observations.yaml prior.system_migration)",
    )
    migration_usability_loss: float = param(
        0.3,
        **PROB,
        neutral=0.0,
        doc="share of usability lost at the start of a migration, where a province moves to a system of "
        "another software strategy",
        source="prior [0.1, 0.5] (calibration/observations.yaml prior.system_migration)",
    )
    migration_cost: float = param(
        10.0,
        lo=0.0,
        hi=500.0,
        unit="bn VND per migrating province",
        doc="one-off cost of moving a province's procedures and records to the platform, spent evenly over "
        "migration_years",
        source="prior [5, 30]: a fraction of a province's yearly digital budget "
        "(calibration/observations.yaml prior.system_migration, prior.provincial_digital_budget_bn_vnd_per_year)",
    )


@dataclass
class Merger:
    """A dated merge of provinces into a new governing unit (Resolution 202/2025/QH15 kind). Citizens and
    civil servants keep their state; the former provinces stay in the outcomes as sub-units of `into`."""

    date: float = param(lo=1900.0, hi=2200.0, unit="decimal year", doc="when the merger takes effect")
    name: str = param(text=LABEL, doc=f"what the merger is, for reports: {LABEL.rule}")
    into: str = param(text=KEY, doc=f"key of the new unit in the outcomes: {KEY.rule}")
    label: str = param(text=LABEL, doc=f"the new unit's name, e.g. Vinh Long (from 2025): {LABEL.rule}")
    members: list[str] = param(doc="the provinces merged (keys of provinces), at least two")
    leader: str = param(
        doc="the province whose leader governs the new unit (one political will for all), or keep: each "
        "former province keeps its own"
    )
    policy: str = param(
        doc="the province whose levers and later events apply to the whole unit, or keep: each keeps its own"
    )
    systems: Literal["keep", "consolidate"] = param(
        "keep",
        doc="keep: each former province keeps its own system; under one policy set the unit's officials then "
        "work across them (services.fragmentation_penalty per extra system); consolidate: all move to the platform's system, "
        "a migration (merger.*) where its software strategy differs",
    )
    platform: str | None = param(None, doc="consolidate: the province whose system all move to (default: leader)")
    source: str = param("", doc="where the date and the composition come from")

    def check(self, provinces: Mapping[str, Any], source: str, path: str) -> None:
        if len(self.members) < 2:
            raise InputError(source, f"{path}.members", "a merger joins at least two provinces")
        for i, key in enumerate(self.members):
            if key not in provinces:
                raise InputError(
                    source,
                    f"{path}.members[{i}]",
                    f"unknown province {clipped(key)}: the scenario has {', '.join(provinces)}"
                    + suggest(key, provinces),
                )
        if len(set(self.members)) < len(self.members):
            raise InputError(source, f"{path}.members", "a province is named twice")
        if self.into in provinces:
            raise InputError(source, f"{path}.into", f"{self.into} is already a province: name the new unit apart")
        for name in ("leader", "policy", "platform"):
            value = getattr(self, name)
            allowed = (KEEP,) if name != "platform" else ()
            if value is not None and value not in self.members and value not in allowed:
                choices = ", ".join([*self.members, *allowed])
                raise InputError(source, f"{path}.{name}", f"{clipped(value)} is not one of {choices}")
        if self.systems == "consolidate" and (self.platform or self.leader) == KEEP:
            raise InputError(source, f"{path}.platform", "consolidate needs the province whose system all move to")

    @property
    def platform_province(self) -> str:
        return self.platform or self.leader


def check_mergers(scenario: Any, source: str) -> None:
    """Each merger names known provinces, falls inside the run, and no province is merged twice."""
    merged: dict[str, int] = {}
    units: set[str] = set()
    for i, m in enumerate(scenario.mergers):
        path = f"mergers[{i}]"
        m.check(scenario.provinces, source, path)
        if not scenario.start_year <= m.date < scenario.end_year + 1:
            raise InputError(
                source,
                f"{path}.date",
                f"{m.date:g} is outside the run ({scenario.start_year} to the end of {scenario.end_year})",
            )
        for key in m.members:
            if key in merged:
                raise InputError(
                    source, f"{path}.members", f"{key} is already merged by mergers[{merged[key]}]: merge it once"
                )
            merged[key] = i
        if m.into in units:
            raise InputError(source, f"{path}.into", f"{m.into} names another merger's unit too")
        units.add(m.into)
    when = scenario.district_tier_removed
    if when is not None and not scenario.start_year <= when < scenario.end_year + 1:
        raise InputError(
            source,
            "district_tier_removed",
            f"{when:g} is outside the run ({scenario.start_year} to the end of {scenario.end_year})",
        )


PARAMETER_KINDS = ("prior", "calibrated", "posterior")
ADDED_PROVINCES = "added: "  # parameters.set entries naming provinces a calibrated point never had


def missing_posterior(folder: str | Path) -> str | None:
    """'no posterior.csv in FOLDER: ...' when the folder holds none (None when it does): one wording for every
    command that draws from a posterior, checked without loading the analysis code."""
    if (Path(folder) / "posterior.csv").is_file():
        return None
    return f"no posterior.csv in {folder}: run `egovsim calibrate ... --method abc`"


@dataclass
class ParameterSource:
    """Where a scenario's parameter values come from, shown on every report and plot: `prior` (the sourced
    priors of scenarios/*.yaml, the default), `calibrated` (a point fitted by `egovsim calibrate`, which writes
    this key into the files it installs) or `posterior` (the values are a posterior's medians, a point, and
    `posterior` names the calibration folder whose posterior.csv `run --replicates` and `compare` draw from)."""

    kind: Literal["prior", "calibrated", "posterior"] = param("prior")
    calibration: str = param("", doc="the calibration the values come from: its output folder or fit id")
    fit: str = param("", doc="how it was fitted, e.g. 'optimize, 15624 model runs, loss 61.651'")
    date: str = param("", doc="date of the fit (ISO 8601, e.g. 2026-11-27)")
    set: list[str] = param(list, doc="--set overrides applied on top (recorded by egovsim, not written by hand)")
    posterior: str = param(
        "", doc="folder with the posterior.csv to draw from (relative to the file that sets it); kind posterior"
    )
    drawn: bool = param(False, doc="set by egovsim, not by hand: the runs drew their values from the posterior")
    posterior_sha256: str = param(
        "", doc="set by egovsim calibrate: the sha256 of the posterior.csv it wrote (draws refuse another one)"
    )

    @property
    def draws_from(self) -> str:
        """The posterior folder `run --replicates` and `compare` draw from: only a kind posterior file's (a file
        that says it is a calibrated point, or the priors, is run as it says, even if it extends one)."""
        return self.posterior if self.kind == "posterior" else ""

    def validate(self, source: str, path: str) -> None:
        if self.kind != "prior" and not self.calibration:
            raise InputError(source, f"{path}.calibration", f"kind {self.kind} needs the calibration it comes from")
        if self.date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.date):
            raise InputError(source, f"{path}.date", f"expected an ISO date like 2026-11-27, got {clipped(self.date)}")

    def missing_posterior(self) -> str | None:
        """What is wrong when the posterior folder this file draws from has no posterior.csv (None if it has one,
        or draws from none)."""
        return missing_posterior(self.draws_from) if self.draws_from else None

    def check_posterior_file(self, source: str) -> None:
        """A calibrated scenario draws from the posterior.csv its fit wrote: a later fit into the same folder would
        otherwise give draws under the earlier fit's medians and label (the file records the sha256; files
        written before it did are not checked)."""
        path = Path(self.draws_from) / "posterior.csv"
        if not self.draws_from or not self.posterior_sha256 or not path.is_file():
            return
        if hashlib.sha256(path.read_bytes()).hexdigest() != self.posterior_sha256:
            raise InputError(
                source,
                "parameters.posterior",
                f"{path} is not the posterior this file was calibrated with ({self.fit}): its values and label are "
                "another fit's; install the new fit's files (egovsim calibrate --install), or give --posterior",
            )

    def changed_keys(self) -> list[str]:
        """The keys (wildcards allowed) this scenario sets itself on top of the calibration: its --set overrides
        and the fitted values its own file changes (`set`). A posterior draw leaves them as the scenario says."""
        keys = []
        for item in self.set:
            if item.startswith(ADDED_PROVINCES):
                continue
            keys.append(item.split(": ", 1)[1] if ": " in item else item.split("=", 1)[0].strip())
        return keys

    def drawn_from(self, folder: str | Path) -> ParameterSource:
        """This source for runs whose values were drawn, one per replicate, from `folder`'s posterior.csv."""
        return dataclasses.replace(
            self, kind="posterior", calibration=self.calibration or str(folder), posterior=str(folder), drawn=True
        )

    def label(self) -> str:
        """One line for a report, a plot caption or summary.json."""
        if self.kind == "prior":
            text = "prior parameters (sourced priors, not calibrated)"
        else:
            what = {
                "calibrated": "calibrated point",
                "posterior": "posterior draws (one per replicate)" if self.drawn else "posterior medians (a point)",
            }[self.kind]
            details = ", ".join(x for x in (self.fit, self.date) if x)
            text = f"{what} from calibration {self.calibration}" + (f" ({details})" if details else "")
        added = [x for x in self.set if x.startswith(ADDED_PROVINCES)]  # not a change of the fitted point
        changed = [x for x in self.set if x not in added]
        if added:
            text += "; " + ", ".join(x[len(ADDED_PROVINCES) :] for x in added)
        if changed:  # --set overrides, and a file's edits of the values it took from a calibrated file
            text += "; changed since: " + ", ".join(changed)
        return text


@dataclass
class Scenario:
    name: str = param(text=NAME, doc=f"names the results folder: {NAME.rule}")
    start_year: int = param(lo=1900, hi=2200, doc="simulation starts on 1 January of this year")
    end_year: int = param(lo=1900, hi=2200, doc="simulation ends on 31 December of this year")
    provinces: dict[str, ProvinceConfig] = param(keys=KEY, doc=f"by key: {KEY.rule}")
    initial_state_year: int | None = param(
        None,
        lo=1900,
        hi=2200,
        doc="the year on whose 1 January the initial values describe the provinces (access.initial, literacy, "
        "trust, services.it_capacity0, central.initial, the events dated at the start); start_year must be this "
        "year, as no sourced state exists for another. null: a synthetic scenario, whose initial values are "
        "its start, whenever that is",
    )
    description: str = param("")
    seed: int = param(0, lo=0, hi=2**63 - 1)
    steps_per_year: int = param(12, lo=1, hi=365, doc="12: monthly steps (dt = 1/12 year)")
    report_years: list[int] = param(lambda: [2017, 2022], doc="years summarised in summary.json")
    network: NetworkParams = param(NetworkParams)
    citizens: CitizenParams = param(CitizenParams)
    civil_servants: CivilServantParams = param(CivilServantParams)
    leaders: LeaderParams = param(LeaderParams)
    services: ServiceParams = param(ServiceParams)
    access: AccessParams = param(AccessParams)
    event_effects: EventEffects = param(EventEffects)
    portal: PortalParams = param(PortalParams)
    central: CentralConfig = param(CentralConfig)
    supply_index: SupplyIndexWeights = param(SupplyIndexWeights)
    costs: CostParams = param(CostParams)
    parameters: ParameterSource = param(ParameterSource, doc="where the parameter values come from")
    mergers: list[Merger] = param(list, doc="dated mergers of provinces into new units (docs/reorganisation.md)")
    merger: MergerParams = param(MergerParams)
    district_tier_removed: float | None = param(
        None,
        lo=1900.0,
        hi=2200.0,
        unit="decimal year",
        doc="when the district level of local government ends in every province (2025.5: Resolution "
        "203/2025/QH15): training then passes one tier instead of two on its way to communes",
    )

    # keys of earlier versions: a file that still uses one is told the new name
    MOVED_KEYS: ClassVar[dict[str, str]] = {"egov_index": "supply_index (the supply-side index, docs/ODD.md 7.8)"}

    def validate(self, source: str, path: str) -> None:
        start = self.initial_state_year
        if start is not None and self.start_year != start:
            raise InputError(
                source,
                "start_year",
                f"{self.start_year}: the initial values describe 1 January {start} (e.g. {self.access.initial:.1%} "
                f"of citizens with internet at home), and no sourced state for {self.start_year} exists to start from; start in "
                f"{start} and read the years from {self.start_year} on (report_years, timeseries.csv)",
            )
        if self.start_year > self.end_year:
            raise InputError(
                source, "end_year", f"must not be before start_year ({self.start_year}), got {self.end_year}"
            )
        if not self.provinces:
            raise InputError(source, "provinces", "at least one province is required")
        reserved = [
            *(f"provinces.{NATIONAL}" for key in self.provinces if key == NATIONAL),
            *(f"mergers[{i}].into" for i, m in enumerate(self.mergers) if m.into == NATIONAL),
        ]
        if reserved:  # an outcome statistic's province `national` would read the mean, not this one
            raise InputError(
                source,
                reserved[0],
                f"'{NATIONAL}' is reserved: outcome statistics read it as the population-weighted mean of the "
                "provinces; give this one another key",
            )
        for key, prov in self.provinces.items():  # a peer both live and frozen: a what-if on it would not reach
            peers = prov.leader.outside_peers
            if peers is not None and key in peers.provinces:
                raise InputError(
                    source, f"provinces.{key}.leader.outside_peers.provinces", f"names {key} itself: a peer is another"
                )
            if peers is not None and (live := [q for q in peers.provinces if q in self.provinces]):
                raise InputError(
                    source,
                    f"provinces.{key}.leader.outside_peers",
                    f"stands for {', '.join(peers.provinces)}, and {', '.join(live)} is in this run too: its leader "
                    "would emulate both the simulated province and its frozen path. Run the provinces together from "
                    "the calibrated whole (scenarios/calibrated/three_provinces.yaml), or set outside_peers: null",
                )
        if len(set(self.report_years)) < len(self.report_years):
            twice = next(y for y in self.report_years if self.report_years.count(y) > 1)
            raise InputError(source, "report_years", f"{twice} is listed twice")
        if len(self.provinces) > MAX_PROVINCES:
            raise InputError(source, "provinces", f"at most {MAX_PROVINCES} provinces, got {len(self.provinces)}")
        check_mergers(self, source)
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


def report_years_outside(scenario: Scenario) -> list[int]:
    """The report_years a run of `scenario` has no state for (summary.json leaves them out)."""
    return [y for y in scenario.report_years if not scenario.start_year <= y <= scenario.end_year]


def horizon_warning(scenario: Scenario) -> str | None:
    """One line saying which report years a shortened (or shifted) horizon leaves out and which events it
    never reaches, else None."""
    parts = []
    horizon = f"{scenario.start_year}-{scenario.end_year}"
    if outside := report_years_outside(scenario):
        parts.append(
            f"report_years: {', '.join(map(str, outside))} outside the horizon {horizon}: "
            "summary.json has no values for them"
        )
    if late := events_after_the_end(scenario):
        first = min(late, key=lambda item: item[1])
        parts.append(
            f"{len(late)} event{'s' * (len(late) > 1)} dated after the horizon {horizon} never take effect "
            f"(the first: {first[0]}, {first[1]:g})"
        )
    return "; ".join(parts) or None


@dataclass(frozen=True)
class Undone:
    """A lever value given for a run (an override, a design point, a sampled value) that one of the scenario's own
    dated events sets again: the value holds only until `date`; `at_start` if that is before the first step."""

    key: str
    event: str
    date: float
    at_start: bool

    def words(self) -> str:
        if self.at_start:
            return (
                f"the scenario's {self._what()} sets it at {self.date:.7g}, before the first step, so the value "
                "given would never act: change the scenario file instead"
            )
        return f"the value given holds only until {self.date:.7g}, when the scenario's {self._what()} sets it"

    def _what(self) -> str:
        return self.event if self.event.startswith("merger ") else f"event '{self.event}'"


# the heading of a report's list of Undone values (sweep, sensitivity, discover, optimize)
UNDONE_WARNING = (
    "**Warning: levers the base scenario's own events set again.** A value given holds only until that event: "
    "what is measured for it is the effect of the value until then."
)


def undone_by_events(scenario: Scenario, keys: Iterable[str]) -> list[Undone]:
    """The levers among `keys` (provinces.<p>.policy.<lever>, central.initial.<lever>; `provinces.*` expanded)
    that the scenario sets again within the run, each with the first time: a dated event that `set`s it, or a merger
    from which the province takes another's policy (its own later events then lapse). An event that adds to a
    lever keeps the value given in play, as does a budget hold's rebalancing event (computed from the levers
    given, model/costs.py)."""
    first_step_ends = scenario.start_year + scenario.dt  # events before then fire before any rule reads a lever
    run_ends = scenario.start_year + scenario.n_steps * scenario.dt  # events from then on never fire
    out = []
    for key in dict.fromkeys(one for given in keys for one in expand(given, scenario.provinces)):
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "provinces" and parts[2] == "policy" and parts[1] in scenario.provinces:
            province = parts[1]
            taken = [m for m in scenario.mergers if province in m.members and m.policy not in (KEEP, province)]
            lapse = min((m.date for m in taken), default=math.inf)
            events = [
                (e.date, e.name)
                for e in resolve_kinds(scenario.provinces[province].events, scenario.event_effects)
                if e.date < lapse and parts[-1] in e.set and not e.name.startswith(REBALANCING)
            ]
            events += [(m.date, f"merger {m.name} (from then on {m.policy}'s policy)") for m in taken]
        elif len(parts) == 3 and parts[:2] == ["central", "initial"] and scenario.central.enabled:
            events = [(e.date, e.name) for e in scenario.central.events if parts[-1] in e.set]
        else:
            continue
        events = [(date, name) for date, name in events if date < run_ends]
        if events:
            date, name = min(events, key=lambda e: e[0])
            out.append(Undone(key, name, date, date < first_step_ends))
    return out


def refuse_undone_at_start(scenario: Scenario, keys: Mapping[str, str], source: str) -> list[Undone]:
    """Refuse a key (mapped to the field that gives it) whose value the scenario replaces before the first step
    wherever it applies (a `provinces.*` key in every province); return the others for a warning, those replaced
    at the start in some provinces only among them."""
    undone = undone_by_events(scenario, keys)
    at_start = {u.key for u in undone if u.at_start}
    for given, field in keys.items():
        expanded = expand(given, scenario.provinces)
        if expanded and all(one in at_start for one in expanded):
            u = next(u for u in undone if u.key == expanded[0])
            raise InputError(source, field, u.words() if u.key in field else f"{u.key}: {u.words()}")
    return undone


def events_after_the_end(scenario: Scenario) -> list[tuple[str, float]]:
    """(where: name, date) of the events, central and provincial, dated at or after the end of the run's last
    year: they never fire.
    (Events dated before the start fire at once: a policy already in force.)"""
    end = scenario.end_year + 1
    dated = [("central", ev) for ev in scenario.central.events]
    dated += [(key, ev) for key, p in scenario.provinces.items() for ev in p.events]
    return [(f"{where}: {clipped(ev.name)}", ev.date) for where, ev in dated if ev.date >= end]


def years(scenario: Scenario, n_rows: int) -> np.ndarray:
    """The decimal year of every row of a run's records (row 0: the start of `start_year`)."""
    return scenario.start_year + np.arange(n_rows) * scenario.dt


def row_of_year(scenario: Scenario, n_rows: int, year: float) -> int:
    """Row holding the state at mid-`year` (the value reported for a calendar year), clipped to the run. Where no
    row falls at mid-year (an odd number of steps a year) it is the next one, the same way every year: at yearly
    steps the state at the end of the year (round() rounded halves to even, so 2007 and 2008 shared a row and 2006
    read the start). Counted in steps (year x steps_per_year), exact where dt = 1 / steps_per_year is not."""
    k = math.floor((year + 0.5 - scenario.start_year) * scenario.steps_per_year + 0.5)
    return min(max(k, 0), n_rows - 1)


def apply_event(levers: Any, event: Event) -> Any:
    """New lever values after `event`: `set` replaces, `add` adds and is clipped to the lever's range."""
    changes = dict(event.set)
    for name, delta in event.add.items():
        f = next(f for f in dataclasses.fields(levers) if f.name == name)
        value = getattr(levers, name) + delta
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        changes[name] = float(np.clip(value, -np.inf if lo is None else lo, np.inf if hi is None else hi))
    return dataclasses.replace(levers, **changes)


def resolve_kinds(events: list[Event], effects: EventEffects) -> list[Event]:
    """The events with each kind's shared change added to its own `set` and `add` (what the timeline fires)."""
    out = []
    for ev in events:
        if ev.kind is None:
            out.append(ev)
            continue
        kind_set, kind_add = effects.changes(ev.kind)
        add = dict(kind_add)
        for key, value in ev.add.items():
            add[key] = add.get(key, 0.0) + value
        out.append(dataclasses.replace(ev, set={**kind_set, **ev.set}, add=add))
    return out


def check_event(ev: Event, target: type, source: str, path: str) -> None:
    """Event keys must name levers of `target`; values must fit their type and range. An event of a kind takes
    its change from event_effects (shared by all provinces), so it carries no numbers of its own."""
    if ev.kind is not None and (ev.set or ev.add):
        op = "set" if ev.set else "add"
        raise InputError(
            source,
            f"{path}.{op}",
            f"an event of kind {ev.kind!r} takes its change from event_effects (shared by all provinces); "
            "give other changes in a separate event without a kind",
        )
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


def load_scenario(
    path: str | Path, overrides: list[str] | None = None, scale: float | None = None, *, set_in: str | None = None
) -> Scenario:
    """Read a scenario file (following `extends:`), apply `--set key.path=value` overrides and an optional
    scale for every province, and return the validated Scenario. `set_in`: the analysis file whose `set:` the
    overrides are (errors name it), not the command line's --set."""
    path = Path(path)
    data = read_with_extends(path, seen=(), relative_paths=("parameters.posterior",))
    _record_edits_of_fitted(path, data)
    provinces = list(data["provinces"]) if isinstance(data.get("provinces"), dict) else []
    refuse_overwritten(overrides or [], provinces, set_in or str(path), "set" if set_in else "--set")
    for item in overrides or []:
        apply_override(data, item, source=str(path))
    if overrides and isinstance(data.get("parameters", {}), dict):  # reports say what --set changed
        data.setdefault("parameters", {})
        data["parameters"]["set"] = [*_recorded_set(data["parameters"], str(path)), *overrides]
    if scale is not None:
        if not (0 < scale <= 1):
            raise InputError(str(path), "--scale", f"must be in (0, 1], got {clipped(scale)}")
        for prov in (data.get("provinces") or {}).values():
            if isinstance(prov, dict):
                prov["scale"] = scale
    return build(Scenario, data, str(path))


# what a what-if may change in a calibrated scenario without changing what was fitted: levers, events, budgets,
# the horizon and presentation; anything else (behavioural parameters, will effects, structure) is a departure
# from the calibrated point that every label must show. steps_per_year is one: the fitted rates are those of the
# calibration's steps (at most one dealing a citizen a step: docs/ODD.md section 9)
NOT_FITTED = re.compile(
    r"(name|description|seed|start_year|end_year|report_years|initial_state_year|extends|parameters"
    r"|central\.(initial|events|enabled)(\..*)?|provinces\.[^.]+\.(name|scale|policy|events|budget|sources)(\..*)?"
    r"|mergers|district_tier_removed)"
)


def _record_edits_of_fitted(path: Path, data: dict) -> None:
    """A file that extends a calibrated (or posterior) file and sets one of its fitted values is no longer that
    calibrated point: its own keys beyond levers and events join `parameters.set` ('my_case.yaml: citizens.q0'),
    as --set overrides do, so the label says what changed."""
    source = data.get("parameters")
    if not isinstance(source, dict) or source.get("kind", "prior") == "prior":
        return
    own = load_yaml_text(path.read_text(encoding="utf-8")) or {}
    if not isinstance(own, dict) or "parameters" in own:  # a file that states its own source answers for itself
        return
    added = _added_provinces(path, data)
    edited = [
        key
        for key in _dotted_keys(own)
        if not NOT_FITTED.fullmatch(key) and not any(key.startswith(f"provinces.{p}.") for p in added)
    ]
    changes = [f"{path.name}: {key}" for key in edited]
    if added:  # provinces the calibration never saw (their structure is sourced, their leader not fitted): said
        # the same way by every file that has them, so what-ifs on them share their baseline's label
        changes.append(f"{ADDED_PROVINCES}with provinces {', '.join(added)} added (their leaders not fitted)")
    if changes:
        source["set"] = [*_recorded_set(source, str(path)), *changes]


def _recorded_set(parameters: dict, source: str) -> list:
    """The `parameters.set` list a file already has (egovsim's record of earlier changes), to add to."""
    found = parameters.get("set")
    if found is None:
        return []
    if not isinstance(found, list):
        raise InputError(source, "parameters.set", f"expected a list of changes, got {clipped(found)}")
    return found


def _added_provinces(path: Path, data: dict) -> list[str]:
    """Provinces of the resolved `data` that the calibrated file it extends (the nearest one stating its
    `parameters`) does not have."""
    ancestor = _calibrated_ancestor(path)
    if ancestor is None:
        return []
    known = set((read_with_extends(ancestor, seen=()) or {}).get("provinces") or {})
    return [key for key in data.get("provinces") or {} if key not in known]


def _calibrated_ancestor(path: Path, depth: int = 0) -> Path | None:
    own = load_yaml_text(path.read_text(encoding="utf-8")) or {}
    if not isinstance(own, dict) or depth > 20:
        return None
    parents = own.get("extends") or []
    for parent in [parents] if isinstance(parents, str) else parents:
        parent_path = path.parent / parent
        parent_own = load_yaml_text(parent_path.read_text(encoding="utf-8")) or {}
        if isinstance(parent_own, dict) and "parameters" in parent_own:
            return parent_path
        found = _calibrated_ancestor(parent_path, depth + 1)
        if found is not None:
            return found
    return None


def _dotted_keys(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict):
        return [prefix] if prefix else []
    keys = []
    for k, v in tree.items():
        keys += _dotted_keys(v, f"{prefix}.{k}" if prefix else str(k))
    return keys


def scenario_from_dict(data: dict, source: str = "<scenario>") -> Scenario:
    return build(Scenario, copy.deepcopy(data), source)


def varies_continuously(name: str) -> bool:
    """A dotted key may take any real value (as calibration, sensitivity ranges and a posterior's columns vary
    it): not a whole number (the seed, years, steps per year, counts) or a choice. True for a key the schema does
    not type (validation of the values themselves says whether it exists)."""
    found = (
        field_at(ProvinceConfig, ".".join(name.split(".")[2:]))
        if name.startswith("provinces.")
        else field_at(Scenario, name)
    )
    if found is None:
        return True
    kinds = set(get_args(found[1])) or {found[1]}  # float | None: a real value, or unset
    return float in kinds and kinds <= {float, type(None)}


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
    if not varies_continuously(name):
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
    "provinces.hue.leader.will_effect": 0.9}), validated like a file. Used by sweeps, sensitivity and calibration."""
    data = scenario.to_dict()
    for key, value in values.items():
        _set_path(data, key, value, source)
    return build(Scenario, data, source)


def refuse_overwritten(overrides: list[str], provinces: list[str], source: str, field: str) -> None:
    """An override whose value a later one replaces in full (the same key again, a wildcard over its province, a
    section that holds it) would be dropped without a word while reports list both: refused, naming both. A
    province's own value after a wildcard is the wildcard's exception, and kept."""

    def concrete(key: str) -> set[str]:
        if key == "provinces.*" or key.startswith("provinces.*."):
            return {f"provinces.{p}{key[len('provinces.*') :]}" for p in provinces}
        return {key}

    keys = [item.partition("=")[0].strip() for item in overrides]
    for i, earlier in enumerate(keys):
        for j in range(i + 1, len(keys)):
            later = concrete(keys[j])
            if all(any(e == k or e.startswith(k + ".") for k in later) for e in concrete(earlier)):
                raise InputError(
                    source,
                    f"{field}[{i}]" if field == "set" else f"--set {earlier}",
                    f"{clipped(overrides[i])} is replaced by {clipped(overrides[j])}, given after it: give a value "
                    "once, or the general value first and a province's own after it",
                )


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
    """Set a dotted key in a scenario's plain data; `provinces.*.` sets it in every province (`expand`), and
    `provinces.<p>.` must name one of them (a typo would otherwise add a province)."""
    label = label or key
    if key.split(".")[0] == "parameters":  # the record of where the values come from, shown on every label
        raise InputError(
            source,
            label,
            "the parameters' source (prior, calibrated or posterior, and the fit) is egovsim's record of where "
            "the values come from: run another scenario file rather than relabel this one",
        )
    provinces = data.get("provinces")
    provinces = list(provinces) if isinstance(provinces, dict) else []
    for one in expand(key, provinces):
        parts = one.split(".")
        if len(parts) > 2 and parts[0] == "provinces" and parts[1] not in provinces:
            hint = suggest(parts[1], provinces) or f" (its provinces: {', '.join(provinces) or 'none'})"
            raise InputError(source, label, f"unknown province {clipped(parts[1])}{hint}")
        _set_one(data, one, value, source, label)


def _set_one(data: dict, key: str, value: Any, source: str, label: str) -> None:
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


def expand(key: str, provinces: Iterable[str]) -> list[str]:
    """The keys a dotted key stands for: `provinces.*.x` is `provinces.<p>.x` for every province p (the one
    rule for --set, experiment, study and calibration files)."""
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "provinces" and parts[1] == "*":
        return [".".join(["provinces", p, *parts[2:]]) for p in provinces]
    return [key]


def _is_mapping_path(parts: list[str]) -> bool:
    """Sections that may be absent from a file but exist in the schema (so --set can create them)."""
    if parts and parts[0] == "provinces" and len(parts) >= 2:
        return len(parts) == 2 or field_at(ProvinceConfig, ".".join(parts[2:])) is not None
    return field_at(Scenario, ".".join(parts)) is not None


def _suggest_path(parts: list[str]) -> str:
    fields = [f.name for f in dataclasses.fields(Scenario)] if len(parts) == 1 else []
    return suggest(parts[-1], fields) if fields else ""


def expand_wildcards(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any]:
    """`provinces.*.policy.training: 2` sets the lever in every province of the scenario (`expand`)."""
    return {one: value for key, value in values.items() for one in expand(key, scenario.provinces)}


def apply_values(scenario: Scenario, values: Mapping[str, Any], source: str = "<parameters>") -> Scenario:
    """The scenario with a design point's values set (validated like a file); `provinces.*` wildcards expand."""
    return with_values(scenario, expand_wildcards(scenario, values), source) if values else scenario
