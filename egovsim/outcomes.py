"""Outcomes per province per step: the columns of timeseries.csv, and the e-government index formula."""

from __future__ import annotations

import numpy as np

# (column, meaning). The order is the column order of timeseries.csv after `year` and `province`.
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("citizens", "simulated citizens"),
    ("adopted_share", "citizens who have ever adopted online public services"),
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
    ("services_online_share", "share of procedures that can be done fully online"),
    ("usability", "usability of the province's e-government software"),
    ("reliability", "chance an online dossier goes through, averaged over citizens"),
    ("informal_payment_index", "share of dealings with government in the last 12 months with an informal payment"),
    ("literacy_mean", "mean digital literacy of citizens"),
    ("trust_mean", "mean trust of citizens in government online"),
    ("leader_will", "political will of the provincial leader"),
    ("roadmap_clarity", "clarity of the central roadmap"),
    ("n_systems", "separate e-government systems in use"),
    ("it_cost", "cumulative IT programme spending (spending-intensity years)"),
    ("it_waste", "cumulative spending on redundant systems (spending-intensity years)"),
    ("egov_index", "e-government index in [0, 1] (docs/ODD.md)"),
)
COLUMNS = tuple(name for name, _ in OUTCOMES)
COL = {name: i for i, name in enumerate(COLUMNS)}


def egov_index(weights, access: np.ndarray, genuine: np.ndarray, online: np.ndarray,
               adopted: np.ndarray) -> np.ndarray:
    """E-government index: a weighted mean of four pillars in [0, 1], after the MIC index's sub-indices
    (IT infrastructure; internal IT use; online public services; portal use by citizens)."""
    return (weights.infrastructure * access + weights.internal_use * genuine
            + weights.online_services * online + weights.citizen_uptake * adopted)


def share(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, count / np.maximum(total, 1), np.nan)


# which of the four blocks (rural majority, rural minority, urban majority, urban minority) each subgroup holds
SUBGROUPS = ("all", "urban", "rural", "minority", "majority")
_MEMBERS = np.array([[1, 0, 1, 0, 1],
                     [1, 0, 1, 1, 0],
                     [1, 1, 0, 0, 1],
                     [1, 1, 0, 1, 0]], dtype=float)


def measure(model) -> np.ndarray:
    """Every outcome of every province at the model's current step: an array (provinces, columns)."""
    cit, cs = model.citizens, model.civil_service
    k, P = model.step_index, len(model.leaders)
    out = np.empty((P, len(COLUMNS)))
    c = out.T  # write columns by name
    sizes = cit.group_sizes.reshape(P, 4) @ _MEMBERS  # (P, subgroups)
    adopted, access, used = (share(cit.group_counts(mask).reshape(P, 4) @ _MEMBERS, sizes)
                             for mask in (cit.adopted, cit.access, cit.used_in_last_year(k)))
    c[COL["citizens"]] = sizes[:, 0]
    c[COL["adopted_share"]], c[COL["access_share"]], c[COL["use_share_12m"]] = adopted[:, 0], access[:, 0], used[:, 0]
    for g, name in enumerate(SUBGROUPS[1:], start=1):
        c[COL[f"{name}_adopted_share"]] = adopted[:, g]
        c[COL[f"{name}_access_share"]] = access[:, g]
    c[COL["urban_use_share_12m"]], c[COL["rural_use_share_12m"]] = used[:, 1], used[:, 2]
    c[COL["urban_rural_gap"]] = adopted[:, 1] - adopted[:, 2]
    c[COL["ethnic_gap"]] = adopted[:, 4] - adopted[:, 3]
    genuine, ceremonial = cs.shares(P)
    c[COL["civil_servant_genuine_share"]] = genuine
    c[COL["civil_servant_ceremonial_share"]] = ceremonial
    c[COL["civil_servant_skill"]] = np.bincount(cs.province, weights=cs.skill, minlength=P) / np.bincount(
        cs.province, minlength=P)
    n_citizens = cit.province_sizes
    c[COL["reliability"]] = np.bincount(cs.province, weights=cs.reliability() * model.citizens_per_servant,
                                        minlength=P) / n_citizens
    c[COL["informal_payment_index"]] = cit.informal_payment_index(k)
    c[COL["literacy_mean"]] = np.bincount(cit.province, weights=cit.literacy, minlength=P) / n_citizens
    c[COL["trust_mean"]] = np.bincount(cit.province, weights=cit.trust, minlength=P) / n_citizens
    roadmap = model.central.levers.roadmap_clarity
    for p, leader in enumerate(model.leaders):
        c[COL["services_online_share"], p] = leader.online(model.rent_rel, model.central.levers.portal_services).mean()
        c[COL["usability"], p] = leader.usability
        c[COL["leader_will"], p] = leader.will
        c[COL["roadmap_clarity"], p] = roadmap
        c[COL["n_systems"], p] = leader.n_systems
        c[COL["it_cost"], p] = leader.it_cost
        c[COL["it_waste"], p] = leader.it_waste
    c[COL["egov_index"]] = egov_index(model.scenario.egov_index, c[COL["access_share"]],
                                      c[COL["civil_servant_genuine_share"]], c[COL["services_online_share"]],
                                      c[COL["adopted_share"]])
    return out
