"""Config validation: bad keys and values are rejected with a message naming the key."""

from __future__ import annotations

import pytest

from supernet.config import ConfigError, build_config, from_dict, load_yaml, parse_set, to_dict


@pytest.mark.parametrize(
    "overrides,key",
    [
        ({"model.flow_width": 0}, "model.flow_width"),
        ({"model.n_nodes": 4, "model.flow_width": 4}, "model.flow_width"),
        ({"reduction.tau": 1.0}, "reduction.tau"),
        ({"reduction.tau": -0.1}, "reduction.tau"),
        ({"search.lambda_sq": -1}, "search.lambda_sq"),
        ({"warmup.lr": -0.1}, "warmup.lr"),
        ({"model.nodes": 3}, "model.nodes"),
        ({"modle.n_nodes": 3}, "modle.n_nodes"),
        ({"model.gate": "softmax"}, "model.gate"),
        ({"model.n_nodes": "four"}, "model.n_nodes"),
        ({"trial.mode": "single_task"}, "trial.single_task"),
    ],
)
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config(overrides=overrides)


NONSENSE = [
    ("model.arch_init", "nan"),
    ("model.temperature", "inf"),
    ("model.temperature", "0"),
    ("model.temperature", "-1"),
    ("search.lambda_sq", "inf"),
    ("warmup.lr", "inf"),
    ("warmup.lr", "nan"),
    ("search.lr", "inf"),
    ("finetune.lr", "nan"),
    ("search.arch_lr", "inf"),
    ("search.arch_lr", "nan"),
    ("warmup.momentum", "nan"),
    ("finetune.momentum", "-inf"),
    ("search.momentum", "nan"),
    ("warmup.weight_decay", "inf"),
    ("search.weight_decay", "nan"),
    ("finetune.weight_decay", ".inf"),
    ("reduction.tau", "nan"),
    ("data.data_seed", "-1"),
    ("trial.seed", "-1"),
    ("trial.seed", "4294967296"),
    ("trial.seed", "inf"),
    ("search.temperature_end", "0"),
    ("search.temperature_end", "nan"),
    ("search.temperature_end", "-0.1"),
]


def test_an_optional_number_takes_null_from_the_cli_and_yaml(tmp_path):
    assert build_config("tiny", parse_set(["search.temperature_end=0.1"])).search.temperature_end == 0.1
    assert build_config("tiny", parse_set(["search.temperature_end=null"])).search.temperature_end is None
    (tmp_path / "c.yaml").write_text("config:\n  search.temperature_end: null\n")
    assert build_config("tiny", load_yaml(tmp_path / "c.yaml")["config"]).search.temperature_end is None


@pytest.mark.parametrize("key,value", NONSENSE)
def test_nonsense_values_name_the_key(key, value):
    # the path the CLI takes: --set KEY=VALUE -> parse_set -> build_config
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config("tiny", parse_set([f"{key}={value}"]))


@pytest.mark.parametrize("key,value", NONSENSE[:3])
def test_nonsense_values_in_a_yaml_file_name_the_key(tmp_path, key, value):
    (tmp_path / "c.yaml").write_text(f"config:\n  {key}: {'.' + value if value in ('nan', 'inf') else value}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config("tiny", load_yaml(tmp_path / "c.yaml")["config"])


def test_unknown_task_name_is_rejected():
    from supernet.data import build_data

    cfg = build_config("tiny", {"data.tasks": ["depth", "surface"]})
    with pytest.raises(ConfigError, match=r"data\.tasks.*surface"):
        build_data(cfg.data)


def test_unknown_single_task_names_the_key(tmp_path):
    from supernet.trial import run_trial

    cfg = build_config("tiny", {"trial.mode": "single_task", "trial.single_task": "surface"})
    with pytest.raises(ConfigError, match=r"trial\.single_task.*surface"):
        run_trial(cfg, tmp_path)


def test_preset_yaml_and_set_layering(tmp_path):
    (tmp_path / "c.yaml").write_text("config:\n  model.flow_width: 1\n")
    doc = load_yaml(tmp_path / "c.yaml")
    cfg = build_config("tiny", {**doc["config"], **parse_set(["data.tasks=[depth,normal]", "search.lambda_sq=0.5"])})
    assert cfg.model.n_nodes == 3 and cfg.model.flow_width == 1
    assert cfg.data.tasks == ("depth", "normal") and cfg.search.lambda_sq == 0.5
    assert from_dict(to_dict(cfg)) == cfg
    nested = build_config(overrides={"model": {"flow_width": 1}})
    assert nested.model.flow_width == 1


def test_bad_files_and_set_syntax(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["model.flow_width"])
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config("huge")
