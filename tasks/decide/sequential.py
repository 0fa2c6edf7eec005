"""A group-sequential rule for adding seeds until a comparison is decided, with error rates that hold.

Looking at a fixed-n paired t-test after every added seed and stopping when it passes inflates the
chance of a false "improves" or "hurts" far above the stated level. This module fixes that with a
design chosen before the first look and never changed after it.

The design
----------
- **Planned looks** at seed counts n_1 < ... < n_K (by default 3, 6, 9, 12, 15: start at 3 seeds, add
  3 a round, stop at 15). The information at look k is proportional to n_k (paired differences, one
  per seed), so its information fraction is t_k = n_k / n_K.
- **Error spent by a Lan-DeMets spending function** (Lan & DeMets 1983, Biometrika 70:659-663). A
  one-sided test of level a may have spent, by fraction t,
  O'Brien-Fleming type: a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt t)   (the default)
  Pocock type:          a(t) = a ln(1 + (e - 1) t).
  The O'Brien-Fleming type spends almost nothing at the early looks (at 3 of 15 seeds, about one in
  two million for a = 0.025), where three seeds say little anyway, so a large effect still stops
  early while a run that goes to the end is judged at nearly the fixed-n level (|z| > 2.03 instead
  of 1.96 with 5 looks at a two-sided 0.05): little is lost against a fixed design of n_K seeds.
  That is why it is the default.
- **Boundaries for the normal case** by recursive numerical integration (Armitage, McPherson & Rowe
  1969, J. R. Stat. Soc. A 132:235-244; the computation of Reboussin, DeMets, Kim & Lan 2000,
  Controlled Clinical Trials 21:190-207): the score statistic S_k = Z_k sqrt(t_k) has independent
  normal increments, so the sub-density of the paths still running at look k is carried from look
  to look on a Simpson grid, and each look's boundary c_k is the root that makes the crossing
  probability at that look equal to the error to spend there. These are the boundaries published
  for Lan-DeMets designs (tests/decide/test_sequential.py checks them), the limit of the t-boundaries
  below as seeds grow, and the reference the report shows beside them.
- **Boundaries for the t-statistic.** The variance of the per-seed differences is unknown and
  estimated from few seeds. The usual shortcut turns each look's z-boundary into its nominal level
  and holds the paired t-statistic (n_k - 1 degrees of freedom) to the t quantile at that level (the
  "significance level approach", Jennison & Turnbull 2000, Group Sequential Methods with Applications
  to Clinical Trials, section 3.8). It is exact at each look alone, but over the looks it overshoots
  with so few seeds: for the default design 0.0527 instead of 0.05 (a million simulated experiments,
  standard error 0.00016). So augflow spends the same amounts on the t-statistic itself: under no
  difference the t-statistics' joint distribution depends on nothing unknown (they are scale-free),
  so each look's t-boundary is the quantile that makes the experiments still running cross at that
  look with exactly the probability the spending function allots it. The first look's is the t
  quantile (exact); later looks' come from 2^20 simulated experiments drawn once with a fixed seed,
  so they are the same on every machine and run, and the error they spend is within about 0.0002 of
  the plan. tests/decide/test_sequential.py checks the rule on fresh simulations.
- **Both claims.** A difference (improves or hurts) is a symmetric two-sided test of "no difference"
  at level alpha: each side spends a(t) with a = alpha / 2, and a look decides when |t| crosses the
  look's boundary b_k (the paired t-test's p is under the look's nominal level), that is when the
  repeated confidence interval mean +- b_k se excludes 0. Equivalence within +-margin is two
  one-sided sequential tests, of "difference <= -margin" and of "difference >= +margin", each
  spending a(t) with a = alpha (Jennison & Turnbull 2000, chapter 6): a look shows equivalence when
  both reject at that look, that is when the equivalence interval mean +- e_k se (e_k the look's
  one-sided t-boundary) lies strictly inside +-margin. As in tasks/common/stats.py a difference, when
  decided, takes precedence.
- **Stopping.** At each look: stop with "improves" / "hurts" when the difference crosses, else with
  "equivalent" when equivalence is shown, else add the next round of seeds; at the last look an
  undecided comparison is "inconclusive". Stopping earlier without a decision (a time budget spent)
  is always safe: it only takes chances to reject away. Looking more often than planned, or beyond
  n_K, is not.
- **Several comparisons** share alpha by Bonferroni: each comparison's difference test runs at
  alpha / comparisons (two-sided). Holm's step-down, which tasks/common/stats.py uses at a fixed n, gives
  the same level to the most significant comparison and more to the others; Bonferroni is used
  here because it holds whatever look each comparison stops at, with no bookkeeping across them.
  Equivalence is judged per comparison at alpha, as tasks/common/stats.py does, unless `split_equivalence`
  splits it the same way.

With a single look (K = 1) the rule is exactly the fixed-n paired t-test and TOST of tasks/common/stats.py
at the same seeds (with one comparison, or at Bonferroni's alpha / comparisons).

What the error rates mean: under no true difference, the chance that the whole procedure, over
all its looks, ever says "improves" or "hurts" is at most alpha (split over the comparisons); when the
true difference is exactly +-margin (or beyond), the chance it ever says "equivalent" is at most alpha.

Differences are fractions of accuracy (0.01 is one point), treated - control per seed, in the order
the seeds were added. The intervals reported at a stop are repeated confidence intervals
(Jennison & Turnbull 2000, chapter 9): they cover the true difference at every look at once, so they
are wider than a fixed-n interval; the mean at a stop is the plain mean of the seeds so far (an
early stop favours a large one).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

SPENDING = ("obrien-fleming", "pocock")
OUTCOMES = ("continue", "improves", "hurts", "equivalent", "inconclusive")  # the codes decisions() returns index this
CONTINUE, IMPROVES, HURTS, EQUIVALENT, INCONCLUSIVE = range(len(OUTCOMES))
_NODES = 501  # Simpson nodes per look: the boundaries agree with 4001 nodes' to 1e-7
_TAIL = 12.0  # standard deviations at which a one-sided continuation region is cut below (mass beyond ~1e-33)
_CALIBRATION_PATHS, _CHUNK, _CALIBRATION_SEED = (
    1 << 20,
    1 << 18,
    24,
)  # the t-boundaries' simulation: fixed, see t_boundaries


def spent(spending: str, level: float, fraction: float) -> float:
    """The error a one-sided test of `level` has spent by information fraction `fraction` (0 to 1)."""
    if fraction <= 0:
        return 0.0
    if spending == "obrien-fleming":
        return float(2 * stats.norm.sf(stats.norm.isf(level / 2) / math.sqrt(fraction)))
    if spending == "pocock":
        return float(level * math.log(1 + (math.e - 1) * fraction))
    raise ValueError(f"unknown spending function {spending!r}: use one of {', '.join(SPENDING)}")


def _simpson(lower: float, upper: float) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.linspace(lower, upper, _NODES)
    weights = np.ones(_NODES)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return nodes, weights * (upper - lower) / (3 * (_NODES - 1))


def _excess(
    c: float, root: float, nodes: np.ndarray, step: float, mass: np.ndarray, two_sided: bool, target: float
) -> float:
    """The chance of first crossing ±c at this look less the error it may spend: zero at the boundary (brentq's root).

    `mass` weighs the values still running after the earlier looks (at `nodes`), each moved on by a normal `step`."""
    upper = stats.norm.sf((c * root - nodes) / step)
    lower = stats.norm.cdf((-c * root - nodes) / step) if two_sided else 0.0
    return float(mass @ (upper + lower)) - target


@lru_cache(maxsize=64)
def z_boundaries(fractions: tuple[float, ...], level: float, spending: str, two_sided: bool) -> tuple[float, ...]:
    """The z-boundaries c_1..c_K of a group-sequential test under the normal model, `level` per side.

    One-sided: reject at look k when Z_k >= c_k, having continued before. Two-sided (symmetric): when
    |Z_k| >= c_k, each side spending `level` in all. Each look spends spent(t_k) - spent(t_{k-1}) per side.
    """
    sides = 2 if two_sided else 1
    cumulative = [spent(spending, level, fraction) for fraction in fractions]
    increments = np.diff([0.0, *cumulative])
    bounds: list[float] = []
    nodes = weights = density = None
    previous = 0.0
    for fraction, increment in zip(fractions, increments):
        root = math.sqrt(fraction)
        if nodes is None:  # the first look: Z_1 is standard normal
            bound = float(stats.norm.isf(increment)) if increment > 0 else math.inf
        else:
            step = math.sqrt(fraction - previous)
            target = sides * increment
            look = (root, nodes, step, weights * density, two_sided, target)
            bound = math.inf if target <= 1e-15 else float(optimize.brentq(_excess, 0.0, 40.0, args=look, xtol=1e-12))
        bounds.append(bound)
        top = min(bound, _TAIL) * root
        new_nodes, new_weights = _simpson(-top if two_sided else -_TAIL * root, top)
        if nodes is None:
            density = stats.norm.pdf(new_nodes / root) / root
        else:
            kernel = stats.norm.pdf((new_nodes[:, None] - nodes[None, :]) / step) / step
            density = kernel @ (weights * density)
        nodes, weights, previous = new_nodes, new_weights, fraction
    return tuple(bounds)


@dataclass(frozen=True)
class Boundary:
    """What a look must show, planned before the first: for the difference and for equivalence, the
    boundary of the paired t-statistic (n_k - 1 degrees of freedom), the nominal level it amounts to,
    and, for reference, the boundary of the normal (known-variance) case."""

    look: int  # 1-based
    seeds: int
    fraction: float  # information fraction n_k / n_K
    difference_z: float  # the normal case's |z| boundary (z_boundaries)
    difference_level: float  # nominal two-sided level: a look decides when the paired t-test's p is under it
    difference_t: float  # |t| must exceed this
    equivalence_z: float
    equivalence_level: float  # nominal one-sided level of each of the two one-sided tests
    equivalence_t: float  # each one-sided t-statistic must exceed this


@dataclass(frozen=True)
class Design:
    """A sequential design, fixed before the first look.

    looks: the seed counts at which the rule looks, increasing, the first at least 2. alpha: the
    two-sided level of the difference test (and of each one-sided equivalence test), shared over
    `comparisons` by Bonferroni. margin: the equivalence margin as a fraction (0.01 is one point).
    spending: "obrien-fleming" (default) or "pocock", Lan-DeMets types.
    """

    looks: tuple[int, ...]
    alpha: float = 0.05
    margin: float = 0.01
    comparisons: int = 1
    spending: str = "obrien-fleming"
    split_equivalence: bool = False

    def __post_init__(self) -> None:
        looks = tuple(int(n) for n in self.looks)
        object.__setattr__(self, "looks", looks)
        if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:])):
            raise ValueError(
                f"the looks {list(looks)} must be increasing seed counts, the first at least 2 "
                "(one seed gives no interval)"
            )
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha {self.alpha} must lie between 0 and 0.5 (0.05 for 95% confidence)")
        if not self.margin > 0:
            raise ValueError(f"the equivalence margin {self.margin} must be above 0 (a fraction: 0.01 is one point)")
        if int(self.comparisons) != self.comparisons or self.comparisons < 1:
            raise ValueError(f"comparisons {self.comparisons} must be a whole number of at least 1")
        if self.spending not in SPENDING:
            raise ValueError(f"unknown spending function {self.spending!r}: use one of {', '.join(SPENDING)}")

    @classmethod
    def plan(
        cls,
        start: int = 3,
        round_seeds: int = 3,
        max_seeds: int = 15,
        alpha: float = 0.05,
        margin: float = 0.01,
        comparisons: int = 1,
        spending: str = "obrien-fleming",
        split_equivalence: bool = False,
    ) -> "Design":
        """Looks at start, start + round_seeds, ... and max_seeds (the last round may be shorter)."""
        if start < 2 or round_seeds < 1 or max_seeds < start:
            raise ValueError(
                "a plan needs start >= 2 seeds, round_seeds >= 1 and max_seeds >= start "
                f"(got {start}, {round_seeds}, {max_seeds})"
            )
        looks = list(range(start, max_seeds + 1, round_seeds))
        if looks[-1] != max_seeds:
            looks.append(max_seeds)
        return cls(tuple(looks), alpha, margin, comparisons, spending, split_equivalence)

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(n / self.looks[-1] for n in self.looks)

    @property
    def difference_alpha(self) -> float:
        """The two-sided level of each comparison's difference test (Bonferroni)."""
        return self.alpha / self.comparisons

    @property
    def equivalence_alpha(self) -> float:
        """The level of each one-sided equivalence test of a comparison."""
        return self.alpha / self.comparisons if self.split_equivalence else self.alpha

    @property
    def boundaries(self) -> tuple[Boundary, ...]:
        return _boundaries(self)


@lru_cache(maxsize=4)
def null_t_statistics(looks: tuple[int, ...]) -> np.ndarray:
    """Paired t-statistics at every look of _CALIBRATION_PATHS simulated experiments under no difference,
    (paths, looks), float32. Under no difference the t-statistics' joint distribution is free of the
    spread (the statistic is scale-free), so one standard-normal simulation serves every spread, and a
    fixed seed makes it the same on every machine and run."""
    rng = np.random.default_rng(_CALIBRATION_SEED)
    chunks = []
    for _ in range(_CALIBRATION_PATHS // _CHUNK):
        data = rng.standard_normal((_CHUNK, looks[-1]), dtype=np.float32)
        total, squares = np.cumsum(data, axis=1), np.cumsum(data * data, axis=1)
        n = np.asarray(looks)
        mean = total[:, n - 1] / n
        variance = np.maximum((squares[:, n - 1] - n * mean * mean) / (n - 1), 0)  # rounding can take it below 0
        with np.errstate(divide="ignore"):  # no spread: an infinite t, beyond every boundary
            chunks.append((mean * np.sqrt(n) / np.sqrt(variance)).astype(np.float32))
    null = np.concatenate(chunks)
    null.flags.writeable = False  # cached and shared
    return null


@lru_cache(maxsize=64)
def t_boundaries(looks: tuple[int, ...], level: float, spending: str, two_sided: bool) -> tuple[float, ...]:
    """The t-boundaries b_1..b_K at which the paired t-statistic spends, at each look, exactly the error
    the spending function allots it (`level` per side), under no difference.

    The first look's is the t quantile itself (exact: one look is a fixed-n test). Later looks' are
    quantiles, among the simulated experiments still running, of the t-statistic's null distribution
    (null_t_statistics), so they hold for the t-statistic as used rather than for its normal limit.
    """
    fractions = tuple(n / looks[-1] for n in looks)
    sides = 2 if two_sided else 1
    increments = np.diff([0.0, *(spent(spending, level, fraction) for fraction in fractions)])
    bounds = [float(stats.t.isf(increments[0], looks[0] - 1)) if increments[0] > 0 else math.inf]
    if len(looks) == 1:
        return tuple(bounds)
    null = null_t_statistics(looks)
    # One-sided: both tails are the same test by symmetry, so use each path twice (as itself and mirrored).
    statistics = np.abs(null) if two_sided else np.concatenate([null, -null])
    running = statistics[:, 0] <= bounds[0]
    for k in range(1, len(looks)):
        column = statistics[running, k]
        crossing = int(round(sides * increments[k] * len(statistics)))
        if crossing < 1:
            bounds.append(math.inf)
            continue
        ordered = np.sort(column)[::-1]
        bound = float(
            (ordered[crossing - 1] + ordered[crossing]) / 2
        )  # midway between the last crossing and the first not
        bounds.append(bound)
        running[running] = column <= bound
    return tuple(bounds)


@lru_cache(maxsize=64)
def _boundaries(design: Design) -> tuple[Boundary, ...]:
    difference = z_boundaries(design.fractions, design.difference_alpha / 2, design.spending, True)
    equivalence = z_boundaries(design.fractions, design.equivalence_alpha, design.spending, False)
    difference_t = t_boundaries(design.looks, design.difference_alpha / 2, design.spending, True)
    equivalence_t = t_boundaries(design.looks, design.equivalence_alpha, design.spending, False)
    rows = []
    for k, seeds in enumerate(design.looks):
        degrees = seeds - 1
        rows.append(
            Boundary(
                k + 1,
                seeds,
                design.fractions[k],
                difference[k],
                float(2 * stats.t.sf(difference_t[k], degrees)),
                difference_t[k],
                equivalence[k],
                float(stats.t.sf(equivalence_t[k], degrees)),
                equivalence_t[k],
            )
        )
    return tuple(rows)


def decisions(design: Design, k: int, differences: np.ndarray) -> np.ndarray:
    """The rule at look k (1-based) for many experiments at once: differences has shape (..., n_k),
    the last axis the seeds; returns codes indexing OUTCOMES, one per experiment."""
    boundary = _boundary(design, k)
    data = np.asarray(differences, dtype=float)
    if data.shape[-1] != boundary.seeds:
        raise ValueError(
            f"look {k} of this design is at {boundary.seeds} seeds, but {data.shape[-1]} differences were given"
        )
    mean = data.mean(axis=-1)
    error = data.std(axis=-1, ddof=1) / math.sqrt(boundary.seeds)
    half, equivalence_half = boundary.difference_t * error, boundary.equivalence_t * error
    # Strict inequalities, as tasks/common/stats.py: an interval touching 0 is no difference, touching a margin no
    # equivalence.
    codes = np.where(mean - half > 0, IMPROVES, np.where(mean + half < 0, HURTS, CONTINUE))
    equivalent = (mean - equivalence_half > -design.margin) & (mean + equivalence_half < design.margin)
    codes = np.where((codes == CONTINUE) & equivalent, EQUIVALENT, codes)
    if k == len(design.looks):
        codes = np.where(codes == CONTINUE, INCONCLUSIVE, codes)
    return codes


def _boundary(design: Design, k: int) -> Boundary:
    if not 1 <= k <= len(design.looks):
        raise ValueError(f"look {k} is not in this design: its looks are numbered 1 to {len(design.looks)}")
    return design.boundaries[k - 1]


@dataclass(frozen=True)
class Outcomes:
    """The rule run to its end on many experiments: each one's outcome code (OUTCOMES) and seeds used."""

    codes: np.ndarray
    seeds: np.ndarray

    def rate(self, outcome: str) -> float:
        return float(np.mean(self.codes == OUTCOMES.index(outcome)))


def run(design: Design, differences: np.ndarray) -> Outcomes:
    """Apply the rule look by look to experiments whose per-seed differences are the rows of an
    (experiments, n_K) array, each stopping at its first decision. Vectorised: this is the rule that
    look() applies to one comparison, on many at once (tests/decide/test_sequential.py simulates with it)."""
    data = np.asarray(differences, dtype=float)
    if data.ndim != 2 or data.shape[1] < design.looks[-1]:
        raise ValueError(f"differences must be an (experiments, seeds) array with at least {design.looks[-1]} seeds")
    codes = np.full(data.shape[0], CONTINUE)
    seeds = np.full(data.shape[0], design.looks[-1])
    for k, n in enumerate(design.looks, start=1):
        running = codes == CONTINUE
        if not running.any():
            break
        now = decisions(design, k, data[running, :n])
        codes[running] = now
        seeds[np.flatnonzero(running)[now != CONTINUE]] = n
    return Outcomes(codes, seeds)


@dataclass(frozen=True)
class Look:
    """One look at one comparison: the estimate, both intervals, the tests' p-values, the boundary and the decision."""

    look: int  # 1-based
    planned_looks: int
    seeds: int
    mean: float
    sd: float
    interval: tuple[float, float]  # repeated confidence interval at 1 - boundary.difference_level
    equivalence_interval: tuple[float, float]  # at 1 - 2 boundary.equivalence_level
    p_value: float  # the paired t-test's two-sided p at these seeds; decides when under boundary.difference_level
    tost_p: float  # the larger one-sided p of the two equivalence tests; decides when under boundary.equivalence_level
    boundary: Boundary
    decision: str  # an OUTCOMES name
    reason: str


def look(design: Design, k: int, differences: list[float] | np.ndarray) -> Look:
    """The rule at look k (1-based) for one comparison, with everything a report shows. differences
    are treated - control per seed (fractions), exactly design.looks[k - 1] of them, in the order added."""
    data = np.asarray(differences, dtype=float)
    boundary = _boundary(design, k)
    if data.ndim != 1 or len(data) != boundary.seeds:
        raise ValueError(
            f"look {k} of this design is at {boundary.seeds} seeds, but {data.size} differences were given"
        )
    decision = OUTCOMES[int(decisions(design, k, data))]
    mean, sd = float(data.mean()), float(data.std(ddof=1))
    error = sd / math.sqrt(boundary.seeds)
    degrees, margin = boundary.seeds - 1, design.margin
    if (
        error == 0
    ):  # every seed the same difference: no spread to test, the mean alone decides (as tasks/common/stats.py)
        p_value, tost_p = (1.0 if mean == 0 else 0.0), (0.0 if abs(mean) < margin else 1.0)
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / error, degrees))
        tost_p = float(max(stats.t.sf((mean + margin) / error, degrees), stats.t.cdf((mean - margin) / error, degrees)))
    half, equivalence_half = boundary.difference_t * error, boundary.equivalence_t * error
    interval, equivalence_interval = (mean - half, mean + half), (mean - equivalence_half, mean + equivalence_half)
    reasons = {
        "improves": "the repeated interval lies above 0: the difference crossed this look's boundary",
        "hurts": "the repeated interval lies below 0: the difference crossed this look's boundary",
        "equivalent": f"the equivalence interval lies inside ±{100 * margin:.1f} points: both one-sided tests crossed",
        "inconclusive": "the last planned look, and neither the difference nor equivalence crossed its boundary",
        "continue": "neither the difference nor equivalence crossed this look's boundary; add the next round of seeds",
    }
    return Look(
        k,
        len(design.looks),
        boundary.seeds,
        mean,
        sd,
        interval,
        equivalence_interval,
        p_value,
        tost_p,
        boundary,
        decision,
        reasons[decision],
    )


def history(design: Design, differences: list[float] | np.ndarray) -> list[Look]:
    """Every look the rule makes on one comparison's per-seed differences (in the order the seeds were
    added), up to the first decision or the last look the seeds given reach."""
    data = np.asarray(differences, dtype=float)
    if len(data) > design.looks[-1]:
        raise ValueError(
            f"{len(data)} seeds is more than this design's last look at {design.looks[-1]}: "
            "looking beyond it voids its error rates"
        )
    looks = []
    for k, n in enumerate(design.looks, start=1):
        if n > len(data):
            break
        looks.append(look(design, k, data[:n]))
        if looks[-1].decision != "continue":
            break
    return looks


def points(interval: tuple[float, float]) -> str:
    """An interval of accuracy differences in points; one reaching past ±100 points (an early look's, whose
    boundary almost no experiment crosses) says so rather than print numbers no accuracy can take."""
    low, high = (100 * end for end in interval)
    return "wider than ±100" if low < -100 and high > 100 else f"{low:+.1f} to {high:+.1f}"


def _level(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.4f}".rstrip("0")


def markdown(design: Design, looks: list[Look] | None = None) -> str:
    """The design and every look made so far as a short markdown table: one row per planned look."""
    made = {item.look: item for item in looks or []}
    split = f", split over {design.comparisons} comparisons by Bonferroni" if design.comparisons > 1 else ""
    equivalence_split = (
        f" (split over {design.comparisons})" if design.split_equivalence and design.comparisons > 1 else ""
    )
    spending = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock"}[design.spending]
    lines = [
        f"Sequential design, fixed before the first look: looks at {', '.join(map(str, design.looks))} seeds; "
        f"a difference tested two-sided at α = {design.alpha:g}{split}; "
        f"equivalence within ±{100 * design.margin:.1f} points by two one-sided tests at {design.equivalence_alpha:g} "
        f"each{equivalence_split}; error spent by a Lan-DeMets {spending}-type function. "
        "A look decides a difference when the paired t-test's p is under its level, "
        "equivalence when both one-sided p-values are under theirs.",
        "",
        (
            "| look | seeds | difference: p under | equivalence: p under | mean (points) | repeated CI (points) "
            "| equivalence CI (points) | decision |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for boundary in design.boundaries:
        row = [
            str(boundary.look),
            str(boundary.seeds),
            _level(boundary.difference_level),
            _level(boundary.equivalence_level),
        ]
        item = made.get(boundary.look)
        if item is None:
            row += ["", "", "", ""]
        else:
            row += [f"{100 * item.mean:+.1f}", points(item.interval), points(item.equivalence_interval), item.decision]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
