"""The outcomes a run records per province per step: their names (the columns of timeseries.csv, and the
outcome names analysis files use) and the values they can take. The model computes them (model/outcomes.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (column, meaning). The order is the column order of timeseries.csv after `year` and `province`.
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("citizens", "simulated citizens"),
    (
        "adopted_share",
        "citizens who have ever decided to use online public services (not necessarily used one: see use_share_12m)",
    ),
    ("use_share_12m", "citizens who used an online public service in the last 12 months (PAPI item)"),
    ("access_share", "citizens with internet at home"),
    ("urban_adopted_share", "adopted share among urban citizens"),
    ("rural_adopted_share", "adopted share among rural citizens"),
    ("minority_adopted_share", "adopted share among ethnic-minority citizens (nan if none)"),
    ("majority_adopted_share", "adopted share among Kinh (majority) citizens"),
    ("urban_use_share_12m", "12-month use share among urban citizens"),
    ("rural_use_share_12m", "12-month use share among rural citizens"),
    ("urban_access_share", "access share among urban citizens"),
    ("rural_access_share", "access share among rural citizens"),
    ("minority_access_share", "access share among ethnic-minority citizens"),
    ("majority_access_share", "access share among majority citizens"),
    ("urban_rural_gap", "urban minus rural adopted share"),
    ("ethnic_gap", "majority minus minority adopted share"),
    ("civil_servant_genuine_share", "civil servants who genuinely use the e-office system"),
    ("civil_servant_ceremonial_share", "civil servants who log in under a mandate but work offline"),
    ("civil_servant_skill", "mean digital skill of civil servants"),
    ("services_online_share", "share of procedures that can be done fully online, through any channel"),
    ("province_online_share", "share of procedures the province offers fully online (mean d, level 4)"),
    ("published_share", "share of procedures the province publishes with online forms (mean a, level 3 or 4)"),
    ("usability", "usability of the province's e-government software"),
    (
        "reliability",
        "chance the serving official handles an online dossier online (not redirected to the counter, not "
        "stalled), averaged over citizens; national-portal login failures are not included",
    ),
    ("informal_payment_index", "share of dealings with government in the last 12 months with an informal payment"),
    ("literacy_mean", "mean digital literacy of citizens"),
    ("trust_mean", "mean trust of citizens in government online"),
    ("leader_will", "political will of the provincial leader"),
    ("roadmap_clarity", "clarity of the central roadmap"),
    ("n_systems", "effective number of separate e-government systems in use"),
    ("it_waste", "cumulative spending on redundant software systems since the start, bn VND (billion VND, nominal)"),
    ("agency_it", "IT equipment of government agencies K (staff-weighted over province and commune level)"),
    (
        "supply_index",
        "supply index in [0, 1]: agencies' IT, reported internal use, portal, online services (docs/ODD.md 7.8)",
    ),
    ("spend", "spending on the province's levers in force, bn VND/yr (billion VND a year, nominal; model/costs.py)"),
    ("spend_cumulative", "spending on the province's levers since the start, bn VND (billion VND, nominal)"),
    (
        "portal_use_share_12m",
        "citizens who completed a dealing on the National Public Service Portal in the last 12 months (PAPI item)",
    ),
    (
        "provincial_use_share_12m",
        "citizens who completed a dealing on the province's own e-service portal in the last 12 months (PAPI item)",
    ),
    ("dossiers_online_share", "dealings with government in the last 12 months completed online (either channel)"),
    (
        "reports_per_capita_12m",
        "feedback reports (informal payments asked, failed online dossiers) per citizen, 12 months",
    ),
    ("minority_use_share_12m", "12-month use share among ethnic-minority citizens (nan if none)"),
    ("majority_use_share_12m", "12-month use share among majority citizens"),
)
COLUMNS = tuple(name for name, _ in OUTCOMES)

SHARE = "share (0-1)"
INDEX = "index (0-1)"
# (short label for plot titles and tables, unit): what a reader sees instead of the column name
LABELS: dict[str, tuple[str, str]] = {
    "citizens": ("Simulated citizens", "people simulated (population x scale)"),
    "adopted_share": ("Citizens who have adopted online services", SHARE),
    "use_share_12m": ("Citizens who used online services in the last 12 months", SHARE),
    "access_share": ("Citizens with internet at home", SHARE),
    "urban_adopted_share": ("Urban citizens who have adopted", SHARE),
    "rural_adopted_share": ("Rural citizens who have adopted", SHARE),
    "minority_adopted_share": ("Ethnic-minority citizens who have adopted", SHARE),
    "majority_adopted_share": ("Kinh (majority) citizens who have adopted", SHARE),
    "urban_use_share_12m": ("Urban citizens who used online services (12 months)", SHARE),
    "rural_use_share_12m": ("Rural citizens who used online services (12 months)", SHARE),
    "urban_access_share": ("Urban citizens with internet at home", SHARE),
    "rural_access_share": ("Rural citizens with internet at home", SHARE),
    "minority_access_share": ("Ethnic-minority citizens with internet at home", SHARE),
    "majority_access_share": ("Majority citizens with internet at home", SHARE),
    "urban_rural_gap": ("Urban-rural gap in adoption", "difference of shares (-1 to 1)"),
    "ethnic_gap": ("Majority-minority gap in adoption", "difference of shares (-1 to 1)"),
    "civil_servant_genuine_share": ("Civil servants who genuinely use e-office", SHARE),
    "civil_servant_ceremonial_share": ("Civil servants who only log in (ceremonial use)", SHARE),
    "civil_servant_skill": ("Digital skill of civil servants", INDEX),
    "services_online_share": ("Procedures that can be done fully online", SHARE),
    "province_online_share": ("Procedures the province offers fully online", SHARE),
    "published_share": ("Procedures published with online forms", SHARE),
    "usability": ("Usability of the province's e-government software", INDEX),
    "reliability": ("Online dossiers handled online", "chance (0-1)"),
    "informal_payment_index": ("Dealings with an informal payment", SHARE),
    "literacy_mean": ("Digital literacy of citizens", INDEX),
    "trust_mean": ("Trust of citizens in online government", INDEX),
    "leader_will": ("Political will of the provincial leader", INDEX),
    "roadmap_clarity": ("Clarity of the central roadmap", INDEX),
    "n_systems": ("Separate e-government systems in use", "systems (effective number)"),
    "it_waste": ("Spending on redundant software since the start", "bn VND (nominal)"),
    "agency_it": ("IT equipment of government agencies", INDEX),
    "supply_index": ("Supply index (government side)", INDEX),
    "spend": ("Spending on the province's levers", "bn VND/yr (nominal)"),
    "spend_cumulative": ("Spending on the province's levers since the start", "bn VND (nominal)"),
    "portal_use_share_12m": ("Citizens who used the National Public Service Portal (12 months)", SHARE),
    "provincial_use_share_12m": ("Citizens who used the province's own portal (12 months)", SHARE),
    "dossiers_online_share": ("Dealings with government completed online", SHARE),
    "reports_per_capita_12m": ("Feedback reports per citizen (12 months)", "reports per citizen per year"),
    "minority_use_share_12m": ("Ethnic-minority citizens who used online services (12 months)", SHARE),
    "majority_use_share_12m": ("Majority citizens who used online services (12 months)", SHARE),
}
COL = {name: i for i, name in enumerate(COLUMNS)}
# the values each outcome can take where it is bounded: shares, means of [0, 1] states, and the gaps
UNBOUNDED = {"citizens", "n_systems", "it_waste", "spend", "spend_cumulative", "reports_per_capita_12m"}


def outcome_range(column: str) -> tuple[float, float] | None:
    """(lowest, highest) value `column` can take, or None if it has no upper bound."""
    if column in UNBOUNDED:
        return None
    return (-1.0, 1.0) if column.endswith("_gap") else (0.0, 1.0)


def difference_range(column: str) -> tuple[float, float] | None:
    """(lowest, highest) value a difference of two values of `column` can take (two shares differ by at most 1),
    or None if the column has no upper bound."""
    bounds = outcome_range(column)
    return None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])


def label(column: str) -> str:
    """What a reader sees for `column`: its short label (the column name itself if it has none)."""
    return LABELS[column][0] if column in LABELS else column


# outcomes no observation constrains: their levels, and every lever's effect on them, come from priors
# (docs/ODD.md section 9); every report that shows one says so, in these words
PRIOR_DRIVEN = {
    "informal_payment_index": "the informal payment index has no observation to fit: citizens.informal_ask_prob "
    "(0.3) and the enforcement parameters are priors, so its level and every change in it are prior-driven",
    "spend": "spending comes from the lever costs costs.*, priors with no sourced per-lever cost "
    "(docs/parameters.md): its level, and any ranking of mixes by cost, is prior-driven",
    "spend_cumulative": "cumulative spending comes from the lever costs costs.*, priors with no sourced per-lever "
    "cost (docs/parameters.md): its level, and any ranking of mixes by cost, is prior-driven",
}
# what the calibration's held-out check found about use, for the reports of runs of the calibrated model
USE_TOO_LOW = (
    "the model's use of online services is too low against the data: fitted to the data up to 2019 it predicted "
    "every later figure of portal use 5-16 times too low, and fitted to all of them it still under-predicts "
    "national portal use 2020-2022 (docs/calibration.md); read its levels of use as too low"
)


def unit(column: str) -> str:
    return LABELS[column][1]


def range_text(column: str) -> str:
    """The values `column` can take, as text: [0, 1], [-1, 1] or [0, inf) (counts and money are never negative)."""
    bounds = outcome_range(column)
    return "[0, inf)" if bounds is None else f"[{bounds[0]:g}, {bounds[1]:g}]"


# the columns that locate a row in egovsim's tables (timeseries.csv, timeseries_band.csv, timeseries.parquet,
# comparison.csv, runs.csv): name -> (meaning, unit, range)
KEY_COLUMNS: dict[str, tuple[str, str, str]] = {
    "scenario": ("scenario name (or label in a comparison)", "text", ""),
    "run": ("run key in the run store (runs/<key>.npz)", "text", ""),
    "point": ("design point of a sweep (row of the design)", "count", "[0, inf)"),
    "replicate": ("replicate number; replicate i of every scenario uses the same seed", "count", "[0, inf)"),
    "seed": ("random seed of the run", "integer", "[0, 2**63 - 1]"),
    "year": (
        "decimal year of the state: 2017.5 is the state half-way through 2017 (1 July with monthly steps, 2 July "
        "with weekly ones: `date` gives the day)",
        "year",
        "",
    ),
    "date": ("calendar date of the state (ISO 8601): the state at 00:00 that day", "date", ""),
    "province": ("province key: one of the scenario's provinces (scenario.yaml), e.g. hue, daklak, bentre", "text", ""),
    "outcome": ("outcome column the row is about (see its own row in this file)", "text", ""),
    "level": (
        "what the row's territory is at that date: province (a governing unit), former_province (merged into "
        "part_of), future_province (a merger's unit before its date: the same territory, not yet governing)",
        "text",
        "",
    ),
    "part_of": ("the governing unit the row's territory belongs to at that date", "text", ""),
    "replicates": ("replicates with a value at this step", "count", "[0, inf)"),
    "mean": ("mean over replicates", "unit of the outcome", ""),
    "median": ("median (50th percentile) over replicates: the line the plots draw", "unit of the outcome", ""),
    "p5": ("5th percentile over replicates", "unit of the outcome", ""),
    "p95": ("95th percentile over replicates", "unit of the outcome", ""),
    "kind": (
        "scenario: one scenario's value; difference: scenario minus `minus`, paired; per_100bn_vnd: the "
        "difference per 100 bn VND of extra cumulative spending",
        "text",
        "",
    ),
    "minus": ("the scenario subtracted (the baseline) in a difference row", "text", ""),
    "n": ("replicates the value is computed from", "count", "[0, inf)"),
    "sd": ("standard deviation over replicates", "unit of the outcome", "[0, inf)"),
    "ci_low": (
        "lower end of the 95% Student t interval of the mean (how precisely the mean is known: it narrows with "
        "more replicates; p5-p95 is the range of single replicates)",
        "unit of the outcome",
        "",
    ),
    "ci_high": ("upper end of the 95% Student t interval of the mean (see ci_low)", "unit of the outcome", ""),
}


def dictionary_rows(
    keys: tuple[str, ...] = ("year", "date", "province"), meanings: dict[str, str] | None = None
) -> list[tuple[str, str, str, str]]:
    """columns.csv: (name, meaning, unit, range) of the key columns `keys` (`meanings` replaces the meaning of
    some, where a table uses a name differently), then of every outcome column."""
    meanings = meanings or {}
    rows = [(k, meanings.get(k, KEY_COLUMNS[k][0]), *KEY_COLUMNS[k][1:]) for k in keys]
    return rows + [(name, meaning, unit(name), range_text(name)) for name, meaning in OUTCOMES]


def _relative_gap(r: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - r[..., COL["rural_adopted_share"]] / r[..., COL["urban_adopted_share"]]


def _demand_index(r: np.ndarray) -> np.ndarray:
    return (r[..., COL["access_share"]] + r[..., COL["use_share_12m"]]) / 2


# outcomes computed from the recorded columns (for patterns that no single column states): the one list the
# calibration, scenario discovery, policy search and plots all read
DERIVED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "urban_rural_relative_gap": _relative_gap,
    "ethnic_access_gap": lambda r: r[..., COL["majority_access_share"]] - r[..., COL["minority_access_share"]],
    "access_minus_use": lambda r: r[..., COL["access_share"]] - r[..., COL["use_share_12m"]],
    # demand index D: PAPI's e-governance dimension (since 2018) scores internet access and use of e-government
    # portals (compared as 10 x D)
    "demand_index": lambda r: _demand_index(r),
    # the DTI total scores digital government, economy and society; the economy is not modelled, so only DTI
    # ranks are compared with (S + D) / 2, never its values (docs/design-model-v2.md section 7)
    "dti_proxy": lambda r: (r[..., COL["supply_index"]] + _demand_index(r)) / 2,
    # the urban-rural gap in 12-month use (scenario discovery and policy search name it)
    "urban_rural_use_gap": lambda r: r[..., COL["urban_use_share_12m"]] - r[..., COL["rural_use_share_12m"]],
}
DIFFERENCE = "difference of shares (-1 to 1)"
DERIVED_UNITS: dict[str, str] = {
    "urban_rural_relative_gap": "1 - rural / urban adopted share (at most 1)",
    "ethnic_access_gap": DIFFERENCE,
    "access_minus_use": DIFFERENCE,
    "demand_index": INDEX,
    "dti_proxy": INDEX,
    "urban_rural_use_gap": DIFFERENCE,
}


def unit_of(outcome: str) -> str:
    """The unit of a recorded or derived outcome."""
    return DERIVED_UNITS[outcome] if outcome in DERIVED else unit(outcome)
