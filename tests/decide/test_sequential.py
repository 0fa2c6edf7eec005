"""The sequential rule: its boundaries against published values, its one-look case against the fixed-n tests
of tasks/common/stats.py, and its error rates and seeds used by simulating the rule itself
(tasks.decide.sequential.run)."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from benchmarks.sequential import DEFAULT, DEFAULT_RUN_DIFFERENCES, SD, allowed, simulate
from tasks.common.stats import paired_difference, tost, verdict_kind
from tasks.decide.sequential import OUTCOMES, Design, decisions, history, look, markdown, run, z_boundaries
from tests.helpers import PROJECT

BENCHMARK = PROJECT / "benchmarks" / "results" / "sequential.json"
EXPERIMENTS = 20_000  # per scenario; the benchmark runs 100,000


def equally_spaced(looks: int) -> tuple[float, ...]:
    return tuple((k + 1) / looks for k in range(looks))


@pytest.mark.parametrize(
    ("spending", "published"),
    [
        # Two-sided alpha 0.05 (0.025 a side), O'Brien-Fleming-type Lan-DeMets spending, 5 equally spaced looks:
        # 4.877, 3.357, 2.680, 2.290, 2.031 (Reboussin, DeMets, Kim & Lan 2000, Controlled Clinical Trials
        # 21:190-207, the example the R package ldbounds runs as ldBounds(5)).
        ("obrien-fleming", (4.877, 3.357, 2.680, 2.290, 2.031)),
        # The same with 3 looks: 3.710, 2.511, 1.993 (rpact's getDesignGroupSequential(typeOfDesign = "asOF"),
        # one-sided 0.025, its default three looks).
        ("obrien-fleming", (3.710, 2.511, 1.993)),
        # With 2 looks: 2.963, 1.969.
        ("obrien-fleming", (2.963, 1.969)),
        # Pocock-type Lan-DeMets spending, two-sided 0.05, 5 looks: 2.438, 2.427, 2.410, 2.397, 2.386
        # (ldBounds(5, iuse = 2)).
        ("pocock", (2.438, 2.427, 2.410, 2.397, 2.386)),
    ],
)
def test_normal_case_boundaries_match_the_published_ones(spending, published):
    fractions = equally_spaced(len(published))
    assert z_boundaries(fractions, 0.025, spending, True) == pytest.approx(published, abs=1e-3)
    # At these levels the lower boundary is almost never crossed first: one-sided boundaries agree to 3 decimals.
    assert z_boundaries(fractions, 0.025, spending, False) == pytest.approx(published, abs=1e-3)


def test_one_look_spends_alpha_at_the_fixed_n_quantile():
    assert z_boundaries((1.0,), 0.025, "obrien-fleming", True) == pytest.approx((stats.norm.isf(0.025),))
    assert z_boundaries((1.0,), 0.05, "pocock", False) == pytest.approx((stats.norm.isf(0.05),))


CASES = [  # (treated, control) test accuracies over seeds: every verdict of the fixed-n tests appears
    ([0.70, 0.68, 0.71], [0.62, 0.61, 0.66]),  # improves
    ([0.60, 0.58, 0.61, 0.57], [0.66, 0.63, 0.65, 0.64]),  # hurts
    ([0.801, 0.803, 0.799, 0.800, 0.802, 0.801], [0.800, 0.801, 0.801, 0.799, 0.800, 0.802]),  # equivalent
    ([0.86, 0.86, 0.82], [0.83, 0.84, 0.83]),  # inconclusive
    ([0.90, 0.82, 0.87, 0.80, 0.85], [0.84, 0.85, 0.83, 0.86, 0.82]),  # inconclusive
]


@pytest.mark.parametrize(("treated", "control"), CASES)
@pytest.mark.parametrize("comparisons", [1, 2])
def test_one_look_is_the_fixed_n_paired_t_test_and_tost(treated, control, comparisons):
    differences = np.subtract(treated, control)
    n, alpha, margin = len(differences), 0.05, 0.01
    design = Design((n,), alpha, margin, comparisons)
    result = look(design, 1, differences)
    p_value = stats.ttest_rel(treated, control).pvalue
    tost_p = ttost_paired(np.asarray(treated), np.asarray(control), -margin, margin)[0]
    assert result.p_value == pytest.approx(p_value)
    assert result.tost_p == pytest.approx(tost_p)
    assert result.boundary.difference_level == pytest.approx(alpha / comparisons)  # Bonferroni
    assert result.boundary.equivalence_level == pytest.approx(alpha)
    half = stats.t.isf(alpha / comparisons / 2, n - 1) * stats.sem(differences)
    assert result.interval == pytest.approx((differences.mean() - half, differences.mean() + half))
    # The verdict tasks/common/stats.py gives at these seeds, its level the Bonferroni level
    # (Holm's for the smallest p).
    expected = verdict_kind(
        paired_difference(treated, control, 1 - alpha / comparisons),
        tost(treated, control, margin, alpha),
        1 - alpha / comparisons,
        margin,
    )
    assert result.decision == expected
    if comparisons == 1:
        assert expected == (
            "improves"
            if p_value < alpha and differences.mean() > 0
            else "hurts"
            if p_value < alpha
            else "equivalent"
            if tost_p < alpha
            else "inconclusive"
        )


def test_equal_differences_decide_on_the_mean_alone_as_the_fixed_n_tests_do():
    design = Design((3,), 0.05, 0.01)
    assert look(design, 1, [0.02, 0.02, 0.02]).decision == "improves"
    assert look(design, 1, [0.0, 0.0, 0.0]).decision == "equivalent"
    assert look(design, 1, [-0.01, -0.01, -0.01]).decision == "hurts"  # any mean but 0 is told from 0
    assert (
        look(design, 1, [0.0, 0.0, 0.0]).tost_p == 0.0 and look(design, 1, [0.01] * 3).tost_p == 1.0
    )  # on the margin: not inside


def test_the_default_plan_and_its_boundaries():
    assert DEFAULT.looks == (3, 6, 9, 12, 15)
    assert Design.plan(3, 4, 12).looks == (3, 7, 11, 12)  # the last round is shorter
    rows = DEFAULT.boundaries
    # The t-boundaries are above the normal case's at every look (heavier tails), most with fewest seeds, and
    # shrink as seeds come: the last look is held to nearly the fixed-n level, the first to almost nothing.
    assert all(row.difference_t > row.difference_z and row.equivalence_t > row.equivalence_z for row in rows)
    assert [row.difference_t for row in rows] == sorted((row.difference_t for row in rows), reverse=True)
    assert rows[0].difference_level < 1e-5 and 0.035 < rows[-1].difference_level < 0.05
    split = Design.plan(comparisons=3)
    assert all(a.difference_t > b.difference_t for a, b in zip(split.boundaries, rows))  # Bonferroni asks more
    assert [a.equivalence_t for a in split.boundaries] == [
        b.equivalence_t for b in rows
    ]  # equivalence is per comparison


def test_a_look_reports_its_numbers_and_the_history_stops_at_the_decision():
    rng = np.random.default_rng(3)
    differences = rng.normal(0.06, 0.01, size=15)  # a 6-point gain, seed to seed within a point: decided early
    looks = history(DEFAULT, differences)
    assert [item.decision for item in looks][-1] == "improves" and len(looks) < 5
    assert all(item.decision == "continue" for item in looks[:-1])
    final = looks[-1]
    assert final.seeds == DEFAULT.looks[final.look - 1] and final.mean == pytest.approx(
        differences[: final.seeds].mean()
    )
    assert final.interval[0] > 0 and final.p_value < final.boundary.difference_level
    table = markdown(DEFAULT, looks)
    assert table.count("\n| ") == 1 + len(DEFAULT.looks)  # the header and one row per planned look
    assert "| improves |" in table and "3, 6, 9, 12, 15 seeds" in table and "O'Brien-Fleming" in table
    undecided = history(DEFAULT, rng.normal(0.0, SD, size=15))
    assert undecided[-1].decision in ("inconclusive", "improves", "hurts", "equivalent")
    assert history(DEFAULT, differences[:7])[-1].seeds <= 6  # only the looks the seeds given reach


def test_the_vectorised_rule_and_one_look_at_a_time_agree():
    rng = np.random.default_rng(4)
    experiments = rng.normal(rng.uniform(-0.03, 0.03, size=(150, 1)), SD, size=(150, 15))
    outcomes = run(DEFAULT, experiments)
    for row, code, seeds in zip(experiments, outcomes.codes, outcomes.seeds):
        last = history(DEFAULT, row)[-1]
        assert (last.decision, last.seeds) == (OUTCOMES[code], seeds)
    assert len(set(outcomes.codes.tolist())) >= 3  # the draws reach several verdicts


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Design((1, 3)), "the first at least 2"),
        (lambda: Design((3, 3)), "must be increasing"),
        (lambda: Design((3,), alpha=0.7), "alpha 0.7 must lie between 0 and 0.5"),
        (lambda: Design((3,), margin=0), "margin 0 must be above 0"),
        (lambda: Design((3,), spending="linear"), "unknown spending function 'linear'"),
        (lambda: Design.plan(start=1), "start >= 2"),
        (lambda: look(DEFAULT, 2, [0.01] * 5), "look 2 of this design is at 6 seeds, but 5"),
        (lambda: look(DEFAULT, 6, [0.01] * 15), "look 6 is not in this design"),
        (lambda: history(DEFAULT, [0.01] * 16), "more than this design's last look"),
        (lambda: decisions(DEFAULT, 1, np.zeros((4, 5))), "look 1 of this design is at 3 seeds"),
    ],
)
def test_mistakes_get_one_clear_sentence(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.fixture(scope="module")
def simulation() -> dict:
    """The benchmark's simulation at 20,000 experiments a scenario, seeded apart from it and from the boundaries'."""
    return simulate(EXPERIMENTS, seed=1)


def test_the_simulated_spread_is_the_default_runs():
    # The default run's augmented-vs-repeated differences per seed were +0.2, -1.4 and -5.3 points.
    assert DEFAULT_RUN_DIFFERENCES == (0.2, -1.4, -5.3)
    assert 100 * SD == pytest.approx(2.83, abs=0.005)


def test_no_effect_gives_a_false_difference_at_most_alpha(simulation):
    # At most alpha within simulation error: under the 99th percentile of Binomial(20,000, 0.05) as a rate (0.0537).
    assert simulation["false_difference_under_no_effect"] <= allowed(0.05, EXPERIMENTS)
    # ...and spent, not wasted: the rule is not far more conservative than it claims.
    assert simulation["false_difference_under_no_effect"] > 0.04


def test_naive_retesting_after_every_seed_inflates_the_false_difference(simulation):
    assert simulation["naive_every_seed_false_difference"] > 0.15  # three times alpha and more
    assert simulation["naive_every_round_false_difference"] > 0.10  # a fixed-n test at each planned look


def test_a_difference_at_the_margin_is_falsely_equivalent_at_most_alpha(simulation):
    assert simulation["false_equivalent_at_margin"] <= allowed(0.05, EXPERIMENTS)
    wide = simulation["wide_margin"]
    # With a margin of one standard deviation the bound is approached, and still held.
    assert 0.025 < wide["margin"]["rates"]["equivalent"] <= allowed(0.05, EXPERIMENTS)
    assert wide["0"]["rates"]["equivalent"] > 0.9  # and equivalence is shown when it holds


def test_seeds_used_agree_with_the_benchmark_figures(simulation):
    default = simulation["default"]
    means = [default[name]["mean_seeds"] for name in ("0", "margin/2", "margin", "2*margin")]
    assert all(3 <= mean <= 15 for mean in means)
    assert means[3] < means[2] < means[0]  # a larger effect stops sooner
    assert (
        default["2*margin"]["rates"]["improves"]
        > default["margin"]["rates"]["improves"]
        > default["0"]["rates"]["improves"]
    )
    published = json.loads(BENCHMARK.read_text())
    assert published["design"]["looks"] == list(DEFAULT.looks) and published["sd_points"] == simulation["sd_points"]
    for name, figures in default.items():
        theirs = published["default"][name]
        error = math.sqrt(figures["sd_seeds"] ** 2 / EXPERIMENTS + theirs["sd_seeds"] ** 2 / published["experiments"])
        assert abs(figures["mean_seeds"] - theirs["mean_seeds"]) < 4 * error + 1e-9, name
        assert figures["p90_seeds"] == theirs["p90_seeds"], name
