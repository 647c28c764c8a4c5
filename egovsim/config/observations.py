"""The sourced observations (calibration/observations.yaml), read once, for plots and calibration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from egovsim.config.yamlfile import read_yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "calibration" / "observations.yaml"


@dataclass(frozen=True)
class ObservedPoint:
    province: str
    year: float
    value: float
    label: str  # what it is, e.g. "MIC index 2017"
    source: str


@lru_cache(maxsize=4)
def load(path: Path = DEFAULT_PATH) -> dict:
    return read_yaml(Path(path))


def supply_index_points(path: Path = DEFAULT_PATH) -> list[ObservedPoint]:
    """Province values of the published indices the supply index is compared with as values (docs/ODD.md 7.8):
    the MIC index (its four government pillars) and the DTI digital-government pillar. Not included: the ICT
    index's online-services sub-index (compared with the online-services pillar only), DTI totals (they also
    score economy and society; only their ranks are compared, with dti_proxy) and indices of other scales."""
    if not Path(path).exists():
        return []
    obs = load(Path(path))
    targets = {t["id"]: t for t in obs.get("targets", [])}
    points: list[ObservedPoint] = []
    for tid in ("mic_index_2017", "mic_index_2019_hue"):
        t = targets.get(tid)
        if not t:
            continue
        for prov, value in (t.get("values") or {}).items():
            if value is not None:
                points.append(
                    ObservedPoint(prov, float(t["year"]), float(value), f"MIC index {t['year']}", t.get("source", ""))
                )
    dti = targets.get("dti_values")
    if dti:
        for year, vals in dti["values"].items():
            value = vals.get("hue_digital_government_activity")
            if value is not None:
                label = f"DTI digital government {year}"
                points.append(ObservedPoint("hue", float(year), float(value), label, dti["source"]))
    return points
