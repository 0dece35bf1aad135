"""The logged dataset: generation from the simulator, schema validation, preprocessing (chapter 2)."""

from recrl_lite.data.preprocessing import FeatureEncoder, IdIndex, PreparedData, prepare, temporal_split
from recrl_lite.data.schema import SCHEMAS, SchemaError, read_table, validate_table
from recrl_lite.data.synthetic import Dataset, Transitions, generate_dataset, load_dataset, log_transitions

__all__ = [
    "SCHEMAS",
    "Dataset",
    "FeatureEncoder",
    "IdIndex",
    "PreparedData",
    "SchemaError",
    "Transitions",
    "generate_dataset",
    "load_dataset",
    "log_transitions",
    "prepare",
    "read_table",
    "temporal_split",
    "validate_table",
]
