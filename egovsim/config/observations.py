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
    """Province values of the indices the supply index is built to be comparable with (MIC index,
    DTI and its digital-government pillar). Indices of other scales (PAPI 0-10) are not included."""
    if not Path(path).exists():
        return []
    obs = load(Path(path))
    targets = {t["id"]: t for t in obs.get("targets", [])}
    points: list[ObservedPoint] = []
    for tid, label in (
        ("mic_index_2017", "MIC index"),
        ("mic_index_2019_hue", "MIC index"),
        ("ict_index_2019_hue", "Vietnam ICT Index"),
    ):
        t = targets.get(tid)
        if not t:
            continue
        for prov, value in (t.get("values") or {}).items():
            if value is not None:
                points.append(
                    ObservedPoint(prov, float(t["year"]), float(value), f"{label} {t['year']}", t.get("source", ""))
                )
    dti = targets.get("dti_values")
    if dti:
        for year, vals in dti["values"].items():
            for key, value in vals.items():
                if key == "hue":
                    points.append(ObservedPoint("hue", float(year), float(value), f"DTI {year}", dti["source"]))
                elif key == "hue_digital_government_activity":
                    points.append(
                        ObservedPoint("hue", float(year), float(value), f"DTI digital government {year}", dti["source"])
                    )
    return points
