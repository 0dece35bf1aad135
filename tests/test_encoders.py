"""Sequence state encoders of chapter 5 (GRU4Rec- and SASRec-style) and their use in the agents.

Expectations are computed independently of the implementation: a numpy GRU written from the
equations, the same history with and without padding in front of it (two simulators with other
history lengths), perturbations of one slot for causality, and the env's own space for aliasing.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import recrl_lite
from recrl_lite.agents.dqn import DQNAgent, DQNConfig, train_dqn
from recrl_lite.agents.reinforce import ReinforceAgent, ReinforceConfig, train_reinforce
from recrl_lite.envs import ECommerceEnv
from recrl_lite.models.encoders import GRUEncoder, MLPEncoder, TransformerEncoder, count_parameters

torch.set_num_threads(1)

ENCODERS = [GRUEncoder, TransformerEncoder]


def rollout_observations(env, n_steps, seed=0, actions=None):
    """Observations of one session under a fixed action sequence (from reset on)."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    actions = actions if actions is not None else [(7 * t + 3) % env.action_space.n for t in range(n_steps)]
    for a in actions[:n_steps]:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            break
    return np.stack(out)


def build(cls, env, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls.from_env(env, **kwargs)


@pytest.mark.parametrize("cls", ENCODERS)
def test_shapes_for_a_batch_and_a_single_observation(cls):
    env = ECommerceEnv()
    enc = build(cls, env, output_dim=24)
    obs = torch.as_tensor(rollout_observations(env, 8))
    assert enc.output_dim == 24
    batch = enc(obs)
    assert batch.shape == (obs.shape[0], 24) and torch.isfinite(batch).all()
    assert (batch >= 0).all()  # a ReLU layer ends it
    single = enc(obs[3])
    assert single.shape == (24,)
    torch.testing.assert_close(single, batch[3], rtol=1e-5, atol=1e-6)
    assert enc(obs.reshape(3, 3, -1)).shape == (3, 3, 24)


@pytest.mark.parametrize("cls", ENCODERS)
def test_wrong_inputs_give_clear_errors(cls):
    env = ECommerceEnv()
    enc = cls.from_env(env)
    with pytest.raises(ValueError, match="size 31"):
        enc(torch.zeros(4, 30))
    with pytest.raises(ValueError, match="size 31"):
        enc(torch.zeros(()))
    obs = torch.as_tensor(rollout_observations(env, 3))
    bad = obs.clone()
    bad[1, env.layout.recent_items.start] = 2.5  # not an item id
    with pytest.raises(ValueError, match="recent_items"):
        enc(bad)
    bad[1, env.layout.recent_items.start] = 120.0  # out of the catalogue
    with pytest.raises(ValueError, match=r"\[0, 119\]"):
        enc(bad)
    with pytest.raises(ValueError, match="n_items"):
        cls(env.observation_space, env.layout, 60)  # the space allows ids up to 119
    with pytest.raises(ValueError, match="layout"):
        cls(env.observation_space, ECommerceEnv(history_length=3).layout, 120)
    with pytest.raises(ValueError, match="layout"):
        cls(env.observation_space, "recent_items", 120)
    with pytest.raises(ValueError, match="Box"):
        cls(env.action_space, env.layout, 120)
    with pytest.raises(ValueError, match="output_dim"):
        cls.from_env(env, output_dim=0)
    if cls is TransformerEncoder:
        with pytest.raises(ValueError, match="invalid d_model 30: expected a multiple of n_heads=4"):
            cls.from_env(env, d_model=30, n_heads=4)


def numpy_gru_encoder(enc, obs, layout, low, high):
    """phi(s) from the GRUEncoder docstring's equations, in numpy, over the valid items only."""
    p = {k: v.detach().double().numpy() for k, v in enc.state_dict().items()}
    H = enc.hidden
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    W_r, W_z, W_n = np.split(p["gru.weight_ih_l0"], 3)
    U_r, U_z, U_n = np.split(p["gru.weight_hh_l0"], 3)
    bi_r, bi_z, bi_n = np.split(p["gru.bias_ih_l0"], 3)
    bh_r, bh_z, bh_n = np.split(p["gru.bias_hh_l0"], 3)
    w_click, b_click = p["click_embedding.weight"][:, 0], p["click_embedding.bias"]
    out = []
    for o in obs.astype(np.float64):
        h = np.zeros(H)
        for item, click in zip(o[layout.recent_items], o[layout.recent_clicks]):
            if item < 0:
                continue
            x = p["item_embedding.weight"][int(item) + 1] + click * w_click + b_click
            r = sig(W_r @ x + bi_r + U_r @ h + bh_r)
            z = sig(W_z @ x + bi_z + U_z @ h + bh_z)
            n = np.tanh(W_n @ x + bi_n + r * (U_n @ h + bh_n))
            h = (1 - z) * n + z * h
        keep = np.ones(o.shape[0], dtype=bool)
        keep[layout.recent_items] = keep[layout.recent_clicks] = False
        context = (o[keep] - low[keep]) / (high[keep] - low[keep])
        out.append(np.maximum(0.0, p["out.weight"] @ np.concatenate([h, context]) + p["out.bias"]))
    return np.array(out)


def test_gru_matches_the_equations_in_numpy():
    env = ECommerceEnv()
    enc = build(GRUEncoder, env, embedding_dim=8, hidden=6, output_dim=5)
    obs = rollout_observations(env, 9)  # from the empty history to a full one
    expected = numpy_gru_encoder(enc, obs, env.layout, env.observation_space.low.astype(np.float64),
                                 env.observation_space.high.astype(np.float64))
    np.testing.assert_allclose(enc(torch.as_tensor(obs)).detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def same_history_shorter_window(obs, long_env, short_env):
    """The observation of ``short_env`` with the context of ``obs`` and its newest items."""
    lo, sh = long_env.layout, short_env.layout
    k = sh.recent_items.stop - sh.recent_items.start
    out = np.zeros((obs.shape[0], sh.size), dtype=np.float32)
    out[:, sh.user], out[:, sh.exposure] = obs[:, lo.user], obs[:, lo.exposure]
    out[:, sh.recent_items] = obs[:, lo.recent_items][:, -k:]
    out[:, sh.recent_clicks] = obs[:, lo.recent_clicks][:, -k:]
    for name in ("step", "clicks", "skips"):
        out[:, getattr(sh, name)] = obs[:, getattr(lo, name)]
    return out


def copy_weights(source, target):
    """Copy the learned parameters; position rows by distance from the newest slot (row 0 = newest)."""
    with torch.no_grad():
        for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
            if name == "position_embedding.weight":
                b[: a.shape[0]] = a
            else:
                b.copy_(a)


@pytest.mark.parametrize("cls", ENCODERS)
def test_padding_in_front_changes_nothing(cls):
    """History [a, b, c] in a window of 3 and [-1, -1, a, b, c] in a window of 5: the same phi."""
    long_env, short_env = ECommerceEnv(history_length=5), ECommerceEnv(history_length=3)
    obs5 = rollout_observations(long_env, 3)[-1:]  # three items shown: two padded slots
    assert (obs5[0, long_env.layout.recent_items] == -1).sum() == 2
    obs3 = same_history_shorter_window(obs5, long_env, short_env)
    assert (obs3[0, short_env.layout.recent_items] >= 0).all()
    long_enc, short_enc = build(cls, long_env, seed=0), build(cls, short_env, seed=1)
    copy_weights(short_enc, long_enc)
    phi5, phi3 = long_enc(torch.as_tensor(obs5)), short_enc(torch.as_tensor(obs3))
    torch.testing.assert_close(phi5, phi3, rtol=1e-5, atol=1e-6)
    # padded slots' click flags do not leak either
    noisy = obs5.copy()
    pad = np.flatnonzero(noisy[0, long_env.layout.recent_items] < 0)
    noisy[0, long_env.layout.recent_clicks.start + pad] = 1.0
    torch.testing.assert_close(long_enc(torch.as_tensor(noisy)), phi5, rtol=0, atol=0)
    # whereas the items themselves matter (the test can fail): a full window is another history
    full5 = rollout_observations(long_env, 5)[-1:]
    assert not torch.allclose(long_enc(torch.as_tensor(full5)), phi5, atol=1e-4)


@pytest.mark.parametrize("cls", ENCODERS)
def test_empty_history_is_finite_and_sees_only_the_context(cls):
    env = ECommerceEnv()
    enc = build(cls, env)
    first = rollout_observations(env, 0)  # reset: all slots padded
    assert (first[0, env.layout.recent_items] == -1).all()
    phi = enc(torch.as_tensor(first))
    assert torch.isfinite(phi).all()
    other = first.copy()
    other[0, env.layout.recent_clicks] = 1.0
    torch.testing.assert_close(enc(torch.as_tensor(other)), phi, rtol=0, atol=0)
    moved = first.copy()
    moved[0, env.layout.user] = rollout_observations(env, 0, seed=5)[0, env.layout.user]
    assert not torch.allclose(enc(torch.as_tensor(moved)), phi)  # the context does reach phi


def test_transformer_attention_is_causal():
    env = ECommerceEnv()
    enc = build(TransformerEncoder, env, n_layers=2)
    obs = rollout_observations(env, 6)[-1:]  # a full window of 5 items
    items = env.layout.recent_items
    base = enc.sequence_outputs(torch.as_tensor(obs))[0]
    assert base.shape == (5, enc.d_model)
    newest = obs.copy()
    newest[0, items.stop - 1] = (obs[0, items.stop - 1] + 11) % 120
    y = enc.sequence_outputs(torch.as_tensor(newest))[0]
    torch.testing.assert_close(y[:4], base[:4], rtol=0, atol=0)  # older slots do not see it
    assert not torch.allclose(y[4], base[4])
    middle = obs.copy()
    middle[0, items.start + 2] = (obs[0, items.start + 2] + 11) % 120
    y = enc.sequence_outputs(torch.as_tensor(middle))[0]
    torch.testing.assert_close(y[:2], base[:2], rtol=0, atol=0)
    for k in (3, 4):  # newer slots do attend to it
        assert not torch.allclose(y[k], base[k], atol=1e-5), k


def test_transformer_padded_slots_are_zero_and_masked():
    env = ECommerceEnv()
    enc = build(TransformerEncoder, env)
    obs = rollout_observations(env, 2)  # 0, 1 and 2 items shown
    y = enc.sequence_outputs(torch.as_tensor(obs))
    valid = torch.as_tensor(obs[:, env.layout.recent_items] >= 0)
    assert (y[~valid] == 0).all() and (y[valid].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("cls", ENCODERS)
def test_gradients_reach_every_parameter(cls):
    env = ECommerceEnv()
    enc = build(cls, env)
    obs = torch.as_tensor(np.concatenate([rollout_observations(env, 8, seed=s) for s in range(3)]))
    enc(obs).pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    item_grad = enc.item_embedding.weight.grad
    assert (item_grad[0] == 0).all()  # the padding row learns nothing
    seen = set((obs[:, env.layout.recent_items][obs[:, env.layout.recent_items] >= 0] + 1).long().tolist())
    unseen = [i for i in range(121) if i not in seen]
    assert unseen and (item_grad[unseen] == 0).all()
    assert all(item_grad[i].abs().sum() > 0 for i in seen)


def test_no_warnings_from_the_transformer():
    env = ECommerceEnv()
    obs = torch.as_tensor(rollout_observations(env, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = build(TransformerEncoder, env, n_layers=2)
        train = enc(obs)
        enc.eval()  # inference may take torch's fast path: same numbers
        with torch.no_grad():
            torch.testing.assert_close(enc(obs), train.detach(), rtol=1e-4, atol=1e-5)


def test_parameter_counts_at_the_defaults():
    """The numbers stated in the encoders module docstring, counted by hand from the layer shapes."""
    env = ECommerceEnv()
    n, d, ctx = 120, 32, 31 - 10
    gru = (n + 1) * d + 2 * d + 3 * (d * 64 + 64 * 64 + 2 * 64) + (64 + ctx) * 64 + 64
    block = 4 * d * d + 4 * d + (d * 64 + 64) + (64 * d + d) + 2 * 2 * d
    transformer = (n + 1) * d + 5 * d + 2 * d + block + 2 * d + (d + ctx) * 64 + 64
    mlp = 31 * 128 + 128 + 128 * 128 + 128
    assert count_parameters(GRUEncoder.from_env(env)) == gru == 28_256
    assert count_parameters(TransformerEncoder.from_env(env)) == transformer == 16_160
    assert count_parameters(MLPEncoder(env.observation_space)) == mlp == 20_608
    import recrl_lite.models.encoders as module
    for count in (gru, transformer, mlp):
        assert f"{count:,}" in module.__doc__


# ----------------------------------------------------------------------------- in the agents
def make_env():
    return gym.make(recrl_lite.ENV_ID)


def factory(cls):
    space_env = ECommerceEnv()
    return lambda: cls.from_env(space_env, output_dim=32)


@pytest.mark.parametrize("cls", ENCODERS)
def test_reinforce_trains_and_round_trips_with_a_sequence_encoder(tmp_path, cls):
    env = make_env()
    cfg = ReinforceConfig(n_iterations=2, batch_episodes=4)
    agent = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=0, encoder_factory=factory(cls))
    assert isinstance(agent.net.policy_encoder, cls) and isinstance(agent.net.value_encoder, cls)
    assert agent.net.policy_encoder is not agent.net.value_encoder
    before = [p.detach().clone() for p in agent.net.parameters()]
    history = train_reinforce(agent, make_env, seed=0)
    assert len(history) == 2 and np.isfinite(history["policy_loss"]).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
    agent.save(tmp_path / "agent.pt")
    clone = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=1, encoder_factory=factory(cls))
    clone.load(tmp_path / "agent.pt")
    obs = rollout_observations(env.unwrapped, 6)
    np.testing.assert_array_equal(clone._logits(obs).numpy(), agent._logits(obs).numpy())
    mlp = ReinforceAgent(env.observation_space, env.action_space, cfg, seed=0)
    with pytest.raises(ValueError, match="do not fit"):
        mlp.load(tmp_path / "agent.pt")


@pytest.mark.parametrize("cls", ENCODERS)
def test_dqn_trains_and_round_trips_with_a_sequence_encoder(tmp_path, cls):
    env = make_env()
    cfg = DQNConfig(total_steps=320, learning_starts=160, n_envs=4, batch_size=32, target_update_interval=10)
    agent = DQNAgent(env.observation_space, env.action_space, cfg, seed=0, encoder_factory=factory(cls))
    assert isinstance(agent.net.encoder, cls) and isinstance(agent.target_net.encoder, cls)
    before = [p.detach().clone() for p in agent.net.parameters()]
    train_dqn(agent, make_env, seed=0)
    assert agent.gradient_steps > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
    agent.save(tmp_path / "agent.pt")
    clone = DQNAgent(env.observation_space, env.action_space, cfg, seed=1, encoder=factory(cls)())
    clone.load(tmp_path / "agent.pt")
    obs = rollout_observations(env.unwrapped, 6)
    np.testing.assert_array_equal(clone.q_values(obs), agent.q_values(obs))
    with pytest.raises(ValueError, match="not both"):
        DQNAgent(env.observation_space, env.action_space, cfg, encoder=factory(cls)(), encoder_factory=factory(cls))


@pytest.mark.parametrize("agent_cls", [ReinforceAgent, DQNAgent])
def test_encoder_factory_is_seeded_by_the_agent_and_defaults_are_unchanged(agent_cls):
    env = ECommerceEnv()
    cfg = ReinforceConfig(hidden=(16,)) if agent_cls is ReinforceAgent else DQNConfig(hidden=(16,))
    default = agent_cls(env.observation_space, env.action_space, cfg, seed=3)
    explicit = agent_cls(env.observation_space, env.action_space, cfg, seed=3,
                         encoder_factory=lambda: MLPEncoder(env.observation_space, (16,)))
    for a, b in zip(default.net.state_dict().values(), explicit.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    seq = [agent_cls(env.observation_space, env.action_space, cfg, seed=3, encoder_factory=factory(GRUEncoder))
           for _ in range(2)]
    for a, b in zip(seq[0].net.state_dict().values(), seq[1].net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_reinforce_refuses_a_factory_that_shares_one_encoder():
    env = ECommerceEnv()
    shared = GRUEncoder.from_env(env)
    with pytest.raises(ValueError, match="encoder_factory"):
        ReinforceAgent(env.observation_space, env.action_space, encoder_factory=lambda: shared)
    with pytest.raises(ValueError, match="encoder_factory"):
        ReinforceAgent(env.observation_space, env.action_space, encoder_factory=lambda: "gru")
    with pytest.raises(ValueError, match="encoder_factory"):
        ReinforceAgent(env.observation_space, env.action_space, encoder_factory=GRUEncoder.from_env(env))


@pytest.mark.parametrize("agent_cls,encoder", [(ReinforceAgent, None), (DQNAgent, None),
                                               (ReinforceAgent, GRUEncoder), (DQNAgent, TransformerEncoder)])
def test_loading_a_checkpoint_leaves_the_env_space_alone(tmp_path, agent_cls, encoder):
    """The encoders' bound buffers are copies: loading other bounds must not write into the env's space."""
    env = ECommerceEnv()
    low, high = env.observation_space.low.copy(), env.observation_space.high.copy()
    kwargs = {} if encoder is None else {"encoder_factory": lambda: encoder.from_env(env)}
    agent = agent_cls(env.observation_space, env.action_space, seed=0, **kwargs)
    state = agent.state_dict()
    bounds = [k for k in state["net"] if k.rsplit(".", 1)[-1] in ("low", "scale", "context_low", "context_scale")]
    assert bounds
    for k in bounds:
        state["net"][k] = torch.full_like(state["net"][k], -123.0)  # finite: NaN checkpoints are refused
    torch.save({"class": agent_cls.__name__, "state": state}, tmp_path / "moved.pt")
    agent.load(tmp_path / "moved.pt")
    assert all((agent.net.state_dict()[k] == -123.0).all() for k in bounds)  # the checkpoint did load
    np.testing.assert_array_equal(env.observation_space.low, low)
    np.testing.assert_array_equal(env.observation_space.high, high)
    assert ECommerceEnv().observation_space == env.observation_space


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("cls", ENCODERS)
def test_sequence_encoders_on_cuda(cls):
    env = ECommerceEnv()
    obs = rollout_observations(env, 6)
    cpu = build(cls, env)
    gpu = build(cls, env).to("cuda")
    torch.testing.assert_close(gpu(torch.as_tensor(obs, device="cuda")).cpu(), cpu(torch.as_tensor(obs)),
                               rtol=1e-3, atol=1e-4)
    agent = DQNAgent(env.observation_space, env.action_space, seed=0, device="cuda", encoder_factory=lambda: cls.from_env(env))
    assert 0 <= agent.act(obs[-1]) < 120


def test_dqn_refuses_a_module_as_factory():
    env = ECommerceEnv()
    with pytest.raises(ValueError, match="encoder_factory"):
        DQNAgent(env.observation_space, env.action_space, encoder_factory=GRUEncoder.from_env(env))
