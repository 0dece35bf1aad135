"""The logged dataset: generation from the simulator, schema validation, preprocessing (chapter 2), and
the items' synthetic titles (chapter 6)."""

from recrl_lite.data.preprocessing import FeatureEncoder, IdIndex, PreparedData, prepare, temporal_split
from recrl_lite.data.schema import SCHEMAS, SchemaError, read_table, validate_table
from recrl_lite.data.titles import VOCABULARIES, generate_item_texts, grammar_words, price_tiers
from recrl_lite.data.synthetic import Dataset, Transitions, generate_dataset, load_dataset, log_transitions

__all__ = [
    "SCHEMAS",
    "Dataset",
    "FeatureEncoder",
    "IdIndex",
    "PreparedData",
    "SchemaError",
    "VOCABULARIES",
    "Transitions",
    "generate_dataset",
    "generate_item_texts",
    "grammar_words",
    "load_dataset",
    "log_transitions",
    "prepare",
    "price_tiers",
    "read_table",
    "temporal_split",
    "validate_table",
]
