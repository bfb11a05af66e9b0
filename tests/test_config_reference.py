"""The config reference (docs/config.md) is generated from the fields of supernet/config.py and stays in sync."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from supernet.config import (
    CROSS_CHECKS,
    PRESET_DOCS,
    PRESETS,
    Config,
    ConfigError,
    build_config,
    field_checks,
    reference_markdown,
)

ROOT = Path(__file__).resolve().parents[1]


def test_docs_config_md_is_the_generated_reference():
    # regenerate with: python -m supernet.config > docs/config.md
    assert (ROOT / "docs" / "config.md").read_text() == reference_markdown()


def test_the_module_writes_the_reference():
    out = subprocess.run(
        [sys.executable, "-m", "supernet.config"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out == reference_markdown()


def every_field():
    for sec in fields(Config):
        for f in fields(sec.default_factory):
            yield sec, f


def test_every_field_and_section_has_a_doc_and_a_row():
    text = reference_markdown()
    for sec in fields(Config):
        assert sec.metadata["doc"] and f"## `{sec.name}`" in text
    for sec, f in every_field():
        doc = f.metadata["doc"]
        assert doc.strip().endswith("."), (sec.name, f.name, doc)  # a sentence or two, not a stub
        assert f"| `{sec.name}.{f.name}` |" in text
    assert set(PRESET_DOCS) == set(PRESETS)


def test_the_defaults_pass_their_own_checks():
    cfg = Config()
    for sec, f in every_field():
        for check in field_checks(sec.name)[f.name]:
            check(f"{sec.name}.{f.name}", getattr(getattr(cfg, sec.name), f.name))
    for _, ok, _ in CROSS_CHECKS:
        assert ok(cfg)


def test_floats_are_finite_and_seeds_in_range_by_type():
    checks = field_checks("model")
    assert [c.shown for c in checks["temperature"]] == ["finite", "> 0"]
    assert [c.shown for c in field_checks("trial")["seed"]] == ["[0, 2**32)"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"data.n_val": 0}, "data.n_val: must be >= 1, got 0"),
        ({"data.max_val": -1}, "data.max_val: must be >= 0, got -1"),
        ({"data.image_size": [4, 4]}, r"data.image_size: needs [H, W], each >= 8, got [4, 4]"),
        ({"trial.device": "tpu"}, "trial.device: must be auto, cpu or cuda, got 'tpu'"),
        ({"model.stem_layers": 5}, "model.stem_layers: must be in 1..4, got 5"),
        ({"model.n_nodes": 3, "model.flow_width": 3}, "model.flow_width: M must satisfy 1 <= M < N (N=3), got 3"),
        ({"model.n_nodes": 1, "model.flow_width": 0}, "model.flow_width: M must satisfy 1 <= M < N, got 0"),
        ({"search.prune_epochs": -2}, "search.prune_epochs: must be >= 0 (0 = off), got -2"),
    ],
)
def test_each_message_names_the_key_the_value_and_the_rule(overrides, message):
    with pytest.raises(ConfigError) as e:
        build_config(overrides=overrides)
    assert str(e.value).startswith(message)


def test_a_single_node_net_takes_width_1_only():
    # no edge exists whatever M, so another M would label identical networks differently
    assert build_config(overrides={"model.n_nodes": 1, "model.flow_width": 1}).model.flow_width == 1
    with pytest.raises(ConfigError, match=r"model.flow_width: M must satisfy 1 <= M < N \(N=1\), got 2; a single"):
        build_config(overrides={"model.n_nodes": 1, "model.flow_width": 2})
