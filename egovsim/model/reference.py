"""The plain path: the rules of population.py (citizens, civil servants, outcomes) written the direct way, the
reference that tests compare the fast path with.

Every citizen's hazard, literacy and trust are computed every step from full arrays (float64 arithmetic, float32
storage), access comes from each citizen's own accumulated hazard, reliability is looked up from the civil
service every step; every civil servant's hazard and skill are computed every step, with their genuine
colleagues counted over the offices network; every outcome is a full count. Same layout and same random draws in
the same order as the fast path (`population.Citizens` and `CivilService`), so one seed gives the same run up to
floating-point rounding: access is decided by the same comparison and agrees exactly; adoption, literacy and
trust agree to float32 rounding (tests/test_kernels.py). Select it with `EGovModel(..., engine="plain")` or
EGOVSIM_ENGINE=plain. It is several times slower and uses about three times the memory per citizen.
"""

from __future__ import annotations

import numpy as np

from egovsim.config.scenario import Scenario
from egovsim.model import portable
from egovsim.model.network import neighbours_of
from egovsim.model.outcomes import COL, COLUMNS, LEADER_VALUES, SUBGROUPS, share, supply_index
from egovsim.model.population import (
    CEREMONIAL,
    GENUINE,
    MINORITY_BLOCK,
    NEVER,
    NON_USER,
    URBAN_BLOCK,
    CitizenLayout,
    ServantLayout,
    StepContext,
    approach_one,
    leader_table,
)


class PlainCitizens(CitizenLayout):
    """All citizens of a run, every rule applied to every citizen every step."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator, civil_service: ServantLayout):
        access, literacy, trust, to_access, to_adopt = self._lay_out(scenario, rng, civil_service)
        self.access = access
        self.literacy = literacy
        self.trust = trust
        self.active = np.zeros(self.n, dtype=bool)  # uses online services now
        self.adopted = np.zeros(self.n, dtype=bool)  # has ever adopted
        self.to_access = to_access  # access threshold
        self.access_accumulated = np.zeros(self.n)  # access hazard accumulated so far
        self.to_adopt = to_adopt  # remaining adoption threshold
        self.last_online = np.full(self.n, NEVER, dtype=np.int32)
        self.last_portal = np.full(self.n, NEVER, dtype=np.int32)  # ... on the national portal
        self.last_provincial = np.full(self.n, NEVER, dtype=np.int32)  # ... on the province's own portal
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
            usefulness = ctx.useful_share[self.province] * reliability
            lang = np.where(MINORITY_BLOCK, 1 - c.language_penalty, 1.0)[self.group % 4]
            ease = ctx.ease_usability[self.province] * lang * self.literacy
            log_mult = (
                c.beta_usefulness * (usefulness - c.reference_usefulness)
                + c.beta_ease * (ease - c.reference_ease)
                + c.beta_trust * (self.trust - c.reference_trust)
            )
            hazard = hazard * portable.exp(log_mult)
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
        """Dealings with government (docs/ODD.md 7.3): channel, login, the civil servant's handling, informal
        payment, report; returns the users whose use lapses."""
        c, cs, k = self.params, self.civil_service.params, ctx.k
        drawn = self._needs(ctx, rng)
        if drawn is None:
            return np.empty(0, dtype=np.int64)
        who, procedure, (u_online, u_works, u_lapse, u_pay, u_channel, u_report), new_threshold = drawn
        prov = self.province[who]
        servant = self.civil_servant[who]
        # the channel: the province's portal or the national one, if the procedure is fully online on either
        provincial_ok = u_online < ctx.digitised[prov, procedure]
        national_ok = u_online < ctx.portal[procedure]
        attempt = self.active[who] & self.access[who] & (provincial_ok | national_ok)
        national = attempt & national_ok & (~provincial_ok | (u_channel < ctx.national_share[prov]))
        login_failed = national & (u_works < ctx.login_failure)
        # given the login worked, the rest of u_works is again uniform on [0, 1)
        u_handled = np.where(national, (u_works - ctx.login_failure) / (1.0 - ctx.login_failure), u_works)
        state = self.civil_service.state[servant]
        stalled = (state == CEREMONIAL) & (u_handled < cs.failure_ceremonial)
        redirected = (state == NON_USER) & (u_handled < cs.redirect_non_user)
        failed = attempt & (login_failed | (~login_failed & stalled))
        works = attempt & ~login_failed & ~stalled & ~redirected
        for last, used in ((self.last_online, works), (self.last_portal, works & national)):
            last[who[used]] = k
        self.last_provincial[who[works & ~national]] = k
        if c.failure_trust_loss:
            self.trust[who[failed]] *= np.float32(1 - c.failure_trust_loss)
        # informal payments: at the counter, or online ('speed money'), by the serving official's deterrence
        ask = np.minimum(1.0, c.informal_ask_prob * ctx.rent_rel[procedure] * ctx.servant_deterrence[servant])
        ask = np.where(works, c.online_ask_share * ask, ask)
        paid = u_pay < ask
        reports = self.access[who] & (u_report < ctx.report_prob[prov])
        P = self.n_provinces
        self.needs_per_step[k + 1] = np.bincount(prov, minlength=P)
        self.payments_per_step[k + 1] = np.bincount(prov[paid], minlength=P)
        self.online_per_step[k + 1] = np.bincount(prov[works], minlength=P)
        self.reported_payments_per_step[k + 1] = np.bincount(prov[paid & reports], minlength=P)
        # a report for a payment asked and one for a failure (both in one dealing: two reports)
        self.reports_per_step[k + 1] = np.bincount(prov[paid & reports], minlength=P) + np.bincount(
            prov[failed & reports], minlength=P
        )
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

    def servants_changed(self, servants: np.ndarray) -> None:
        """Nothing to do: reliability is looked up from the civil service every step."""


class PlainCivilService(ServantLayout):
    """All civil servants of a run, every rule applied to every civil servant every step."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        super().__init__(scenario, rng)
        self.changed = np.empty(0, dtype=np.intp)  # whose state changed in the last step (none yet)

    def step(self, ctx: StepContext) -> np.ndarray:
        """One step of every civil servant; returns those who became genuine users (ascending), and `changed` is
        every one whose state changed.

        A non-user or ceremonial user becomes a genuine user with hazard (p + q x share of genuine colleagues) x
        exp(utility) x K (the IT equipment of their agency level), utility = w_u (usability - 1/2) + w_s (skill - 1/2) + w_l x leader pull - w_r x informal
        income at risk (rent x the servant's deterrence D_i); a non-user who does not become genuine logs in
        ceremonially with hazard mandate_rate x mandate; skill approaches 1 at rate training_effect x training
        (less the cascade loss at commune level), plus learning_by_doing for ceremonial users. Genuine use is never
        dropped."""
        cs, dt, prov = self.params, self.dt, self.province
        genuine = self.state == GENUINE
        skill_rate = self.skill_rate(ctx.training)  # learning by doing reads the state at the start
        colleagues_share = (self.adjacency @ genuine.astype(np.float64)) * self.inv_degree
        utility = (
            cs.weight_usability * (ctx.usability[prov] - 0.5)
            + cs.weight_skill * (self.skill - 0.5)
            + cs.weight_leader * ctx.leader_pull[prov]
            - cs.weight_rent * self.rent * ctx.servant_deterrence
        )
        # without working equipment a civil servant cannot use the system: x K of their agency level
        equipped = ctx.agency_it[prov, self.commune.astype(np.intp)]
        hazard = (cs.p + cs.q * colleagues_share) * portable.exp(utility) * equipped
        self.to_genuine -= np.where(genuine, 0.0, hazard * dt)
        converts = np.flatnonzero(~genuine & (self.to_genuine <= 0))
        non_user = self.state == NON_USER
        self.to_ceremonial -= np.where(non_user, cs.mandate_rate * ctx.mandate[prov] * dt, 0.0)
        ceremonial = non_user & (self.to_ceremonial <= 0)
        ceremonial[converts] = False
        self.state[ceremonial] = CEREMONIAL
        self.state[converts] = GENUINE
        self.changed = np.union1d(np.flatnonzero(ceremonial), converts)
        self.skill[:] = approach_one(self.skill, skill_rate, dt)
        return converts


def measure(model, out: np.ndarray | None = None) -> np.ndarray:
    """Every outcome of every province at the model's current step, counted over every citizen and civil
    servant: an array (provinces, columns of outcomes.COLUMNS), written into `out` if given."""
    cit, cs, k = model.citizens, model.civil_service, model.step_index
    P = len(model.leaders)
    if out is None:
        out = np.empty((P, len(COLUMNS)))
    blocks = {"all": np.ones(4, dtype=bool), "urban": URBAN_BLOCK, "rural": ~URBAN_BLOCK}
    blocks |= {"minority": MINORITY_BLOCK, "majority": ~MINORITY_BLOCK}
    size = cit.group_sizes.reshape(P, 4)

    def share_of(mask: np.ndarray, subgroup: str = "all") -> np.ndarray:
        """Per province, the share of the subgroup's citizens for whom `mask` holds (nan if there are none)."""
        b = blocks[subgroup]
        return share(cit.group_counts(mask).reshape(P, 4)[:, b].sum(axis=1), size[:, b].sum(axis=1))

    used = cit.used_in_last_year(k)
    n = size.sum(axis=1)
    col = {"citizens": n, "adopted_share": share_of(cit.adopted), "access_share": share_of(cit.access)}
    col["use_share_12m"] = share_of(used)
    for g in SUBGROUPS[1:]:
        col[f"{g}_adopted_share"] = share_of(cit.adopted, g)
        col[f"{g}_access_share"] = share_of(cit.access, g)
    for g in SUBGROUPS[1:]:
        col[f"{g}_use_share_12m"] = share_of(used, g)
    col["portal_use_share_12m"] = share_of(cit.used_in_last_year(k, cit.last_portal))
    col["provincial_use_share_12m"] = share_of(cit.used_in_last_year(k, cit.last_provincial))
    col["urban_rural_gap"] = col["urban_adopted_share"] - col["rural_adopted_share"]
    col["ethnic_gap"] = col["majority_adopted_share"] - col["minority_adopted_share"]

    staff = np.bincount(cs.province, minlength=P)
    col["civil_servant_genuine_share"] = np.bincount(cs.province[cs.state == GENUINE], minlength=P) / staff
    col["civil_servant_ceremonial_share"] = np.bincount(cs.province[cs.state == CEREMONIAL], minlength=P) / staff
    col["civil_servant_skill"] = np.bincount(cs.province, weights=cs.skill, minlength=P) / staff
    # citizens served by a genuine user find a dossier goes through; the others with their servant's reliability
    served = cs.state[cit.civil_servant]
    genuine = np.bincount(cit.province[served == GENUINE], minlength=P).astype(np.float64)
    ceremonial = np.bincount(cit.province[served == CEREMONIAL], minlength=P).astype(np.float64)
    rel = cs.reliability_of_state().astype(np.float64)
    col["reliability"] = (genuine + rel[1] * ceremonial + rel[0] * (n - genuine - ceremonial)) / n
    col["literacy_mean"] = np.bincount(cit.province, weights=cit.literacy, minlength=P) / n
    col["trust_mean"] = np.bincount(cit.province, weights=cit.trust, minlength=P) / n
    dealings = slice(max(1, k + 1 - cit.steps_per_year), k + 1)  # steps k - steps_per_year .. k - 1: rows + 1
    dealt = cit.needs_per_step[dealings].sum(axis=0)
    col["informal_payment_index"] = share(cit.payments_per_step[dealings].sum(axis=0), dealt)
    col["dossiers_online_share"] = share(cit.online_per_step[dealings].sum(axis=0), dealt)
    col["reports_per_capita_12m"] = cit.reports_per_step[dealings].sum(axis=0) / n

    channels = model.channels_now()
    col["services_online_share"] = channels.online_share
    leaders = leader_table(model.leaders, model.central.levers.roadmap_clarity, channels)
    for j, name in enumerate(LEADER_VALUES):
        col[name] = leaders[:, j]
    col["supply_index"] = supply_index(
        model.config.supply_index,
        col["agency_it"],
        col["civil_servant_genuine_share"],
        col["civil_servant_ceremonial_share"],
        col["usability"],
        col["published_share"],
        col["province_online_share"],
    )
    col["spend"], col["spend_cumulative"] = model.spending_columns()
    for name in COLUMNS:
        out[:, COL[name]] = col[name]
    return out
