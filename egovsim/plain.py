"""The plain path: the citizen rules of population.py written the direct way, for tests to compare with.

Every citizen's hazard, literacy and trust are computed every step from full arrays (float64 arithmetic, float32
storage), access comes from each citizen's own accumulated hazard, reliability is looked up from the civil
service every step, and every aggregate is a full count. Same layout and same random draws in the same order
as the fast path (`population.Citizens`), so one seed gives the same run up to floating-point rounding:
access is decided by the same comparison and agrees exactly; adoption, literacy and trust agree to float32
rounding (tests/test_kernels.py). Select it with `EGovModel(..., engine="plain")` or EGOVSIM_ENGINE=plain.
It is several times slower and uses about three times the memory per citizen.
"""

from __future__ import annotations

import numpy as np

from .kernels import Tallies
from .network import neighbours_of
from .population import MINORITY_BLOCK, NEVER, CitizenLayout, CivilService, StepContext, approach_one
from .scenario import Scenario


class PlainCitizens(CitizenLayout):
    """All citizens of a run, every rule applied to every citizen every step."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator, civil_service: CivilService):
        access, literacy, trust, to_access, to_adopt = self._lay_out(scenario, rng, civil_service)
        self.civil_service = civil_service
        self.access = access
        self.literacy = literacy
        self.trust = trust
        self.active = np.zeros(self.n, dtype=bool)  # uses online services now
        self.adopted = np.zeros(self.n, dtype=bool)  # has ever adopted
        self.to_access = to_access  # access threshold
        self.access_accumulated = np.zeros(self.n)  # access hazard accumulated so far
        self.to_adopt = to_adopt  # remaining adoption threshold
        self.last_online = np.full(self.n, NEVER, dtype=np.int32)
        if not self.well_mixed:
            degree = np.diff(self.adjacency.indptr)
            self.inv_degree = np.where(degree > 0, 1.0 / np.maximum(degree, 1), 0.0).astype(np.float32)
            self.user_neighbours = np.zeros(self.n, dtype=np.int32)

    def social_influence(self) -> np.ndarray:
        """Share of each citizen's contacts who use online services (the province's share if well mixed)."""
        if self.well_mixed:
            users = np.bincount(self.province, weights=self.active, minlength=self.n_provinces)
            return (users / self.province_sizes)[self.province]
        return self.user_neighbours * self.inv_degree

    def adoption_hazard(self, ctx: StepContext, reliability: np.ndarray) -> np.ndarray:
        """Proportional-hazard Bass rule: (p0 + q0 x share of contacts using) x exp(sum beta_k (x_k - x_k0)),
        zero without internet access or for current users."""
        c = self.params
        hazard = c.p0 + c.q0 * self.social_influence()
        if c.beta_usefulness or c.beta_ease or c.beta_trust:
            usefulness = ctx.online_share[self.province] * reliability
            lang = np.where(MINORITY_BLOCK, 1 - c.language_penalty, 1.0)[self.group % 4]
            ease = ctx.usability[self.province] * lang * self.literacy
            log_mult = (
                c.beta_usefulness * (usefulness - c.reference_usefulness)
                + c.beta_ease * (ease - c.reference_ease)
                + c.beta_trust * (self.trust - c.reference_trust)
            )
            hazard = hazard * np.exp(log_mult)
        return np.where(self.access & ~self.active, hazard, 0.0)

    def step(self, ctx: StepContext, rng: np.random.Generator) -> None:
        """One step of every citizen: access, adoption, dealings with government, learning, trust."""
        dt, c = self.dt, self.params
        reliability = self.civil_service.reliability()[self.civil_servant]
        adopt_hazard = self.adoption_hazard(ctx, reliability)
        access_hazard = np.where(self.access, 0.0, ctx.access_hazard[self.group])
        lapsed = self._deal_with_government(ctx, reliability, rng)

        # apply (all computed from the state at the start of the step)
        self.to_adopt -= (adopt_hazard * dt).astype(np.float32)
        new_users = np.flatnonzero((self.to_adopt <= 0) & self.access & ~self.active)
        self.access_accumulated += access_hazard * dt
        self.access |= self.to_access <= self.access_accumulated
        self.literacy[:] = approach_one(self.literacy, ctx.literacy_rate[self.group], dt)
        if c.trust_feedback_rate:
            self.trust[:] = approach_one(self.trust, (c.trust_feedback_rate * ctx.trust_rate)[self.province], dt)
        self._set_users(new_users, True)
        self._set_users(lapsed, False)
        self.to_adopt[new_users] = np.inf

    def _deal_with_government(self, ctx: StepContext, reliability: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c, k = self.params, ctx.k
        drawn = self._needs(ctx, rng)
        if drawn is None:
            return np.empty(0, dtype=np.int64)
        who, procedure, (u_online, u_works, u_lapse, u_pay), new_threshold = drawn
        prov = self.province[who]
        online_ok = u_online < ctx.online[prov, procedure]
        attempt = self.active[who] & self.access[who] & online_ok
        works = attempt & (u_works < reliability[who])
        failed = attempt & ~works
        self.last_online[who[works]] = k
        if c.failure_trust_loss:
            self.trust[who[failed]] *= np.float32(1 - c.failure_trust_loss)
        self._record_dealings(ctx, prov, procedure, works, u_pay)
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

    def servants_became_genuine(self, servants: np.ndarray) -> None:
        """Nothing to do: reliability is looked up from the civil service every step."""

    def tallies(self, k: int) -> Tallies:
        """Counts and sums for outcomes, counted over every citizen (sums of literacy and trust as group size
        minus the sum of 1 - x, the form the fast path keeps)."""
        G, P = self.group_sizes.size, self.n_provinces
        return Tallies(
            self.group_counts(self.adopted),
            self.group_counts(self.access),
            self.group_counts(self.used_in_last_year(k))[None, :],
            np.ones(G),
            np.bincount(self.group, weights=1.0 - self.literacy.astype(np.float64), minlength=G),
            np.ones(P),
            np.bincount(self.group, weights=1.0 - self.trust.astype(np.float64), minlength=G),
        )
