"""hyperparameter_table: the tables on the algorithm pages come from the configs themselves."""

import dataclasses

import pytest

from recrl_lite.agents import TabularConfig, hyperparameter_table
from recrl_lite.agents.dqn import DQNConfig
from recrl_lite.agents.reinforce import ReinforceConfig


@pytest.mark.parametrize("config", [DQNConfig(total_steps=1234), ReinforceConfig(), TabularConfig(gamma=0.5)])
def test_every_field_has_its_value_and_a_description(config):
    table = hyperparameter_table(config)
    names = [f.name for f in dataclasses.fields(config)]
    assert list(table.index) == names
    for name in names:
        value = getattr(config, name)
        assert table.loc[name, "value"] == (repr(value) if isinstance(value, str) else str(value))
        assert table.loc[name, "meaning"], f"{type(config).__name__}.{name} has no docstring"


def test_values_are_the_instance_values_not_the_defaults():
    table = hyperparameter_table(DQNConfig(total_steps=1234, gamma=0.9))
    assert table.loc["total_steps", "value"] == "1234" and table.loc["gamma", "value"] == "0.9"


def test_description_can_be_overridden():
    table = hyperparameter_table(TabularConfig(), gamma="chosen by the chapter")
    assert table.loc["gamma", "meaning"] == "chosen by the chapter"


@pytest.mark.parametrize("bad", [DQNConfig, 3, {"a": 1}])
def test_refuses_what_is_not_a_dataclass_instance(bad):
    with pytest.raises(ValueError, match="dataclass instance"):
        hyperparameter_table(bad)
