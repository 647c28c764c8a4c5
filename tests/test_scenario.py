"""Scenario files: validation, extends:, --set, and the sourced structure of the province scenarios."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from egovsim.cli import main
from egovsim.config.scenario import Policy, Scenario, load_scenario, scenario_from_dict, with_values
from egovsim.errors import InputError

from .conftest import ROOT, SCENARIOS, THREE

MINIMAL = """\
name: tiny
start_year: 2010
end_year: 2012
provinces:
  a:
    name: Province A
    population: 5000
    urban_share: 0.3
    minority_share: 0.1
    scale: 0.1
"""


def alias_tree(levels: int, width: int) -> str:
    """A flow list whose anchors nest `levels` deep, each level `width` aliases of the one below:
    a few hundred bytes standing for width**levels items."""
    text = "[&l0 [" + ", ".join(["x"] * width) + "]"
    for i in range(1, levels):
        text += f", &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]"
    return text + "]"


def alias_chain(links: int, depth: int) -> str:
    """Mappings each `depth` deep whose innermost value is an alias of the previous one: shallow as written,
    links x depth deep when expanded."""
    lines = []
    for i in range(links):
        inner = "[]" if i == 0 else f"*c{i - 1}"
        lines.append(f"c{i}_: &c{i} " + "{k: " * depth + inner + "}" * depth)
    return "sources: {" + ", ".join(lines) + "}\n"


# (what is wrong, file text, field the error must name)
BAD_FILES = [
    ("malformed YAML", "name: x\nprovinces: [a, b\n", "line"),
    ("unknown key with a suggestion", MINIMAL + "seeed: 3\n", "seeed"),
    ("probability above 1", MINIMAL.replace("urban_share: 0.3", "urban_share: 1.5"), "provinces.a.urban_share"),
    ("negative population", MINIMAL.replace("population: 5000", "population: -5"), "provinces.a.population"),
    ("start after end", MINIMAL.replace("end_year: 2012", "end_year: 2001"), "end_year"),
    ("missing required key", MINIMAL.replace("name: tiny\n", ""), "name"),
    ("text where a number belongs", MINIMAL.replace("scale: 0.1", "scale: lots"), "provinces.a.scale"),
    ("boolean where a number belongs", MINIMAL.replace("scale: 0.1", "scale: true"), "provinces.a.scale"),
    ("unknown strategy", MINIMAL + "    policy: {software_strategy: locl}\n", "provinces.a.policy.software_strategy"),
    (
        "event on an unknown lever",
        MINIMAL + "    events: [{date: 2011, name: e, set: {trainng: 2}}]\n",
        "provinces.a.events[0].set.trainng",
    ),
    (
        "event value out of range",
        MINIMAL + "    events: [{date: 2011, name: e, set: {feedback: 3}}]\n",
        "provinces.a.events[0].set.feedback",
    ),
    # keys of the model before issue 15 name where their value lives now (docs/design-model-v2.md 3.4, 5)
    *(
        (f"old key {old}", MINIMAL + text, f"{old}: no longer a key here: use {new}")
        for old, text, new in (
            ("provinces.a.literacy_urban", "    literacy_urban: 0.5\n", "citizens.literacy_urban"),
            ("provinces.a.literacy_rural", "    literacy_rural: 0.2\n", "citizens.literacy_rural"),
            ("provinces.a.trust_initial", "    trust_initial: 0.5\n", "citizens.trust_initial"),
            ("provinces.a.it_capacity0", "    it_capacity0: 0.3\n", "services.it_capacity0"),
            ("provinces.a.access_initial", "    access_initial: 0.05\n", "access.initial"),
            ("provinces.a.leader.will0", "    leader: {will0: 0.8}\n", "will_effect"),
            ("citizens.access_rate", "citizens: {access_rate: 0.01}\n", "access.base_rate"),
            ("citizens.access_imitation", "citizens: {access_imitation: 0.1}\n", "access.imitation"),
            ("citizens.rural_access_factor", "citizens: {rural_access_factor: 0.6}\n", "access.rural_factor"),
            ("citizens.minority_access_factor", "citizens: {minority_access_factor: 1}\n", "access.minority_factor"),
            (
                "citizens.infrastructure_effect",
                "citizens: {infrastructure_effect: 1}\n",
                "access.infrastructure_effect",
            ),
        )
    ),
    (
        "event of an unknown kind",
        MINIMAL + "    events: [{date: 2011, name: e, kind: operations_center}]\n",
        "provinces.a.events[0].kind",
    ),
    (
        "an event of a kind with numbers of its own",
        MINIMAL + "    events: [{date: 2011, name: e, kind: feedback_app, set: {feedback: 0.5}}]\n",
        "provinces.a.events[0].set",
    ),
    ("initial access above the ceiling", MINIMAL + "access: {initial: 0.95, ceiling: 0.9}\n", "access.initial"),
    (
        "a national event with a kind",
        MINIMAL + "central: {events: [{date: 2011, name: e, kind: own_action_plan}]}\n",
        "central.events[0].kind",
    ),
    ("index weights not summing to 1", MINIMAL + "supply_index: {infrastructure: 0.9}\n", "supply_index"),
    (
        "the key of earlier versions egov_index",
        MINIMAL + "egov_index: {}\n",
        "egov_index: no longer a key here: use supply_index",
    ),
    ("a list instead of a mapping", "- name: x\n", "top level"),
    ("an empty file", "", "name"),
    ("a scale that simulates nobody", MINIMAL.replace("scale: 0.1", "scale: 0.00001"), "provinces.a.scale"),
    ("extends a missing file", "extends: nowhere.yaml\n" + MINIMAL, "nowhere.yaml"),
    ("not a number (nan)", MINIMAL.replace("urban_share: 0.3", "urban_share: .nan"), "provinces.a.urban_share"),
    ("provinces empty", MINIMAL.split("provinces:")[0] + "provinces: {}\n", "provinces"),
    ("a key given twice", MINIMAL + "citizens: {p0: 0.01}\ncitizens: {q0: 0.2}\n", "citizens"),
    # names and keys become folder names and go into the browser page: a safe pattern only (issue 13)
    *(
        (f"province key {key!r}", MINIMAL.replace("  a:", f"  {key}:"), "provinces")
        for key in (
            '"x\'><img src=nonexistent onerror=\\"alert(1)\\">"',
            "'a b'",
            '"a\\0b"',
            "Hue",
            "1a",
            "'../a'",
            '"a\\nb"',
            "a" * 65,
        )
    ),
    *(
        (f"scenario name {name!r}", MINIMAL.replace("name: tiny", f"name: {name}"), "name")
        for name in ("/tmp/x", "../../../../tmp/x", "..", ".hidden", "-rf", "'a b'", '"a\\nb"', "x" * 65, "a/b", "''")
    ),
    # sizes: a file, what its aliases expand to, how deep it nests, how large its numbers are
    ("alias tree expanding to a million nodes", MINIMAL + "description: " + alias_tree(6, 10) + "\n", "aliases expand"),
    ("alias bomb in a key's value", MINIMAL + "sources: {a: " + alias_tree(7, 9) + "}\n", "aliases expand"),
    ("an alias inside itself", MINIMAL + "description: &d [1, *d]\n", "refers to a node that contains it"),
    ("20,000-deep [", MINIMAL + "description: " + "[" * 20_000 + "\n", "nested deeper than 50"),
    ("3,000-deep {", MINIMAL + "description: " + "{" * 3000 + "\n", "nested deeper than 50"),
    ("deep block nesting", MINIMAL + "".join(f"{'  ' * i}k{i}:\n" for i in range(60)), "nested deeper than 50"),
    ("deep through aliases", MINIMAL + alias_chain(8, 10), "nested deeper than 50 levels (aliases expanded)"),
    ("file over 1 MB", MINIMAL + "description: " + "x" * 1_000_001 + "\n", "larger than 1 MB"),
    (
        "30,000 events (1.5 MB)",
        MINIMAL + "    events:\n" + "      - {date: 2011, name: e, set: {feedback: 0.5}}\n" * 30_000,
        "larger than 1 MB",
    ),
    ("a NUL in the file", MINIMAL + "description: a\0b\n", "not allowed"),
    ("population 1.0e+308", MINIMAL.replace("population: 5000", "population: 1.0e+308"), "provinces.a.population"),
    ("population 10**400", MINIMAL.replace("population: 5000", "population: 10**400"), "provinces.a.population"),
    (
        "population of 401 digits",
        MINIMAL.replace("population: 5000", "population: 1" + "0" * 400),
        "provinces.a.population",
    ),
    ("a number of 5000 digits", MINIMAL.replace("population: 5000", "population: 1" + "0" * 5000), "line 7"),
    (
        "population beyond any province",
        MINIMAL.replace("population: 5000", "population: 200000000"),
        "provinces.a.population",
    ),
    (
        "simulates over 100 million citizens",
        MINIMAL.replace("population: 5000", "population: 140000000").replace("scale: 0.1", "scale: 1"),
        "provinces",
    ),
    ("civil servants 1e300", MINIMAL + "    civil_servants: 1.0e+300\n", "provinces.a.civil_servants"),
    ("procedures 1e20", MINIMAL + "services: {n_procedures: 1.0e+20}\n", "services.n_procedures"),
    ("steps per year 1e308", MINIMAL + "steps_per_year: 1.0e+308\n", "steps_per_year"),
    ("mean degree 1e300", MINIMAL + "network: {mean_degree: 1.0e+300}\n", "network.mean_degree"),
    ("seed beyond int64", MINIMAL + "seed: 1.0e+19\n", "seed"),
    ("report year 1e300", MINIMAL + "report_years: [1.0e+300]\n", "report_years[0]"),
    (
        "an event adding 1e300",
        MINIMAL + "    events: [{date: 2011, name: e, add: {training: 1.0e+300}}]\n",
        "add.training",
    ),
    ("an event on a huge date", MINIMAL + "    events: [{date: 1.0e+308, name: e}]\n", "events[0].date"),
    ("infinite population", MINIMAL.replace("population: 5000", "population: .inf"), "provinces.a.population"),
    (
        "101 provinces",
        MINIMAL
        + "".join(
            f"  p{i}: {{name: P, population: 100, urban_share: 0, minority_share: 0, scale: 1}}\n" for i in range(100)
        ),
        "at most 100 provinces",
    ),
    ("extends a folder", "extends: .\n" + MINIMAL, "is a folder, not a file"),
    ("extends a device", "extends: /dev/null\n" + MINIMAL, "extends: /dev/null: not a regular file"),
]


@pytest.mark.parametrize("what, text, field", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_scenario_gives_one_line_error_and_exit_2(tmp_path, capsys, what, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    status = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert "bad.yaml" in err and field in err, err
    assert not out.exists()  # nothing written for a run that could not start


def test_a_few_hundred_bytes_of_aliases_cannot_exhaust_memory(tmp_path):
    """A 9-level, 9-wide tree of anchors (387 million leaves) once made `validate` grow to 3.4 GB, formatting
    the value for its error message. Now: one line, within a 1 GB address space."""
    path = tmp_path / "bomb.yaml"
    path.write_text(MINIMAL + "description: " + alias_tree(9, 9) + "\n")
    assert path.stat().st_size < 1000
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
        "from egovsim.cli import main; sys.exit(main(['validate', sys.argv[1]]))"
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.count("\n") == 1 and "aliases expand to more than 100,000 nodes" in res.stderr, res.stderr


def test_error_messages_show_at_most_80_characters_of_a_value():
    from egovsim.config.schema import convert
    from egovsim.errors import clipped

    tree = ["x"] * 9
    for _ in range(8):
        tree = [tree] * 9  # 9**9 leaves, 81 lists
    for value in (tree, "y" * 10**6, 10**5000, {"k" * 1000: tree}, b"\0" * 10**6):
        assert len(clipped(value)) <= 80
    with pytest.raises(InputError) as err:
        convert(str, tree, "description", "bad.yaml")
    assert len(str(err.value)) < 200 and str(err.value).startswith("bad.yaml: description: expected text, got [[[")
    long = InputError("bad.yaml", "k" * 10_000, "a\nb\u2028c" + "m" * 10_000)
    assert len(str(long)) < 1000 and len(str(long).splitlines()) == 1


def test_bad_command_line_gives_one_line_error_and_exit_2(tmp_path, capsys):
    """Bad arguments and an --out that cannot hold results fail at once, on one line, before any run."""
    scenario = tmp_path / "ok.yaml"
    scenario.write_text(MINIMAL)
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    cases = [
        (["run", str(scenario), "--seed", "abc"], "--seed"),
        (["run", str(scenario), "--scale", "-1"], "--scale"),
        (["run", str(scenario), "--out", str(a_file)], "taken"),
        (["run", str(scenario), "--out", str(a_file / "sub")], "taken"),
        (["run", str(tmp_path / "absent.yaml")], "absent.yaml"),
        (["frobnicate"], "frobnicate"),
        (["run", str(tmp_path)], "is a folder"),
        (["run", "/dev/null"], "not a regular file"),
        (["run", str(scenario), "--seed", str(2**64)], "--seed"),
        (["run", str(scenario), "--set", "description=" + "[" * 20_000], "--set description"),
        (["run", str(scenario), "--set", "description=" + alias_tree(6, 10)], "--set description"),
        (["run", str(scenario), "--set", "provinces.a.population=1.0e+308"], "provinces.a.population"),
        (["run", str(scenario), "--set", "name=../../x"], "name"),
        (["run", str(scenario), "--set", "provinces.b c.name=x"], "provinces"),
    ]
    for argv, field in cases:
        try:
            status = main([*argv, "--quiet"] if argv[0] == "run" else argv)
        except SystemExit as exc:  # argparse's own errors end the process with its status
            status = exc.code
        err = capsys.readouterr().err.strip()
        assert status == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert field in err, err
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize("command", ["run", "sweep", "compare", "serve"])
def test_an_unknown_engine_is_one_line_before_any_run(tmp_path, monkeypatch, capsys, command):
    """EGOVSIM_ENGINE names the implementation of the citizen rules; a typo must not become a traceback, or
    a failure of every run in the workers."""
    scenario = tmp_path / "ok.yaml"
    scenario.write_text(MINIMAL)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("scenario: ok.yaml\ndesign: {grid: {citizens.q0: [0.2]}}\n")
    argv = {
        "run": ["run", str(scenario)],
        "sweep": ["sweep", str(experiment)],
        "compare": ["compare", str(scenario), str(scenario)],
        "serve": ["serve", str(scenario)],
    }[command]
    monkeypatch.setenv("EGOVSIM_ENGINE", "bogus")
    monkeypatch.setattr("os.execve", lambda *a: pytest.fail("the server started"))
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--out", str(tmp_path / "out")] if command != "serve" else argv) == 2
    err = capsys.readouterr().err
    assert err == "egovsim: error: EGOVSIM_ENGINE: unknown engine 'bogus': expected one of numba, plain\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "ok.yaml"]


# The example of the YAML 1.1 merge key's specification (https://yaml.org/type/merge.html): all four maps are
# equal. It pins the meaning of `<<` in scenario files whatever PyYAML's version does (6.0.4 differs from 6.0.3).
YAML_MERGE_SPEC_EXAMPLE = """
- &CENTER { x: 1, y: 2 }
- &LEFT { x: 0, y: 2 }
- &BIG { r: 10 }
- &SMALL { r: 1 }
- x: 1
  y: 2
  r: 10
  label: center/big
- << : *CENTER
  r: 10
  label: center/big
- << : [ *CENTER, *BIG ]
  label: center/big
- << : [ *BIG, *LEFT, *SMALL ]
  x: 1
  label: center/big
"""


def test_yaml_merge_keys_follow_the_yaml_1_1_specification():
    from egovsim.config.yamlfile import load_yaml_text

    maps = load_yaml_text(YAML_MERGE_SPEC_EXAMPLE)[4:]
    assert maps == [{"x": 1, "y": 2, "r": 10, "label": "center/big"}] * 4
    # nested merges compose: the inner mapping's own value beats what it merged, at every depth
    nested = load_yaml_text("b: &b {x: 1, z: 0}\na: &a {<<: *b, x: 5}\nc: &c {<<: *a, z: 3}\nuse: {<<: *c, y: 2}\n")
    assert nested["use"] == {"x": 5, "y": 2, "z": 3}
    assert nested["a"] == {"x": 5, "z": 0} and nested["b"] == {"x": 1, "z": 0}


@pytest.mark.parametrize(
    "text, problem",
    [("a: &a {x: 1}\nb: {<<: [*a, 3]}\n", "<< takes a mapping"), ("a: {<<: 3}\n", "<< takes a mapping")],
)
def test_yaml_merge_of_a_non_mapping_is_one_line(tmp_path, text, problem):
    from egovsim.config.yamlfile import read_yaml

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        read_yaml(path)


def test_yaml_keys_given_twice_are_errors_but_merge_overrides_are_not(tmp_path):
    from egovsim.config.yamlfile import read_yaml

    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {x: 1, z: 0}\ndefs: {inner: {a: &a {<<: *b, x: 5}}}\nuse: {<<: *a, y: 2}\n")
    assert read_yaml(merged)["use"] == {"x": 5, "y": 2, "z": 0}
    for text, key in [("values:\n  2021: 1\n  2021: 2\n", "2021"), ("a: 1\nb: {c: 1}\na: 2\n", "a")]:
        path = tmp_path / "dup.yaml"
        path.write_text(text)
        with pytest.raises(InputError, match=f"duplicate key '{key}'"):
            read_yaml(path)
    with pytest.raises(InputError, match="duplicate key"):
        load_scenario(ROOT / "scenarios" / "hue.yaml", ["citizens={p0: 0.01, p0: 0.02}"])


def test_non_utf8_file_is_reported_not_raised(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("name: tiny", "name: Đắk Lắk").encode("utf-16"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "latin1.yaml" in err, err


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL + "citizens: {q00: 0.3}\n")
    with pytest.raises(InputError, match=r"citizens.q00: unknown key \(did you mean 'q0'\?\)"):
        load_scenario(path)


def test_missing_file_and_circular_extends(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: file not found" in capsys.readouterr().err
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert main(["validate", str(tmp_path / "a.yaml")]) == 2
    assert "circular extends" in capsys.readouterr().err


def test_a_file_named_many_times_in_an_extends_chain_is_read_once(tmp_path, monkeypatch):
    """Eight files, each extending the next ten times over: 10^7 readings if every mention were read again (hours),
    one reading of each chain file here; the result is the plain merge, and a cycle through a file read before is
    still one."""
    from egovsim.config import yamlfile

    for i in range(7):
        (tmp_path / f"l{i}.yaml").write_text(f"extends: [{', '.join([f'l{i + 1}.yaml'] * 10)}]\nname: l{i}\n")
    (tmp_path / "l7.yaml").write_text(MINIMAL)
    reads = []
    real = yamlfile.read_yaml
    monkeypatch.setattr(yamlfile, "read_yaml", lambda path: reads.append(path) or real(path))
    sc = load_scenario(tmp_path / "l0.yaml")
    assert sc.name == "l0" and sc.provinces == load_scenario(tmp_path / "l7.yaml").provinces
    assert (
        len(set(reads)) == 8 and max(reads.count(r) for r in reads) <= 2
    )  # the top file is read again for its own keys
    (tmp_path / "l7.yaml").write_text("extends: l3.yaml\n")  # l3 -> ... -> l7 -> l3
    with pytest.raises(InputError, match="circular extends"):
        load_scenario(tmp_path / "l0.yaml")


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "base.yaml").write_text(MINIMAL + "report_years: [2010, 2011]\ncitizens: {p0: 0.02, q0: 0.4}\n")
    (tmp_path / "child.yaml").write_text(
        textwrap.dedent("""\
        extends: base.yaml
        name: child
        report_years: [2012]
        citizens: {q0: 0.1}
        provinces:
          a: {policy: {training: 2.0}}
          b: {name: B, population: 100, urban_share: 0.5, minority_share: 0.0, scale: 1.0}
        """)
    )
    sc = load_scenario(tmp_path / "child.yaml")
    assert sc.name == "child" and sc.report_years == [2012]
    assert (sc.citizens.p0, sc.citizens.q0) == (0.02, 0.1)  # mapping merged key by key
    assert sc.provinces["a"].population == 5000 and sc.provinces["a"].policy.training == 2.0
    assert list(sc.provinces) == ["a", "b"]


def test_three_provinces_extends_the_three_province_files():
    three = load_scenario(SCENARIOS / "three_provinces.yaml")
    for key in ("hue", "daklak", "bentre"):
        alone = load_scenario(SCENARIOS / f"{key}.yaml")
        assert three.provinces[key] == alone.provinces[key]
    assert three.central == load_scenario(SCENARIOS / "hue.yaml").central


def test_set_overrides_any_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL)
    sc = load_scenario(
        path,
        [
            "citizens.q0=0.45",
            "provinces.a.policy.software_strategy=local",
            "report_years=[2011]",
            "network.kind=well_mixed",
        ],
    )
    assert sc.citizens.q0 == 0.45 and sc.provinces["a"].policy.software_strategy == "local"
    assert sc.report_years == [2011] and sc.network.kind == "well_mixed"
    with pytest.raises(InputError, match=r"citizens.q0: must be >= 0.0"):
        load_scenario(path, ["citizens.q0=-1"])
    with pytest.raises(InputError, match=r"expected key\.path=value"):
        load_scenario(path, ["citizens.q0"])
    with pytest.raises(InputError, match="unknown key"):
        load_scenario(path, ["citizens.nope=1"])


def test_resolved_scenario_round_trips():
    sc = load_scenario(SCENARIOS / "three_provinces.yaml")
    again = scenario_from_dict(yaml.safe_load(yaml.safe_dump(sc.to_dict())))
    assert again == sc


def test_defaults_live_in_one_place():
    """A scenario that names only the required keys gets every other value from the schema's defaults."""
    sc = scenario_from_dict(yaml.safe_load(MINIMAL))
    assert sc.citizens == Scenario.__dataclass_fields__["citizens"].default_factory()
    assert sc.provinces["a"].policy.software_strategy == "fragmented"


def test_with_values_validates():
    sc = load_scenario(SCENARIOS / "hue.yaml")
    assert with_values(sc, {"provinces.hue.leader.will_effect": 0.9}).provinces["hue"].leader.will_effect == 0.9
    with pytest.raises(InputError, match=r"will_effect: must be <= 2\.5"):
        with_values(sc, {"provinces.hue.leader.will_effect": 3.0})


def test_every_shipped_scenario_validates():
    files = [p for p in SCENARIOS.rglob("*.yaml") if "common" not in p.parts]
    assert len(files) >= 9
    for path in files:
        load_scenario(path)


def test_province_structure_matches_the_observations():
    """Population, urban share, minority share and GRDP per capita come from calibration/observations.yaml, or are marked as
    priors where no source gives them; each has its source written in the scenario."""
    obs = yaml.safe_load((ROOT / "calibration" / "observations.yaml").read_text())["provinces"]
    sc = load_scenario(SCENARIOS / "three_provinces.yaml")
    keys = {"population": "population", "urban_share": "urban_share", "minority_share": "ethnic_minority_share"}
    keys["grdp_per_capita"] = "grdp_per_capita_2010_prices_mVND"
    for key, prov in sc.provinces.items():
        for field, obs_key in keys.items():
            source = prov.sources.get(field, "")
            assert source, f"{key}.{field} has no source"
            observed = obs[key].get(obs_key)
            value = getattr(prov, field)
            if source.startswith("prior"):
                assert observed is None, f"{key}.{field} is marked prior but observations.yaml has {observed}"
            else:
                assert observed is not None
                values = list(observed.values()) if isinstance(observed, dict) else [observed]
                assert any(abs(value - v) < 1e-9 for v in values), f"{key}.{field}={value} not in {values}"


# What a province file may say about a province (docs/design-model-v2.md 3.4): sourced structure, modelling
# choices of the run, the fitted will effect, levers at their reference values and dated events of named kinds.
STRUCTURE = ("population", "urban_share", "minority_share", "grdp_per_capita")
PROVINCE_KEYS = {*STRUCTURE, "name", "scale", "civil_servants", "leader", "policy", "events", "sources", "budget"}


def observation_at(observations: dict, path: str):
    """The entry of observations.yaml a dotted path names (list items by their `id`), or KeyError."""
    node = observations
    for part in path.split("."):
        if isinstance(node, list):
            node = next(item for item in node if isinstance(item, dict) and item.get("id") == part)
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


def cited_paths(source: str) -> list[str]:
    """The observations.yaml paths a source text cites ('calibration/observations.yaml a.b.c')."""
    return [m.rstrip(".,;)") for m in re.findall(r"observations\.yaml ([a-z_][\w.]*)", source)]


def province_files() -> list:
    """Province scenarios and calibrated scenarios (not what-ifs, validation or the national frame)."""
    return sorted([*SCENARIOS.glob("*.yaml"), *(SCENARIOS / "calibrated").glob("*.yaml")])


@pytest.mark.parametrize("path", province_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_unsourced_province_values(path):
    """Every province key is structural with a source naming an existing observations.yaml entry, a modelling
    choice (scale, civil servants simulated), the fitted will effect, a lever at its reference value (the
    software strategy with a source), or an event with a kind, a source and no number."""
    observations = yaml.safe_load((ROOT / "calibration" / "observations.yaml").read_text())
    reference = Policy()
    provinces = (yaml.safe_load(path.read_text()) or {}).get("provinces") or {}
    for key, prov in provinces.items():
        where = f"{path.name}: provinces.{key}"
        assert set(prov) <= PROVINCE_KEYS, f"{where}: {set(prov) - PROVINCE_KEYS}"
        assert prov.get("budget", "baseline") == "baseline", f"{where}.budget"  # a figure is a what-if's
        sources = prov.get("sources") or {}
        for field in STRUCTURE:
            if field not in prov:
                continue
            cited = cited_paths(sources.get(field, ""))
            assert cited, f"{where}.{field} cites no observations.yaml entry"
            for cited_path in cited:
                observation_at(observations, cited_path)  # KeyError: the cited entry does not exist
        assert set(prov.get("leader") or {}) <= {"will_effect", "outside_peers"}, where
        peers = (prov.get("leader") or {}).get("outside_peers")
        if peers is not None:  # derived from the fit, never set by hand: only a province's own calibrated file
            assert len(provinces) == 1 and "parameters" in yaml.safe_load(path.read_text()), where
            assert peers["source"].startswith("egovsim calibrate: median of"), where
        for lever, value in (prov.get("policy") or {}).items():
            if lever == "software_strategy":
                assert sources.get("software_strategy"), f"{where}: software_strategy has no source"
            else:
                assert value == getattr(reference, lever), f"{where}.policy.{lever}={value} is not the reference"
        for i, event in enumerate(prov.get("events") or []):
            assert event.get("kind") and event.get("source"), f"{where}.events[{i}] needs a kind and a source"
            numbers = [v for v in [*(event.get("set") or {}).values(), *(event.get("add") or {}).values()]]
            assert all(isinstance(v, str) for v in numbers), f"{where}.events[{i}] carries a number: {numbers}"


def test_the_province_rule_catches_an_unsourced_value(tmp_path):
    """The rule above fails on each kind of value it forbids (it is not satisfied by any file)."""
    good = (SCENARIOS / "bentre.yaml").read_text()
    bad_versions = [
        good.replace("    grdp_per_capita: 23.50", "    grdp_per_capita: 23.50\n    literacy_rural: 0.15"),
        good.replace("software_strategy: platform", "software_strategy: platform\n      training: 0.8"),
        good.replace(
            "        kind: own_action_plan\n", "        kind: own_action_plan\n        add: {monitoring: 0.2}\n"
        ),
        good.replace("provinces.bentre.urban_share;", "provinces.bentre.urban_share_2009;"),
        good.replace("leader: {will_effect: 0.0}", "leader: {will_effect: 0.0, will0: 0.3}"),
    ]
    for i, text in enumerate(bad_versions):
        assert text != good
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises((AssertionError, KeyError)):
            test_no_unsourced_province_values(path)


def test_events_of_a_kind_take_the_shared_size():
    """An event names a kind; what it changes is the kind's shared size in event_effects, the same in every
    province, so moving that size moves the lever wherever the kind occurs."""
    from egovsim.model.model import EGovModel

    sc = with_values(
        load_scenario(SCENARIOS / "three_provinces.yaml", scale=0.0005),
        {"end_year": 2022, "event_effects.operations_centre": 0.3, "event_effects.feedback_app": 0.85},
    )
    model = EGovModel(sc, seed=1, collect=False)
    model.run()
    hue, daklak, bentre = model.leaders
    assert hue.policy.monitoring == pytest.approx(0.5 + 0.3)  # HueIOC, July 2019
    assert hue.policy.feedback == 0.85 and hue.policy.own_plan == 1.0  # Hue-S 2019; own plan from 2006
    assert daklak.policy.monitoring == pytest.approx(0.5 + sc.event_effects.performance_scoring)  # 2021
    assert daklak.policy.own_plan == 1.0 and bentre.policy.own_plan == 1.0  # 2019 and 2020 plans
    assert bentre.policy.monitoring == 0.5 and bentre.policy.feedback == 0.0  # no event of those kinds


# ---- --set traps and validate (issue 18) ------------------------------------------------------------------

HUE = SCENARIOS / "hue.yaml"


def test_set_of_an_unknown_province_is_a_did_you_mean(capsys):
    assert main(["validate", str(HUE), "--set", "provinces.hu.policy.training=2"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"egovsim: error: {HUE}: --set provinces.hu.policy.training: unknown province 'hu' (did you mean 'hue'?)\n"
    )
    with pytest.raises(InputError, match=r"unknown province 'quangnam' \(its provinces: hue\)"):
        with_values(load_scenario(HUE), {"provinces.quangnam.policy.training": 2.0})


def test_set_takes_the_wildcard_of_experiment_files():
    from egovsim.config.scenario import apply_values

    by_set = load_scenario(THREE, ["provinces.*.policy.training=2.5", "provinces.hue.policy.training=0.5"])
    assert {k: p.policy.training for k, p in by_set.provinces.items()} == {"hue": 0.5, "daklak": 2.5, "bentre": 2.5}
    as_in_a_file = apply_values(load_scenario(THREE), {"provinces.*.policy.training": 2.5})
    by_wildcard = load_scenario(THREE, ["provinces.*.policy.training=2.5"]).to_dict()
    assert by_wildcard.pop("parameters")["set"] == ["provinces.*.policy.training=2.5"]  # reports name the --set
    expected = as_in_a_file.to_dict()
    expected.pop("parameters")
    assert by_wildcard == expected
    with pytest.raises(InputError, match=r"policy\.trainin: unknown key \(did you mean 'training'\?\)"):
        load_scenario(THREE, ["provinces.*.policy.trainin=2"])


@pytest.mark.parametrize(
    "first, then",
    [
        ("citizens.q0=0.3", " citizens.q0 =0.4"),  # the same key
        ("provinces.hue.policy.training=0.5", "provinces.*.policy.training=2"),  # a wildcard over it
        ("citizens.q0=0.3", "citizens={q0: 0.4}"),  # a section that holds it
    ],
)
def test_a_value_a_later_one_replaces_is_refused_not_dropped_silently(capsys, first, then):
    """The last --set won without a word and the reports listed both values."""
    assert main(["validate", str(THREE), "--set", first, "--set", then]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"egovsim: error: {THREE}: --set {first.partition('=')[0]}: '{first}' is replaced by ")
    assert err.count("\n") == 1


def test_a_province_s_own_value_after_a_wildcard_is_its_exception():
    sc = load_scenario(THREE, ["provinces.*.policy.training=2", "provinces.hue.policy.training=0.5"])
    assert {k: p.policy.training for k, p in sc.provinces.items()} == {"hue": 0.5, "daklak": 2.0, "bentre": 2.0}


def test_a_replaced_value_in_an_analysis_file_s_set_names_that_file(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"scenario: {SCENARIOS / 'daklak.yaml'}\nscale: 0.001\nset: [end_year=2010, end_year=2011]\n"
        "design: {grid: {citizens.q0: [0.2, 0.3]}}\noutcomes: [adopted_share@end]\n",
        encoding="utf-8",
    )
    assert main(["validate", str(exp)]) == 2
    assert capsys.readouterr().err.startswith(f"egovsim: error: {exp}: set[0]: 'end_year=2010' is replaced by")


@pytest.mark.parametrize("start", [2020, 2000])
def test_a_start_other_than_the_initial_state_year_is_refused(capsys, start):
    assert main(["validate", str(HUE), "--set", f"start_year={start}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{HUE}: start_year: {start}: the initial values describe 1 January 2006" in err
    assert "start in 2006" in err
    synthetic = scenario_from_dict(yaml.safe_load(MINIMAL))  # no initial_state_year: starts when it says
    assert synthetic.start_year == 2010 and synthetic.initial_state_year is None


def test_report_years_outside_the_horizon_are_a_visible_warning(tmp_path, capsys):
    assert main(["validate", str(HUE), "--set", "end_year=2018"]) == 0
    warning = f"egovsim: warning: {HUE}: report_years: 2019, 2022 outside the horizon 2006-2018"
    assert capsys.readouterr().err.startswith(warning)
    out = tmp_path / "run"
    assert main(["run", str(HUE), "--scale", "0.001", "--set", "end_year=2018", "--no-plots", "--out", str(out)]) == 0
    assert warning in capsys.readouterr().err
    assert set(json.loads((out / "summary.json").read_text())["provinces"]["hue"]) == {"2017", "2018", "end"}


def test_events_the_horizon_never_reaches_are_a_visible_warning(tmp_path, capsys):
    """Hue's file dates the national portal 2019.94 and Hue-S 2019.5 (observations.yaml); ending in 2019, the run
    reaches both (an event fires in the step it falls in) and none of the four central events of 2020-2024."""
    assert main(["validate", str(HUE), "--set", "end_year=2019"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4 events dated after the horizon 2006-2019 never take effect" in err
    assert "(the first: central: 'Decree 45/2020/ND-CP" in err
    assert main(["validate", str(HUE)]) == 0 and capsys.readouterr().err == ""  # the full horizon reaches all
    early = tmp_path / "early.yaml"
    early.write_text(
        f"extends: {HUE}\nprovinces: {{hue: {{events: [{{date: 1950, name: old, set: {{training: 2}}}}]}}}}\n"
    )
    assert main(["validate", str(early)]) == 0 and capsys.readouterr().err == ""  # before the start: fires at once


def test_validate_reports_every_error_of_every_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MINIMAL.replace("population: 5000", "population: -5").replace("urban_share: 0.3", "urban_share: 3")
        + "seeed: 1\nreport_years: [2011, x]\n"
    )
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"scenario: {HUE}\ndesign: {{points: [{{citizens.q0: 0.2}}]}}\nreplicates: 0\nfoo: 1\n")
    assert main(["validate", str(bad), str(HUE), str(exp)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{HUE}: ok (hue: hue; 2006-2030; 11,543 simulated citizens)\n"
    fields = [line.split(": ")[3] for line in err.splitlines()]
    assert all(line.startswith("egovsim: error: ") for line in err.splitlines())
    expected = ["seeed", "provinces.a.population", "provinces.a.urban_share", "report_years[1]", "foo", "replicates"]
    assert sorted(fields) == sorted(expected), err  # every error of both bad files, after the good one
    assert err.count(str(bad)) == 4 and err.count(str(exp)) == 2


def test_validate_recognises_experiment_study_and_calibration_files(capsys):
    files = [ROOT / "experiments" / "example_sweep.yaml", ROOT / "experiments" / "morris.yaml"]
    files.append(ROOT / "calibration" / "config.yaml")
    assert main(["validate", *map(str, files)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{files[0]}: ok (experiment example_sweep: 6 points x 2 replicates")
    assert out[1].startswith(f"{files[1]}: ok (sensitivity study morris: morris, 12 parameters")
    assert out[2].startswith(f"{files[2]}: ok (calibration config:")


def test_validate_of_every_shipped_scenario_goes_past_the_national_fragment(capsys):
    files = sorted(SCENARIOS.glob("*/*.yaml"))  # what `validate scenarios/*/*.yaml` is given
    assert any(f.name == "national.yaml" for f in files)
    assert main(["validate", *map(str, files)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(files)
    fragment = [line for line in out if "national.yaml" in line]
    assert fragment == [
        f"{SCENARIOS / 'common' / 'national.yaml'}: a fragment (no provinces) for scenario files to extend; it cannot run by itself"
    ]
    assert all(": ok (" in line for line in out if line not in fragment)


def test_numbers_written_with_an_exponent_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-3 as text; a scenario means a number, in a file or in --set."""
    assert load_scenario(HUE, ["citizens.p0=1e-3"]).citizens.p0 == 0.001
    path = tmp_path / "exp.yaml"
    path.write_text(f"extends: {HUE}\ncitizens: {{p0: 5E-3}}\n", encoding="utf-8")
    assert load_scenario(path).citizens.p0 == 0.005
    with pytest.raises(InputError, match=r"citizens\.p0: expected a number"):
        load_scenario(HUE, ["citizens.p0=1e-3x"])


def test_validate_recognises_the_observations_file_rather_than_listing_bogus_errors(capsys):
    assert main(["validate", str(ROOT / "calibration" / "observations.yaml")]) == 0
    out = capsys.readouterr()
    assert "not checked: sourced observations" in out.out + out.err and "unknown key" not in out.out + out.err
