"""The compiled loops of the fast path: the citizens' and civil servants' rules of population.py and the outcomes of
a step, compiled by numba (nopython) on first use and cached on disk (model/compiled.py): about 12 s the very first
time, about 0.4 s in a new process after that.

The rules have two implementations: these loops, and reference.py, which states each rule the direct way (every
citizen's and civil servant's every quantity every step, every aggregate a full count); tests/test_kernels.py
checks that they agree.

The loops take their state as named structures and update it in place: the citizens' arrays (CitizenArrays,
population.Citizens.arrays) and the civil servants' (ServantArrays, CivilService.arrays), what a step reads
(CitizenStep, ServantStep), the draws of the dealings with government (Needs), the counters outcomes read
(CitizenTallies, ServantTallies), and records (structured arrays of length 1) of the run's constants
(CITIZEN_CONSTANTS, SERVANT_CONSTANTS) and of the outcome columns (COLUMNS_RECORD). numba types a namedtuple
argument by encoding its class and field names on every call, about 0.09 microseconds a field more than a plain
tuple (some 7 microseconds a step in all, 5% of a small model's step), so the entry points (citizen_step,
servant_step, measure) hand the compiled loops each structure as a plain tuple, and the loops name its fields
again on entry (`cit = CitizenArrays(*cit)`: free once compiled).

Why compiled loops: a step of 10,000 citizens costs about 17 numpy passes over the citizens plus about a
hundred small array operations for the few who have an event; each call costs 1-2 microseconds, so the fixed
cost dominates at small sizes, and the passes (and their float32 temporaries) dominate at large ones. A loop
visits each citizen once, touches only those who can adopt, and has no temporaries.

Arithmetic: the adoption hazard is float32 throughout, with exp computed by a fixed polynomial (Cephes expf,
written out in _adopt so that the loop vectorises, SIMD); the civil servants' exp is portable.exp_scalar (the C
library's differs between systems); float32 values compared with float64 accumulators are compared exactly (as
float64); sums are taken in a fixed order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from egovsim.model.compiled import jit
from egovsim.model.outcomes import COL, LEADER_COLS, SHARE_COLS, SHARE_FROM
from egovsim.model.portable import exp_scalar

NON_USER, CEREMONIAL, GENUINE = 0, 1, 2  # civil-servant states (as in population.py)


# ---- the named structures ----------------------------------------------------------------------------------------


class CitizenArrays(NamedTuple):
    """The fast path's citizens (population.Citizens.arrays), read and updated in place by the loops.

    One entry per citizen unless stated; G groups (province x block, group = 4 x province + block), P provinces."""

    group: np.ndarray  # group of each citizen (uint8)
    group_start: np.ndarray  # (G + 1,) first row of each group: the groups are contiguous
    access: np.ndarray  # internet at home (bool)
    active: np.ndarray  # uses online services now (bool)
    adopted: np.ndarray  # has ever adopted (bool)
    eligible: np.ndarray  # could adopt now: access and not active (bool)
    served_rel: np.ndarray  # reliability of the citizen's civil servant, by their state (float32)
    civil_servant: np.ndarray  # the civil servant who serves the citizen (int32)
    to_adopt: np.ndarray  # remaining adoption threshold (float32; inf for users)
    lit_gap: np.ndarray  # literacy = 1 - lit_gap x lit_G[group] (float32)
    distrust: np.ndarray  # trust = 1 - distrust x trust_H[province] (float32)
    last_online: np.ndarray  # step of the last online use (int32)
    last_portal: np.ndarray  # ... on the national portal
    last_provincial: np.ndarray  # ... on the province's own portal
    q_dt: np.ndarray  # q0 dt / degree (float32); empty if well mixed
    user_neighbours: np.ndarray  # contacts who use online services now; empty if well mixed
    indptr: np.ndarray  # the contact network (CSR); no links if well mixed
    indices: np.ndarray
    lit_G: np.ndarray  # (G,) exp(-literacy rate integrated so far)
    trust_H: np.ndarray  # (P,) exp(-trust rate integrated so far)
    lit_gap_sum: np.ndarray  # (G,) sum of lit_gap
    distrust_sum: np.ndarray  # (G,) sum of distrust
    access_H: np.ndarray  # (G,) access hazard integrated so far
    access_count: np.ndarray  # (G,) citizens with access
    adopted_count: np.ndarray  # (G,) citizens who have ever adopted
    users: np.ndarray  # (P,) users per province if well mixed; empty otherwise
    access_threshold: np.ndarray  # per group, the access thresholds of those without access at the start,
    #                               sorted, each group's run ending in +inf (float32)
    access_order: np.ndarray  # the row of each threshold
    access_next: np.ndarray  # (G,) each group's first threshold not yet passed
    used_per_step: np.ndarray  # (steps + 1, G) citizens by the step of their last online use
    portal_per_step: np.ndarray  # (steps + 1, G) ... on the national portal
    provincial_per_step: np.ndarray  # (steps + 1, G) ... on the province's own portal
    needs_per_step: np.ndarray  # (steps + 1, P) dealings with government, row k + 1 for step k
    payments_per_step: np.ndarray  # (steps + 1, P) of them with an informal payment
    online_per_step: np.ndarray  # (steps + 1, P) of them completed online
    reported_payments_per_step: np.ndarray  # (steps + 1, P) informal payments reported
    reports_per_step: np.ndarray  # (steps + 1, P) reports: informal payments and failed online dossiers
    rows: np.ndarray  # (n + 1,) scratch: the rows a loop returns


# The citizens' constants of a run, one record: the loops read it as `c = constants[0]`, then c.beta_ease etc.
CITIZEN_CONSTANTS = np.dtype(
    [
        ("dt", np.float64),  # step length (years)
        ("networked", np.bool_),  # a contact network (else each citizen sees the province's user share)
        ("failure_ceremonial", np.float64),  # chance a ceremonial user's online dossier stalls
        ("redirect_non_user", np.float64),  # chance a non-user sends an online dossier back to the counter
        ("ask0", np.float64),  # informal_ask_prob
        ("online_ask_share", np.float64),  # an online dossier's chance of a payment relative to the counter's
        ("trust_loss", np.float64),  # share of trust a failed online dossier costs
        ("lapse_prob", np.float64),  # chance a failure ends use
        ("betas", np.bool_),  # any covariate effect (else the adoption hazard is the Bass rate alone)
        ("cap", np.float32),  # largest log multiplier of the adoption hazard (inf: no cap needed)
        ("lang", np.float64, (4,)),  # language factor of each block
        ("beta_usefulness", np.float64),
        ("beta_ease", np.float64),
        ("beta_trust", np.float64),
        ("reference_usefulness", np.float64),
        ("const0", np.float64),  # beta_trust (1 - reference_trust) - beta_ease reference_ease
    ]
)


class CitizenStep(NamedTuple):
    """What the citizens' rules read in step k (population.Citizens.step)."""

    k: int
    digitised: np.ndarray  # (P, J) chance an instance of each procedure is fully online on the province's portal
    portal: np.ndarray  # (J,) ... on the national portal
    national_share: np.ndarray  # (P,) chance of the national portal when both are possible
    login_failure: float  # chance logging in to the national portal fails
    servant_state: np.ndarray  # the civil servants' states (int8)
    servant_deterrence: np.ndarray  # D_i of each civil servant
    rent_rel: np.ndarray  # (J,) rent of each procedure relative to the mean
    report_prob: np.ndarray  # (P,) chance a citizen with access reports a payment asked or a failure
    ease_usability: np.ndarray  # (P,) usability of the channels, weighted by availability
    useful_share: np.ndarray  # (P,) usefulness before the civil servant's reliability
    rate: np.ndarray  # (P,) p0 dt, plus q0 dt x the province's user share if well mixed (float32)
    access_hazard: np.ndarray  # (G,) per year
    literacy_step: np.ndarray  # (G,) exp(-literacy rate x dt)
    trust_step: np.ndarray  # (P,) exp(-trust rate x dt)
    trust_moves: bool  # any trust_step below 1


class Needs(NamedTuple):
    """Citizens with a dealing with government this step, and its draws (CitizenLayout._needs)."""

    who: np.ndarray  # rows, ascending
    procedure: np.ndarray  # the procedure of each
    u: np.ndarray  # (6, len(who)) uniform draws: online, works, lapse, pay, channel, report
    new_threshold: np.ndarray  # a new adoption threshold, for those whose use lapses


class ServantArrays(NamedTuple):
    """The fast path's civil servants (population.CivilService.arrays), read and updated in place by the loops."""

    province: np.ndarray  # province of each (uint8)
    state: np.ndarray  # NON_USER, CEREMONIAL or GENUINE (int8)
    skill: np.ndarray  # digital skill (float32)
    to_genuine: np.ndarray  # remaining threshold of genuine use
    to_ceremonial: np.ndarray  # remaining threshold of ceremonial log-in
    genuine_colleagues: np.ndarray  # colleagues who genuinely use the system (float64)
    q_dt: np.ndarray  # q x dt / degree
    citizens_served: np.ndarray  # citizens each one serves
    indptr: np.ndarray  # the offices network (CSR)
    indices: np.ndarray
    genuine_count: np.ndarray  # (P,) genuine users
    ceremonial_count: np.ndarray  # (P,) ceremonial users
    served_genuine: np.ndarray  # (P,) citizens served by genuine users (float64)
    served_ceremonial: np.ndarray  # (P,) citizens served by ceremonial users (float64)
    skill_sum: np.ndarray  # (P,) sum of skill
    rows: np.ndarray  # scratch: the rows a loop returns
    changed: np.ndarray  # scratch: the rows whose state changed in the last step


# The civil servants' constants of a run, one record (read as `c = constants[0]`).
SERVANT_CONSTANTS = np.dtype(
    [
        ("p_dt", np.float64),  # p x dt
        ("weight_usability", np.float64),
        ("weight_skill", np.float64),
        ("weight_leader", np.float64),
    ]
)


class ServantStep(NamedTuple):
    """What the civil servants' rules read in a step (population.CivilService.step)."""

    usability: np.ndarray  # (P,)
    leader_pull: np.ndarray  # (P,) leader will x monitoring
    rent_weight: np.ndarray  # weight_rent x informal income of each civil servant
    deterrence: np.ndarray  # D_i of each civil servant: rent_weight x D_i is the income at risk's weight
    ceremonial: bool  # non-users may log in ceremonially this step
    ceremonial_dt: np.ndarray  # (P,) mandate_rate x mandate x dt (if ceremonial)
    training_rate: np.ndarray  # the rate training gives each civil servant's skill (CivilService.training_rate)
    learning_by_doing: float  # added to it for ceremonial users (their state at the start of the step)
    dt: float
    agency_it: np.ndarray  # (P, 2) agencies' IT equipment K of province/district and of commune agencies
    level: np.ndarray  # each civil servant's column of agency_it (0 office, 1 commune)


class CitizenTallies(NamedTuple):
    """What outcomes read from the fast path's citizens: counters kept up to date at events (Citizens.tallies)."""

    group_sizes: np.ndarray  # (G,)
    province_sizes: np.ndarray  # (P,)
    adopted_count: np.ndarray  # (G,)
    access_count: np.ndarray  # (G,)
    used_per_step: np.ndarray  # (steps + 1, G) by the step of the last online use
    portal_per_step: np.ndarray  # (steps + 1, G) ... on the national portal
    provincial_per_step: np.ndarray  # (steps + 1, G) ... on the province's own portal
    lit_G: np.ndarray  # (G,) the sum of literacy of a group is size - lit_G x lit_gap_sum
    lit_gap_sum: np.ndarray  # (G,)
    trust_H: np.ndarray  # (P,) the sum of trust of a group is size - trust_H x distrust_sum
    distrust_sum: np.ndarray  # (G,)
    needs_per_step: np.ndarray  # (steps + 1, P)
    payments_per_step: np.ndarray  # (steps + 1, P)
    online_per_step: np.ndarray  # (steps + 1, P)
    reports_per_step: np.ndarray  # (steps + 1, P)
    steps_per_year: int


class ServantTallies(NamedTuple):
    """What outcomes read from the fast path's civil servants (CivilService.tallies)."""

    counts: np.ndarray  # (P,) civil servants
    genuine_count: np.ndarray  # (P,)
    ceremonial_count: np.ndarray  # (P,)
    skill_sum: np.ndarray  # (P,)
    served: np.ndarray  # (P,) citizens served
    served_genuine: np.ndarray  # (P,) of them by genuine users
    served_ceremonial: np.ndarray  # (P,) of them by ceremonial users
    reliability: np.ndarray  # (3,) reliability of a non-user, a ceremonial and a genuine user (float32 values)


# Where `measure` writes each outcome: a record with one field per column of outcomes.COLUMNS holding its index,
# the (measure, subgroup) cell of each share (outcomes.SHARE_COLS, SHARE_FROM) and the leaders' columns. It is
# an argument, not a global, so numba's cache (keyed on this file only) never holds stale column positions.
COLUMNS_RECORD = np.dtype(
    [(name, np.int64) for name in COL]
    + [
        ("share_cols", np.int64, (SHARE_COLS.size,)),
        ("share_from", np.int64, (SHARE_FROM.size,)),
        ("leader_cols", np.int64, (LEADER_COLS.size,)),
    ]
)


def record(dtype: np.dtype, **values) -> np.ndarray:
    """A record (structured array of length 1) with every field of `dtype` set from `values`."""
    if set(values) != set(dtype.names):
        raise ValueError(f"record fields {sorted(values)} are not {sorted(dtype.names)}")
    out = np.zeros(1, dtype=dtype)
    for name, value in values.items():
        out[name] = value
    return out


MEASURE_COLUMNS = record(COLUMNS_RECORD, **COL, share_cols=SHARE_COLS, share_from=SHARE_FROM, leader_cols=LEADER_COLS)


# ---- the citizens ----------------------------------------------------------------------------------------------


@jit
def due(next_need, k, rows):
    """The rows (ascending) whose next need is at step k, into `rows`; returns their count."""
    count = 0
    for i in range(next_need.size):  # branch-free: every row is written, the count moves only on a match
        rows[count] = i
        count += next_need[i] == k
    return count


@jit
def geometric_waits(exponentials, who, p_need, k, next_need):
    """next_need[who] = k + the geometric waits numpy's rng.geometric(p_need) makes from these standard exponential
    draws E, for p_need < 1/3 (population.Citizens._draw_needs): numpy draws a geometric below p = 1/3 as
    ceil(-E / log1p(-p)) from one standard exponential each (its inversion method), recomputing log1p(-p) at every
    draw, the largest single cost of the draws of a step's dealings; here it is computed once. The same numbers
    bit for bit, and the stream left where numpy leaves it (tests/test_kernels.py)."""
    log_stay = math.log1p(-p_need)
    for i in range(who.size):
        wait = math.ceil(-exponentials[i] / log_stay)
        next_need[who[i]] = np.int64(min(wait, 2.0**62)) + k  # numpy caps it at INT64_MAX: both "never"


def citizen_step(cit: CitizenArrays, constants: np.ndarray, step: CitizenStep, needs: Needs) -> float:
    """One step of the citizens after the draws (population.Citizens.step): dealings with government, adoption,
    access, learning and trust, then who starts or stops using; returns the smallest of the learning factors.
    `constants` is a CITIZEN_CONSTANTS record."""
    return _citizen_step(tuple(cit), constants, tuple(step), tuple(needs))


@jit
def _citizen_step(cit, constants, step, needs):
    cit, step, needs = CitizenArrays(*cit), CitizenStep(*step), Needs(*needs)
    dt = constants[0].dt
    lapsed = np.empty(needs.who.size, dtype=cit.rows.dtype)
    n_lapsed = _deal(cit, constants, step, needs, lapsed)
    n_new = _adopt(cit, constants, step)
    for g in range(cit.access_H.size):
        cit.access_H[g] += step.access_hazard[g] * dt
    _gain_access(cit)
    lowest = np.inf
    for g in range(cit.lit_G.size):
        cit.lit_G[g] *= step.literacy_step[g]
        lowest = min(lowest, cit.lit_G[g])
    if step.trust_moves:
        for p in range(cit.trust_H.size):
            cit.trust_H[p] *= step.trust_step[p]
            lowest = min(lowest, cit.trust_H[p])
    _set_users(cit, cit.rows[:n_new], True)
    _set_users(cit, lapsed[:n_lapsed], False)
    return lowest


@jit
def _deal(cit, constants, step, needs, lapsed):
    """Dealings with government of the citizens needs.who (docs/ODD.md 7.3). A user whose procedure is fully
    online on a channel tries it online: on the province's portal, or on the national one (when both, with
    chance national_share), where logging in fails with chance login_failure; the dossier is then handled by the
    citizen's civil servant: a genuine user processes it, a ceremonial user lets it stall with chance
    failure_ceremonial, a non-user sends it back to the counter with chance redirect_non_user (no failure). A
    failure costs a share `trust_loss` of trust and may end use (those rows go into `lapsed`, ascending; returns
    their count). An informal payment is asked with chance min(1, ask0 rent_j D_i) at the counter, online_ask_share
    times that online; a citizen with access reports a payment asked, or a failure, with chance report_prob.
    Counts dealings, payments, dealings online and reports per province, use in the last-online histograms."""
    c = constants[0]
    f_cer, f_non, loss, lapse_prob = c.failure_ceremonial, c.redirect_non_user, c.trust_loss, c.lapse_prob
    ask0, theta = c.ask0, c.online_ask_share
    f_login = step.login_failure
    who, procedure, u, new_threshold = needs.who, needs.procedure, needs.u, needs.new_threshold
    k = step.k
    G = cit.distrust_sum.size
    needs_now, payments_now = cit.needs_per_step[k + 1], cit.payments_per_step[k + 1]
    online_now, reported_now, reports_now = (
        cit.online_per_step[k + 1],
        cit.reported_payments_per_step[k + 1],
        cit.reports_per_step[k + 1],
    )
    change = np.zeros(G)
    used_now = np.zeros(G, dtype=np.int64)
    keep = np.float32(1 - loss)
    count = 0
    for j in range(who.size):
        i = who[j]
        g = cit.group[i]
        p = g // 4
        pr = procedure[j]
        s = cit.civil_servant[i]
        works = False
        failed = False
        national = False
        if cit.active[i]:
            provincial_ok = u[0, j] < step.digitised[p, pr]
            national_ok = u[0, j] < step.portal[pr]
            if provincial_ok or national_ok:
                national = national_ok and (not provincial_ok or u[4, j] < step.national_share[p])
                uw = u[1, j]
                if national and uw < f_login:
                    failed = True
                else:
                    if national:  # given the login worked, uw is again uniform on [0, 1)
                        uw = (uw - f_login) / (1.0 - f_login)
                    state = step.servant_state[s]
                    if state == GENUINE:
                        works = True
                    elif state == CEREMONIAL:
                        failed = uw < f_cer
                        works = not failed
                    else:
                        works = uw >= f_non  # else back to the counter
        needs_now[p] += 1
        ask = min(1.0, ask0 * step.rent_rel[pr] * step.servant_deterrence[s])
        if works:
            ask = theta * ask
        paid = u[3, j] < ask
        reports = cit.access[i] and u[5, j] < step.report_prob[p]
        if paid:
            payments_now[p] += 1
            if reports:
                reported_now[p] += 1
                reports_now[p] += 1
        if works:
            online_now[p] += 1
            before = cit.last_online[i]
            if before >= 0:
                cit.used_per_step[before, g] -= 1
            used_now[g] += 1
            cit.last_online[i] = k
            if national:
                _used_channel(cit.last_portal, cit.portal_per_step, i, g, k)
            else:
                _used_channel(cit.last_provincial, cit.provincial_per_step, i, g, k)
        elif failed:
            if reports:
                reports_now[p] += 1
            if loss != 0:
                h = cit.trust_H[p]
                old = cit.distrust[i]
                trust = (1.0 - old * h) * keep
                new = np.float32((1.0 - trust) / h)
                cit.distrust[i] = new
                change[g] += np.float64(new) - np.float64(old)
            if u[2, j] < lapse_prob:
                cit.to_adopt[i] = np.float32(new_threshold[j])
                lapsed[count] = i
                count += 1
    for g in range(G):
        cit.used_per_step[k, g] += used_now[g]
        cit.distrust_sum[g] += change[g]
    return count


@jit
def _used_channel(last, per_step, i, g, k):
    """Citizen i (group g) used a channel in step k: move them in that channel's last-use histogram."""
    before = last[i]
    if before >= 0:
        per_step[before, g] -= 1
    per_step[k, g] += 1
    last[i] = k


_CHUNK = 4096
# exp for float32 (Cephes expf: Cody-Waite reduction and a degree-6 polynomial, within 1.5 ulp of exp):
# exp(y) = poly(y) x 2^n, y clamped to [-87, 88] (exp(-87) ~ 1.6e-38 is no hazard at float32 precision)
_LOG2E, _C1, _C2 = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P = tuple(
    np.float32(c)
    for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
)
_LO, _HI, _HALF, _ONE = np.float32(-87.0), np.float32(88.0), np.float32(0.5), np.float32(1.0)


@jit
def _adopt(cit, constants, step):
    """Subtract each eligible citizen's adoption hazard x dt from their remaining threshold; the rows (ascending)
    whose threshold is reached go into cit.rows, and their count is returned.

    hazard dt = (rate_p + q_dt_i x user neighbours_i) x exp(log multiplier), with the log multiplier of
    reference.PlainCitizens.adoption_hazard in the stored form of literacy (1 - lit_gap G_g) and trust
    (1 - distrust H_p): const_g + lit_coef_g lit_gap_i + trust_coef_p distrust_i + gain_p x the reliability of
    the citizen's civil servant_i (usefulness = useful share x reliability, ease = usability of the channels x
    language x literacy), capped at `cap`; without betas the first factor alone."""
    c = constants[0]
    networked, betas, cap, lang = c.networked, c.betas, c.cap, c.lang
    bu, be, bt, ru, const0 = c.beta_usefulness, c.beta_ease, c.beta_trust, c.reference_usefulness, c.const0
    rate, usability, useful_share = step.rate, step.ease_usability, step.useful_share
    group_start, lit_G, trust_H, out = cit.group_start, cit.lit_G, cit.trust_H, cit.rows
    count = 0
    poly = np.ones(_CHUNK, dtype=np.float32)
    bits = np.full(_CHUNK, 127 << 23, dtype=np.int32)  # 2^0
    scale = bits.view(np.float32)
    L2E, C1, C2, LO, HI, HALF, ONE = _LOG2E, _C1, _C2, _LO, _HI, _HALF, _ONE
    P0, P1, P2, P3, P4, P5 = _P
    for g in range(group_start.size - 1):
        p = g // 4
        r0 = rate[p]
        # the group's coefficients of the log multiplier (float32)
        ease = usability[p] * lang[g % 4]
        const = np.float32(-bu * ru + const0 + be * ease)
        lc = np.float32(-be * ease * lit_G[g])
        tc = np.float32(-bt * trust_H[p])
        gn = np.float32(bu * useful_share[p])
        for lo in range(group_start[g], group_start[g + 1], _CHUNK):
            m = min(_CHUNK, group_start[g + 1] - lo)
            # views of the chunk, indexed by the loop variable: lets the loops vectorise (SIMD)
            ta, el = cit.to_adopt[lo : lo + m], cit.eligible[lo : lo + m]
            if betas:  # exp(log multiplier) = poly x 2^n, straight-line float32
                lg, ds = cit.lit_gap[lo : lo + m], cit.distrust[lo : lo + m]
                sr = cit.served_rel[lo : lo + m]
                for j in range(m):
                    y = lg[j] * lc + const
                    y = y + ds[j] * tc
                    y = y + sr[j] * gn
                    y = cap if y > cap else y
                    y = HI if y > HI else y
                    y = LO if y < LO else y
                    fx = np.floor(y * L2E + HALF)
                    y = y - fx * C1
                    y = y - fx * C2
                    z = y * y
                    q = P0 * y + P1
                    q = q * y + P2
                    q = q * y + P3
                    q = q * y + P4
                    q = q * y + P5
                    q = q * z + y
                    poly[j] = q + ONE
                    bits[j] = (np.int32(fx) + 127) << 23
            # hazard x dt = rate x poly x 2^n, subtracted from the eligible's thresholds
            if networked:
                qd, un = cit.q_dt[lo : lo + m], cit.user_neighbours[lo : lo + m]
                for j in range(m):
                    r = qd[j] * np.float32(un[j]) + r0
                    ta[j] = ta[j] - r * poly[j] * scale[j] * np.float32(el[j])
            else:
                for j in range(m):
                    ta[j] = ta[j] - r0 * poly[j] * scale[j] * np.float32(el[j])
            hits = 0
            for j in range(m):
                hits += el[j] & (ta[j] <= 0)
            if hits:
                for j in range(m):
                    if el[j] and ta[j] <= 0:
                        out[count] = lo + j
                        count += 1
    return count


@jit
def _gain_access(cit):
    """Per group, citizens without access whose threshold is at most the group's integrated access hazard get
    access: the thresholds are sorted, so only a pointer moves."""
    for g in range(cit.access_H.size):
        start = cit.access_next[g]
        j = start
        h = cit.access_H[g]
        while cit.access_threshold[j] <= h:  # each group's run of thresholds ends in +inf
            row = cit.access_order[j]
            cit.access[row] = True
            cit.eligible[row] = True
            j += 1
        cit.access_count[g] += j - start
        cit.access_next[g] = j


@jit
def _set_users(cit, who, using):
    """Citizens `who` start (using) or stop using online services; their contacts' user counts follow (or, well
    mixed, the users per province)."""
    step = 1 if using else -1
    for j in range(who.size):
        i = who[j]
        cit.active[i] = using
        cit.eligible[i] = not using
        if cit.users.size:  # well mixed: users per province
            cit.users[cit.group[i] // 4] += step
        if using:
            if not cit.adopted[i]:
                cit.adopted[i] = True
                cit.adopted_count[cit.group[i]] += 1
            cit.to_adopt[i] = np.inf
        for e in range(cit.indptr[i], cit.indptr[i + 1]):
            n = cit.indices[e]
            cit.user_neighbours[n] = cit.user_neighbours[n] + step


# ---- the civil servants ----------------------------------------------------------------------------------------


def servant_step(cs: ServantArrays, constants: np.ndarray, step: ServantStep) -> tuple[int, bool, int]:
    """One step of every civil servant (population.CivilService.step): those who became genuine users go into
    cs.rows (ascending), and every one whose state changed into cs.changed (those who logged in ceremonially,
    then those who became genuine users); returns the count of genuine converts, whether any non-user is left,
    and the count of changed rows.

    Genuine-use hazard (p + q x share of genuine colleagues) x exp(utility) x K of the servant's level,
    utility = w_u (U_p - 1/2) - w_s / 2 + w_l pull_p - rent_weight_i D_i + w_s skill_i; ceremonial log-in of
    non-users at ceremonial_dt per province; skill approaches 1 at the training rate plus learning by doing for
    ceremonial users (both read at the start of the step). `constants` is a SERVANT_CONSTANTS record."""
    return _servant_step(tuple(cs), constants, tuple(step))


@jit
def _servant_step(cs, constants, step):
    cs, step, c = ServantArrays(*cs), ServantStep(*step), constants[0]
    state, province, out = cs.state, cs.province, cs.rows
    n, P = state.size, cs.genuine_count.size
    per_province = np.empty(P)
    for p in range(P):
        per_province[p] = (
            c.weight_usability * (step.usability[p] - 0.5)
            - 0.5 * c.weight_skill
            + c.weight_leader * step.leader_pull[p]
        )
    # skill's step exp(-rate dt), from the state at the start of the step (numpy's rate + lbd x (state == CEREMONIAL))
    skill_step = np.empty(n)
    # a rate is shared by a province's staff at one level and state, and rows run province by province and level
    # by level: exp is computed again only where the rate differs from the previous servant's
    last_rate, last_step = np.nan, 1.0
    for i in range(n):
        rate = step.training_rate[i]
        if step.learning_by_doing:
            rate = rate + step.learning_by_doing * (1.0 if state[i] == CEREMONIAL else 0.0)
        if rate != last_rate:
            last_rate, last_step = rate, exp_scalar(-rate * step.dt)
        skill_step[i] = last_step
    ws = np.float32(c.weight_skill)
    count = 0
    for i in range(n):
        if state[i] != GENUINE:
            utility = per_province[province[i]] - step.rent_weight[i] * step.deterrence[i]
            utility = utility + ws * cs.skill[i]
            hazard = cs.q_dt[i] * cs.genuine_colleagues[i]
            hazard = hazard + c.p_dt
            hazard = hazard * exp_scalar(utility)
            hazard = hazard * step.agency_it[province[i], step.level[i]]
            cs.to_genuine[i] = cs.to_genuine[i] - hazard
            if cs.to_genuine[i] <= 0:
                out[count] = i
                count += 1
    left = True
    changed = 0
    if step.ceremonial:
        left = False
        j = 0
        for i in range(n):
            if state[i] == NON_USER:
                cs.to_ceremonial[i] = cs.to_ceremonial[i] - step.ceremonial_dt[province[i]]
                converting = j < count and out[j] == i
                if cs.to_ceremonial[i] <= 0 and not converting:
                    cs.changed[changed] = i
                    changed += 1
                    state[i] = CEREMONIAL
                    cs.ceremonial_count[province[i]] += 1
                    cs.served_ceremonial[province[i]] += cs.citizens_served[i]
            while j < count and out[j] <= i:
                j += 1
    served = np.zeros(P)
    for j in range(count):
        i = out[j]
        cs.changed[changed + j] = i
        p = province[i]
        if state[i] == CEREMONIAL:
            cs.ceremonial_count[p] -= 1
            cs.served_ceremonial[p] -= cs.citizens_served[i]
        state[i] = GENUINE
        cs.genuine_count[p] += 1
        served[p] += cs.citizens_served[i]
        for e in range(cs.indptr[i], cs.indptr[i + 1]):
            cs.genuine_colleagues[cs.indices[e]] += 1.0
    for p in range(P):
        cs.served_genuine[p] += served[p]
    if step.ceremonial:
        for i in range(n):
            if state[i] == NON_USER:
                left = True
                break
    one = np.float32(1.0)
    cs.skill_sum[:] = 0.0
    for i in range(n):
        gap = (one - cs.skill[i]) * skill_step[i]
        cs.skill[i] = np.float32(1.0 - gap)
        cs.skill_sum[province[i]] += np.float64(cs.skill[i])
    return count, left, changed + count


# ---- numpy's sum, and the channels of a dealing --------------------------------------------------------------------


@jit
def _block_sum(a, start, n):
    """numpy's sum of up to 128 contiguous values: a plain loop below 8, else eight running sums and the rest."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = start + i
        r0, r1, r2, r3 = r0 + a[j], r1 + a[j + 1], r2 + a[j + 2], r3 + a[j + 3]
        r4, r5, r6, r7 = r4 + a[j + 4], r5 + a[j + 5], r6 + a[j + 6], r7 + a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@jit
def _pairwise(a, start, n):
    """numpy's pairwise summation of a[start : start + n] (its DOUBLE_pairwise_sum, for contiguous data): blocks of
    up to 128 values (_block_sum), and above that the sum of the two halves split at a multiple of 8, the left
    half's first. Written with an explicit stack: numba's cache cannot load a recursive function (it crashes)."""
    if n <= 128:
        return _block_sum(a, start, n)
    starts, sizes = np.empty(64, np.int64), np.empty(64, np.int64)
    left, has_left = np.empty(64), np.zeros(64, np.bool_)
    top = 0
    starts[0], sizes[0] = start, n
    while True:
        if sizes[top] > 128:  # descend into the left half
            half = sizes[top] // 2
            half -= half % 8
            starts[top + 1], sizes[top + 1], has_left[top + 1] = starts[top], half, False
            top += 1
            continue
        v = _block_sum(a, starts[top], sizes[top])
        while True:  # hand v up: a left half waits for its right one, a right half completes its parent
            top -= 1
            if top < 0:
                return v
            if not has_left[top]:
                left[top], has_left[top] = v, True
                half = sizes[top] // 2
                half -= half % 8
                starts[top + 1], sizes[top + 1], has_left[top + 1] = starts[top] + half, sizes[top] - half, False
                top += 1
                break
            v = left[top] + v


@jit
def pairwise_sum(a) -> float:
    """a.sum() for a contiguous float64 array, bit for bit (numpy adds its identity 0.0 to the pairwise sum, so a
    sum of negative zeros is 0.0); tests/test_kernels.py checks it against numpy's."""
    return 0.0 + _pairwise(a.ravel(), 0, a.size)


@jit
def channels(digitised, portal, usability, national_usability, login_failure):
    """The channels of a dealing, per province (model.channels_now, docs/ODD.md 7.3), from each province's fully
    online levels d_pj (P, J), the national portal's portal_j, each province's usability U_p and the portal's
    U_nat and login failure f: online = max(d, portal); the share of procedures online; the chance a citizen who
    can use both picks the national portal, U_nat / (U_nat + U_p); the useful share mean_j [d + (1 - d) portal
    (1 - f)]; the channels' usability weighted by availability (the province's own where nothing is online); and
    the province's own fully online share mean_j d (what the leader's outcomes record). numpy's arithmetic,
    operation for operation (sums by pairwise_sum)."""
    P, J = digitised.shape
    online = np.empty_like(digitised)
    useful = np.empty(J)
    online_share, national_share = np.empty(P), np.empty(P)
    useful_share, ease_usability, provincial_share = np.empty(P), np.empty(P), np.empty(P)
    national_weight = pairwise_sum(portal)
    for p in range(P):
        d = digitised[p]
        for j in range(J):
            online[p, j] = d[j] if d[j] >= portal[j] else portal[j]  # np.maximum (no nan here)
            useful[j] = d[j] + (1.0 - d[j]) * portal[j] * (1.0 - login_failure)
        provincial_weight = pairwise_sum(d)
        provincial_share[p] = provincial_weight / J
        weight = provincial_weight + national_weight
        if weight > 0:
            ease_usability[p] = (provincial_weight * usability[p] + national_weight * national_usability) / weight
        else:
            ease_usability[p] = usability[p]
        online_share[p] = pairwise_sum(online[p]) / J
        national_share[p] = national_usability / (national_usability + usability[p])
        useful_share[p] = pairwise_sum(useful) / J
    return online, online_share, national_share, useful_share, ease_usability, provincial_share


@jit
def province_mean(province, values, counts):
    """Per province, the mean of a value of each civil servant: np.bincount(province, values) / counts, whose
    sums run in row order from 0.0."""
    out = np.zeros(counts.size)
    for i in range(province.size):
        out[province[i]] += values[i]
    for p in range(counts.size):
        out[p] = out[p] / counts[p]
    return out


@jit
def servant_deterrence(detection_penalty, province, enforcement):
    """D_i = max(0, 1 - pi_eff F m_i) of every civil servant (population.ServantLayout.deterrence)."""
    out = np.empty(province.size)
    for i in range(province.size):
        d = 1.0 - detection_penalty[province[i]] * enforcement[i]
        out[i] = 0.0 if d <= 0.0 else d  # np.maximum(0.0, d)
    return out


@jit
def enforcement(detection, feedback, penalty, reported, province, watched, rent, counts):
    """What enforcement does in a step (model.context), in one call: pi_eff = min(1, detection + feedback x the
    reported share) per province; each civil servant's deterrence D_i = max(0, 1 - pi_eff F m_i)
    (servant_deterrence); its province means, and the province means of informal income at risk, rent_i x D_i
    (province_mean). numpy's arithmetic, operation for operation (tests/test_kernels.py)."""
    P = counts.size
    detection_penalty = np.empty(P)
    for p in range(P):
        pi_eff = detection[p] + feedback[p] * reported[p]
        pi_eff = 1.0 if pi_eff > 1.0 else pi_eff  # np.minimum(1.0, pi_eff) (no nan here)
        detection_penalty[p] = pi_eff * penalty[p]
    servant = servant_deterrence(detection_penalty, province, watched)
    at_risk = np.empty(province.size)
    for i in range(province.size):
        at_risk[i] = rent[i] * servant[i]  # float32 x float64, as numpy promotes it
    return servant, province_mean(province, servant, counts), province_mean(province, at_risk, counts)


@jit
def access_hazard(mean_rate, imitation, access_share, factor):
    """Each group's access hazard, flat (4P,): (mean_rate + imitation x the province's access share) x the group's
    factor (model.context); numpy's (mean_rate + imitation * access_share)[:, None] * factor, operation for
    operation."""
    P, B = factor.shape
    out = np.empty(P * B)
    for p in range(P):
        rate = mean_rate + imitation * access_share[p]
        for b in range(B):
            out[p * B + b] = rate * factor[p, b]
    return out


@jit
def set_reliability(served_rel, served_order, served_ptr, servants, state, of_state):
    """Citizens served by these civil servants (population.Citizens.servants_changed) see the reliability of
    their servant's state now: served_order[served_ptr[s] : served_ptr[s + 1]] are the citizens of servant s."""
    for s in servants:
        reliability = of_state[state[s]]
        for i in range(served_ptr[s], served_ptr[s + 1]):
            served_rel[served_order[i]] = reliability


@jit
def reported_share(payments_per_step, reported_per_step, first, last):
    """Per province, reported / asked informal payments over the rows first..last (model.reported_share): integer
    sums, then numpy's true division, with 1 for none asked."""
    P = payments_per_step.shape[1]
    out = np.empty(P)
    for p in range(P):
        asked = 0
        reported = 0
        for row in range(first, last + 1):
            asked += payments_per_step[row, p]
            reported += reported_per_step[row, p]
        out[p] = reported / max(asked, 1)
    return out


# ---- the outcomes ----------------------------------------------------------------------------------------------


def measure(
    out: np.ndarray,
    k: int,
    t: CitizenTallies,
    s: ServantTallies,
    online_share: np.ndarray,
    leaders: np.ndarray,
    weights: np.ndarray,
) -> None:
    """The outcome columns at step k (population.measure) into out (P, columns), from the citizens' tallies t,
    the civil servants' s, the share of procedures online, the leaders' values (P, len(outcomes.LEADER_VALUES))
    and the supply index weights (infrastructure, internal use, portal, online services, ceremonial weight)."""
    _measure(out, k, tuple(t), tuple(s), online_share, leaders, weights, MEASURE_COLUMNS)


@jit
def _measure(out, k, t, s, online_share, leaders, weights, columns):
    t, s = CitizenTallies(*t), ServantTallies(*s)
    col = columns[0]
    P = t.province_sizes.size
    nan = np.nan
    group_sizes = t.group_sizes
    # the last year before the state at step k is steps k - steps_per_year .. k - 1: citizens by the step of their
    # last online use (rows k - steps_per_year .. k - 1), dealings (step s in row s + 1: rows k + 1 - steps_per_year .. k)
    first_use = max(0, k - t.steps_per_year)
    first_dealt = first_use + 1
    sub_c = np.empty((5, P, 5))
    sub_n = np.empty((P, 5))
    # subgroups: all, urban (blocks 2, 3), rural (0, 1), minority (1, 3), majority (0, 2)
    for p in range(P):
        g = 4 * p
        n0, n1, n2, n3 = (
            np.float64(group_sizes[g]),
            np.float64(group_sizes[g + 1]),
            np.float64(group_sizes[g + 2]),
            np.float64(group_sizes[g + 3]),
        )
        sub_n[p, 0] = ((n0 + n1) + n2) + n3
        sub_n[p, 1], sub_n[p, 2], sub_n[p, 3], sub_n[p, 4] = n2 + n3, n0 + n1, n1 + n3, n0 + n2
        # adopted, access, used in the last 12 months: either channel, the national portal, the province's
        for m in range(5):
            c = np.zeros(4)
            for b in range(4):
                if m == 0:
                    c[b] = t.adopted_count[g + b]
                elif m == 1:
                    c[b] = t.access_count[g + b]
                else:
                    used = t.used_per_step if m == 2 else (t.portal_per_step if m == 3 else t.provincial_per_step)
                    total = 0
                    for r in range(first_use, k):
                        total += used[r, g + b]
                    c[b] = total
            sub_c[m, p, 0] = ((c[0] + c[1]) + c[2]) + c[3]
            sub_c[m, p, 1], sub_c[m, p, 2], sub_c[m, p, 3], sub_c[m, p, 4] = (
                c[2] + c[3],
                c[0] + c[1],
                c[1] + c[3],
                c[0] + c[2],
            )
    n_citizens = t.province_sizes
    for p in range(P):
        g = 4 * p
        for j in range(col.share_cols.size):
            m, sub = col.share_from[j] // 5, col.share_from[j] % 5
            out[p, col.share_cols[j]] = sub_c[m, p, sub] / sub_n[p, sub] if sub_n[p, sub] > 0 else nan
        urban = sub_c[0, p, 1] / sub_n[p, 1] if sub_n[p, 1] > 0 else nan
        rural = sub_c[0, p, 2] / sub_n[p, 2] if sub_n[p, 2] > 0 else nan
        minority = sub_c[0, p, 3] / sub_n[p, 3] if sub_n[p, 3] > 0 else nan
        majority = sub_c[0, p, 4] / sub_n[p, 4] if sub_n[p, 4] > 0 else nan
        out[p, col.urban_rural_gap] = urban - rural
        out[p, col.ethnic_gap] = majority - minority
        out[p, col.citizens] = sub_n[p, 0]
        out[p, col.civil_servant_genuine_share] = s.genuine_count[p] / s.counts[p]
        out[p, col.civil_servant_ceremonial_share] = s.ceremonial_count[p] / s.counts[p]
        out[p, col.civil_servant_skill] = s.skill_sum[p] / s.counts[p]
        non_users = s.served[p] - s.served_genuine[p] - s.served_ceremonial[p]
        out[p, col.reliability] = (
            s.served_genuine[p] + s.reliability[1] * s.served_ceremonial[p] + s.reliability[0] * non_users
        ) / n_citizens[p]
        lit = np.empty(4)
        tr = np.empty(4)
        for b in range(4):
            lit[b] = group_sizes[g + b] - t.lit_G[g + b] * t.lit_gap_sum[g + b]
            tr[b] = group_sizes[g + b] - t.trust_H[p] * t.distrust_sum[g + b]
        out[p, col.literacy_mean] = (((lit[0] + lit[1]) + lit[2]) + lit[3]) / n_citizens[p]
        out[p, col.trust_mean] = (((tr[0] + tr[1]) + tr[2]) + tr[3]) / n_citizens[p]
        dealt = 0
        paid = 0
        online = 0
        reports = 0
        for r in range(first_dealt, k + 1):
            dealt += t.needs_per_step[r, p]
            paid += t.payments_per_step[r, p]
            online += t.online_per_step[r, p]
            reports += t.reports_per_step[r, p]
        out[p, col.informal_payment_index] = paid / dealt if dealt > 0 else nan
        out[p, col.dossiers_online_share] = online / dealt if dealt > 0 else nan
        out[p, col.reports_per_capita_12m] = reports / n_citizens[p]
        out[p, col.services_online_share] = online_share[p]
        for j in range(col.leader_cols.size):
            out[p, col.leader_cols[j]] = leaders[p, j]
        # supply index: agencies' IT, reported internal use, portal, online services (outcomes.supply_index)
        out[p, col.supply_index] = (
            weights[0] * out[p, col.agency_it]
            + weights[1]
            * (out[p, col.civil_servant_genuine_share] + weights[4] * out[p, col.civil_servant_ceremonial_share])
            + weights[2] * out[p, col.usability] * out[p, col.published_share]
            + weights[3] * out[p, col.province_online_share]
        )
