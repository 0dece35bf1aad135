import os

import gymnasium as gym
import pytest
from hypothesis import settings

import recrl_lite
from recrl_lite.data import generate_dataset

# CI replays the same examples on every run, so a green run is reproducible and a failure recurs;
# a local run draws new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def env():
    e = gym.make(recrl_lite.ENV_ID)
    yield e
    e.close()


@pytest.fixture(scope="session")
def small_dataset():
    return generate_dataset(n_users=300, seed=3)
