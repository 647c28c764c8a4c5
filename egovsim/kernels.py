"""The per-citizen loops of the fast path (population.Citizens) and the civil servants' and outcomes' arithmetic,
each written twice: a numba-compiled loop and a pure numpy twin that does the same arithmetic in the same order,
so both give the same numbers bit for bit (tests/test_kernels.py checks each on random inputs, and whole runs).

Which one runs is the model's engine (model.py: EGOVSIM_ENGINE=numba, the default when numba is installed, or
numpy). numba is imported, and the loops compiled or loaded from its on-disk cache (next to this file), only
when a model first needs them: about 12 s the very first time, about 0.4 s in a new process after that.

Why compiled loops: a step of 10,000 citizens costs about 17 numpy passes over the citizens plus about a
hundred small array operations for the few who have an event; each call costs 1-2 microseconds, so the fixed
cost dominates at small sizes, and the passes (and their float32 temporaries) dominate at large ones. A loop
visits each citizen once, touches only those who can adopt, and has no temporaries.

Arithmetic both twins share, so that they agree exactly: the adoption hazard is float32 throughout, with exp
computed by a fixed polynomial (exp_poly) rather than by numpy's or libm's exp, which differ in the last bit
(and a compiled loop can then use SIMD); float32 values compared with float64 accumulators are compared
exactly (as float64); sums are taken in the same order.
"""

from __future__ import annotations

import importlib.util
import math
from typing import NamedTuple

import numpy as np

from .errors import clipped
from .outcomes import COL as COLUMN
from .outcomes import LEADER_COLS, SHARE_COLS, SHARE_FROM

NON_USER, CEREMONIAL, GENUINE = 0, 1, 2  # civil-servant states (as in population.py)
BACKENDS = ("numba", "numpy")


def have_numba() -> bool:
    return importlib.util.find_spec("numba") is not None


def kernels_for(n: int, n_servants: int, backend: str, *, hazard_scratch: bool = True):
    """The kernels of one model with `n` citizens and `n_servants` civil servants (they own scratch buffers)."""
    if backend == "numba":
        return NumbaKernels(n, n_servants)
    if backend == "numpy":
        return NumpyKernels(n, hazard_scratch)
    raise ValueError(f"unknown kernel backend {clipped(backend)}: expected one of {', '.join(BACKENDS)}")


# ---- the numpy twins -----------------------------------------------------------------------------------------


class NumpyKernels:
    """Pure numpy: whole-array operations in float32 in preallocated buffers."""

    name = "numpy"

    def __init__(self, n: int, hazard_scratch: bool = True):
        m = n if hazard_scratch else 0
        self.x = np.empty(n, dtype=np.float32)
        self.y = np.empty(m, dtype=np.float32)
        self.z = np.empty(m, dtype=np.float32)
        self.hit = np.empty(n, dtype=bool)

    def due(self, next_need: np.ndarray, k: int) -> np.ndarray:
        """Rows whose next need is at step k, ascending."""
        return np.flatnonzero(next_need == k)

    def adopt(
        self,
        to_adopt,
        eligible,
        rate,
        q_dt,
        user_neighbours,
        lit_gap,
        distrust,
        served_genuine,
        group_start,
        hz,
        usability,
        online_share,
        lit_G,
        trust_H,
    ) -> np.ndarray:
        """Subtract each eligible citizen's adoption hazard x dt from their remaining threshold and return
        those (ascending) whose threshold is reached. hazard dt = (rate_p + q_dt_i x user neighbours_i) x
        exp(const_g + lit_coef_g lit_gap_i + trust_coef_p distrust_i + gain_p served_genuine_i), capped at
        exp(cap) if cap is finite; without betas just the first factor. `hz` holds the constants
        (HazardConstants); the coefficients come from hazard_coefficients()."""
        x, y, z = self.x, self.y, self.z
        P = rate.size
        if q_dt is None:  # well mixed: the province's rate for all its citizens
            for p in range(P):
                x[group_start[4 * p] : group_start[4 * p + 4]] = rate[p]
        else:
            np.multiply(q_dt, user_neighbours, out=x)
            x += rate[0]
        if hz.betas:
            const, lit_coef, trust_coef, gain = hazard_coefficients(hz, usability, online_share, lit_G, trust_H)
            for g in range(group_start.size - 1):
                lo, hi = group_start[g], group_start[g + 1]
                if hi > lo:
                    ys = y[lo:hi]
                    np.multiply(lit_gap[lo:hi], lit_coef[g], out=ys)
                    ys += const[g]
            for p in range(P):
                lo, hi = group_start[4 * p], group_start[4 * p + 4]
                np.multiply(distrust[lo:hi], trust_coef[p], out=z[lo:hi])
                y[lo:hi] += z[lo:hi]
                np.multiply(served_genuine[lo:hi], gain[p], out=z[lo:hi])
                y[lo:hi] += z[lo:hi]
            if np.isfinite(hz.cap):
                np.minimum(y, np.float32(hz.cap), out=y)
            x *= exp_poly(y, z)  # x = rate x polynomial part, z = 2^n (see exp_poly)
            x *= z
        x *= eligible
        to_adopt -= x
        np.less_equal(to_adopt, 0, out=self.hit)
        new = np.flatnonzero(self.hit)
        return new[eligible[new]]

    def gain_access(self, access_H, thr, order, ptr, end, access_count, access, eligible) -> np.ndarray:
        """Per group, citizens without access whose threshold (sorted, from ptr) is at most the group's
        accumulated hazard get access; moves the pointers and the counts, returns the rows."""
        due = np.flatnonzero(thr[ptr] <= access_H)
        if due.size == 0:
            return np.empty(0, dtype=np.int32)
        new = []
        for g in due:
            lo = ptr[g]
            hi = lo + int(np.searchsorted(thr[lo : end[g]], float32_at_most(access_H[g]), side="right"))
            new.append(order[lo:hi])
            access_count[g] += hi - lo
            ptr[g] = hi
        rows = np.concatenate(new) if len(new) > 1 else new[0]
        access[rows] = True
        eligible[rows] = True
        return rows

    def set_users(
        self,
        who,
        using,
        active,
        eligible,
        adopted,
        to_adopt,
        adopted_count,
        group,
        indptr,
        indices,
        user_neighbours,
        users,
    ) -> None:
        """Citizens `who` start (using) or stop using online services; their contacts' user counts follow
        (or, well mixed, the users per province)."""
        if who.size == 0:
            return
        active[who] = using
        eligible[who] = not using
        if users.size:
            change = np.bincount(group[who] // 4, minlength=users.size)
            users += change if using else -change
        if using:
            g = group[who]
            first = ~adopted[who]
            adopted[who] = True
            adopted_count += np.bincount(g[first], minlength=adopted_count.size)
            to_adopt[who] = np.inf
        if user_neighbours is not None:
            (np.add if using else np.subtract).at(user_neighbours, neighbours_of(indptr, indices, who), 1)

    def citizen_step(self, cit, ctx, drawn, rate, access_step):
        """One step of the citizens after the draws: dealings, adoption, access, learning, then the users'
        changes (CitizenLayout._needs makes the draws); returns the smallest of the learning factors."""
        k, c = ctx.k, cit.params
        lapsed = np.empty(0, dtype=np.int64)
        if drawn is not None:
            who, procedure, u, new_threshold = drawn
            lapsed = self.deal(
                who,
                procedure,
                u,
                new_threshold,
                ctx.online.reshape(-1),
                ctx.ask.reshape(-1),
                cit.active,
                cit.served_genuine,
                cit._reliable,
                cit.group,
                cit.last_online,
                cit.used_per_step,
                k,
                cit.distrust,
                cit.trust_H,
                cit.distrust_sum,
                c.failure_trust_loss,
                c.lapse_prob,
                cit.to_adopt,
                cit.needs_per_step[k + 1],
                cit.payments_per_step[k + 1],
            )
        new = self.adopt(
            cit.to_adopt,
            cit.eligible,
            rate,
            cit.q_dt,
            cit.user_neighbours,
            cit.lit_gap,
            cit.distrust,
            cit.served_genuine,
            cit.group_start,
            cit._hazard,
            ctx.usability,
            ctx.online_share,
            cit.lit_G,
            cit.trust_H,
        )
        cit.access_H += access_step
        self.gain_access(
            cit.access_H,
            cit._acc_thr,
            cit._acc_order,
            cit._acc_ptr,
            cit._acc_end,
            cit.access_count,
            cit.access,
            cit.eligible,
        )
        cit.lit_G *= ctx.literacy_step
        lowest = cit.lit_G.min()
        if ctx.trust_moves:
            cit.trust_H *= ctx.trust_step
            lowest = min(lowest, cit.trust_H.min())
        for who, using in ((new, True), (lapsed, False)):
            self.set_users(
                who,
                using,
                cit.active,
                cit.eligible,
                cit.adopted,
                cit.to_adopt,
                cit.adopted_count,
                cit.group,
                cit._indptr,
                cit._indices,
                cit.user_neighbours,
                cit._users,
            )
        return lowest

    def deal(
        self,
        who,
        procedure,
        u,
        new_threshold,
        online,
        ask,
        active,
        served_genuine,
        reliable,
        group,
        last_online,
        used_per_step,
        k,
        distrust,
        trust_H,
        distrust_sum,
        loss,
        lapse_prob,
        to_adopt,
        needs,
        payments,
    ) -> np.ndarray:
        """Dealings with government of the citizens `who` (draws u: online, works, lapse, pay). Users try
        online if the procedure is online (`online`, flattened (province, procedure)); it works with
        reliability 1 if their civil servant is genuine, else `reliable`; a failure costs a share `loss` of
        trust and may end use (returned, ascending); counter transactions may involve a payment (`ask`).
        Counts needs and payments per province, use in the last-online histogram."""
        G = distrust_sum.size
        J = online.size // needs.size
        g = group[who]
        prov = g // 4
        cell = prov * J + procedure
        attempt = active[who] & (u[0] < online[cell])
        works = attempt & (served_genuine[who] | (u[1] < reliable))
        paid = ~works & (u[3] < ask[cell])
        needs += np.bincount(prov, minlength=needs.size)
        payments += np.bincount(prov[paid], minlength=needs.size)
        rows = who[works]
        if rows.size:
            gw = g[works]
            before = last_online[rows]
            seen = before >= 0
            np.subtract.at(used_per_step, (before[seen], gw[seen]), 1)
            used_per_step[k] += np.bincount(gw, minlength=G)
            last_online[rows] = k
        failed = attempt & ~works
        rows = who[failed]
        if rows.size == 0:
            return rows
        if loss != 0:
            gf = g[failed]
            h = trust_H[gf // 4]
            old = distrust[rows]
            trust = (1.0 - old * h) * np.float32(1 - loss)
            new = ((1.0 - trust) / h).astype(np.float32)
            distrust[rows] = new
            distrust_sum += np.bincount(gf, weights=new.astype(np.float64) - old, minlength=G)
        lapse = u[2][failed] < lapse_prob
        lapsed = rows[lapse]
        to_adopt[lapsed] = new_threshold[failed][lapse]
        return lapsed

    def cs_step(
        self,
        state,
        skill,
        to_genuine,
        to_ceremonial,
        genuine_colleagues,
        province,
        q_dt,
        p_dt,
        usability,
        leader_pull,
        weights,
        rent_step,
        ceremonial_dt,
        skill_step,
        genuine_count,
        ceremonial_count,
        served_genuine,
        citizens_per_servant,
        indptr,
        indices,
        skill_sum,
    ) -> tuple[np.ndarray, bool]:
        """One step of every civil servant (CivilService.step); returns those who became genuine, ascending,
        and whether any non-user is left; skill_sum gets the new sum of skill per province. Utility = w_u (U_p - 1/2) - w_s / 2 + w_l pull_p - rent_step_i
        + w_s skill_i (weights = w_u, w_s, w_l); ceremonial_dt: None, or mandate_rate x mandate x dt per
        province."""
        P = genuine_count.size
        wu, weight_skill, wl = weights
        per_province = wu * (usability - 0.5) - 0.5 * weight_skill + wl * leader_pull
        utility = per_province[province] - rent_step
        utility += weight_skill * skill  # float32 product, like (skill - 1/2) x weight
        hazard_dt = q_dt * genuine_colleagues
        hazard_dt += p_dt
        hazard_dt *= np.exp(utility)
        genuine = state == GENUINE
        hazard_dt[genuine] = 0.0
        to_genuine -= hazard_dt
        converts = np.flatnonzero(to_genuine <= 0)
        if converts.size:
            converts = converts[~genuine[converts]]
        left = True
        if ceremonial_dt is not None:
            non_user = state == NON_USER
            to_ceremonial -= non_user * ceremonial_dt[province]
            ceremonial = np.flatnonzero(non_user & (to_ceremonial <= 0))
            if converts.size:
                ceremonial = np.setdiff1d(ceremonial, converts, assume_unique=True)
            if ceremonial.size:
                state[ceremonial] = CEREMONIAL
                ceremonial_count += np.bincount(province[ceremonial], minlength=P)
        if converts.size:
            was_ceremonial = converts[state[converts] == CEREMONIAL]
            ceremonial_count -= np.bincount(province[was_ceremonial], minlength=P)
            state[converts] = GENUINE
            genuine_count += np.bincount(province[converts], minlength=P)
            served_genuine += np.bincount(province[converts], weights=citizens_per_servant[converts], minlength=P)
            np.add.at(genuine_colleagues, neighbours_of(indptr, indices, converts), 1.0)
        if ceremonial_dt is not None:
            left = bool(np.any(state == NON_USER))
        gap = (1.0 - skill) * skill_step  # approach_one: 1 - (1 - x) exp(-rate dt)
        np.subtract(1.0, gap, out=skill, casting="same_kind")
        skill_sum[:] = np.bincount(province, weights=skill, minlength=P)
        return converts, left

    def measure(
        self,
        out,
        t,
        group_sizes,
        genuine_count,
        ceremonial_count,
        skill_sum,
        cs_counts,
        served,
        served_genuine,
        unreliable,
        n_citizens,
        needs,
        payments,
        online_share,
        leaders,
        weights,
    ) -> None:
        """The outcome columns of one step (outcomes.measure) into out (P, columns), from the citizens'
        Tallies t, the civil servants' counts, the citizens each serves (served, of them by genuine users,
        reliability `unreliable` otherwise), the last 12 months' dealings, and the leaders' values."""
        P = n_citizens.size
        counts = np.stack([t.adopted, t.access, t.used.sum(axis=0)]).reshape(3, P, 4).astype(np.float64)
        c0, c1, c2, c3 = counts[:, :, 0], counts[:, :, 1], counts[:, :, 2], counts[:, :, 3]
        n = group_sizes.reshape(P, 4).astype(np.float64)
        n0, n1, n2, n3 = n[:, 0], n[:, 1], n[:, 2], n[:, 3]
        # subgroups: all, urban (blocks 2, 3), rural (0, 1), minority (1, 3), majority (0, 2)
        sub_c = np.stack([((c0 + c1) + c2) + c3, c2 + c3, c0 + c1, c1 + c3, c0 + c2], axis=2)
        sub_n = np.stack([((n0 + n1) + n2) + n3, n2 + n3, n0 + n1, n1 + n3, n0 + n2], axis=1)
        shares = sub_c / np.where(sub_n > 0, sub_n, np.nan)  # (3, P, 5); nan for an empty subgroup
        out[:, SHARE_COLS] = shares.transpose(1, 0, 2).reshape(P, -1)[:, SHARE_FROM]
        adopted = shares[0]
        out[:, COLUMN["urban_rural_gap"]] = adopted[:, 1] - adopted[:, 2]
        out[:, COLUMN["ethnic_gap"]] = adopted[:, 4] - adopted[:, 3]
        out[:, COLUMN["citizens"]] = sub_n[:, 0]
        out[:, COLUMN["civil_servant_genuine_share"]] = genuine_count / cs_counts
        out[:, COLUMN["civil_servant_ceremonial_share"]] = ceremonial_count / cs_counts
        out[:, COLUMN["civil_servant_skill"]] = skill_sum / cs_counts
        out[:, COLUMN["reliability"]] = (served_genuine + unreliable * (served - served_genuine)) / n_citizens
        lit = (group_sizes - t.lit_G * t.lit_gap_sum).reshape(P, 4)
        out[:, COLUMN["literacy_mean"]] = (((lit[:, 0] + lit[:, 1]) + lit[:, 2]) + lit[:, 3]) / n_citizens
        tr = (group_sizes - np.repeat(t.trust_H, 4) * t.distrust_sum).reshape(P, 4)
        out[:, COLUMN["trust_mean"]] = (((tr[:, 0] + tr[:, 1]) + tr[:, 2]) + tr[:, 3]) / n_citizens
        dealt, paid = needs.sum(axis=0), payments.sum(axis=0)
        out[:, COLUMN["informal_payment_index"]] = paid / np.where(dealt > 0, dealt, np.nan)
        out[:, COLUMN["services_online_share"]] = online_share
        out[:, LEADER_COLS] = leaders
        w = weights
        out[:, COLUMN["egov_index"]] = (
            w[0] * out[:, COLUMN["access_share"]]
            + w[1] * out[:, COLUMN["civil_servant_genuine_share"]]
            + w[2] * online_share
            + w[3] * out[:, COLUMN["adopted_share"]]
        )


class Tallies(NamedTuple):
    """What outcomes need from citizens at a step, per group g (province x block) or province p."""

    adopted: np.ndarray  # (G,) citizens who have ever adopted
    access: np.ndarray  # (G,) citizens with internet at home
    used: np.ndarray  # (rows, G) summed over rows: citizens who used a service in the last 12 months
    lit_G: np.ndarray  # (G,) the sum of literacy of a group is size_g - lit_G x lit_gap_sum
    lit_gap_sum: np.ndarray  # (G,)
    trust_H: np.ndarray  # (P,) the sum of trust of a group is size_g - trust_H x distrust_sum
    distrust_sum: np.ndarray  # (G,)


# exp for float32 (Cephes expf: Cody-Waite reduction and a degree-6 polynomial, within 1.5 ulp of exp), written
# with plain float32 operations so that numpy and a compiled loop (which can then use SIMD) give the same bits:
# exp(y) = poly(y) x 2^n, y clamped to [-87, 88] (exp(-87) ~ 1.6e-38 is no hazard at float32 precision)
_LOG2E, _C1, _C2 = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P = tuple(
    np.float32(c)
    for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
)
_LO, _HI, _HALF, _ONE = np.float32(-87.0), np.float32(88.0), np.float32(0.5), np.float32(1.0)


def exp_poly(y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """exp(y) for float32 y as poly x 2^n: returns poly and writes 2^n (float32) into `scale` (y is clobbered)."""
    np.minimum(y, _HI, out=y)
    np.maximum(y, _LO, out=y)
    fx = np.floor(y * _LOG2E + _HALF)
    y -= fx * _C1
    y -= fx * _C2
    z = y * y
    q = _P[0] * y + _P[1]
    for c in _P[2:]:
        q *= y
        q += c
    q *= z
    q += y
    q += _ONE
    scale.view(np.int32)[:] = (fx.astype(np.int32) + 127) << 23
    return q


class HazardConstants(NamedTuple):
    """What the adoption hazard's coefficients are made of, fixed for a run."""

    betas: bool  # any covariate effect (else the hazard is the Bass rate alone)
    cap: float  # largest log multiplier (inf: no cap needed)
    lang: np.ndarray  # (4,) language factor of each block
    failure: float  # failure_unless_genuine
    beta_usefulness: float
    beta_ease: float
    beta_trust: float
    reference_usefulness: float
    const0: float  # beta_trust (1 - reference_trust) - beta_ease reference_ease


def hazard_coefficients(hz: HazardConstants, usability, online_share, lit_G, trust_H):
    """Per group const and lit_coef, per province trust_coef and gain (float32), from the step's state: the
    log multiplier of the adoption hazard is const_g + lit_coef_g lit_gap + trust_coef_p distrust +
    gain_p x served by a genuine civil servant (usefulness = online share x reliability, ease = usability x
    language x literacy, literacy = 1 - lit_gap G_g, trust = 1 - distrust H_p)."""
    P = usability.size
    ease = np.repeat(usability, 4) * np.tile(hz.lang, P)  # (4P,) at literacy 1
    const = (
        hz.beta_usefulness * (np.repeat(online_share * (1.0 - hz.failure), 4) - hz.reference_usefulness)
        + hz.const0
        + hz.beta_ease * ease
    ).astype(np.float32)
    lit_coef = (-hz.beta_ease * ease * lit_G).astype(np.float32)
    trust_coef = (-hz.beta_trust * trust_H).astype(np.float32)
    gain = (hz.beta_usefulness * hz.failure * online_share).astype(np.float32)
    return const, lit_coef, trust_coef, gain


def float32_at_most(x: float) -> np.float32:
    """The largest float32 <= x: for float32 thresholds t, t <= x exactly when t <= float32_at_most(x)."""
    f = np.float32(x)
    return np.nextafter(f, np.float32(-np.inf)) if float(f) > x else f


def neighbours_of(indptr: np.ndarray, indices: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """All neighbours of `nodes` in a CSR graph, with repetition (one entry per link), without a Python loop."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    if nodes.size == 1:
        return indices[starts[0] : starts[0] + counts[0]]
    ends = np.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    if total == 0:
        return np.empty(0, dtype=indices.dtype)
    offsets = np.repeat(starts - (ends - counts), counts)
    offsets += np.arange(total, dtype=offsets.dtype)
    return indices[offsets]


# ---- the numba loops -------------------------------------------------------------------------------------------


def _due(next_need, k, out):
    count = 0
    for i in range(next_need.size):
        if next_need[i] == k:
            out[count] = i
            count += 1
    return count


_CHUNK = 4096


def _adopt(
    to_adopt,
    eligible,
    rate,
    q_dt,
    networked,
    user_neighbours,
    lit_gap,
    distrust,
    served_genuine,
    group_start,
    betas,
    cap,
    lang,
    f,
    bu,
    be,
    bt,
    ru,
    const0,
    usability,
    online_share,
    lit_G,
    trust_H,
    out,
):
    count = 0
    poly = np.ones(_CHUNK, dtype=np.float32)
    bits = np.full(_CHUNK, 127 << 23, dtype=np.int32)  # 2^0
    scale = bits.view(np.float32)
    L2E, C1, C2, LO, HI, HALF, ONE = _LOG2E, _C1, _C2, _LO, _HI, _HALF, _ONE
    P0, P1, P2, P3, P4, P5 = _P
    for g in range(group_start.size - 1):
        p = g // 4
        r0 = rate[p]
        # the coefficients of hazard_coefficients(), with the same operations in the same order
        ease = usability[p] * lang[g % 4]
        c = np.float32(bu * (online_share[p] * (1.0 - f) - ru) + const0 + be * ease)
        lc = np.float32(-be * ease * lit_G[g])
        tc = np.float32(-bt * trust_H[p])
        gn = np.float32(bu * f * online_share[p])
        for lo in range(group_start[g], group_start[g + 1], _CHUNK):
            m = min(_CHUNK, group_start[g + 1] - lo)
            # views of the chunk, indexed by the loop variable: lets the loops vectorise (SIMD)
            ta, el = to_adopt[lo : lo + m], eligible[lo : lo + m]
            if betas:  # exp(log multiplier) = poly x 2^n, straight-line float32
                lg, ds, sg = lit_gap[lo : lo + m], distrust[lo : lo + m], served_genuine[lo : lo + m]
                for j in range(m):
                    y = lg[j] * lc + c
                    y = y + ds[j] * tc
                    y = y + np.float32(sg[j]) * gn
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
                qd, un = q_dt[lo : lo + m], user_neighbours[lo : lo + m]
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


def _gain_access(access_H, thr, order, ptr, access_count, access, eligible, out):
    count = 0
    for g in range(access_H.size):
        start = ptr[g]
        j = start
        h = access_H[g]
        while thr[j] <= h:  # each group's run of thresholds ends in +inf
            row = order[j]
            access[row] = True
            eligible[row] = True
            if out.size:
                out[count] = row
            count += 1
            j += 1
        access_count[g] += j - start
        ptr[g] = j
    return count


def _set_users(
    who, using, active, eligible, adopted, to_adopt, adopted_count, group, indptr, indices, user_neighbours, users
):
    step = 1 if using else -1
    for j in range(who.size):
        i = who[j]
        active[i] = using
        eligible[i] = not using
        if users.size:  # well mixed: users per province
            users[group[i] // 4] += step
        if using:
            if not adopted[i]:
                adopted[i] = True
                adopted_count[group[i]] += 1
            to_adopt[i] = np.inf
        for e in range(indptr[i], indptr[i + 1]):
            n = indices[e]
            user_neighbours[n] = user_neighbours[n] + step


def _deal(
    who,
    procedure,
    u,
    new_threshold,
    online,
    ask,
    active,
    served_genuine,
    reliable,
    group,
    last_online,
    used_per_step,
    k,
    distrust,
    trust_H,
    distrust_sum,
    loss,
    lapse_prob,
    to_adopt,
    needs,
    payments,
    out,
):
    G = distrust_sum.size
    J = online.size // needs.size
    change = np.zeros(G)
    used_now = np.zeros(G, dtype=np.int64)
    keep = np.float32(1 - loss)
    count = 0
    for j in range(who.size):
        i = who[j]
        g = group[i]
        p = g // 4
        cell = p * J + procedure[j]
        works = False
        failed = False
        if active[i] and u[0, j] < online[cell]:
            if served_genuine[i] or u[1, j] < reliable:
                works = True
            else:
                failed = True
        needs[p] += 1
        if not works and u[3, j] < ask[cell]:
            payments[p] += 1
        if works:
            before = last_online[i]
            if before >= 0:
                used_per_step[before, g] -= 1
            used_now[g] += 1
            last_online[i] = k
        elif failed:
            if loss != 0:
                h = trust_H[p]
                old = distrust[i]
                trust = (1.0 - old * h) * keep
                new = np.float32((1.0 - trust) / h)
                distrust[i] = new
                change[g] += np.float64(new) - np.float64(old)
            if u[2, j] < lapse_prob:
                to_adopt[i] = np.float32(new_threshold[j])
                out[count] = i
                count += 1
    for g in range(G):
        used_per_step[k, g] += used_now[g]
        distrust_sum[g] += change[g]
    return count


def _cs_step(
    state,
    skill,
    to_genuine,
    to_ceremonial,
    genuine_colleagues,
    province,
    q_dt,
    p_dt,
    usability,
    leader_pull,
    wu,
    weight_skill,
    wl,
    rent_step,
    do_ceremonial,
    ceremonial_dt,
    skill_step,
    genuine_count,
    ceremonial_count,
    served_genuine,
    citizens_per_servant,
    indptr,
    indices,
    skill_sum,
    out,
):
    n, P = state.size, genuine_count.size
    per_province = np.empty(P)
    for p in range(P):
        per_province[p] = wu * (usability[p] - 0.5) - 0.5 * weight_skill + wl * leader_pull[p]
    ws = np.float32(weight_skill)
    count = 0
    for i in range(n):
        if state[i] != 2:
            utility = per_province[province[i]] - rent_step[i]
            utility = utility + ws * skill[i]
            hazard = q_dt[i] * genuine_colleagues[i]
            hazard = hazard + p_dt
            hazard = hazard * math.exp(utility)
            to_genuine[i] = to_genuine[i] - hazard
            if to_genuine[i] <= 0:
                out[count] = i
                count += 1
    left = True
    if do_ceremonial:
        left = False
        j = 0
        for i in range(n):
            if state[i] == 0:
                to_ceremonial[i] = to_ceremonial[i] - ceremonial_dt[province[i]]
                converting = j < count and out[j] == i
                if to_ceremonial[i] <= 0 and not converting:
                    state[i] = 1
                    ceremonial_count[province[i]] += 1
            while j < count and out[j] <= i:
                j += 1
    served = np.zeros(P)
    for j in range(count):
        i = out[j]
        p = province[i]
        if state[i] == 1:
            ceremonial_count[p] -= 1
        state[i] = 2
        genuine_count[p] += 1
        served[p] += citizens_per_servant[i]
        for e in range(indptr[i], indptr[i + 1]):
            genuine_colleagues[indices[e]] += 1.0
    for p in range(P):
        served_genuine[p] += served[p]
    if do_ceremonial:
        for i in range(n):
            if state[i] == 0:
                left = True
                break
    one = np.float32(1.0)
    skill_sum[:] = 0.0
    for i in range(n):
        gap = (one - skill[i]) * skill_step[i]
        skill[i] = np.float32(1.0 - gap)
        skill_sum[province[i]] += np.float64(skill[i])
    return count, left


def _measure(
    out,
    adopted,
    access,
    used,
    lit_G,
    lit_gap_sum,
    trust_H,
    distrust_sum,
    group_sizes,
    genuine_count,
    ceremonial_count,
    skill_sum,
    cs_counts,
    served,
    served_genuine,
    unreliable,
    n_citizens,
    needs,
    payments,
    online_share,
    leaders,
    weights,
    share_cols,
    share_from,
    leader_cols,
    col,
):
    P = n_citizens.size
    nan = np.nan
    sub_c = np.empty((3, P, 5))
    sub_n = np.empty((P, 5))
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
        for m in range(3):
            c = np.zeros(4)
            for b in range(4):
                if m == 0:
                    c[b] = adopted[g + b]
                elif m == 1:
                    c[b] = access[g + b]
                else:
                    total = 0
                    for r in range(used.shape[0]):
                        total += used[r, g + b]
                    c[b] = total
            sub_c[m, p, 0] = ((c[0] + c[1]) + c[2]) + c[3]
            sub_c[m, p, 1], sub_c[m, p, 2], sub_c[m, p, 3], sub_c[m, p, 4] = (
                c[2] + c[3],
                c[0] + c[1],
                c[1] + c[3],
                c[0] + c[2],
            )
    for p in range(P):
        g = 4 * p
        for j in range(share_cols.size):
            m, s = share_from[j] // 5, share_from[j] % 5
            out[p, share_cols[j]] = sub_c[m, p, s] / sub_n[p, s] if sub_n[p, s] > 0 else nan
        urban = sub_c[0, p, 1] / sub_n[p, 1] if sub_n[p, 1] > 0 else nan
        rural = sub_c[0, p, 2] / sub_n[p, 2] if sub_n[p, 2] > 0 else nan
        minority = sub_c[0, p, 3] / sub_n[p, 3] if sub_n[p, 3] > 0 else nan
        majority = sub_c[0, p, 4] / sub_n[p, 4] if sub_n[p, 4] > 0 else nan
        out[p, col[0]] = urban - rural
        out[p, col[1]] = majority - minority
        out[p, col[2]] = sub_n[p, 0]
        out[p, col[3]] = genuine_count[p] / cs_counts[p]
        out[p, col[4]] = ceremonial_count[p] / cs_counts[p]
        out[p, col[5]] = skill_sum[p] / cs_counts[p]
        out[p, col[6]] = (served_genuine[p] + unreliable * (served[p] - served_genuine[p])) / n_citizens[p]
        lit = np.empty(4)
        tr = np.empty(4)
        for b in range(4):
            lit[b] = group_sizes[g + b] - lit_G[g + b] * lit_gap_sum[g + b]
            tr[b] = group_sizes[g + b] - trust_H[p] * distrust_sum[g + b]
        out[p, col[7]] = (((lit[0] + lit[1]) + lit[2]) + lit[3]) / n_citizens[p]
        out[p, col[8]] = (((tr[0] + tr[1]) + tr[2]) + tr[3]) / n_citizens[p]
        dealt = 0
        paid = 0
        for r in range(needs.shape[0]):
            dealt += needs[r, p]
            paid += payments[r, p]
        out[p, col[9]] = paid / dealt if dealt > 0 else nan
        out[p, col[10]] = online_share[p]
        for j in range(leader_cols.size):
            out[p, leader_cols[j]] = leaders[p, j]
        out[p, col[11]] = (
            weights[0] * out[p, col[12]]
            + weights[1] * out[p, col[3]]
            + weights[2] * online_share[p]
            + weights[3] * out[p, col[13]]
        )


def _citizen_step(
    who,
    procedure,
    u,
    new_threshold,
    online,
    ask,
    active,
    served_genuine,
    reliable,
    group,
    last_online,
    used_per_step,
    k,
    distrust,
    trust_H,
    distrust_sum,
    loss,
    lapse_prob,
    to_adopt,
    needs,
    payments,
    eligible,
    rate,
    q_dt,
    networked,
    user_neighbours,
    lit_gap,
    group_start,
    betas,
    cap,
    lang,
    f,
    bu,
    be,
    bt,
    ru,
    const0,
    usability,
    online_share,
    lit_G,
    adopted,
    adopted_count,
    indptr,
    indices,
    users,
    access_H,
    access_step,
    thr,
    order,
    ptr,
    access_count,
    access,
    literacy_step,
    trust_step,
    trust_moves,
    out,
):
    lapsed = np.empty(who.size, dtype=out.dtype)
    n_lapsed = _deal(
        who,
        procedure,
        u,
        new_threshold,
        online,
        ask,
        active,
        served_genuine,
        reliable,
        group,
        last_online,
        used_per_step,
        k,
        distrust,
        trust_H,
        distrust_sum,
        loss,
        lapse_prob,
        to_adopt,
        needs,
        payments,
        lapsed,
    )
    n_new = _adopt(
        to_adopt,
        eligible,
        rate,
        q_dt,
        networked,
        user_neighbours,
        lit_gap,
        distrust,
        served_genuine,
        group_start,
        betas,
        cap,
        lang,
        f,
        bu,
        be,
        bt,
        ru,
        const0,
        usability,
        online_share,
        lit_G,
        trust_H,
        out,
    )
    for g in range(access_H.size):
        access_H[g] += access_step[g]
    _gain_access(access_H, thr, order, ptr, access_count, access, eligible, out[:0])
    lowest = np.inf
    for g in range(lit_G.size):
        lit_G[g] *= literacy_step[g]
        lowest = min(lowest, lit_G[g])
    if trust_moves:
        for p in range(trust_H.size):
            trust_H[p] *= trust_step[p]
            lowest = min(lowest, trust_H[p])
    _set_users(
        out[:n_new],
        True,
        active,
        eligible,
        adopted,
        to_adopt,
        adopted_count,
        group,
        indptr,
        indices,
        user_neighbours,
        users,
    )
    _set_users(
        lapsed[:n_lapsed],
        False,
        active,
        eligible,
        adopted,
        to_adopt,
        adopted_count,
        group,
        indptr,
        indices,
        user_neighbours,
        users,
    )
    return lowest


_MEASURE_COLS = np.array(
    [
        COLUMN[name]
        for name in (
            "urban_rural_gap",
            "ethnic_gap",
            "citizens",
            "civil_servant_genuine_share",
            "civil_servant_ceremonial_share",
            "civil_servant_skill",
            "reliability",
            "literacy_mean",
            "trust_mean",
            "informal_payment_index",
            "services_online_share",
            "egov_index",
            "access_share",
            "adopted_share",
        )
    ]
)


_COMPILED = False


def _compile() -> None:
    """Compile the loops with numba (or load them from its cache), in place of the plain functions: the driver
    _citizen_step then calls the compiled ones."""
    global _COMPILED, _due_nb, _cs_step_nb, _citizen_step_nb, _measure_nb
    if _COMPILED:
        return
    import numba

    jit = numba.njit(cache=True, nogil=True)
    g = globals()
    for name in ("_due", "_adopt", "_gain_access", "_set_users", "_deal"):
        g[name] = jit(g[name])
    _due_nb, _cs_step_nb = g["_due"], jit(_cs_step)
    _citizen_step_nb, _measure_nb = jit(_citizen_step), jit(_measure)
    _COMPILED = True


class NumbaKernels:
    """numba-compiled loops (compiled on first use and cached on disk next to this file)."""

    name = "numba"

    def __init__(self, n: int, n_servants: int = 0):
        _compile()
        self.out = np.empty(n + 1, dtype=np.int32 if n < 2**31 - 1 else np.int64)
        self.cs_out = np.empty(n_servants, dtype=np.int64)

    def citizen_step(self, cit, ctx, drawn, rate, access_step):
        """One step of the citizens after the draws: dealings, adoption, access, learning, then the users'
        changes (CitizenLayout._needs makes the draws); returns the smallest of the learning factors."""
        k, c, hz = ctx.k, cit.params, cit._hazard
        who, procedure, u, new_threshold = drawn if drawn is not None else _NO_DRAWS
        q_dt, user_neighbours = (cit.q_dt, cit.user_neighbours) if cit.q_dt is not None else (_EMPTY_F32, _EMPTY_U16)
        return _citizen_step_nb(
            who,
            procedure,
            u,
            new_threshold,
            ctx.online.reshape(-1),
            ctx.ask.reshape(-1),
            cit.active,
            cit.served_genuine,
            cit._reliable,
            cit.group,
            cit.last_online,
            cit.used_per_step,
            k,
            cit.distrust,
            cit.trust_H,
            cit.distrust_sum,
            c.failure_trust_loss,
            c.lapse_prob,
            cit.to_adopt,
            cit.needs_per_step[k + 1],
            cit.payments_per_step[k + 1],
            cit.eligible,
            rate,
            q_dt,
            cit.q_dt is not None,
            user_neighbours,
            cit.lit_gap,
            cit.group_start,
            hz.betas,
            np.float32(hz.cap),
            hz.lang,
            hz.failure,
            hz.beta_usefulness,
            hz.beta_ease,
            hz.beta_trust,
            hz.reference_usefulness,
            hz.const0,
            ctx.usability,
            ctx.online_share,
            cit.lit_G,
            cit.adopted,
            cit.adopted_count,
            cit._indptr,
            cit._indices,
            cit._users,
            cit.access_H,
            access_step,
            cit._acc_thr,
            cit._acc_order,
            cit._acc_ptr,
            cit.access_count,
            cit.access,
            ctx.literacy_step,
            ctx.trust_step,
            ctx.trust_moves,
            self.out,
        )

    def due(self, next_need, k):
        return self.out[: _due_nb(next_need, k, self.out)].copy()

    def adopt(
        self,
        to_adopt,
        eligible,
        rate,
        q_dt,
        user_neighbours,
        lit_gap,
        distrust,
        served_genuine,
        group_start,
        hz,
        usability,
        online_share,
        lit_G,
        trust_H,
    ):
        networked = q_dt is not None
        if not networked:
            q_dt, user_neighbours = _EMPTY_F32, _EMPTY_U16
        count = _adopt(
            to_adopt,
            eligible,
            rate,
            q_dt,
            networked,
            user_neighbours,
            lit_gap,
            distrust,
            served_genuine,
            group_start,
            hz.betas,
            np.float32(hz.cap),
            hz.lang,
            hz.failure,
            hz.beta_usefulness,
            hz.beta_ease,
            hz.beta_trust,
            hz.reference_usefulness,
            hz.const0,
            usability,
            online_share,
            lit_G,
            trust_H,
            self.out,
        )
        return self.out[:count].copy()

    def gain_access(self, access_H, thr, order, ptr, end, access_count, access, eligible):
        count = _gain_access(access_H, thr, order, ptr, access_count, access, eligible, self.out)
        return self.out[:count].copy()

    def set_users(
        self,
        who,
        using,
        active,
        eligible,
        adopted,
        to_adopt,
        adopted_count,
        group,
        indptr,
        indices,
        user_neighbours,
        users,
    ):
        _set_users(
            who,
            using,
            active,
            eligible,
            adopted,
            to_adopt,
            adopted_count,
            group,
            indptr,
            indices,
            user_neighbours if user_neighbours is not None else _EMPTY_U16,
            users,
        )

    def deal(
        self,
        who,
        procedure,
        u,
        new_threshold,
        online,
        ask,
        active,
        served_genuine,
        reliable,
        group,
        last_online,
        used_per_step,
        k,
        distrust,
        trust_H,
        distrust_sum,
        loss,
        lapse_prob,
        to_adopt,
        needs,
        payments,
    ):
        count = _deal(
            who,
            procedure,
            u,
            new_threshold,
            online,
            ask,
            active,
            served_genuine,
            reliable,
            group,
            last_online,
            used_per_step,
            k,
            distrust,
            trust_H,
            distrust_sum,
            loss,
            lapse_prob,
            to_adopt,
            needs,
            payments,
            self.out,
        )
        return self.out[:count].copy()

    def cs_step(
        self,
        state,
        skill,
        to_genuine,
        to_ceremonial,
        genuine_colleagues,
        province,
        q_dt,
        p_dt,
        usability,
        leader_pull,
        weights,
        rent_step,
        ceremonial_dt,
        skill_step,
        genuine_count,
        ceremonial_count,
        served_genuine,
        citizens_per_servant,
        indptr,
        indices,
        skill_sum,
    ):
        do = ceremonial_dt is not None
        wu, ws, wl = weights
        count, left = _cs_step_nb(
            state,
            skill,
            to_genuine,
            to_ceremonial,
            genuine_colleagues,
            province,
            q_dt,
            p_dt,
            usability,
            leader_pull,
            wu,
            ws,
            wl,
            rent_step,
            do,
            ceremonial_dt if do else _EMPTY_F64,
            skill_step,
            genuine_count,
            ceremonial_count,
            served_genuine,
            citizens_per_servant,
            indptr,
            indices,
            skill_sum,
            self.cs_out,
        )
        return self.cs_out[:count].copy(), left

    def measure(
        self,
        out,
        t,
        group_sizes,
        genuine_count,
        ceremonial_count,
        skill_sum,
        cs_counts,
        served,
        served_genuine,
        unreliable,
        n_citizens,
        needs,
        payments,
        online_share,
        leaders,
        weights,
    ):
        _measure_nb(
            out,
            t.adopted,
            t.access,
            t.used,
            t.lit_G,
            t.lit_gap_sum,
            t.trust_H,
            t.distrust_sum,
            group_sizes,
            genuine_count,
            ceremonial_count,
            skill_sum,
            cs_counts,
            served,
            served_genuine,
            unreliable,
            n_citizens,
            needs,
            payments,
            online_share,
            leaders,
            weights,
            SHARE_COLS,
            SHARE_FROM,
            LEADER_COLS,
            _MEASURE_COLS,
        )


_EMPTY_F32 = np.empty(0, dtype=np.float32)
_EMPTY_F64 = np.empty(0, dtype=np.float64)
_EMPTY_U16 = np.empty(0, dtype=np.uint16)
_NO_DRAWS = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty((4, 0)), np.empty(0))
