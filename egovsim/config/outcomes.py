"""The outcomes a run records per province per step: their names (the columns of timeseries.csv, and the
outcome names analysis files use) and the values they can take. The model computes them (model/outcomes.py)."""

from __future__ import annotations

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
COL = {name: i for i, name in enumerate(COLUMNS)}
# the values each outcome can take where it is bounded: shares, means of [0, 1] states, and the gaps
UNBOUNDED = {"citizens", "n_systems", "it_waste", "spend", "spend_cumulative", "reports_per_capita_12m"}


def outcome_range(column: str) -> tuple[float, float] | None:
    """(lowest, highest) value `column` can take, or None if it has no upper bound."""
    if column in UNBOUNDED:
        return None
    return (-1.0, 1.0) if column.endswith("_gap") else (0.0, 1.0)
