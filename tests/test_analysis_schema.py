"""The results schema's one table of short columns and its one local-versus-URI rule (analysis/schema.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.fs as pafs

from analysis import schema
from analysis.effects import AXIS_ALIASES, axis_name


def test_short_columns_come_from_one_table_with_their_types():
    assert [(c.key, c.name) for c in schema.AXIS_COLUMNS] == [
        ("model.n_nodes", "n_nodes"),
        ("model.flow_width", "flow_width"),
        ("search.lambda_sq", "lambda_sq"),
        ("reduction.tau", "tau"),
    ]
    for c in schema.AXIS_COLUMNS:
        assert schema.column_type(c.name) == c.type
    assert schema.column_type("seed") == pa.int64() and schema.column_type("latency_ms") == pa.float64()
    assert schema.axis_column("search.lambda_sq") == "lambda_sq"
    assert schema.axis_column("data.n_train") == "config/data.n_train"


def test_effect_axes_read_the_same_table():
    for c in schema.AXIS_COLUMNS:
        assert AXIS_ALIASES[c.key] == AXIS_ALIASES[f"config/{c.key}"] == c.name
        assert axis_name(c.key) == axis_name(f"config/{c.key}") == axis_name(c.name) == c.name
    assert axis_name("config/data.n_train") == "config/data.n_train"  # no short column: as given


def test_file_scheme_is_local_and_every_other_scheme_a_uri(tmp_path):
    for uri in ("s3://bucket/p", "gs://b/p", "hdfs://host/p"):
        assert schema.is_uri(uri)
    for local in (str(tmp_path), "runs/x", f"file://{tmp_path}", tmp_path):
        assert not schema.is_uri(local)
    assert schema.local_path(f"file://{tmp_path}/e") == f"{tmp_path}/e"
    assert schema.local_path("/a/b") == "/a/b"
    fs, path = schema.experiment_fs(f"file://{tmp_path}/e")
    assert isinstance(fs, pafs.LocalFileSystem) and path == f"{tmp_path}/e"
    fs, path = schema.experiment_fs("rel/e")
    assert isinstance(fs, pafs.LocalFileSystem) and path == os.path.abspath("rel/e")
