r"""An e-commerce session simulator in which long-term effects matter.

Introduced in chapter 1 (a first taste) and specified in chapter 2 of the book (section "The
simulator's model", which states the equations below and checks them against this code); every
later chapter trains or evaluates on it. Peers: RecSim (Ie et al., 2019) and RecoGym (Rohde et al., 2018).
This one is smaller and faster, and it exposes its ground truth.

Generative model
----------------
**Catalogue** (fixed by ``config.catalogue_seed``). Item :math:`i` has a category :math:`c_i`, an
embedding :math:`e_i = \mu_{c_i} + \sigma_e \varepsilon_i`, a price :math:`p_i` (log-normal around its
category's price level), an *appeal* :math:`a_i` that drives clicks and a *quality* :math:`q_i \in [0, 2]`
that drives satisfaction and purchases. A fraction of items are *clickbait*: high appeal, low quality.

``config.item_seed`` (and ``item_categories``) draw a different set of items in the same world:
the same category centroids, price levels and user preference map (chapter 6's unseen items).

**User** (drawn at every ``reset``). Observable features :math:`x_u` (age, gender, location) determine
a latent preference :math:`u = W x_u + \sigma_u \varepsilon_u`. Hidden traits: a patience budget
:math:`P_0 \sim U(P_{lo}, P_{hi})` and a price sensitivity :math:`\beta_u`.

**Choice** (multinomial logit with a no-click option whose utility is 0). With category fatigue
:math:`F_t(c)`, the utility of item :math:`i` shown in slot :math:`k` of a slate is

.. math:: v_i = \langle e_i, u\rangle + a_i - b_0 - w_F F_t(c_i) - \lambda k,
          \qquad P(\text{click } i \mid \text{slate}) = \frac{e^{v_i}}{1 + \sum_j e^{v_j}}.

For a single recommendation this is :math:`\sigma(v_i)`.

**Purchase** after a click: :math:`P(\text{buy}) = \sigma(\gamma_0 + \gamma_q (q_i - 1) + \gamma_f
\langle e_i, u\rangle - \beta_u \log(p_i / \bar p))`.

**Dynamics.** Fatigue decays and builds, :math:`F_{t+1} = \rho F_t + \mathbb 1[c = c_{\text{shown}}]`
(each item of a k-item slate adds 1/k).
Patience moves by :math:`q_i - 1` after a click (quality refills it, clickbait drains it) and by
:math:`-\kappa_{skip}` after an ignored recommendation. This coupling of patience to quality, not
fatigue, is what makes the myopic click-maximiser lose (chapter 2 measures it).

Action Space
------------
``Discrete(n_items)``: the item to recommend. With ``slate_size = k > 1``, a
:class:`SlateSpace`: a ``MultiDiscrete([n_items] * k)`` whose members (and samples) are k distinct
items, slot 0 first.

Observation Space
-----------------
A flat ``Box`` of float32 (``ECommerceEnv.layout`` names the slices):

=====================  =========================  ======================================
slice                  size                       meaning
=====================  =========================  ======================================
``age``                1                          (age - 18) / 52, in [0, 1]
``gender``             2                          one-hot
``location``           n_locations                one-hot
``exposure``           n_categories               category fatigue :math:`F_t(c)`, in [0, 1/(1-ρ)]
``recent_items``       history_length             last shown item ids, newest last, -1 if none
``recent_clicks``      history_length             1 if that recommendation was clicked
``step``               1                          t / horizon
``clicks``, ``skips``  1 each                     clicks and ignored steps so far / horizon
=====================  =========================  ======================================

Patience, price sensitivity and the latent preference are hidden.

Rewards
-------
``config.reward = "click"``: 1 per click. ``"revenue"``: the item's price when the click leads to a
purchase, else 0.

Episode End
-----------
``terminated`` when patience reaches 0 (the user leaves); ``truncated`` at ``config.horizon`` steps.
The horizon lives only in the config (the registration sets no ``max_episode_steps``).

Ground truth
------------
``click_probabilities()``, ``purchase_probabilities()`` and ``expected_patience_change()`` give, for
the current state, the exact quantity for every item as if it were recommended now; oracles,
regret and off-policy-evaluation checks use them. Access them through ``env.unwrapped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recrl_lite.errors import describe, interval, invalid, invalid_fields, invalid_type, is_finite_real

CATEGORY_NAMES = (
    "electronics", "books", "fashion", "home", "beauty",
    "sports", "toys", "grocery", "garden", "automotive",
)
GENDERS = ("F", "M")
LOCATIONS = ("north", "south", "east", "west", "central")
AGE_MIN, AGE_MAX = 18, 70


class SlateSpace(spaces.MultiDiscrete):
    """Slates of ``slate_size`` distinct item ids out of ``n_items``, slot 0 first.

    A ``MultiDiscrete([n_items] * slate_size)`` (so libraries that accept ``MultiDiscrete`` accept it)
    whose ``sample`` draws without replacement and whose ``contains`` rejects repeated items: a plain
    ``MultiDiscrete`` would sample a slate with a repeat, which ``ECommerceEnv.step`` refuses.
    """

    def __init__(self, n_items: int, slate_size: int, seed: int | np.random.Generator | None = None):
        if not 2 <= slate_size <= n_items:
            raise invalid("slate_size", slate_size, f"an int in [2, n_items={n_items}]")
        super().__init__([n_items] * slate_size, dtype=np.int64, seed=seed)
        self.n_items, self.slate_size = int(n_items), int(slate_size)

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            raise NotImplementedError("SlateSpace.sample takes no mask or probability")
        return self.np_random.choice(self.n_items, size=self.slate_size, replace=False).astype(np.int64)

    def contains(self, x: Any) -> bool:
        """A sequence or array of ``slate_size`` distinct integer ids in [0, n_items); bools are not ids."""
        if not isinstance(x, (Sequence, np.ndarray)) or isinstance(x, str):
            return False
        if isinstance(x, Sequence) and any(isinstance(v, (bool, np.bool_)) for v in x):
            return False  # np.asarray([True, 2]) would read True as item 1
        arr = np.asarray(x)
        return bool(
            arr.shape == self.shape
            and np.issubdtype(arr.dtype, np.integer)
            and np.all((arr >= 0) & (arr < self.n_items))
            and np.unique(arr).size == self.slate_size
        )

    def __repr__(self) -> str:
        return f"SlateSpace(n_items={self.n_items}, slate_size={self.slate_size})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SlateSpace) and (other.n_items, other.slate_size) == (self.n_items, self.slate_size)


# Allowed values of every ECommerceConfig field: (kind, low, high, low_open, high_open). Upper bounds
# keep a typo from allocating the machine away (reset draws horizon x 2 uniforms; ids span 90,000).
# The noise scales are capped at _MAX_NOISE: the signals they blur are O(1) (centroids of norm ~1.6,
# appeal means 0 and 1.5), so a larger scale is a typo, and an affinity <e_i, u> of two huge noises
# overflows to inf (then inf - inf = NaN utilities). The other float fields enter the logits
# linearly; those stay finite for any finite value and the logistic below is overflow-free.
_MAX_NOISE = 100.0
_INT, _FLOAT, _RANGE = "int", "float", "range"
_CONFIG_RULES: dict[str, tuple[str, float | None, float | None, bool, bool]] = {
    "n_items": (_INT, 2, 90_000, False, False),
    "n_categories": (_INT, 1, 1_000, False, False),
    "embedding_dim": (_INT, 1, 1_024, False, False),
    "clickbait_fraction": (_FLOAT, 0.0, 1.0, False, True),
    "horizon": (_INT, 1, 100_000, False, False),
    "history_length": (_INT, 1, 1_000, False, False),
    "slate_size": (_INT, 1, 90_000, False, False),
    "no_click_bias": (_FLOAT, None, None, False, False),
    "fatigue_weight": (_FLOAT, 0.0, None, False, False),
    "fatigue_decay": (_FLOAT, 0.0, 1.0, False, True),
    "position_bias": (_FLOAT, 0.0, None, False, False),
    "patience_low": (_FLOAT, 0.0, None, True, False),
    "patience_high": (_FLOAT, 0.0, None, True, False),
    "skip_cost": (_FLOAT, 0.0, None, True, False),
    "clickbait_appeal": (_FLOAT, None, None, False, False),
    "appeal_noise": (_FLOAT, 0.0, _MAX_NOISE, False, False),
    "quality_range": (_RANGE, 0.0, None, False, False),
    "clickbait_quality_range": (_RANGE, 0.0, None, False, False),
    "embedding_noise": (_FLOAT, 0.0, _MAX_NOISE, False, False),
    "preference_noise": (_FLOAT, 0.0, _MAX_NOISE, False, False),
    "purchase_bias": (_FLOAT, None, None, False, False),
    "purchase_quality_weight": (_FLOAT, None, None, False, False),
    "purchase_fit_weight": (_FLOAT, None, None, False, False),
    "price_sensitivity_mean": (_FLOAT, 0.0, None, False, False),
    "catalogue_seed": (_INT, 0, None, False, False),
    "item_seed": (_INT, 0, None, False, False),  # or None
}


def _check_field(config: Any, name: str, rule: tuple[str, float | None, float | None, bool, bool]) -> str | None:
    """None if ``config.name`` obeys ``rule``, else 'name=value; expected ...'."""
    kind, low, high, low_open, high_open = rule
    value = getattr(config, name)
    if name == "item_seed" and value is None:
        return None
    allowed = interval(low, high, low_open, high_open)
    if kind == _RANGE:
        ok = (isinstance(value, tuple) and len(value) == 2
              and all(is_finite_real(v) and v >= (low or 0.0) for v in value) and value[0] <= value[1])
        if ok:
            return None
        return f"{name}={describe(value)}; expected a tuple (low, high) of finite numbers in {allowed}, low <= high"
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return f"{name}={describe(value)}; expected an int in {allowed}"
    else:
        if not is_finite_real(value):
            return f"{name}={describe(value)}; expected a finite number in {allowed}"
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        return f"{name}={describe(value)}; expected {'an int' if kind == _INT else 'a number'} in {allowed}"
    return None


@dataclass(frozen=True)
class ECommerceConfig:
    """All parameters of the simulator. Defaults are the book's default environment.

    Every field's type, finiteness and range is checked at construction (``_CONFIG_RULES``); the
    error names each bad field, its value and what is allowed.
    """

    n_items: int = 120
    """Catalogue size (the number of discrete actions)."""
    n_categories: int = 10
    """Item categories; each has its own embedding centroid and price level."""
    embedding_dim: int = 8
    """Dimension of item embeddings and user preference vectors."""
    clickbait_fraction: float = 0.2
    """Fraction of items that are clickbait (high appeal, low quality)."""
    horizon: int = 50
    """Maximum session length H; the episode is truncated after H steps."""
    history_length: int = 5
    """How many recent recommendations the observation shows."""
    slate_size: int = 1
    """Items per recommendation; 1 gives a ``Discrete`` action space."""
    reward: Literal["click", "revenue"] = "click"
    """What the agent is paid for: a click, or the price of a purchase."""
    # choice model
    no_click_bias: float = 0.5
    """b0: subtracted from every item's utility (the no-click option has utility 0)."""
    fatigue_weight: float = 0.6
    """w_F: utility lost per unit of category fatigue."""
    fatigue_decay: float = 0.8
    """ρ: fatigue is multiplied by ρ each step before the shown category adds 1."""
    position_bias: float = 0.3
    """λ: utility lost per slot further down a slate."""
    # patience
    patience_low: float = 6.0
    """Lower bound of the initial patience U(low, high)."""
    patience_high: float = 14.0
    """Upper bound of the initial patience."""
    skip_cost: float = 2.0
    """Patience lost when a recommendation is ignored."""
    # catalogue
    clickbait_appeal: float = 1.5
    """Mean appeal of clickbait items (ordinary items have mean 0)."""
    appeal_noise: float = 0.3
    """Standard deviation of appeal around its mean."""
    quality_range: tuple[float, float] = (0.9, 1.7)
    """Quality of ordinary items, uniform on this range."""
    clickbait_quality_range: tuple[float, float] = (0.0, 0.4)
    """Quality of clickbait items, uniform on this range."""
    embedding_noise: float = 0.35
    """σ_e: spread of item embeddings around their category centroid."""
    # users
    preference_noise: float = 0.5
    """σ_u: per-user noise added to the preference implied by the observable features."""
    # purchases
    purchase_bias: float = -1.0
    """γ0 in the purchase model."""
    purchase_quality_weight: float = 2.0
    """γ_q: how much quality raises the purchase probability."""
    purchase_fit_weight: float = 0.5
    """γ_f: how much affinity raises the purchase probability."""
    price_sensitivity_mean: float = 1.0
    """Mean of the users' log-normal price sensitivity β_u."""
    catalogue_seed: int = 0
    """Seed of the catalogue and the feature-to-preference map (part of the env's definition)."""
    item_seed: int | None = None
    """None: the items are the catalogue's own. An int keeps the catalogue's world (category centroids
    and price levels, the user preference map) and draws a new set of items in it, for example the
    unseen items of chapter 6's cold start."""
    item_categories: tuple[int, ...] | None = None
    """Categories the items are drawn from (None: all of them, each at least once). Chapter 6 gives
    two catalogues disjoint categories for cross-domain transfer; the new items are drawn with
    ``item_seed`` (or, if it is None, a stream derived from ``catalogue_seed``)."""

    def __post_init__(self) -> None:
        """Check every field's type, finiteness and range; the error names the field and what is allowed."""
        problems = [problem for problem in (_check_field(self, name, rule) for name, rule in _CONFIG_RULES.items())
                    if problem]
        # a str first: `np.array(["click"]) not in (...)` is an elementwise test, falsy for the array
        if not isinstance(self.reward, str) or self.reward not in ("click", "revenue"):
            problems.append(f"reward={describe(self.reward)}; expected 'click' or 'revenue'")
        if self.item_categories is not None and not isinstance(self.item_categories, tuple):
            problems.append(f"item_categories={describe(self.item_categories)}; expected None or a tuple of category indices")
        if not problems:  # ranges that depend on other fields, once each field is sane on its own
            cross = {
                "n_categories": (self.n_categories <= self.n_items, f"at most n_items={self.n_items}"),
                "slate_size": (self.slate_size <= self.n_items, f"at most n_items={self.n_items}"),
                "patience_high": (self.patience_high >= self.patience_low, f">= patience_low={self.patience_low}"),
            }
            problems = [f"{name}={describe(getattr(self, name))}; expected {allowed}"
                        for name, (ok, allowed) in cross.items() if not ok]
            if self.item_categories is not None:
                cats = self.item_categories
                if (not cats or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in cats)
                        or len(set(cats)) != len(cats) or not all(0 <= c < self.n_categories for c in cats)
                        or len(cats) > self.n_items):
                    problems.append(f"item_categories={describe(cats)}; expected None or a non-empty tuple of distinct "
                                    f"category indices in [0, {self.n_categories - 1}], at most n_items={self.n_items} "
                                    "of them")
        if problems:
            raise invalid_fields("ECommerceConfig", problems)

    @property
    def max_exposure(self) -> float:
        """Upper bound of category fatigue, 1 / (1 - ρ)."""
        return 1.0 / (1.0 - self.fatigue_decay)


# Below this logit e^-v overflows a float (at -709.78); there sigmoid(v) = e^v to double precision.
# Above it the logistic keeps the form 1 / (1 + e^-v), so every trajectory stays bit-identical.
_LOGIT_EXP_SAFE = -709.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic 1 / (1 + e^-x), overflow-free for any logit (e^x where e^-x would overflow)."""
    x = np.asarray(x, dtype=float)
    if x.size and x.min() > _LOGIT_EXP_SAFE:  # the usual case, nothing to overflow (min is NaN if any is)
        return 1.0 / (1.0 + np.exp(-x))
    safe = x > _LOGIT_EXP_SAFE
    exp = np.exp(np.where(safe, -x, x))
    return np.where(safe, 1.0 / (1.0 + exp), exp)


@dataclass(frozen=True)
class Catalogue:
    """The item catalogue and the observable-feature-to-preference map of one config."""

    item_id: np.ndarray  # (n,) int: public ids, ascending, so item_id[a] is the id of action a
    category: np.ndarray  # (n,) int
    price: np.ndarray  # (n,) float
    embedding: np.ndarray  # (n, d)
    appeal: np.ndarray  # (n,)
    quality: np.ndarray  # (n,)
    is_clickbait: np.ndarray  # (n,) bool
    category_names: tuple[str, ...]
    preference_map: np.ndarray  # (n_user_features, d): W in u = W^T x + noise
    reference_price: float

    @classmethod
    def generate(cls, config: ECommerceConfig) -> Catalogue:
        rng = np.random.default_rng(config.catalogue_seed)
        n, c, d = config.n_items, config.n_categories, config.embedding_dim
        # every category gets items; the rest are spread at random
        category = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
        rng.shuffle(category)
        centroids = rng.normal(0.0, 1.0, (c, d)) / math.sqrt(d) * 1.6
        embedding = centroids[category] + rng.normal(0.0, config.embedding_noise / math.sqrt(d), (n, d))
        price_level = np.exp(rng.uniform(math.log(10), math.log(200), c))
        price = np.round(price_level[category] * np.exp(rng.normal(0.0, 0.3, n)), 2)
        n_bait = int(round(config.clickbait_fraction * n))
        is_clickbait = np.zeros(n, dtype=bool)
        is_clickbait[rng.choice(n, n_bait, replace=False)] = True
        appeal = np.where(is_clickbait, config.clickbait_appeal, 0.0) + rng.normal(0.0, config.appeal_noise, n)
        quality = np.where(
            is_clickbait,
            rng.uniform(*config.clickbait_quality_range, n),
            rng.uniform(*config.quality_range, n),
        )
        names = CATEGORY_NAMES if c <= len(CATEGORY_NAMES) else tuple(f"category_{k}" for k in range(c))
        n_features = user_feature_dim()
        preference_map = rng.normal(0.0, 1.0, (n_features, d)) / math.sqrt(d) * 1.4
        item_id = np.sort(rng.choice(np.arange(10_000, 100_000), n, replace=False))
        reference_price = float(np.median(price))  # the world's, kept for new items
        if config.item_seed is not None or config.item_categories is not None:
            # the same world (centroids, price levels, preference map), new items drawn in it
            item_rng = np.random.default_rng(
                config.item_seed if config.item_seed is not None else [config.catalogue_seed, 1])
            allowed = np.arange(c) if config.item_categories is None else np.array(config.item_categories, dtype=int)
            category = np.concatenate([allowed, item_rng.choice(allowed, n - allowed.size)])
            item_rng.shuffle(category)
            embedding = centroids[category] + item_rng.normal(0.0, config.embedding_noise / math.sqrt(d), (n, d))
            price = np.round(price_level[category] * np.exp(item_rng.normal(0.0, 0.3, n)), 2)
            is_clickbait = np.zeros(n, dtype=bool)
            is_clickbait[item_rng.choice(n, n_bait, replace=False)] = True
            appeal = (np.where(is_clickbait, config.clickbait_appeal, 0.0)
                      + item_rng.normal(0.0, config.appeal_noise, n))
            quality = np.where(
                is_clickbait,
                item_rng.uniform(*config.clickbait_quality_range, n),
                item_rng.uniform(*config.quality_range, n),
            )
            item_id = np.sort(item_rng.choice(np.arange(10_000, 100_000), n, replace=False))
        return cls(
            item_id=item_id,
            category=category,
            price=price,
            embedding=embedding,
            appeal=appeal,
            quality=quality,
            is_clickbait=is_clickbait,
            category_names=tuple(names[:c]),
            preference_map=preference_map,
            reference_price=reference_price,
        )

    @property
    def n_items(self) -> int:
        return int(self.category.shape[0])


def user_feature_dim() -> int:
    """Length of the observable user-feature vector: age, gender one-hot, location one-hot."""
    return 1 + len(GENDERS) + len(LOCATIONS)


@dataclass(frozen=True)
class UserProfile:
    """One simulated user: observable features plus hidden traits."""

    age: int
    gender: str
    location: str
    preference: np.ndarray = field(repr=False)
    patience: float = 10.0
    price_sensitivity: float = 1.0

    def features(self) -> np.ndarray:
        """The observable feature vector x_u (age scaled to [0, 1], then one-hots)."""
        x = np.zeros(user_feature_dim())
        x[0] = (self.age - AGE_MIN) / (AGE_MAX - AGE_MIN)
        x[1 + GENDERS.index(self.gender)] = 1.0
        x[1 + len(GENDERS) + LOCATIONS.index(self.location)] = 1.0
        return x


def _check_user(user: UserProfile, config: ECommerceConfig) -> None:
    """A replayed user must be one the population could have drawn: the error names the bad trait."""
    d = config.embedding_dim
    preference = np.asarray(user.preference)
    problems = []
    if isinstance(user.age, bool) or not isinstance(user.age, (int, np.integer)) or not AGE_MIN <= user.age <= AGE_MAX:
        problems.append(f"age={describe(user.age)}; expected an int in {interval(AGE_MIN, AGE_MAX)}")
    if user.gender not in GENDERS:
        problems.append(f"gender={describe(user.gender)}; expected one of {list(GENDERS)}")
    if user.location not in LOCATIONS:
        problems.append(f"location={describe(user.location)}; expected one of {list(LOCATIONS)}")
    real = np.issubdtype(preference.dtype, np.integer) or np.issubdtype(preference.dtype, np.floating)  # not complex
    if preference.shape != (d,) or not real or not np.isfinite(preference).all():
        problems.append(f"preference={describe(preference)}; expected {d} finite real numbers (embedding_dim)")
    for trait, value, low_open in (("patience", user.patience, True), ("price_sensitivity", user.price_sensitivity, False)):
        if not is_finite_real(value) or (value <= 0 if low_open else value < 0):
            problems.append(f"{trait}={describe(value)}; expected a finite number {'> 0' if low_open else '>= 0'}")
    if problems:
        raise invalid_fields("options['user']", problems)


def sample_users(n: int, rng: np.random.Generator, config: ECommerceConfig, catalogue: Catalogue) -> list[UserProfile]:
    """Draw ``n`` users from the population (vectorised; used by ``reset`` and the data generator)."""
    age = rng.integers(AGE_MIN, AGE_MAX + 1, n)
    gender = rng.integers(0, len(GENDERS), n)
    location = rng.integers(0, len(LOCATIONS), n)
    x = np.zeros((n, user_feature_dim()))
    x[:, 0] = (age - AGE_MIN) / (AGE_MAX - AGE_MIN)
    x[np.arange(n), 1 + gender] = 1.0
    x[np.arange(n), 1 + len(GENDERS) + location] = 1.0
    d = config.embedding_dim
    preference = x @ catalogue.preference_map + rng.normal(0.0, config.preference_noise / math.sqrt(d), (n, d))
    patience = rng.uniform(config.patience_low, config.patience_high, n)
    price_sensitivity = config.price_sensitivity_mean * np.exp(rng.normal(0.0, 0.4, n))
    return [
        UserProfile(
            age=int(age[k]),
            gender=GENDERS[gender[k]],
            location=LOCATIONS[location[k]],
            preference=preference[k],
            patience=float(patience[k]),
            price_sensitivity=float(price_sensitivity[k]),
        )
        for k in range(n)
    ]


@dataclass(frozen=True)
class ObservationLayout:
    """Named slices of the flat observation vector."""

    age: slice
    gender: slice
    location: slice
    exposure: slice
    recent_items: slice
    recent_clicks: slice
    step: int
    clicks: int
    skips: int
    size: int

    @property
    def user(self) -> slice:
        """All observable user features (age, gender, location)."""
        return slice(self.age.start, self.location.stop)

    @classmethod
    def for_config(cls, config: ECommerceConfig) -> ObservationLayout:
        sizes = [
            ("age", 1), ("gender", len(GENDERS)), ("location", len(LOCATIONS)),
            ("exposure", config.n_categories),
            ("recent_items", config.history_length), ("recent_clicks", config.history_length),
        ]
        slices: dict[str, Any] = {}
        start = 0
        for name, size in sizes:
            slices[name] = slice(start, start + size)
            start += size
        return cls(**slices, step=start, clicks=start + 1, skips=start + 2, size=start + 3)


class ECommerceEnv(gym.Env[np.ndarray, Any]):
    __doc__ = __doc__

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, config: ECommerceConfig | None = None, render_mode: str | None = None, **overrides: Any):
        base = config if config is not None else ECommerceConfig()
        self.config = replace(base, **overrides) if overrides else base
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise invalid("render_mode", render_mode, f"one of {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        cfg = self.config
        self.catalogue = Catalogue.generate(cfg)
        self.layout = ObservationLayout.for_config(cfg)
        n, k = cfg.n_items, cfg.slate_size
        self.action_space = spaces.Discrete(n) if k == 1 else SlateSpace(n, k)
        low = np.zeros(self.layout.size, dtype=np.float32)
        high = np.ones(self.layout.size, dtype=np.float32)
        lay = self.layout
        high[lay.exposure] = cfg.max_exposure
        low[lay.recent_items] = -1.0
        high[lay.recent_items] = n - 1
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        # Python lists: indexing them with an int is several times faster than numpy scalars.
        self._category_list = self.catalogue.category.tolist()
        self._quality_list = self.catalogue.quality.tolist()
        self._price_list = self.catalogue.price.tolist()
        self.user: UserProfile | None = None
        self._obs = np.zeros(self.layout.size, dtype=np.float32)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a session. ``options={"user": UserProfile}`` replays a given user instead of drawing one."""
        super().reset(seed=seed)
        cfg, cat = self.config, self.catalogue
        if options is None:
            options = {}
        elif not isinstance(options, Mapping):
            raise invalid_type("options", options, "None or a dict {'user': UserProfile or None}")
        unknown = [key for key in options if key != "user"]
        if unknown:  # a misspelt 'user' would otherwise draw a new user silently
            raise invalid("options", options, "a dict whose only key is 'user'", why=f"unknown keys {unknown}")
        user = options.get("user")
        if user is None:
            user = sample_users(1, self.np_random, cfg, cat)[0]
        elif not isinstance(user, UserProfile):
            raise invalid_type("options['user']", user, "a UserProfile (or None to draw a user)")
        else:
            _check_user(user, cfg)
        self.user = user
        affinity = cat.embedding @ user.preference
        self._base_utility = affinity + cat.appeal - cfg.no_click_bias
        self._base_utility_list = self._base_utility.tolist()
        purchase_logit = (
            cfg.purchase_bias
            + cfg.purchase_quality_weight * (cat.quality - 1.0)
            + cfg.purchase_fit_weight * affinity
            - user.price_sensitivity * np.log(cat.price / cat.reference_price)
        )
        self._purchase_prob = _sigmoid(purchase_logit)
        self._purchase_prob_list = self._purchase_prob.tolist()
        # all randomness of the episode is drawn now: one uniform for the choice, one for the purchase
        self._uniforms = self.np_random.random((cfg.horizon, 2)).tolist()
        self.patience = float(user.patience)
        self.fatigue = np.zeros(cfg.n_categories)
        self.t = 0
        self.n_clicks = 0
        self.n_skips = 0
        obs = self._obs
        obs[:] = 0.0
        obs[self.layout.user] = user.features()
        obs[self.layout.recent_items] = -1.0
        return obs.copy(), {"user": user}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.user is None:
            raise RuntimeError("call reset() before step()")
        if self.t >= self.config.horizon or self.patience <= 0.0:
            raise RuntimeError("the episode has ended; call reset() before step()")
        cfg = self.config
        slate = self._check_action(action)
        u_choice, u_buy = self._uniforms[self.t]
        if len(slate) == 1:
            item = slate[0]
            v = self._base_utility_list[item] - cfg.fatigue_weight * float(self.fatigue[self._category_list[item]])
            # _sigmoid(v) inlined for speed: e^v where e^-v would overflow
            p_click = 1.0 / (1.0 + math.exp(-v)) if v > _LOGIT_EXP_SAFE else math.exp(v)
            clicked_item = item if u_choice < p_click else -1
        else:
            probs = self.choice_probabilities(slate)
            pick = int(np.searchsorted(np.cumsum(probs), u_choice, side="right"))
            clicked_item = slate[pick] if pick < len(slate) else -1
        reward = 0.0
        purchase = False
        if clicked_item >= 0:
            self.n_clicks += 1
            self.patience += self._quality_list[clicked_item] - 1.0
            purchase = u_buy < self._purchase_prob_list[clicked_item]
            if cfg.reward == "click":
                reward = 1.0
            elif purchase:
                reward = self._price_list[clicked_item]
        else:
            self.n_skips += 1
            self.patience -= cfg.skip_cost
        # fatigue: decay, then add one unit of exposure per step, shared by the slate's slots
        fatigue = self.fatigue
        fatigue *= cfg.fatigue_decay
        share = 1.0 / len(slate)
        for item in slate:
            fatigue[self._category_list[item]] += share
        self.t += 1
        terminated = self.patience <= 0.0
        truncated = (not terminated) and self.t >= cfg.horizon
        self._write_observation(slate[0], clicked_item >= 0)
        info = {
            "slate": slate,
            "clicked_item": clicked_item,
            "click": clicked_item >= 0,
            "purchase": purchase,
            "revenue": self._price_list[clicked_item] if purchase else 0.0,
        }
        return self._obs.copy(), reward, terminated, truncated, info

    def _write_observation(self, shown_item: int, clicked: bool) -> None:
        obs, lay, h = self._obs, self.layout, self.config.history_length
        obs[lay.exposure] = self.fatigue
        items, clicks = lay.recent_items, lay.recent_clicks
        if h > 1:
            obs[items.start:items.stop - 1] = obs[items.start + 1:items.stop]
            obs[clicks.start:clicks.stop - 1] = obs[clicks.start + 1:clicks.stop]
        obs[items.stop - 1] = shown_item
        obs[clicks.stop - 1] = 1.0 if clicked else 0.0
        horizon = self.config.horizon
        obs[lay.step] = self.t / horizon
        obs[lay.clicks] = self.n_clicks / horizon
        obs[lay.skips] = self.n_skips / horizon

    def _check_action(self, action: Any) -> list[int]:
        n, k = self.config.n_items, self.config.slate_size
        if k == 1:
            # fast path for the common case: a Python or numpy integer (SB3 passes np.int64)
            if isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_)):
                a = int(action)
                if 0 <= a < n:
                    return [a]
            elif isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
                a = int(action)
                if 0 <= a < n:
                    return [a]
            # a ValueError for every bad action, a wrong type included, as before
            raise invalid("action", action, f"one integer item id in [0, {n - 1}]", why=f"got type {type(action).__name__}")
        if not self.action_space.contains(action):  # SlateSpace: the slate rules live there
            raise invalid("action", action, f"a slate of {k} distinct integer item ids in [0, {n - 1}]")
        return np.asarray(action).tolist()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.user is None:
            return None
        u = self.user
        recent = self._obs[self.layout.recent_items].astype(int).tolist()
        return (
            f"t={self.t:2d}  user(age={u.age}, {u.gender}, {u.location})  patience={self.patience:5.2f}  "
            f"clicks={self.n_clicks}  skips={self.n_skips}  recent={recent}"
        )

    # ------------------------------------------------------------------ ground truth
    def _require_user(self) -> None:
        if self.user is None:
            raise RuntimeError("ground truth needs a user: call reset() first")

    def click_utilities(self) -> np.ndarray:
        """Utility v_i of every item shown alone in slot 0, in the current state."""
        self._require_user()
        return self._base_utility - self.config.fatigue_weight * self.fatigue[self.catalogue.category]

    def click_probabilities(self) -> np.ndarray:
        """True probability that each item is clicked if it were recommended (alone) now."""
        return _sigmoid(self.click_utilities())

    def choice_probabilities(self, slate: list[int] | np.ndarray) -> np.ndarray:
        """Multinomial-logit probabilities of clicking each slate slot; the last entry is no click."""
        self._require_user()
        slate = np.asarray(slate, dtype=int)
        v = self.click_utilities()[slate] - self.config.position_bias * np.arange(len(slate))
        m = max(0.0, float(v.max()))
        expv = np.exp(np.append(v, 0.0) - m)
        return expv / expv.sum()

    def purchase_probabilities(self) -> np.ndarray:
        """True probability of a purchase given a click, per item, for the current user."""
        self._require_user()
        return self._purchase_prob.copy()

    def expected_patience_change(self) -> np.ndarray:
        """E[Δpatience] if each item were recommended now: p·(q - 1) - (1 - p)·skip_cost."""
        p = self.click_probabilities()
        return p * (self.catalogue.quality - 1.0) - (1.0 - p) * self.config.skip_cost

    def expected_immediate_reward(self) -> np.ndarray:
        """E[reward] of recommending each item now, under the configured reward."""
        p = self.click_probabilities()
        if self.config.reward == "click":
            return p
        return p * self._purchase_prob * self.catalogue.price
