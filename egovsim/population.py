"""Citizens and civil servants as numpy arrays, with their rules written once and vectorised.

Stochastic events use *integrated hazards*: each agent draws an Exp(1) threshold and the event happens in the
step where the hazard accumulated since then reaches it. For a hazard h that is constant within a step of
length dt, this is exactly the per-step probability P = 1 - exp(-h dt) of model.md, but it needs no random
draw per agent per step, and with common random numbers a larger hazard always makes the event come sooner
(so a stronger lever never makes its direct target worse on any single path).

Every rule reads the state at the start of the step; the model applies the rules of different agent types in
the order citizens -> civil servants -> leaders, so each reads the others' state before they change
(synchronous update; results do not depend on agent order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .network import block_ring_network, neighbours_of
from .scenario import Scenario

NEVER = np.int32(-(2**30))  # "no online use yet"
NO_NEED = np.iinfo(np.int32).max

# Citizens of a province are stored in four contiguous blocks, in this order; group = 4 * province + block.
BLOCKS = ("rural_majority", "rural_minority", "urban_majority", "urban_minority")
URBAN_BLOCK = np.array([False, False, True, True])
MINORITY_BLOCK = np.array([False, True, False, True])

# civil-servant states
NON_USER, CEREMONIAL, GENUINE = 0, 1, 2


def hazard_probability(hazard: np.ndarray | float, dt: float) -> np.ndarray | float:
    """P(event within a step of length dt) for a constant hazard: 1 - exp(-hazard dt)."""
    return -np.expm1(-np.asarray(hazard) * dt)


def approach_one(x: np.ndarray | float, rate: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exact solution over dt of dx/dt = rate (1 - x): stays in [0, 1] for any step length."""
    return 1.0 - (1.0 - x) * np.exp(-np.asarray(rate) * dt)


def beta_draws(rng: np.random.Generator, mean: float, n: int, concentration: float = 5.0) -> np.ndarray:
    """Heterogeneous values in [0, 1] with the given mean (a Beta distribution; a constant at 0 or 1)."""
    if mean <= 0.0 or mean >= 1.0:
        return np.full(n, mean, dtype=np.float32)
    return rng.beta(mean * concentration, (1.0 - mean) * concentration, n).astype(np.float32)


def block_sizes(n: int, urban_share: float, minority_share: float) -> np.ndarray:
    """Citizens per block; minority share taken as equal in urban and rural areas (no source splits it)."""
    n_urban = int(round(n * urban_share))
    n_rural = n - n_urban
    rural_min = int(round(n_rural * minority_share))
    urban_min = int(round(n_urban * minority_share))
    return np.array([n_rural - rural_min, rural_min, n_urban - urban_min, urban_min], dtype=np.int64)


@dataclass
class StepContext:
    """Province-level state that citizens and civil servants read in a step (arrays indexed by province)."""
    k: int                         # step index (0-based)
    online: np.ndarray             # (P, J) probability a procedure instance is fully online
    rent_rel: np.ndarray           # (J,) rent of each procedure relative to the mean
    online_share: np.ndarray       # (P,) mean of `online` over procedures
    usability: np.ndarray          # (P,)
    deterrence: np.ndarray         # (P,) 1 - min(1, pi F): share of the rent still worth asking for
    access_hazard: np.ndarray      # (4P,) per group, per year
    literacy_rate: np.ndarray      # (4P,) per group, per year
    trust_rate: np.ndarray         # (P,) per year
    leader_pull: np.ndarray        # (P,) leader will x monitoring
    mandate: np.ndarray            # (P,) effective mandate strength
    training: np.ndarray           # (P,)


class Citizens:
    """All citizens of a run, province after province, each province in the four BLOCKS."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator, cs_of_province: list[np.ndarray],
                 cs_commune: np.ndarray):
        self.params = scenario.citizens
        self.dt = scenario.dt
        self.steps_per_year = scenario.steps_per_year
        provs = list(scenario.provinces.values())
        self.n_provinces = len(provs)
        sizes = np.array([block_sizes(max(1, round(p.population * p.scale)), p.urban_share, p.minority_share)
                          for p in provs])                                  # (P, 4)
        self.group_sizes = sizes.reshape(-1)                                 # (4P,)
        self.group = np.repeat(np.arange(self.group_sizes.size), self.group_sizes).astype(np.int16)
        self.province = (self.group // 4).astype(np.uint8)
        block = self.group % 4
        self.urban = URBAN_BLOCK[block]
        self.minority = MINORITY_BLOCK[block]
        self.n = int(self.group_sizes.sum())
        self.province_sizes = sizes.sum(axis=1)
        self.province_start = np.concatenate(([0], np.cumsum(self.province_sizes)[:-1]))

        # initial states (draw order is part of reproducibility: do not reorder)
        access0 = np.repeat([p.access_initial for p in provs], self.province_sizes)
        self.access = rng.random(self.n) < access0
        lit_mean = [(p.literacy_rural, p.literacy_urban) for p in provs]
        self.literacy = np.empty(self.n, dtype=np.float32)
        self.trust = np.empty(self.n, dtype=np.float32)
        for g, size in enumerate(self.group_sizes):
            sl = self._group_slice(g)
            prov = provs[g // 4]
            self.literacy[sl] = beta_draws(rng, lit_mean[g // 4][int(URBAN_BLOCK[g % 4])], int(size))
            self.trust[sl] = beta_draws(rng, prov.trust_initial, int(size))
        self.active = np.zeros(self.n, dtype=bool)         # uses online services now
        self.adopted = np.zeros(self.n, dtype=bool)        # has ever adopted
        self.to_access = rng.exponential(size=self.n).astype(np.float32)
        self.to_adopt = rng.exponential(size=self.n).astype(np.float32)
        self.last_online = np.full(self.n, NEVER, dtype=np.int32)
        self.p_need = float(hazard_probability(self.params.need_rate, self.dt))
        self.next_need = self._next_need_after(rng, -1, self.n)

        # each citizen is served by a civil servant of their province: rural citizens by commune-level staff
        self.civil_servant = np.empty(self.n, dtype=np.int32)
        for p, staff in enumerate(cs_of_province):
            start, size = self.province_start[p], self.province_sizes[p]
            urban = self.urban[start:start + size]
            commune_staff = staff[cs_commune[staff]]
            office_staff = staff[~cs_commune[staff]]
            for mask, pool in ((~urban, commune_staff), (urban, office_staff)):
                pool = pool if pool.size else staff
                self.civil_servant[start:start + size][mask] = rng.choice(pool, int(mask.sum()))

        net = scenario.network
        self.well_mixed = net.kind == "well_mixed"
        if self.well_mixed:
            self.adjacency = None
        else:
            self.adjacency = sp.block_diag(
                [block_ring_network(sizes[p], net.mean_degree, net.homophily, net.rewiring, rng)
                 for p in range(self.n_provinces)], format="csr")
            degree = np.diff(self.adjacency.indptr)
            self.inv_degree = np.where(degree > 0, 1.0 / np.maximum(degree, 1), 0.0).astype(np.float32)
            self.user_neighbours = np.zeros(self.n, dtype=np.int32)

        # per-step counters of dealings with government, for the 12-month informal-payment index
        self.needs_per_step = np.zeros((scenario.n_steps + 1, self.n_provinces), dtype=np.int64)
        self.payments_per_step = np.zeros_like(self.needs_per_step)

    def _group_slice(self, g: int) -> slice:
        start = int(self.group_sizes[:g].sum())
        return slice(start, start + int(self.group_sizes[g]))

    def _next_need_after(self, rng: np.random.Generator, k: int, count: int) -> np.ndarray:
        """Step of each citizen's next dealing with government: geometric waiting time, per-step P = p_need."""
        if self.p_need <= 0.0:
            return np.full(count, NO_NEED, dtype=np.int32)
        return (k + rng.geometric(self.p_need, count)).astype(np.int32)

    # ---- the citizen rules ----------------------------------------------------------------------------

    def social_influence(self) -> np.ndarray:
        """Share of each citizen's contacts who use online services (the province's share if well mixed)."""
        if self.well_mixed:
            users = np.bincount(self.province, weights=self.active, minlength=self.n_provinces)
            return (users / self.province_sizes).astype(np.float32)[self.province]
        return self.user_neighbours * self.inv_degree

    def adoption_hazard(self, ctx: StepContext, reliability: np.ndarray) -> np.ndarray:
        """Proportional-hazard Bass rule: (p0 + q0 x share of contacts using) x exp(sum beta_k (x_k - x_k0)),
        zero without internet access or for current users."""
        c = self.params
        hazard = c.p0 + c.q0 * self.social_influence()
        if c.beta_usefulness or c.beta_ease or c.beta_trust:
            usefulness = ctx.online_share[self.province] * reliability
            ease = ctx.usability[self.province] * self.literacy * np.where(self.minority, 1 - c.language_penalty, 1)
            log_mult = (c.beta_usefulness * (usefulness - c.reference_usefulness)
                        + c.beta_ease * (ease - c.reference_ease)
                        + c.beta_trust * (self.trust - c.reference_trust))
            hazard = hazard * np.exp(log_mult)
        return np.where(self.access & ~self.active, hazard, 0.0)

    def step(self, ctx: StepContext, reliability: np.ndarray, rng: np.random.Generator) -> None:
        """One step of every citizen: access, adoption, dealings with government, learning, trust."""
        dt, c = self.dt, self.params
        adopt_hazard = self.adoption_hazard(ctx, reliability)
        access_hazard = np.where(self.access, 0.0, ctx.access_hazard[self.group])
        lapsed = self._deal_with_government(ctx, reliability, rng)

        # apply (all computed from the state at the start of the step)
        self.to_adopt -= (adopt_hazard * dt).astype(np.float32)
        new_users = np.flatnonzero(self.to_adopt <= 0)
        self.to_access -= (access_hazard * dt).astype(np.float32)
        self.access |= self.to_access <= 0
        self.to_access[self.access] = np.inf
        self.literacy[:] = approach_one(self.literacy, ctx.literacy_rate[self.group], dt)
        if c.trust_feedback_rate:
            self.trust[:] = approach_one(self.trust, (c.trust_feedback_rate * ctx.trust_rate)[self.province], dt)
        self._set_users(new_users, True)
        self._set_users(lapsed, False)
        self.to_adopt[new_users] = np.inf

    def _deal_with_government(self, ctx: StepContext, reliability: np.ndarray,
                              rng: np.random.Generator) -> np.ndarray:
        """Citizens with a need this step pick a channel: online if they use online services, have access,
        the procedure is online and it works; otherwise the counter, where an informal payment may be asked.
        Returns the citizens who lapse after a failed online transaction."""
        c, k = self.params, ctx.k
        who = np.flatnonzero(self.next_need == k)
        if who.size == 0:
            return who
        # a fixed set of draws per need event keeps random streams aligned across scenarios (common numbers)
        procedure = rng.integers(0, ctx.rent_rel.size, who.size)
        u_online, u_works, u_lapse, u_pay = rng.random((4, who.size))
        new_threshold = rng.exponential(size=who.size).astype(np.float32)
        self.next_need[who] = self._next_need_after(rng, k, who.size)

        prov = self.province[who]
        online_ok = u_online < ctx.online[prov, procedure]
        attempt = self.active[who] & self.access[who] & online_ok
        works = attempt & (u_works < reliability[who])
        failed = attempt & ~works
        self.last_online[who[works]] = k
        if c.failure_trust_loss:
            self.trust[who[failed]] *= np.float32(1 - c.failure_trust_loss)
        ask = np.minimum(1.0, c.informal_ask_prob * ctx.rent_rel[procedure] * ctx.deterrence[prov])
        paid = ~works & (u_pay < ask)
        self.needs_per_step[k + 1] = np.bincount(prov, minlength=self.n_provinces)
        self.payments_per_step[k + 1] = np.bincount(prov[paid], minlength=self.n_provinces)

        lapse = failed & (u_lapse < c.lapse_prob)
        self.to_adopt[who[lapse]] = new_threshold[lapse]  # a lapsed user may adopt again later
        return who[lapse]

    def _set_users(self, who: np.ndarray, using: bool) -> None:
        if who.size == 0:
            return
        self.active[who] = using
        if using:
            self.adopted[who] = True
        if not self.well_mixed:
            np.add.at(self.user_neighbours, neighbours_of(self.adjacency, who), 1 if using else -1)

    # ---- aggregates -----------------------------------------------------------------------------------

    def group_counts(self, mask: np.ndarray) -> np.ndarray:
        """How many citizens of each group (province x block) satisfy `mask`."""
        return np.bincount(self.group[mask], minlength=self.group_sizes.size)

    def used_in_last_year(self, k: int) -> np.ndarray:
        return self.last_online > k + 1 - self.steps_per_year

    def informal_payment_index(self, k: int) -> np.ndarray:
        """Share of dealings with government in the last 12 months that involved an informal payment."""
        window = slice(max(0, k + 2 - self.steps_per_year), k + 2)
        needs = self.needs_per_step[window].sum(axis=0)
        paid = self.payments_per_step[window].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(needs > 0, paid / np.maximum(needs, 1), np.nan)


class CivilService:
    """All civil servants of a run, province after province: e-office use, skill, informal income."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self.params = scenario.civil_servants
        self.dt = scenario.dt
        provs = list(scenario.provinces.values())
        counts = np.array([p.civil_servants for p in provs])
        self.n = int(counts.sum())
        self.province = np.repeat(np.arange(len(provs)), counts).astype(np.uint8)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.of_province = [np.arange(s, s + c) for s, c in zip(starts, counts)]
        # commune-level staff serve rural citizens, in proportion to the rural population
        self.commune = np.zeros(self.n, dtype=bool)
        for p, staff in zip(provs, self.of_province):
            n_commune = int(round(staff.size * (1 - p.urban_share)))
            self.commune[staff[:n_commune]] = True
        self.state = np.full(self.n, NON_USER, dtype=np.int8)
        self.skill = np.concatenate([beta_draws(rng, self.params.skill_mean, c) for c in counts]).astype(np.float32)
        self.rent = (rng.beta(2.0, 2.0, self.n) * 2 * self.params.rent_mean).astype(np.float32)
        self.to_genuine = rng.exponential(size=self.n)
        self.to_ceremonial = rng.exponential(size=self.n)
        # offices: a small-world graph inside each province (one block per province, no links across)
        self.adjacency = block_ring_network(counts, self.params.offices_degree, 1.0, 0.1, rng)
        self.inv_degree = 1.0 / np.maximum(np.diff(self.adjacency.indptr), 1)

    def reliability(self) -> np.ndarray:
        """Chance an online dossier handled by each civil servant goes through (ceremonial users and
        non-users log dossiers but work offline, so some stall)."""
        fail = self.params.failure_unless_genuine
        return np.where(self.state == GENUINE, 1.0, 1.0 - fail).astype(np.float32)

    def rent_at_risk(self, deterrence: np.ndarray) -> np.ndarray:
        """Informal income each civil servant stands to lose from digitisation: max(0, r - pi F r)."""
        return self.rent * deterrence[self.province]

    def step(self, ctx: StepContext) -> None:
        cs, dt = self.params, self.dt
        genuine = self.state == GENUINE
        colleagues = (self.adjacency @ genuine.astype(np.float32)) * self.inv_degree
        utility = (cs.weight_usability * (ctx.usability[self.province] - 0.5)
                   + cs.weight_skill * (self.skill - 0.5)
                   + cs.weight_leader * ctx.leader_pull[self.province]
                   - cs.weight_rent * self.rent_at_risk(ctx.deterrence))
        genuine_hazard = np.where(genuine, 0.0, (cs.p + cs.q * colleagues) * np.exp(utility))
        ceremonial_hazard = np.where(self.state == NON_USER, cs.mandate_rate * ctx.mandate[self.province], 0.0)

        self.to_genuine -= genuine_hazard * dt
        self.to_ceremonial -= ceremonial_hazard * dt
        becomes_genuine = ~genuine & (self.to_genuine <= 0)
        becomes_ceremonial = (self.state == NON_USER) & ~becomes_genuine & (self.to_ceremonial <= 0)
        self.state[becomes_ceremonial] = CEREMONIAL
        self.state[becomes_genuine] = GENUINE
        training_rate = cs.training_effect * ctx.training[self.province] * np.where(self.commune,
                                                                                    1 - cs.cascade_loss, 1.0)
        self.skill[:] = approach_one(self.skill, training_rate, dt)

    def shares(self, n_provinces: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.bincount(self.province, minlength=n_provinces)
        genuine = np.bincount(self.province[self.state == GENUINE], minlength=n_provinces)
        ceremonial = np.bincount(self.province[self.state == CEREMONIAL], minlength=n_provinces)
        return genuine / counts, ceremonial / counts
