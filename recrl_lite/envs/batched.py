r"""A batched e-commerce simulator: N users step at once, in vectorised numpy.

Introduced in the book's Benchmarks appendix (issue 9). ``BatchedECommerceEnv(num_envs=N)`` is
equivalent to gymnasium's ``SyncVectorEnv`` over N :class:`~recrl_lite.envs.ecommerce.ECommerceEnv`
with the same config: for the same seeds (``reset(seed=s)`` seeds sub-env ``i`` with ``s + i``) and the
same actions it gives identical observations, rewards, terminations, truncations and info arrays.
Each sub-env keeps its own ``np.random.Generator``, seeded as ``gymnasium.Env.reset`` seeds
``np_random``, and draws its user and the episode's uniforms from it at each (auto)reset in the
single env's order; the step itself is vectorised over all N users. The dynamics (the click logistic
with fatigue, the multinomial-logit slate choice with position bias, patience, purchases, both
rewards, fatigue decay and shared exposure) are the single env's, in float64 as there; see
``recrl_lite/envs/ecommerce.py`` for the model. (The single env's click logistic uses ``math.exp``
and this one ``np.exp``; the two may differ in the last bit, which changes a click only if a
uniform lands in that bit, about 1e-16 per step.)

``gymnasium.make_vec("recrl_lite/ECommerce-v0", num_envs=N, **config_overrides)`` returns it.

Action Space
------------
The batch of the single env's action space (``gymnasium.vector.utils.batch_space``):
``MultiDiscrete([n_items] * N)``, one item per user, or with ``slate_size = k > 1`` an int ``Box`` of
shape ``(N, k)``, one slate of k distinct items per row, slot 0 first. (The batched Box's ``sample``
may repeat an item within a row; ``single_action_space.sample()`` per row does not.)

Observation Space
-----------------
``(N, obs_size)`` float32, row ``i`` laid out as the single env's observation
(``BatchedECommerceEnv.layout``): age, gender, location, category exposure, recent items and clicks,
step, clicks and skips so far.

Rewards
-------
``"click"``: 1 per click. ``"revenue"``: the item's price when the click leads to a purchase, else 0.

Episode End
-----------
Sub-env ``i`` is ``terminated`` when its user's patience reaches 0 and ``truncated`` at
``config.horizon`` steps. Autoreset is gymnasium's NEXT_STEP mode (``metadata["autoreset_mode"]``):
the step after an episode ends resets that sub-env (its action is ignored, its reward is 0, its
``info`` mask entries are False and ``info["user"]`` holds the new user).

Arguments
---------
``BatchedECommerceEnv(num_envs=1, config=None, render_mode=None, **overrides)``: ``num_envs`` users
(an int in [1, 2**20]); ``config`` an :class:`ECommerceConfig` (default: the book's), with
``overrides`` replacing its fields as in ``ECommerceEnv``. ``render_mode`` must be None.

Ground truth
------------
``click_utilities()``, ``click_probabilities()``, ``purchase_probabilities()``,
``expected_patience_change()`` and ``expected_immediate_reward()`` return ``(N, n_items)`` arrays and
``choice_probabilities(slates)`` an ``(N, k + 1)`` array; row ``i`` equals the single env's method for
sub-env ``i``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recrl_lite.envs.ecommerce import (
    AGE_MAX,
    AGE_MIN,
    GENDERS,
    LOCATIONS,
    ECommerceConfig,
    ECommerceEnv,
    UserProfile,
    _sigmoid,
    user_feature_dim,
)
from recrl_lite.errors import check_int, invalid, invalid_type

MAX_NUM_ENVS = 2**20
# num_envs x horizon x 2 uniforms are held at once; beyond this (2 GiB of float64) it is a typo
_MAX_UNIFORMS = 2**28


class BatchedECommerceEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    __doc__ = __doc__

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, config: ECommerceConfig | None = None, render_mode: str | None = None,
                 **overrides: Any):
        expected = f"an int in [1, {MAX_NUM_ENVS}]"
        if isinstance(num_envs, (bool, np.bool_)) or not isinstance(num_envs, (int, np.integer)):
            raise invalid_type("num_envs", num_envs, expected)
        if not 1 <= num_envs <= MAX_NUM_ENVS:
            raise invalid("num_envs", num_envs, expected)
        n_envs = int(num_envs)
        if render_mode is not None:
            raise invalid("render_mode", render_mode, "None", why="the batched env does not render")
        self._proto = ECommerceEnv(config, **overrides)
        cfg = self.config = self._proto.config
        if n_envs * cfg.horizon * 2 > _MAX_UNIFORMS:
            raise invalid("num_envs", num_envs, f"at most {_MAX_UNIFORMS // (2 * cfg.horizon)} for horizon={cfg.horizon}",
                          why="num_envs x horizon x 2 uniforms are held at once")
        self.num_envs = n_envs
        self.render_mode = None
        self.metadata = dict(self.metadata)
        self.catalogue = cat = self._proto.catalogue
        self.layout = self._proto.layout
        self.single_observation_space = self._proto.observation_space
        self.single_action_space = self._proto.action_space
        self.observation_space = batch_space(self.single_observation_space, n_envs)
        self.action_space = batch_space(self.single_action_space, n_envs)
        n, c, h = cfg.n_items, cfg.n_categories, cfg.horizon
        self._rows = np.arange(n_envs)
        self._rngs: list[np.random.Generator | None] = [None] * n_envs
        self._users: list[UserProfile | None] = [None] * n_envs
        self._base_utility = np.zeros((n_envs, n))
        self._purchase_prob = np.zeros((n_envs, n))
        self._uniforms = np.zeros((n_envs, h, 2))
        self._patience = np.zeros(n_envs)
        self._fatigue = np.zeros((n_envs, c))
        self._t = np.zeros(n_envs, dtype=np.int64)
        self._n_clicks = np.zeros(n_envs, dtype=np.int64)
        self._n_skips = np.zeros(n_envs, dtype=np.int64)
        self._obs = np.zeros((n_envs, self.layout.size), dtype=np.float32)
        self._autoreset = np.zeros(n_envs, dtype=bool)
        self._started = False
        # per-item constants, computed as the single env computes them
        self._category = cat.category
        self._quality_minus_one = cat.quality - 1.0
        self._price = cat.price
        self._purchase_const = cfg.purchase_bias + cfg.purchase_quality_weight * (cat.quality - 1.0)
        self._log_price_ratio = np.log(cat.price / cat.reference_price)
        self._zeros_col = np.zeros((n_envs, 1))
        # flat views and row offsets: 1-d np.take is several times faster than 2-d fancy indexing
        self._base_flat = self._base_utility.reshape(-1)
        self._purchase_flat = self._purchase_prob.reshape(-1)
        self._fatigue_flat = self._fatigue.reshape(-1)
        self._uniforms_flat = self._uniforms.reshape(-1)
        self._row_items = self._rows * n
        self._row_categories = self._rows * c
        self._row_uniforms = self._rows * (2 * h)

    # ------------------------------------------------------------------ resets
    def _reset_envs(self, idx: np.ndarray) -> np.ndarray:
        """Draw a new user and episode for each sub-env in ``idx``; returns the users as an object array."""
        cfg, cat, lay = self.config, self.catalogue, self.layout
        r, d = idx.size, cfg.embedding_dim
        # sample_users(1, rng, cfg, cat)[0], then rng.random((horizon, 2)), inlined: the same generator
        # calls in the same order (a size-1 draw and a scalar draw take the same bits), so each sub-env's
        # stream is the single env's; the arithmetic below repeats sample_users' on (1, .) rows.
        draws: list[tuple[Any, ...]] = []
        noise_scale = cfg.preference_noise / math.sqrt(d)
        lo, hi = cfg.patience_low, cfg.patience_high
        n_ages, n_genders, n_locations = AGE_MAX + 1, len(GENDERS), len(LOCATIONS)
        rngs, uniforms = self._rngs, self._uniforms
        for i in idx.tolist():
            rng = rngs[i]
            assert rng is not None
            # a tuple's items are evaluated left to right: age, gender, location, noise, patience, sensitivity
            draws.append((rng.integers(AGE_MIN, n_ages), rng.integers(0, n_genders), rng.integers(0, n_locations),
                          rng.normal(0.0, noise_scale, d), rng.uniform(lo, hi), rng.normal(0.0, 0.4)))
            rng.random(out=uniforms[i])
        columns = list(zip(*draws, strict=True))
        age, gender, location = (np.array(col, dtype=np.int64) for col in columns[:3])
        noise = np.array(columns[3]).reshape(r, d)
        patience, sensitivity_noise = np.array(columns[4], dtype=np.float64), np.array(columns[5], dtype=np.float64)
        sensitivity = cfg.price_sensitivity_mean * np.exp(sensitivity_noise)
        x = np.zeros((r, user_feature_dim()))
        x[:, 0] = (age - AGE_MIN) / (AGE_MAX - AGE_MIN)
        x[np.arange(r), 1 + gender] = 1.0
        x[np.arange(r), 1 + len(GENDERS) + location] = 1.0
        users = np.full(r, None, dtype=object)
        affinity = np.empty((r, cfg.n_items))
        embedding, preference_map = cat.embedding, cat.preference_map
        ages, genders, locations = age.tolist(), gender.tolist(), location.tolist()
        patiences, sensitivities = patience.tolist(), sensitivity.tolist()
        for j, i in enumerate(idx.tolist()):
            preference = (x[j:j + 1] @ preference_map + noise[j:j + 1])[0]  # as sample_users' (1, d) product
            users[j] = self._users[i] = UserProfile(
                age=ages[j], gender=GENDERS[genders[j]], location=LOCATIONS[locations[j]], preference=preference,
                patience=patiences[j], price_sensitivity=sensitivities[j])
            affinity[j] = embedding @ preference
        features = x
        self._base_utility[idx] = affinity + cat.appeal - cfg.no_click_bias
        logit = self._purchase_const + cfg.purchase_fit_weight * affinity - sensitivity[:, None] * self._log_price_ratio
        self._purchase_prob[idx] = _sigmoid(logit)
        self._patience[idx] = patience
        self._fatigue[idx] = 0.0
        self._t[idx] = 0
        self._n_clicks[idx] = 0
        self._n_skips[idx] = 0
        obs = self._obs
        obs[idx] = 0.0
        obs[idx, lay.user] = features
        obs[idx, lay.recent_items] = -1.0
        return users

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env (or those in ``options={"reset_mask": bool array}``).

        ``seed``: None (keep each sub-env's generator), an int s (sub-env i gets s + i, as
        ``SyncVectorEnv``) or a list of num_envs ints or Nones.
        """
        n_envs = self.num_envs
        if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            seeds: list[Any] = [None] * n_envs if seed is None else [int(seed) + i for i in range(n_envs)]
        elif isinstance(seed, Sequence) and not isinstance(seed, str) and len(seed) == n_envs:
            seeds = list(seed)
        else:
            raise invalid("seed", seed, f"None, an int >= 0 or a list of {n_envs} ints or Nones (one per sub-env)")
        for s in seeds:
            if s is not None:
                check_int("seed", s, 0)
        mask = np.ones(n_envs, dtype=bool)
        if options is not None:
            if not isinstance(options, Mapping):
                raise invalid_type("options", options, "None or a dict {'reset_mask': bool array}")
            unknown = [key for key in options if key != "reset_mask"]
            if unknown:
                raise invalid("options", options, "a dict whose only key is 'reset_mask'", why=f"unknown keys {unknown}")
            if "reset_mask" in options:
                mask = np.asarray(options["reset_mask"])
                if mask.shape != (n_envs,) or mask.dtype != np.bool_ or not mask.any():
                    raise invalid("options['reset_mask']", options["reset_mask"],
                                  f"a bool array of shape ({n_envs},) with at least one True")
                if not self._started and not mask.all():
                    raise invalid("options['reset_mask']", options["reset_mask"], "all True on the first reset")
        idx = np.flatnonzero(mask)
        for i in idx.tolist():
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        users = self._reset_envs(idx)
        self._autoreset[idx] = False
        self._started = True
        user_info = np.full(n_envs, None, dtype=object)
        user_info[idx] = users
        return self._obs.copy(), {"user": user_info, "_user": mask.copy()}

    # ------------------------------------------------------------------ step
    def _check_actions(self, actions: Any) -> np.ndarray:
        cfg, n_envs = self.config, self.num_envs
        n, k = cfg.n_items, cfg.slate_size
        shape = (n_envs,) if k == 1 else (n_envs, k)
        what = (f"an int array of shape {shape}: one item id in [0, {n - 1}] per sub-env" if k == 1 else
                f"an int array of shape {shape}: one slate of {k} distinct item ids in [0, {n - 1}] per sub-env")
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.dtype.kind not in "iu":  # floats, bools, objects
            raise invalid_type("actions", actions, what, why=f"got dtype {a.dtype}")
        if a.shape != shape:
            raise invalid("actions", actions, what, why=f"got shape {a.shape}")
        low, high = a.min(), a.max()
        if low < 0 or high >= n:
            bad = np.flatnonzero(((a < 0) | (a >= n)).reshape(n_envs, -1).any(axis=1))[0]
            raise invalid("actions", actions, what,
                          why=f"sub-env {bad} got {a[bad].tolist()}, out of range [0, {n - 1}]")
        if k > 1:
            ordered = np.sort(a, axis=1)
            repeats = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
            if repeats.any():
                bad = int(np.flatnonzero(repeats)[0])
                raise invalid("actions", actions, what, why=f"sub-env {bad} got {a[bad].tolist()}, which repeats an item")
        return a.astype(np.int64, copy=False)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise invalid("call order", "step() before reset()", "reset() first", error=RuntimeError)
        a = self._check_actions(actions)
        cfg, lay, rows = self.config, self.layout, self._rows
        horizon, k = cfg.horizon, cfg.slate_size
        # sub-envs that ended last step reset now; they step first on their old state, then are overwritten
        u_at = self._row_uniforms + 2 * np.minimum(self._t, horizon - 1)
        u_choice, u_buy = self._uniforms_flat.take(u_at), self._uniforms_flat.take(u_at + 1)
        fatigue = self._fatigue
        if k == 1:
            fatigue_at = self._row_categories + self._category.take(a)
            v = self._base_flat.take(self._row_items + a) - cfg.fatigue_weight * self._fatigue_flat.take(fatigue_at)
            click = u_choice < _sigmoid(v)
            item = a  # the clicked item where click is True
            shown = a
        else:
            probs = self.choice_probabilities(a)
            pick = (np.cumsum(probs, axis=1) <= u_choice[:, None]).sum(axis=1)
            click = pick < k
            item = a[rows, np.minimum(pick, k - 1)]
            shown = a[:, 0]
        clicked_item = np.where(click, item, -1)
        self._patience += np.where(click, self._quality_minus_one[item], -cfg.skip_cost)
        purchase = click & (u_buy < self._purchase_flat.take(self._row_items + item))
        revenue = np.where(purchase, self._price[item], 0.0)
        rewards = click.astype(np.float64) if cfg.reward == "click" else revenue.copy()
        self._n_clicks += click
        self._n_skips += ~click
        fatigue *= cfg.fatigue_decay
        if k == 1:
            self._fatigue_flat[fatigue_at] += 1.0  # one index per row: no repeats
        else:
            share = 1.0 / k
            categories = self._category[a]
            for slot in range(k):
                fatigue[rows, categories[:, slot]] += share
        self._t += 1
        terminated = self._patience <= 0.0
        truncated = ~terminated & (self._t >= horizon)
        obs, h = self._obs, cfg.history_length
        obs[:, lay.exposure] = fatigue
        items, clicks = lay.recent_items, lay.recent_clicks
        if h > 1:
            obs[:, items.start:items.stop - 1] = obs[:, items.start + 1:items.stop]
            obs[:, clicks.start:clicks.stop - 1] = obs[:, clicks.start + 1:clicks.stop]
        obs[:, items.stop - 1] = shown
        obs[:, clicks.stop - 1] = click
        obs[:, lay.step] = self._t / horizon
        obs[:, lay.clicks] = self._n_clicks / horizon
        obs[:, lay.skips] = self._n_skips / horizon
        stepped = ~self._autoreset
        info: dict[str, Any] = {}
        if self._autoreset.any():
            idx = np.flatnonzero(self._autoreset)
            users = self._reset_envs(idx)
            rewards[idx] = 0.0
            terminated[idx] = False
            truncated[idx] = False
            clicked_item[idx] = 0
            click[idx] = False
            purchase[idx] = False
            revenue[idx] = 0.0
            user_info = np.full(self.num_envs, None, dtype=object)
            user_info[idx] = users
            info["user"], info["_user"] = user_info, self._autoreset.copy()
        info.update(clicked_item=clicked_item, _clicked_item=stepped, click=click, _click=stepped.copy(),
                    purchase=purchase, _purchase=stepped.copy(), revenue=revenue, _revenue=stepped.copy())
        self._autoreset = terminated | truncated
        return obs.copy(), rewards, terminated, truncated, info

    # ------------------------------------------------------------------ ground truth
    def _require_users(self) -> None:
        if not self._started:
            raise invalid("call order", "ground truth before reset()", "reset() first", error=RuntimeError)

    def click_utilities(self) -> np.ndarray:
        """(N, n_items): utility of every item shown alone in slot 0, per sub-env."""
        self._require_users()
        return self._base_utility - self.config.fatigue_weight * self._fatigue[:, self._category]

    def click_probabilities(self) -> np.ndarray:
        """(N, n_items): probability that each item is clicked if recommended (alone) now."""
        return _sigmoid(self.click_utilities())

    def choice_probabilities(self, slates: Any) -> np.ndarray:
        """(N, k + 1): multinomial-logit probabilities of each slot of each row's slate; the last is no click."""
        self._require_users()
        s = np.asarray(slates)
        if s.dtype.kind not in "iu" or s.ndim != 2 or s.shape[0] != self.num_envs or s.shape[1] < 1:
            raise invalid("slates", slates, f"an int array of shape ({self.num_envs}, k), one slate per sub-env")
        if s.min() < 0 or s.max() >= self.config.n_items:
            raise invalid("slates", slates, f"item ids in [0, {self.config.n_items - 1}]")
        rows = self._rows[:, None]
        positions = self.config.position_bias * np.arange(s.shape[1])
        v = self._base_utility[rows, s] - self.config.fatigue_weight * self._fatigue[rows, self._category[s]] - positions
        m = np.maximum(v.max(axis=1), 0.0)
        expv = np.exp(np.concatenate([v, self._zeros_col], axis=1) - m[:, None])
        return expv / expv.sum(axis=1, keepdims=True)

    def purchase_probabilities(self) -> np.ndarray:
        """(N, n_items): probability of a purchase given a click, per item and sub-env."""
        self._require_users()
        return self._purchase_prob.copy()

    def expected_patience_change(self) -> np.ndarray:
        """(N, n_items): E[Δpatience] if each item were recommended now, p·(q - 1) - (1 - p)·skip_cost."""
        p = self.click_probabilities()
        return p * self._quality_minus_one - (1.0 - p) * self.config.skip_cost

    def expected_immediate_reward(self) -> np.ndarray:
        """(N, n_items): E[reward] of recommending each item now, under the configured reward."""
        p = self.click_probabilities()
        if self.config.reward == "click":
            return p
        return p * self._purchase_prob * self._price

    @property
    def users(self) -> list[UserProfile | None]:
        """The current user of each sub-env."""
        return list(self._users)
