import gymnasium as gym
import pytest

import recrl_lite
from recrl_lite.data import generate_dataset


@pytest.fixture
def env():
    e = gym.make(recrl_lite.ENV_ID)
    yield e
    e.close()


@pytest.fixture(scope="session")
def small_dataset():
    return generate_dataset(n_users=300, seed=3)
