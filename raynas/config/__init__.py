"""Experiment and training configs: typed frozen dataclasses, loaded from YAML and validated with one-line errors.

>>> from raynas.config import load_config, expand_trials
>>> cfg = load_config("search_configs/quickstart.yaml", ["search.epochs=2"])  # doctest: +SKIP
>>> [t.overrides for t in expand_trials(cfg)]  # doctest: +SKIP

Imports neither torch nor Ray.
"""

from raynas.config.loader import (FieldError, config_from_dict, config_to_dict, describe_type, dump_config,
                                  load_config, load_train_config, read_config_file, registry_for, resolve_field,
                                  section_type, show_value, train_config_from_dict)
from raynas.config.overrides import apply_overrides, parse_override, set_path, split_key, with_overrides
from raynas.config.params import ParamSpec, asha_max_t, check_population, parse_params
from raynas.config.schema import (DataConfig, E2NASConfig, ExperimentConfig, NAConfig, ObjectivesConfig, RayConfig,
                                  ResourcesConfig, SDConfig, SearchConfig, SelectionConfig, SupernetConfig,
                                  TAConfig, TrainConfig, TuneConfig)
from raynas.config.trials import TrialSpec, expand_trials, trial_label

__all__ = [
    "DataConfig", "E2NASConfig", "ExperimentConfig", "NAConfig", "ObjectivesConfig", "RayConfig", "ResourcesConfig",
    "SDConfig", "TAConfig",
    "SearchConfig", "SelectionConfig",
    "SupernetConfig", "TrainConfig", "TuneConfig",
    "FieldError", "config_from_dict", "config_to_dict", "describe_type", "dump_config", "load_config",
    "load_train_config", "read_config_file", "registry_for", "resolve_field", "section_type", "show_value",
    "train_config_from_dict",
    "apply_overrides", "parse_override", "set_path", "split_key", "with_overrides",
    "TrialSpec", "expand_trials", "trial_label",
    "ParamSpec", "asha_max_t", "check_population", "parse_params",
]
