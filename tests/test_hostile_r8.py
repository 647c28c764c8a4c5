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


def test_serve_refuses_a_host_that_does_not_resolve(capsys):
    assert main(["serve", str(HUE), "--host", "no-such-host.invalid"]) == 2
    assert "--host" in one_line(capsys)


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
