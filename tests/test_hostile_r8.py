"""Round 8's hostile pass (besides the coverage command's, in test_coverage.py): scenarios compared step by step
whatever their clocks, a posterior.csv drawing the seed or the horizon, `serve` announcing an address another
program holds, and a grid listing one level twice. Each is refused in one line, exit status 2, before any run."""

from __future__ import annotations

import socket

import pytest

from egovsim.analysis.calibration.posterior import read_posterior
from egovsim.analysis.compare import plan_comparison
from egovsim.cli import main
from egovsim.errors import InputError

from .conftest import ROOT

HUE = ROOT / "scenarios" / "hue.yaml"


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("clock", ["steps_per_year: 4", "steps_per_year: 52"])
def test_compared_scenarios_must_step_through_the_same_dates(tmp_path, clock):
    """The paired differences over time subtract step k of one scenario from step k of the other: a quarterly
    what-if against a monthly baseline plotted the 2009 state minus the 2007 one as a difference."""
    other = tmp_path / "other.yaml"
    other.write_text(f"extends: {HUE}\nname: other_clock\n{clock}\n")
    with pytest.raises(InputError, match="steps_per_year") as refused:
        plan_comparison([str(HUE), str(other)], 2, scale=0.001)
    assert refused.value.source == str(other) and "same dates" in refused.value.message
    plan_comparison([str(HUE), str(other)], 2, scale=0.001, overrides=["steps_per_year=12"])  # set alike: fine


@pytest.mark.parametrize("column", ["steps_per_year", "seed", "end_year", "start_year", "provinces.hue.population"])
def test_a_posterior_cannot_draw_the_seed_the_clock_or_a_whole_number(tmp_path, column):
    """No calibration varies these; a posterior.csv that drew steps_per_year relabelled quarterly rows as months,
    and one that drew the seed or the end year was silently ignored."""
    (tmp_path / "posterior.csv").write_text(f"citizens.q0,{column},weight\n0.3,4,1\n")
    with pytest.raises(InputError, match="whole numbers or choices") as refused:
        read_posterior(tmp_path)
    assert refused.value.field == column


def test_a_posterior_of_real_valued_parameters_is_read(tmp_path):
    """The shipped posterior, and real-valued keys that may also be unset (float | None in the schema)."""
    (names, samples, weights) = read_posterior(ROOT / "calibration" / "posterior")
    assert "citizens.q0" in names and samples.shape == (weights.size, len(names))
    (tmp_path / "posterior.csv").write_text(
        "provinces.hue.grdp_per_capita,district_tier_removed,weight\n26.5,2025.5,1\n"
    )
    assert read_posterior(tmp_path)[0] == ["provinces.hue.grdp_per_capita", "district_tier_removed"]


def test_serve_refuses_a_port_another_program_holds_before_announcing_it(capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["serve", str(HUE), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "--port" in err and "in use" in err and "serving" not in out + err


def test_serve_probes_an_ipv6_wildcard_as_the_server_binds_it_ipv6_only(capsys):
    """asyncio binds `::` IPv6-only: a program on IPv4's 0.0.0.0 does not hold the port for it."""
    from egovsim.cli import check_can_listen

    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:
            check_can_listen("::", port)
        except InputError as exc:
            assert "in use" not in exc.message, exc  # another error (no IPv6 configured) is not this test's
        with pytest.raises(InputError, match="in use"):
            check_can_listen("0.0.0.0", port)


def test_serve_refuses_a_host_that_does_not_resolve_or_is_not_this_machines(capsys):
    assert main(["serve", str(HUE), "--host", "no-such-host.invalid"]) == 2
    assert "--host" in one_line(capsys)
    assert main(["serve", str(HUE), "--host", "198.51.100.7"]) == 2  # TEST-NET-2: documentation only, never local
    assert "cannot listen on 198.51.100.7" in one_line(capsys)


@pytest.mark.parametrize("levels", ["[1, 1]", "[0.5, 1, 1.0]", "[fragmented, platform, fragmented]"])
def test_a_grid_lists_each_level_once(tmp_path, capsys, levels):
    """A level given twice ran its points twice and, first and last alike, reported an effect of 0."""
    key = "software_strategy" if "platform" in levels else "training"
    experiment = tmp_path / "dup.yaml"
    experiment.write_text(
        f"name: dup\nscenario: {HUE}\nreplicates: 2\ndesign: {{grid: {{provinces.hue.policy.{key}: {levels}}}}}\n"
    )
    assert main(["validate", str(experiment)]) == 2
    assert "is an earlier level too" in one_line(capsys)


# ---- round 8's second pass: the analysis commands -------------------------------------------------------------

BENTRE = ROOT / "scenarios" / "bentre.yaml"
SEARCH = """name: never
scenario: {scenario}
scale: 0.001
set: ["end_year=2012"]
seed: 5
province: bentre
levers_from: 2010
replicates: 2
recheck: 4
levers: {{training: [0.0, 3.0]}}
outcomes:
  years_to_all: {{outcome: adopted_share, stat: time_to, level: 0.99}}
  adopted: adopted_share@2012
objectives: [{{outcome: years_to_all, sense: min, statistic: p80}}, {{outcome: cost, sense: min}}]
target: years_to_all <= 8
population: 4
generations: 1
"""


def test_a_level_never_reached_is_a_miss_of_the_target_not_a_lost_draw(tmp_path):
    """No run brings everyone to adopt by 2012: every draw misses `years_to_all <= 8`. The status quo's share
    was nan (each censored draw dropped as if its run had failed), and with some draws reaching it the share
    was counted over the draws that did only (100% where 5 of 8 met it)."""
    import csv

    spec = tmp_path / "never.yaml"
    spec.write_text(SEARCH.format(scenario=BENTRE))
    assert main(["optimize", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    quo = next(
        r
        for r in csv.DictReader((tmp_path / "out" / "pareto.csv").read_text().splitlines())
        if r["candidate"] == "status_quo"
    )
    assert (quo["target_share"], quo["draws"], quo["years_to_all_p80"]) == ("0", "4", "inf")


def test_percentiles_and_shares_count_a_level_never_reached_as_later_than_any_year():
    import numpy as np

    from egovsim.analysis.optimisation import robust

    nan, inf = float("nan"), float("inf")
    years = np.array([[1, 2, 3, 4, 5, inf, inf, inf], [1, 2, 3, 4, 5, 6, 7, nan]])
    meets = years <= 4
    assert robust(years, "share", meets).tolist() == [4 / 8, 4 / 7]  # the failed draw (nan) alone is left out
    assert robust(years, "p50").tolist() == [4.5, 4.0] and robust(years, "p80")[0] == inf
    assert robust(years, "p80")[1] == pytest.approx(np.percentile([1, 2, 3, 4, 5, 6, 7], 80))


def test_a_files_set_keeps_its_value_over_the_posteriors_draw(tmp_path):
    """sweep and compare keep a `set:` over the posterior's draw of the same key; discover and optimize gave
    every run the draw while scenario.yaml recorded the set value."""
    from egovsim.analysis.discover import load_discovery
    from egovsim.analysis.levers import draws

    spec = tmp_path / "d.yaml"
    spec.write_text(
        f"name: d\nscenario: {ROOT / 'scenarios' / 'calibrated' / 'bentre.yaml'}\nscale: 0.001\n"
        f'set: ["end_year=2012", "citizens.q0=0.99"]\nseed: 1\nprovince: bentre\n'
        f"posterior: {ROOT / 'calibration' / 'posterior'}\nn: 10\nlevers: {{training: [0.0, 3.0]}}\n"
        "outcomes: {adopted: adopted_share@2012}\ncase: adopted >= 0.05\n"
    )
    found, base = load_discovery(spec)
    drawn, _ = draws(found, spec, base, 5)
    assert all("citizens.q0" not in d and "citizens.p0" in d for d in drawn)
    assert base.citizens.q0 == 0.99


def test_a_sweeps_national_figure_weights_each_point_by_its_own_populations(tmp_path):
    import csv

    import numpy as np

    sweep = tmp_path / "np.yaml"
    sweep.write_text(
        f"name: np\nscenario: {ROOT / 'scenarios' / 'three_provinces.yaml'}\nscale: 0.001\n"
        'set: ["end_year=2007"]\ndesign: {grid: {provinces.hue.population: [200000, 4000000]}}\n'
        "replicates: 1\nseed: 4\noutcomes: [access_share@2007, {outcome: access_share, year: 2007, province: national}]\n"
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    others = {"daklak": 1_869_322, "bentre": 1_286_000}  # scenarios/daklak.yaml, bentre.yaml (sourced)
    for row in csv.DictReader((tmp_path / "out" / "runs.csv").read_text().splitlines()):
        hue = float(row["provinces.hue.population"])
        values = [float(row[f"{p}.access_share@2007"]) for p in ("hue", "daklak", "bentre")]
        expected = np.average(values, weights=[hue, *others.values()])
        assert float(row["access_share@2007.national"]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [  # two outcomes making one runs.csv column
        (
            "design: {grid: {provinces.*.policy.training: [0.5, 1]}}\noutcomes: [{outcome: adopted_share, name: x}, "
            "{outcome: supply_index, name: hue.x, province: hue}]",
            "would be 'hue.x'",
        ),
        # one point setting a value twice
        (
            "design: {points: [{provinces.hue.policy.training: 2, provinces.*.policy.training: 3}]}",
            "vary each value once",
        ),
        # a value both set and varied
        (
            'set: ["provinces.hue.policy.training=3"]\ndesign: {grid: {provinces.*.policy.training: [0.5, 1]}}',
            "fixes: give it in one place",
        ),
        # fields the statistic does not use
        (
            "design: {grid: {provinces.hue.policy.training: [0.5, 1]}}\noutcomes: [{outcome: adopted_share, period: [2006, 2007]}]",
            "does not use period",
        ),
        (
            "design: {grid: {provinces.hue.policy.training: [0.5, 1]}}\noutcomes: [{outcome: adopted_share, level: 0.5}]",
            "does not use level",
        ),
        (
            "design: {grid: {provinces.hue.policy.training: [0.5, 1]}}\noutcomes: [{outcome: adopted_share, stat: final, year: 2007}]",
            "does not use year",
        ),
        # a Latin hypercube of one point: nothing to compare with (its effect read "nan -> 0.645")
        ("design: {lhs: {n: 1, parameters: {citizens.q0: {bounds: [0.1, 0.5]}}}}", "design.lhs.n"),
        # an outcome named like runs.csv's own column, or like a design key
        (
            "design: {grid: {provinces.hue.policy.training: [0.5, 1]}}\n"
            "outcomes: [{outcome: use_share_12m, year: 2010, province: hue, name: seed}]",
            "would be 'seed'",
        ),
        (
            "design: {grid: {provinces.hue.policy.training: [0.5, 1]}}\n"
            "outcomes: [{outcome: use_share_12m, year: 2010, province: hue, name: provinces.hue.policy.training}]",
            "would be 'provinces.hue.policy.training'",
        ),
    ],
)
def test_a_sweep_whose_numbers_would_be_mislabelled_is_refused(tmp_path, capsys, body, complaint):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nscenario: {HUE}\nscale: 0.001\nreplicates: 2\n{body}\n")
    assert main(["validate", str(sweep)]) == 2
    assert complaint in one_line(capsys)


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ("parameters: {provinces.bentre.policy.training: {bounds: [0.0, 3.0]}}", "a lever of the file"),
        ('parameters: {citizens.q0: {bounds: [0.1, 0.5]}}\nset: ["citizens.q0=0.3"]', "fixes"),
        ("outcomes: {training: adopted_share@2010}", "names a lever"),
        ("outcomes: {case: adopted_share@2010}", "a column egovsim writes"),
    ],
)
def test_a_discovery_with_inputs_that_set_one_value_twice_is_refused(tmp_path, capsys, extra, complaint):
    lines = {"outcomes": "outcomes: {genuine: civil_servant_genuine_share@2010}", "case": "case: genuine >= 0.07"}
    if extra.startswith("outcomes"):
        lines = {"outcomes": extra, "case": f"case: {extra.split('{')[1].split(':')[0]} >= 0.07"}
        extra = ""
    spec = tmp_path / "d.yaml"
    spec.write_text(
        f"name: d\nscenario: {BENTRE}\nscale: 0.001\nseed: 1\nprovince: bentre\nn: 10\n"
        f"levers: {{training: [1.0, 2.0]}}\n{lines['outcomes']}\n{lines['case']}\n{extra}\n"
    )
    assert main(["validate", str(spec)]) == 2
    assert complaint in one_line(capsys)


def test_an_objective_share_of_an_outcome_the_target_does_not_name_is_refused(tmp_path, capsys):
    """`share` is the share of draws meeting the target: over another outcome its column was mislabelled."""
    spec = tmp_path / "o.yaml"
    spec.write_text(
        SEARCH.format(scenario=BENTRE).replace(
            "objectives: [{outcome: years_to_all, sense: min, statistic: p80}",
            "objectives: [{outcome: adopted, sense: max, statistic: share}",
        )
    )
    assert main(["validate", str(spec)]) == 2
    assert "give it with an outcome the target names" in one_line(capsys)


@pytest.mark.parametrize(
    ("target", "verdict"),
    [("adopted >= 2", "never"), ("adopted >= -5", "always"), ("adopted > 1", "never"), ("adopted <= 1", "always")],
)
def test_a_target_no_run_can_miss_or_meet_is_refused(tmp_path, capsys, target, verdict):
    """A share lies in [0, 1]: `>= 2` is never met and `<= 1` always, so the search or the boxes say nothing."""
    spec = tmp_path / "o.yaml"
    spec.write_text(SEARCH.format(scenario=BENTRE).replace("target: years_to_all <= 8", f"target: {target}"))
    assert main(["validate", str(spec)]) == 2
    assert f"so this {verdict} holds" in one_line(capsys)


def test_a_later_event_that_undoes_the_levers_is_refused(tmp_path, capsys):
    """The scenario's own event after levers_from set the lever back: every candidate ran the same policy from
    then on while its cost was counted in full."""
    cut = tmp_path / "cut.yaml"
    cut.write_text(
        f"extends: {BENTRE}\nname: cut\nprovinces: {{bentre: {{events: "
        "[{date: 2011.0, name: training cut, set: {training: 0.0}, source: test}]}}\n"
    )
    spec = tmp_path / "o.yaml"
    spec.write_text(SEARCH.format(scenario=cut))
    assert main(["validate", str(spec)]) == 2
    assert "training cut" in one_line(capsys)
    spec.write_text(SEARCH.format(scenario=cut).replace("levers_from: 2010", "levers_from: 2011.5"))
    assert main(["validate", str(spec)]) == 0  # the levers set after it: fine


def test_a_study_lists_each_time_resolved_year_once(tmp_path, capsys):
    text = (ROOT / "experiments" / "morris.yaml").read_text()
    text = text.replace("../scenarios/", f"{ROOT / 'scenarios'}/").replace("years: [2010, 2014,", "years: [2014, 2014,")
    study = tmp_path / "m.yaml"
    study.write_text(text)
    assert main(["validate", str(study)]) == 2
    assert "time_resolved.years[1]" in one_line(capsys)


def test_an_index_never_estimated_does_not_make_a_parameter_negligible():
    """An outcome that never varies gives nan indices: the report said every parameter was negligible."""
    from types import SimpleNamespace

    from egovsim.analysis.sensitivity import without_effect

    nan = float("nan")
    rows = [
        {"index": "ST", "value": v, "conf": c, "province": "hue", "output": "o", "parameter": p}
        for p, v, c in (("a", nan, nan), ("b", 0.001, 0.002), ("c", 0.5, 0.1), ("d", 0.0044, 0.013), ("e", 0.001, nan))
    ]
    # d: small, but its interval reaches past the threshold (a sample too small to tell); e: no interval at all
    assert without_effect(SimpleNamespace(method="sobol"), rows, ["a", "b", "c", "d", "e"]) == ["b"]


# ---- the review of round 8's second pass ----------------------------------------------------------------------


def test_a_percentile_is_inf_exactly_when_its_rank_reaches_a_draw_that_never_reached_the_level():
    """numpy interpolates between the draws either side of rank (n - 1) q / 100: beyond the last finite draw the
    percentile takes weight from an inf. A stand-in leaked 1e285 where the rank was 14.000000000000002."""
    import numpy as np

    from egovsim.analysis.optimisation import robust

    years = np.array([[*range(1, 16), *[np.inf] * 11]], dtype=float)  # 15 finite draws of 26: ranks 0-14
    finite = np.arange(1, 16.0).tolist()
    assert robust(years, "p56")[0] == pytest.approx(15.0)  # rank 25 x 0.56 = 14 exactly: the last finite draw
    assert robust(years, "p57")[0] == np.inf  # rank 14.25: a quarter of the weight on an inf
    assert robust(years, "p52")[0] == pytest.approx(np.percentile(finite + [99] * 11, 52))
    assert np.isnan(robust(np.full((1, 4), np.nan), "p50")[0])  # every draw failed: no result


def test_an_infinite_objective_is_ranked_last_not_treated_as_a_failed_candidate():
    """A mix missing the level in one draw of 8 has an infinite mean time: the worst score, but a score. It was
    marked as breaking a constraint and never reached the Pareto set, however cheap."""
    import numpy as np

    from egovsim.analysis.optimisation import NEVER, Problem, _checked

    problem = Problem(("x",), (0.0,), (1.0,), ("min", "min"))
    F, G = _checked(
        lambda X: (np.array([[np.inf, 1.0], [5.0, 2.0], [np.nan, 0.5]]), np.zeros((3, 0))), np.zeros((3, 1)), problem
    )
    assert F[0].tolist() == [NEVER, 1.0] and F[1].tolist() == [5.0, 2.0]
    assert G[:, -1].tolist() == [-1.0, -1.0, 1.0]  # only the failed candidate (nan) breaks the constraint


def test_a_paired_difference_with_a_draw_that_never_reached_the_level_is_undefined():
    """Status quo [3, 3, 3, never x 5], a mix [2.5, 2.5, 2.5, 4 x 5]: the difference was -0.5 [-0.5, -0.5] over the
    3 draws where both reached the level, hiding that the mix reached it in 5 draws where the status quo never did."""
    import math
    from types import SimpleNamespace

    import numpy as np

    from egovsim.analysis.optimize import differences

    inf = math.inf
    quo = SimpleNamespace(values={"t": np.array([[3, 3, 3, inf, inf, inf, inf, inf]])})
    mix = SimpleNamespace(X=np.zeros((1, 1)), values={"t": np.array([[2.5, 2.5, 2.5, 4, 4, 4, 4, 4]])})
    (row,) = differences(None, mix, quo, "t")
    assert math.isnan(row["mean"]) and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    same = SimpleNamespace(X=np.zeros((1, 1)), values={"t": np.array([[2.5] * 8])})
    (row,) = differences(None, same, SimpleNamespace(values={"t": np.array([[3.0] * 8])}), "t")
    assert row["mean"] == pytest.approx(-0.5) and row["n"] == 8


def test_a_wildcard_set_with_one_province_varied_is_accepted(tmp_path, capsys):
    """`set: provinces.*.x=0` still fixes the other provinces when Hue's x is varied: not a conflict."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"name: s\nscenario: {ROOT / 'scenarios' / 'three_provinces.yaml'}\nscale: 0.001\nreplicates: 2\n"
        'set: ["provinces.*.policy.training=0"]\ndesign: {grid: {provinces.hue.policy.training: [0.5, 1]}}\n'
    )
    assert main(["validate", str(sweep)]) == 0


def test_an_outcome_named_target_is_refused_by_a_search(tmp_path, capsys):
    spec = tmp_path / "o.yaml"
    spec.write_text(
        SEARCH.format(scenario=BENTRE).replace("  adopted: adopted_share@2012", "  target: adopted_share@2012")
    )
    assert main(["validate", str(spec)]) == 2
    assert "outcomes.target" in one_line(capsys)


def test_a_discovery_parameter_on_a_lever_set_later_acts_before_it_and_is_accepted(tmp_path, capsys):
    spec = tmp_path / "d.yaml"
    spec.write_text(
        f"name: d\nscenario: {BENTRE}\nscale: 0.001\nseed: 1\nprovince: bentre\nn: 10\nlevers_from: 2010\n"
        "levers: {training: [1.0, 2.0]}\noutcomes: {genuine: civil_servant_genuine_share@2012}\n"
        'case: genuine >= 0.07\nset: ["end_year=2012"]\nparameters: {provinces.bentre.policy.training: {bounds: [0.0, 3.0]}}\n'
    )
    assert main(["validate", str(spec)]) == 0
