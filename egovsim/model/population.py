"""Citizens and civil servants as numpy arrays, stepped by compiled loops (the fast path).

Stochastic events use *integrated hazards*: each agent draws an Exp(1) threshold and the event happens in the
step where the hazard accumulated since then reaches it. For a hazard h that is constant within a step of
length dt, this is exactly the per-step probability P = 1 - exp(-h dt) of docs/references/design-v1.md, but it needs no random
draw per agent per step, and with common random numbers a larger hazard always makes the event come sooner
(so a stronger lever never makes its direct target worse on any single path).

Every rule reads the state at the start of the step; the model applies the rules of different agent types in
the order citizens -> civil servants -> leaders, so each reads the others' state before they change
(synchronous update; results do not depend on agent order).

The rules have two implementations: this fast path (`Citizens`, `CivilService` and `measure`, whose loops are
compiled in kernels.py) and the reference in reference.py (`PlainCitizens`, `PlainCivilService` and its `measure`),
which states each rule the direct way (every agent's every quantity updated every step, every aggregate a full
count); tests/test_kernels.py checks the two agree.

Speed and memory (benchmarks/README.md). What makes this path fast, without changing any rule:

- Nothing per citizen is a Python object, and no Python loop runs over citizens: the per-citizen work of a
  step is a few compiled loops (kernels.py, numba).
- Dtypes: bool for states, uint8 for the group, uint16 for user-neighbour counts, int32 for steps and
  indices, float32 for thresholds, literacy, trust and the adoption hazard (they are probabilities, rates or
  Exp(1) draws: 7 significant digits are far below the model's resolution; exp is a float32 polynomial within
  1.5 ulp); province- and group-level accumulators are float64.
- Access to the internet has a hazard that is the same for every citizen of a group, so a citizen gets access
  when the group's accumulated hazard passes their threshold: thresholds are sorted once per group and each
  step only moves a pointer (no work per citizen without an event).
- Literacy and trust follow dx/dt = rate (1 - x) with a rate common to a group (province), so
  x_i(t) = 1 - (1 - x_i(0)) G(t) with G(t) = exp(-integral of the rate): only G is updated each step. A failed
  transaction multiplies one citizen's trust by (1 - loss), which rescales their own (1 - x_i(0)).
- Counts that outcomes report (adopted, with access, used in the last 12 months) and sums (literacy, trust)
  are updated at events, so recording a step costs O(provinces), not O(citizens).
- The adoption hazard is the only quantity that needs every eligible citizen every step: one pass per
  contiguous block with the block's constants folded in, vectorised (SIMD), no temporaries.
- Civil servants and the outcomes of a step are compiled too (a few hundred civil servants, thirty columns:
  the cost there is the number of array operations, not their size).
- A large model draws the next step's dealings in a second thread while this step's citizens act (DrawAhead):
  the same numbers from the same stream, on a core that would otherwise wait.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from egovsim.config.scenario import AccessParams, Scenario
from egovsim.model import kernels, portable
from egovsim.model.kernels import (
    CITIZEN_CONSTANTS,
    SERVANT_CONSTANTS,
    CitizenArrays,
    CitizenStep,
    CitizenTallies,
    Needs,
    ServantArrays,
    ServantStep,
    ServantTallies,
    record,
)
from egovsim.model.network import block_diagonal, block_ring_network
from egovsim.model.outcomes import COLUMNS, SPEND_COLS

NEVER = np.int32(-(2**30))  # "no online use yet"
# below this chance of a need per step numpy's geometric inverts one standard exponential per draw (its inversion
# method): the draws are then made as numpy's standard exponentials and turned into waits by a compiled loop
INVERSION_BELOW = 1.0 / 3.0
NO_NEED = np.iinfo(np.int32).max
# citizens from which the next step's dealings are drawn in a second thread while this step's citizens act (the
# compiled loop and numpy's fills run without the GIL): at 4.3 million citizens the scan for who is due and the draws
# take 16 of a step's 39 ms, the citizens' loop 21 (benchmarks/README.md); below this size the thread's start costs
# more than it hides (it costs CPU time: +22% at 260,000 citizens, measured here), so a pool of one process per core,
# with no idle core to hide it on, turns it off (share_cores)
DRAW_AHEAD_FROM: int | None = 250_000


def share_cores() -> None:
    """This process is one of as many busy processes as there are cores: it draws no step ahead (DRAW_AHEAD_FROM)."""
    global DRAW_AHEAD_FROM
    DRAW_AHEAD_FROM = None


# Citizens of a province are stored in four contiguous blocks, in this order; group = 4 * province + block.
BLOCKS = ("rural_majority", "rural_minority", "urban_majority", "urban_minority")
URBAN_BLOCK = np.array([False, False, True, True])
MINORITY_BLOCK = np.array([False, True, False, True])

# civil-servant states
NON_USER, CEREMONIAL, GENUINE = 0, 1, 2

# literacy and trust are stored as x = 1 - gap * G; G is folded into the gaps before it leaves float32's range
_REBASE_BELOW = 1e-30


def hazard_probability(hazard: np.ndarray | float, dt: float) -> np.ndarray | float:
    """P(event within a step of length dt) for a constant hazard: 1 - exp(-hazard dt)."""
    return -portable.expm1(-np.asarray(hazard, dtype=np.float64) * dt)


def approach_one(x: np.ndarray | float, rate: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exact solution over dt of dx/dt = rate (1 - x): stays in [0, 1] for any step length."""
    return 1.0 - (1.0 - x) * portable.exp(-np.asarray(rate, dtype=np.float64) * dt)


def mean_access_rate(access: AccessParams, start: float, dt: float) -> float:
    """Mean over the step [start, start + dt] of the access hazard's time path a_0 + a_mb 1{t >= T_mb}: its exact
    integral over the step / dt, so the take-off moves the path continuously with T_mb within a step."""
    after_takeoff = min(max((start + dt - access.takeoff_year) / dt, 0.0), 1.0)  # share of the step after T_mb
    return access.base_rate + access.broadband_rate * after_takeoff


def income_factor(access: AccessParams, grdp_per_capita: float | None) -> float:
    """(y_p / y_ref)^eta_y: the access hazard of a richer province is higher (1 where y_p is not given)."""
    if grdp_per_capita is None:
        return 1.0
    return portable.power(grdp_per_capita / access.income_reference, access.income_elasticity)


def beta_draws(rng: np.random.Generator, mean: float, n: int, concentration: float) -> np.ndarray:
    """Heterogeneous values in [0, 1] with the given mean (a Beta distribution; a constant at 0 or 1). The n
    draws are made whatever the mean, so a mean at an end of its range leaves every later draw unchanged
    (common random numbers)."""
    inside = min(max(mean, 1e-6), 1.0 - 1e-6)
    draws = rng.beta(inside * concentration, (1.0 - inside) * concentration, n).astype(np.float32)
    return np.full(n, mean, dtype=np.float32) if mean <= 0.0 or mean >= 1.0 else draws


def block_sizes(n: int, urban_share: float, minority_share: float) -> np.ndarray:
    """Citizens per block; minority share taken as equal in urban and rural areas (no source splits it)."""
    n_urban = round(n * urban_share)
    n_rural = n - n_urban
    rural_min = round(n_rural * minority_share)
    urban_min = round(n_urban * minority_share)
    return np.array([n_rural - rural_min, rural_min, n_urban - urban_min, urban_min], dtype=np.int64)


@dataclass
class StepContext:
    """Province-level state that citizens and civil servants read in a step (arrays indexed by province)."""

    k: int  # step index (0-based)
    online: np.ndarray  # (P, J) probability a procedure instance is fully online, on either channel
    rent_rel: np.ndarray  # (J,) rent of each procedure relative to the mean
    online_share: np.ndarray  # (P,) mean of `online` over procedures
    usability: np.ndarray  # (P,) of the province's own software (what its civil servants use)
    deterrence: np.ndarray  # (P,) province mean of servant_deterrence
    access_hazard: np.ndarray  # (4P,) per group, per year
    literacy_rate: np.ndarray  # (4P,) per group, per year
    trust_rate: np.ndarray  # (P,) per year
    leader_pull: np.ndarray  # (P,) leader will x monitoring
    agency_it: np.ndarray  # (P, 2) IT equipment K of province/district and of commune agencies
    mandate: np.ndarray  # (P,) effective mandate strength
    training: np.ndarray  # (P,)
    literacy_step: np.ndarray | None = None  # (4P,) exp(-literacy_rate dt)
    trust_step: np.ndarray | None = None  # (P,) exp(-trust_feedback_rate x trust_rate dt)
    trust_moves: bool = True  # any trust_step below 1
    # the channels of a dealing (docs/ODD.md 7.3): the province's own fully-online level d_pj, the national
    # portal's availability portal_j, the chance a citizen who could use both picks the national portal, and the
    # chance logging in to it fails
    digitised: np.ndarray | None = None  # (P, J)
    portal: np.ndarray | None = None  # (J,)
    national_share: np.ndarray | None = None  # (P,) U_nat / (U_nat + U_p)
    login_failure: float = 0.0
    # adoption covariates read the channel mix (docs/ODD.md 7.2)
    useful_share: np.ndarray | None = None  # (P,) mean_j of d + (1 - d) portal (1 - login failure)
    ease_usability: np.ndarray | None = None  # (P,) usability of the channels, weighted by availability
    servant_deterrence: np.ndarray | None = None  # (servants,) D_i = max(0, 1 - pi_eff F m_i)
    rent_at_risk: np.ndarray | None = None  # (P,) mean informal income at risk per civil servant, rent_i x D_i
    report_prob: np.ndarray | None = None  # (P,) report_prob x feedback: chance a citizen with access reports


class CitizenLayout:
    """Who is where: the citizens of each province in four contiguous blocks, and the draws made at the start
    (shared by the fast and the plain path, so both start from the same citizens with the same seed)."""

    def _lay_out(self, scenario: Scenario, rng: np.random.Generator, civil_service: CivilService) -> tuple:
        """Lay citizens out and make the draws of the start; returns the initial access, literacy, trust and
        the access and adoption thresholds, for the path to store as it likes."""
        self.params = scenario.citizens
        self.dt = scenario.dt
        self.steps_per_year = scenario.steps_per_year
        self.n_steps = scenario.n_steps
        provs = list(scenario.provinces.values())
        self.n_provinces = P = len(provs)
        sizes = np.array(
            [block_sizes(max(1, round(p.population * p.scale)), p.urban_share, p.minority_share) for p in provs]
        )  # (P, 4)
        self.group_sizes = sizes.reshape(-1)  # (4P,)
        self.group_start = np.concatenate(([0], np.cumsum(self.group_sizes)))  # (4P + 1,)
        self.group = np.repeat(np.arange(4 * P, dtype=np.uint8 if 4 * P <= 256 else np.int16), self.group_sizes)
        self.n = int(self.group_sizes.sum())
        self.province_sizes = sizes.sum(axis=1)
        self.province_start = np.concatenate(([0], np.cumsum(self.province_sizes)[:-1]))
        self._block_sizes = sizes

        # initial states (draw order is part of reproducibility: do not reorder)
        # one draw v per citizen decides initial access (v < A0) and reachability (v < A_max): nested sets, so a
        # higher ceiling only adds citizens who can get access
        a = scenario.access
        v = rng.random(self.n)
        access, unreachable = v < a.initial, v >= a.ceiling
        del v
        lit_mean = (self.params.literacy_rural, self.params.literacy_urban)
        literacy = np.empty(self.n, dtype=np.float32)
        trust = np.empty(self.n, dtype=np.float32)
        for g, size in enumerate(self.group_sizes):
            sl = self.group_slice(g)
            spread = self.params.trait_concentration
            literacy[sl] = beta_draws(rng, lit_mean[int(URBAN_BLOCK[g % 4])], int(size), spread)
            trust[sl] = beta_draws(rng, self.params.trust_initial, int(size), spread)
        to_access = rng.exponential(size=self.n).astype(np.float32)
        to_access[unreachable] = np.inf  # never reached, whatever the hazard
        del unreachable
        to_adopt = rng.exponential(size=self.n).astype(np.float32)
        self.p_need = float(hazard_probability(self.params.need_rate, self.dt))
        self.next_need = self._next_need_after(rng, -1, self.n)

        # each citizen is served by a civil servant of their province: rural citizens by commune-level staff
        self.civil_servant = np.empty(self.n, dtype=np.int32)
        cs_commune = civil_service.commune
        for p, staff in enumerate(civil_service.of_province):
            start, size = self.province_start[p], self.province_sizes[p]
            urban = URBAN_BLOCK[self.group[start : start + size] % 4]
            commune_staff = staff[cs_commune[staff]]
            office_staff = staff[~cs_commune[staff]]
            for mask, pool in ((~urban, commune_staff), (urban, office_staff)):
                pool = pool if pool.size else staff
                self.civil_servant[start : start + size][mask] = rng.choice(pool, int(mask.sum()))

        net = scenario.network
        self.well_mixed = net.kind == "well_mixed"
        if self.well_mixed:
            self.adjacency = None
        else:
            self.adjacency = block_diagonal(
                [block_ring_network(sizes[p], net.mean_degree, net.homophily, net.rewiring, rng) for p in range(P)]
            )

        # per-step counters of dealings with government, for the 12-month informal-payment index
        self.needs_per_step = np.zeros((scenario.n_steps + 1, P), dtype=np.int64)
        self.payments_per_step = np.zeros_like(self.needs_per_step)
        # ... of them completed online, reports of informal payments, and all reports (payments and failures)
        self.online_per_step = np.zeros_like(self.needs_per_step)
        self.reported_payments_per_step = np.zeros_like(self.needs_per_step)
        self.reports_per_step = np.zeros_like(self.needs_per_step)
        self.civil_service = civil_service
        return access, literacy, trust, to_access, to_adopt

    def group_slice(self, g: int) -> slice:
        return slice(int(self.group_start[g]), int(self.group_start[g + 1]))

    def _next_need_after(self, rng: np.random.Generator, k: int, count: int) -> np.ndarray:
        """Step of each citizen's next dealing with government: geometric waiting time, per-step P = p_need."""
        if self.p_need <= 0.0:
            return np.full(count, NO_NEED, dtype=np.int32)
        return (k + rng.geometric(self.p_need, count)).astype(np.int32)

    # ---- derived per-citizen attributes (computed on request: large runs do not carry them) --------------

    @cached_property
    def province(self) -> np.ndarray:
        return (self.group // 4).astype(np.uint8)

    @cached_property
    def urban(self) -> np.ndarray:
        return URBAN_BLOCK[self.group % 4]

    @cached_property
    def minority(self) -> np.ndarray:
        return MINORITY_BLOCK[self.group % 4]

    def group_counts(self, mask: np.ndarray) -> np.ndarray:
        """How many citizens of each group (province x block) satisfy `mask`."""
        return np.bincount(self.group[mask], minlength=self.group_sizes.size)

    def used_in_last_year(self, k: int, last: np.ndarray | None = None) -> np.ndarray:
        """Who used online services (on a channel, if `last` is its last-use steps) in the year before the state
        at step k, i.e. in one of the steps k - steps_per_year .. k - 1 (records[k] is the state after k steps)."""
        last = self.last_online if last is None else last
        return last >= k - self.steps_per_year

    def _needs(self, ctx: StepContext, rng: np.random.Generator, who: np.ndarray | None = None) -> Needs | None:
        """Citizens with a need this step (`who`, by default found here) and their draws: procedure, u (online,
        works, lapse, pay, channel, report), a new adoption threshold (a fixed set of draws per need event keeps random streams
        aligned across scenarios: common random numbers); None if nobody has one. Also draws each one's next
        need."""
        k = ctx.k
        if who is None:
            who = np.flatnonzero(self.next_need == k)
        if who.size == 0:
            return None
        procedure = rng.integers(0, ctx.rent_rel.size, who.size)
        u = rng.random((6, who.size))
        new_threshold = rng.exponential(size=who.size)  # becomes float32 where stored
        self.next_need[who] = rng.geometric(self.p_need, who.size) + k
        return Needs(who, procedure, u, new_threshold)


class DrawAhead:
    """The dealings of step k, due and drawn (Citizens._draw_needs) in a second thread while step k - 1's compiled
    citizen loop runs, and joined before step k - 1's citizens are done: between steps no thread runs, so nothing
    can draw from the model's generator, read the next needs or copy the model while they move. Who is due at k
    is settled once step k - 1's dealings have drawn their next needs, and nothing else draws from the generator
    within a step, so the draws are the numbers step k would draw itself, in the same order: records are
    identical (tests/test_kernels.py). That holds while the citizens' dealings are all that draws from the
    model's generator during a run, as in every rule of the model: anything drawing from it between steps would
    take numbers that, without drawing ahead, the next step's dealings take."""

    def __init__(self, citizens: Citizens, k: int, n_procedures: int, rng: np.random.Generator):
        self.k, self._needs, self._error = k, None, None

        def draw() -> None:
            try:
                rows = citizens._ahead_rows
                if rows is None:
                    rows = citizens._ahead_rows = np.empty_like(citizens.arrays.rows)
                who = rows[: kernels.due(citizens.next_need, k, rows)].copy()
                self._needs = citizens._draw_needs(k, n_procedures, rng, who)
            except BaseException as error:  # raised in the stepping thread (result)
                self._error = error

        self._thread = threading.Thread(target=draw, name=f"egovsim draws of step {k}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> tuple[int, Needs | None]:
        """(k, the draws), once the thread is done; its error, if it failed."""
        self.join()
        if self._error is not None:
            raise self._error
        return self.k, self._needs


class Citizens(CitizenLayout):
    """All citizens of a run, province after province, each province in the four BLOCKS (the fast path).

    Their arrays are `arrays` (kernels.CitizenArrays), the state the compiled loops read and update in place;
    the per-citizen ones are attributes too (access, active, adopted, ...: the same arrays).

    Per-citizen state (bytes per citizen): access, active, adopted, eligible (= access and not active) (1
    each); group (1); user neighbours (2); remaining adoption threshold, literacy gap, distrust, q0 dt / degree,
    reliability of the serving civil servant, last online step (either channel, national portal, province's
    portal), next need step, civil servant (4 each); sorted access thresholds and their order (8, citizens
    without access at the start); citizens by civil servant (4); an index buffer of the kernels (4); plus the
    contact network (int32 indices and int8 data, twice per link: about 5 x mean degree). About 107 bytes at
    mean degree 8 (benchmarks/README.md gives 96 for the model before the national portal's channel). A model
    that draws ahead (DRAW_AHEAD_FROM) adds a second index buffer (4 bytes) and a second buffer of the dealings'
    draws (64 bytes per dealing: about 75 MB at full scale).
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator, civil_service: CivilService):
        access, literacy, trust, to_access, to_adopt = self._lay_out(scenario, rng, civil_service)
        c, G, P = self.params, self.group_sizes.size, self.n_provinces
        self.access = access
        self.active = np.zeros(self.n, dtype=bool)  # uses online services now
        self.adopted = np.zeros(self.n, dtype=bool)  # has ever adopted
        self.eligible = access.copy()  # could adopt now: access and not active
        self.to_adopt = to_adopt  # remaining adoption threshold
        self.last_online = np.full(self.n, NEVER, dtype=np.int32)

        # literacy_i = 1 - lit_gap_i * lit_G[group], trust_i = 1 - distrust_i * trust_H[province]
        self.lit_gap = np.float32(1) - literacy
        self.distrust = np.float32(1) - trust
        del literacy, trust
        self.lit_G = np.ones(G)
        self.trust_H = np.ones(P)
        self.lit_gap_sum = np.bincount(self.group, weights=self.lit_gap, minlength=G)
        self.distrust_sum = np.bincount(self.group, weights=self.distrust, minlength=G)

        # internet access: per group, the thresholds of citizens without access, sorted, and a pointer
        self.access_H = np.zeros(G)  # accumulated access hazard per group
        self.access_count = np.bincount(self.group[access], minlength=G)
        without = self.group_sizes - self.access_count
        access_start = np.concatenate(([0], np.cumsum(without + 1)))[:-1]  # each segment ends in a sentinel
        access_order = np.full(int(without.sum()) + G, -1, dtype=np.int64 if self.n >= 2**31 else np.int32)
        access_threshold = np.full(access_order.size, np.inf, dtype=np.float32)
        for g in range(G):
            sl = self.group_slice(g)
            rows = sl.start + np.flatnonzero(~access[sl])
            rows = rows[np.argsort(to_access[rows], kind="stable")]
            a = access_start[g]
            access_order[a : a + rows.size] = rows
            access_threshold[a : a + rows.size] = to_access[rows]
        del to_access

        # the reliability of each citizen's civil servant (by their state), kept up to date as servants convert
        self.served_rel = civil_service.reliability()[self.civil_servant]
        self.last_portal = np.full(self.n, NEVER, dtype=np.int32)
        self.last_provincial = np.full(self.n, NEVER, dtype=np.int32)
        # citizens by their civil servant; a stable sort of 16-bit keys is numpy's radix sort (4x quicker at full
        # scale) and, being stable, gives the same order
        keys = self.civil_servant.astype(np.uint16) if civil_service.n <= 2**16 else self.civil_servant
        order = np.argsort(keys, kind="stable").astype(np.int32)
        del keys
        self._served_order = order
        self._served_ptr = np.concatenate(([0], np.cumsum(np.bincount(self.civil_servant, minlength=civil_service.n))))

        if self.well_mixed:
            self.users = np.zeros(P, dtype=np.int64)
            self.q_dt = self.user_neighbours = None
            indptr, indices = np.zeros(self.n + 1, dtype=np.int32), np.empty(0, dtype=np.int32)
        else:
            indptr, indices = self.adjacency.indptr, self.adjacency.indices
            degree = np.diff(self.adjacency.indptr)
            self.user_neighbours = np.zeros(self.n, dtype=np.uint16 if degree.max(initial=0) < 2**16 else np.int32)
            # q0 dt / degree: rate x dt = p0 dt + q0 dt x (user neighbours / degree)
            self.q_dt = np.where(degree > 0, c.q0 * self.dt / np.maximum(degree, 1), 0.0).astype(np.float32)

        self.adopted_count = np.zeros(G, dtype=np.int64)
        self.used_per_step = np.zeros((scenario.n_steps + 1, G), dtype=np.int64)  # rows: last-online step
        self.portal_per_step = np.zeros_like(self.used_per_step)  # ... on the national portal
        self.provincial_per_step = np.zeros_like(self.used_per_step)  # ... on the province's own portal
        self._p0_dt = np.full(P, c.p0 * self.dt, dtype=np.float32)
        self.arrays = CitizenArrays(
            group=self.group,
            group_start=self.group_start,
            access=self.access,
            active=self.active,
            adopted=self.adopted,
            eligible=self.eligible,
            served_rel=self.served_rel,
            civil_servant=self.civil_servant,
            to_adopt=self.to_adopt,
            lit_gap=self.lit_gap,
            distrust=self.distrust,
            last_online=self.last_online,
            last_portal=self.last_portal,
            last_provincial=self.last_provincial,
            q_dt=np.empty(0, dtype=np.float32) if self.well_mixed else self.q_dt,
            user_neighbours=np.empty(0, dtype=np.uint16) if self.well_mixed else self.user_neighbours,
            indptr=indptr,
            indices=indices,
            lit_G=self.lit_G,
            trust_H=self.trust_H,
            lit_gap_sum=self.lit_gap_sum,
            distrust_sum=self.distrust_sum,
            access_H=self.access_H,
            access_count=self.access_count,
            adopted_count=self.adopted_count,
            users=self.users if self.well_mixed else np.zeros(0, dtype=np.int64),
            access_threshold=access_threshold,
            access_order=access_order,
            access_next=access_start.copy(),
            used_per_step=self.used_per_step,
            portal_per_step=self.portal_per_step,
            provincial_per_step=self.provincial_per_step,
            needs_per_step=self.needs_per_step,
            payments_per_step=self.payments_per_step,
            online_per_step=self.online_per_step,
            reported_payments_per_step=self.reported_payments_per_step,
            reports_per_step=self.reports_per_step,
            rows=np.empty(self.n + 1, dtype=np.int32 if self.n < 2**31 - 1 else np.int64),
        )
        # the uniform and exponential draws of a step's dealings (_needs), one buffer for even steps and one for odd:
        # the next step's are drawn into the other while this step's are read (DRAW_AHEAD_FROM)
        self._need_buffers = [np.empty(0), np.empty(0)]
        self._ahead_rows = None  # the scan for who is due next, apart from the loop's rows (made on first use)
        self._drawn: tuple[int, Needs | None] | None = None  # (step, its dealings) drawn ahead (DrawAhead)
        self._no_needs = Needs(
            np.empty(0, dtype=self.arrays.rows.dtype), np.empty(0, dtype=np.int64), np.empty((6, 0)), np.empty(0)
        )
        # every covariate is in [0, 1], so |log multiplier| <= sum |beta|: exp can overflow float32 only past 88.
        # Then cap the multiplier at e^80, which already makes any threshold pass within the step (the same
        # event as without the cap)
        betas = bool(c.beta_usefulness or c.beta_ease or c.beta_trust)
        self.constants = record(
            CITIZEN_CONSTANTS,
            dt=self.dt,
            networked=not self.well_mixed,
            failure_ceremonial=scenario.civil_servants.failure_ceremonial,
            redirect_non_user=scenario.civil_servants.redirect_non_user,
            ask0=c.informal_ask_prob,
            online_ask_share=c.online_ask_share,
            trust_loss=c.failure_trust_loss,
            lapse_prob=c.lapse_prob,
            betas=betas,
            cap=80.0 if abs(c.beta_usefulness) + abs(c.beta_ease) + abs(c.beta_trust) > 80.0 else np.inf,
            lang=np.where(MINORITY_BLOCK, 1.0 - c.language_penalty, 1.0),
            beta_usefulness=c.beta_usefulness,
            beta_ease=c.beta_ease,
            beta_trust=c.beta_trust,
            reference_usefulness=c.reference_usefulness,
            const0=c.beta_trust * (1.0 - c.reference_trust) - c.beta_ease * c.reference_ease,
        )
        self.tallies = CitizenTallies(
            group_sizes=self.group_sizes,
            province_sizes=self.province_sizes,
            adopted_count=self.adopted_count,
            access_count=self.access_count,
            used_per_step=self.used_per_step,
            portal_per_step=self.portal_per_step,
            provincial_per_step=self.provincial_per_step,
            lit_G=self.lit_G,
            lit_gap_sum=self.lit_gap_sum,
            trust_H=self.trust_H,
            distrust_sum=self.distrust_sum,
            needs_per_step=self.needs_per_step,
            payments_per_step=self.payments_per_step,
            online_per_step=self.online_per_step,
            reports_per_step=self.reports_per_step,
            steps_per_year=self.steps_per_year,
        )

    # ---- the citizen rules ----------------------------------------------------------------------------

    def _needs(self, ctx: StepContext, rng: np.random.Generator, who: np.ndarray | None = None) -> Needs | None:
        """CitizenLayout._needs, the same draws from the same stream, into buffers reused from step to step (a
        step of the full-scale model has some 850,000 dealings), the geometric waiting times made from numpy's
        standard exponentials by a compiled loop (kernels.geometric_waits)."""
        return self._draw_needs(ctx.k, ctx.rent_rel.size, rng, who)

    def _draw_needs(self, k: int, n_procedures: int, rng: np.random.Generator, who: np.ndarray | None = None):
        """_needs for step k (without its context: a step ahead draws before its context exists)."""
        if who is None:
            who = np.flatnonzero(self.next_need == k)
        n = who.size
        if n == 0:
            return None
        buffer = self._need_buffers[k % 2]
        if buffer.size < 8 * n:  # grown by 40% at least, never shrunk
            buffer = self._need_buffers[k % 2] = np.empty(8 * max(n, buffer.size // 8 * 7 // 5))
        u = buffer[: 6 * n].reshape(6, n)
        new_threshold = buffer[6 * n : 7 * n]
        procedure = rng.integers(0, n_procedures, n)
        rng.random(out=u)
        rng.standard_exponential(out=new_threshold)  # what rng.exponential(size=n) draws (scale 1)
        if self.p_need < INVERSION_BELOW:  # the draws of rng.geometric(p_need, n), made as numpy makes them
            exponentials = buffer[7 * n : 8 * n]
            rng.standard_exponential(out=exponentials)
            kernels.geometric_waits(exponentials, who, self.p_need, k, self.next_need)
        else:
            self.next_need[who] = rng.geometric(self.p_need, n) + k
        return Needs(who, procedure, u, new_threshold)

    def step(self, ctx: StepContext, rng: np.random.Generator) -> None:
        """One step of every citizen: dealings with government, adoption, access, learning, trust.

        Dealings change only users (the trust of those who fail, and the threshold of those who lapse), who
        cannot adopt, so the adoption hazard computed after them is the one at the start of the step; every
        rule reads the state at the start of the step, and who starts or stops using is applied last."""
        c, dt, rows = self.params, self.dt, self.arrays.rows
        drawn, self._drawn = self._drawn, None
        if drawn is None:
            needs = self._needs(ctx, rng, rows[: kernels.due(self.next_need, ctx.k, rows)].copy())
        elif drawn[0] == ctx.k:
            needs = drawn[1]
        else:  # the model steps one step at a time: anything else is a fault of the caller
            raise RuntimeError(f"the citizens were stepped at step {ctx.k} after drawing step {drawn[0]}'s dealings")
        needs = needs or self._no_needs
        ahead, ahead_from = None, DRAW_AHEAD_FROM
        if ahead_from is not None and self.n >= ahead_from and ctx.k + 1 < self.needs_per_step.shape[0] - 1:
            ahead = DrawAhead(self, ctx.k + 1, ctx.rent_rel.size, rng)
        if self.well_mixed:  # every citizen sees the province's user share
            rate = (c.p0 * dt + c.q0 * dt * self.users / self.province_sizes).astype(np.float32)
        else:
            rate = self._p0_dt
        step = CitizenStep(
            k=ctx.k,
            digitised=ctx.digitised,
            portal=ctx.portal,
            national_share=ctx.national_share,
            login_failure=ctx.login_failure,
            servant_state=self.civil_service.state,
            servant_deterrence=ctx.servant_deterrence,
            rent_rel=ctx.rent_rel,
            report_prob=ctx.report_prob,
            ease_usability=ctx.ease_usability,
            useful_share=ctx.useful_share,
            rate=rate,
            access_hazard=ctx.access_hazard,
            literacy_step=ctx.literacy_step,
            trust_step=ctx.trust_step,
            trust_moves=ctx.trust_moves,
        )
        try:
            lowest = kernels.citizen_step(self.arrays, self.constants, step, needs)
        finally:  # no thread outlives the step, whatever happened in it
            if ahead is not None:
                ahead.join()
        if ahead is not None:
            self._drawn = ahead.result()
        if lowest < _REBASE_BELOW:
            self._rebase()

    def province_slice(self, p: int) -> slice:
        return slice(int(self.group_start[4 * p]), int(self.group_start[4 * p + 4]))

    def _rebase(self) -> None:
        """Literacy and trust are stored as 1 - gap x G: fold G into the gaps before it underflows float32."""
        for g in np.flatnonzero(self.lit_G < _REBASE_BELOW):
            sl = self.group_slice(g)
            self.lit_gap[sl] = _flush(self.lit_gap[sl] * self.lit_G[g])
            self.lit_G[g] = 1.0
            self.lit_gap_sum[g] = self.lit_gap[sl].sum(dtype=np.float64)
        for p in np.flatnonzero(self.trust_H < _REBASE_BELOW):
            sl = self.province_slice(p)
            self.distrust[sl] = _flush(self.distrust[sl] * self.trust_H[p])
            self.trust_H[p] = 1.0
            for g in range(4 * p, 4 * p + 4):
                self.distrust_sum[g] = self.distrust[self.group_slice(g)].sum(dtype=np.float64)

    def servants_changed(self, servants: np.ndarray) -> None:
        """Citizens served by these civil servants (whose use of the system changed) see their new reliability."""
        if servants.size == 0:
            return
        cs = self.civil_service
        kernels.set_reliability(
            self.served_rel, self._served_order, self._served_ptr, servants, cs.state, cs.reliability_of_state()
        )

    # ---- per-citizen values on request ----------------------------------------------------------------

    @property
    def literacy(self) -> np.ndarray:
        """Digital literacy of every citizen (computed on request)."""
        return (1.0 - self.lit_gap * self.lit_G.astype(np.float32)[self.group]).astype(np.float32)

    @property
    def trust(self) -> np.ndarray:
        """Trust in government online of every citizen (computed on request)."""
        return (1.0 - self.distrust * self.trust_H.astype(np.float32)[self.province]).astype(np.float32)


def _flush(x: np.ndarray) -> np.ndarray:
    """Zero values too small for float32 arithmetic to stay fast (denormals)."""
    x[np.abs(x) < 1e-30] = 0.0
    return x


class ServantLayout:
    """Civil servants, province after province, and the draws made at the start: e-office use, skill, informal
    income (shared by the fast and the plain path, so both start from the same civil servants with the same
    seed)."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self.params = cs = scenario.civil_servants
        self.dt = scenario.dt
        provs = list(scenario.provinces.values())
        counts = np.array([p.civil_servants for p in provs])
        self.n = int(counts.sum())
        self.n_provinces = len(provs)
        self.province = np.repeat(np.arange(len(provs)), counts).astype(np.uint8)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.of_province = [np.arange(s, s + c) for s, c in zip(starts, counts)]
        self.counts = counts
        # commune-level staff serve rural citizens, in proportion to the rural population
        self.commune = np.zeros(self.n, dtype=bool)
        for p, staff in zip(provs, self.of_province):
            n_commune = round(staff.size * (1 - p.urban_share))
            self.commune[staff[:n_commune]] = True
        self.state = np.full(self.n, NON_USER, dtype=np.int8)
        self.skill = np.concatenate([beta_draws(rng, cs.skill_mean, c, cs.skill_concentration) for c in counts])
        self.skill = self.skill.astype(np.float32)
        self.rent = (rng.beta(cs.rent_shape, cs.rent_shape, self.n) * 2 * cs.rent_mean).astype(np.float32)
        self.to_genuine = rng.exponential(size=self.n)
        self.to_ceremonial = rng.exponential(size=self.n)
        # offices: a small-world graph inside each province (one block per province: homophily 1, no links across)
        self.adjacency = block_ring_network(counts, cs.offices_degree, 1.0, cs.offices_rewiring, rng)
        # enforcement: how closely each official is watched, or how hard punished, relative to pi F (mean 1; the
        # draw comes last, so switching the rule off changes no other draw)
        z = rng.standard_normal(self.n)
        sigma = cs.enforcement_spread
        self.enforcement = portable.exp(sigma * z - sigma * sigma / 2)
        self.cascade = np.where(self.commune, 1 - cs.cascade_loss, 1.0)  # training that reaches each servant
        self._training_rate = (None, None)  # (training, the rate it gives each servant): skill_rate
        self.inv_degree = 1.0 / np.maximum(np.diff(self.adjacency.indptr), 1)
        self.rent_mean_of_province = np.bincount(self.province, weights=self.rent, minlength=self.n_provinces) / counts

    def reliability(self) -> np.ndarray:
        """Chance an online dossier handled by each civil servant goes through: always with a genuine user; a
        ceremonial user logs it but works on paper, so it stalls with chance failure_ceremonial; a non-user sends
        it back to the counter with chance redirect_non_user."""
        return self.reliability_of_state()[self.state]

    def reliability_of_state(self) -> np.ndarray:
        """Reliability of a NON_USER, CEREMONIAL and GENUINE civil servant (float32)."""
        cs = self.params
        return np.array([1.0 - cs.redirect_non_user, 1.0 - cs.failure_ceremonial, 1.0], dtype=np.float32)

    def deterrence(self, detection_penalty: np.ndarray) -> np.ndarray:
        """D_i = max(0, 1 - pi_eff F m_i): the share of an informal rent still worth asking for, per civil
        servant, from pi_eff F of each province. Smooth and decreasing in pi F on average over officials."""
        return kernels.servant_deterrence(detection_penalty, self.province, self.enforcement)

    def deterrence_now(
        self, detection: np.ndarray, feedback: np.ndarray, penalty: np.ndarray, reported: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per civil servant, deterrence D_i (deterrence) under pi_eff = min(1, detection + feedback x the share of
        informal payments reported) and the penalty F of each province; per province, the mean of D_i and of the
        informal income at risk, rent_i x D_i (one compiled call: kernels.enforcement)."""
        return kernels.enforcement(
            detection, feedback, penalty, reported, self.province, self.enforcement, self.rent, self.counts
        )

    def training_rate(self, training: np.ndarray) -> np.ndarray:
        """The part of skill_rate that training gives each civil servant (less the cascade loss at commune level)."""
        if self._training_rate[0] is not training:  # training changes only when an event fires
            self._training_rate = (training, self.params.training_effect * training[self.province] * self.cascade)
        return self._training_rate[1]

    def skill_rate(self, training: np.ndarray) -> np.ndarray:
        """Rate at which each civil servant's skill approaches one: training (less the cascade loss at commune
        level) plus learning by doing for ceremonial users (state at the start of the step). The fast path's loop
        (kernels._servant_step) adds the learning by doing itself, servant by servant."""
        cs = self.params
        rate = self.training_rate(training)
        if cs.learning_by_doing:
            rate = rate + cs.learning_by_doing * (self.state == CEREMONIAL)
        return rate

    def set_commune_cascade(self, retained: float) -> None:
        """Training's share reaching commune-level staff from now on (the district tier ends: model/jurisdictions.py)."""
        self.cascade = np.where(self.commune, retained, 1.0)
        self._training_rate = (None, None)

    def serve(self, citizens_per_servant: np.ndarray) -> None:
        """Record how many citizens each civil servant serves."""
        self.citizens_per_servant = citizens_per_servant


class CivilService(ServantLayout):
    """All civil servants of a run (the fast path): their arrays are `arrays` (kernels.ServantArrays, made by
    `serve`), the state the compiled loop reads and updates in place."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        super().__init__(scenario, rng)
        cs = self.params
        # kept up to date as servants convert (genuine use is never dropped): genuine colleagues of each
        # servant, and genuine and ceremonial users per province
        self.genuine_colleagues = np.zeros(self.n)
        self.genuine_count = np.zeros(self.n_provinces, dtype=np.int64)
        self.ceremonial_count = np.zeros(self.n_provinces, dtype=np.int64)
        self.skill_sum = np.bincount(self.province, weights=self.skill, minlength=self.n_provinces)
        self._level = self.commune.astype(np.intp)  # column of StepContext.agency_it: 0 office, 1 commune
        self._q_dt = cs.q * self.inv_degree * self.dt  # q x colleagues' share, x dt
        self._rent_weight = cs.weight_rent * self.rent.astype(np.float64)  # weight x informal income at stake
        self._ceremonial_left = True  # some non-user may still go ceremonial
        self._mandated = (None, False)  # (mandate levers, whether any province has a mandate)
        self.constants = record(
            SERVANT_CONSTANTS,
            p_dt=cs.p * self.dt,
            weight_usability=cs.weight_usability,
            weight_skill=cs.weight_skill,
            weight_leader=cs.weight_leader,
        )

    def step(self, ctx: StepContext) -> np.ndarray:
        """One step of every civil servant; returns those who became genuine users. `changed` is then every one
        whose state changed in this step (a view of a scratch buffer: the next step overwrites it).

        Genuine-use hazard (p + q x share of genuine colleagues) x exp(utility) x K of their agency level,
        utility = w_u (U - 1/2)
        + w_s (skill - 1/2) + w_l x leader pull - w_r x informal income at risk; ceremonial log-in hazard
        mandate_rate x mandate for non-users."""
        cs, dt = self.params, self.dt
        if self._mandated[0] is not ctx.mandate:  # mandates change only when an event fires
            self._mandated = (ctx.mandate, bool(ctx.mandate.any()))
        ceremonial = bool(self._ceremonial_left and cs.mandate_rate and self._mandated[1])
        step = ServantStep(
            usability=ctx.usability,
            leader_pull=ctx.leader_pull,
            rent_weight=self._rent_weight,
            deterrence=ctx.servant_deterrence,
            ceremonial=ceremonial,
            ceremonial_dt=cs.mandate_rate * ctx.mandate * dt if ceremonial else _NO_PROVINCES,
            training_rate=self.training_rate(ctx.training),
            learning_by_doing=float(cs.learning_by_doing),
            dt=dt,
            agency_it=ctx.agency_it,
            level=self._level,
        )
        count, self._ceremonial_left, changed = kernels.servant_step(self.arrays, self.constants, step)
        self.changed = self.arrays.changed[:changed]
        return self.arrays.rows[:count].copy()

    def serve(self, citizens_per_servant: np.ndarray) -> None:
        """Record how many citizens each civil servant serves (for the reliability citizens see)."""
        super().serve(citizens_per_servant)
        self.served = np.bincount(self.province, weights=citizens_per_servant, minlength=self.n_provinces)
        genuine = self.state == GENUINE
        self.served_genuine = np.bincount(
            self.province[genuine], weights=citizens_per_servant[genuine], minlength=self.n_provinces
        ).astype(np.float64)
        ceremonial = self.state == CEREMONIAL
        self.served_ceremonial = np.bincount(
            self.province[ceremonial], weights=citizens_per_servant[ceremonial], minlength=self.n_provinces
        ).astype(np.float64)
        self.arrays = ServantArrays(
            province=self.province,
            state=self.state,
            skill=self.skill,
            to_genuine=self.to_genuine,
            to_ceremonial=self.to_ceremonial,
            genuine_colleagues=self.genuine_colleagues,
            q_dt=self._q_dt,
            citizens_served=citizens_per_servant,
            indptr=self.adjacency.indptr,
            indices=self.adjacency.indices,
            genuine_count=self.genuine_count,
            ceremonial_count=self.ceremonial_count,
            served_genuine=self.served_genuine,
            served_ceremonial=self.served_ceremonial,
            skill_sum=self.skill_sum,
            rows=np.empty(self.n, dtype=np.int64),
            changed=np.empty(self.n, dtype=np.int64),
        )
        self.changed = self.arrays.changed[:0]
        self.tallies = ServantTallies(
            counts=self.counts,
            genuine_count=self.genuine_count,
            ceremonial_count=self.ceremonial_count,
            skill_sum=self.skill_sum,
            served=self.served,
            served_genuine=self.served_genuine,
            served_ceremonial=self.served_ceremonial,
            reliability=self.reliability_of_state().astype(np.float64),
        )


_NO_PROVINCES = np.empty(0)


def measure(model, out: np.ndarray | None = None) -> np.ndarray:
    """Every outcome of every province at the model's current step (the fast path): an array (provinces,
    columns of outcomes.COLUMNS), written into `out` if given.

    Costs O(provinces): the citizens' and civil servants' counts and sums are the counters they keep up to date
    at events (their `tallies`), and the arithmetic is one compiled loop (kernels.measure); plain.measure counts
    the same outcomes over every agent."""
    P = len(model.leaders)
    if out is None:
        out = np.empty((P, len(COLUMNS)))
    channels = model.channels_now()
    leaders = leader_table(model.leaders, model.central.levers.roadmap_clarity, channels)
    kernels.measure(
        out,
        model.step_index,
        model.citizens.tallies,
        model.civil_service.tallies,
        channels.online_share,
        leaders,
        model.supply_weights,
    )
    spend, spend_cumulative = SPEND_COLS
    out[:, spend], out[:, spend_cumulative] = model.spending_columns()
    return out


def leader_table(leaders, roadmap: float, channels) -> np.ndarray:
    """What measure() records of the leaders as they are: (P, len(outcomes.LEADER_VALUES)), in that order. The
    usability and the province's fully online share are the channels' (model.channels_now: the same values from the
    same state); a share of procedures is sum / count, the value ndarray.mean gives, the sum numpy's, compiled
    (kernels.pairwise_sum)."""
    n_procedures = channels.digitised.shape[1]
    usability, online = channels.usability.tolist(), channels.provincial_share.tolist()
    return np.array(
        [
            (
                roadmap,
                usability[p],
                leader.will,
                leader.n_systems,
                leader.it_waste,
                online[p],
                kernels.pairwise_sum(leader.published) / n_procedures,
                leader.agency_it,
            )
            for p, leader in enumerate(leaders)
        ]
    )
