import json
import tomllib
from pathlib import Path

import pytest

from knowledge.config import KBSettings
from pipelines.config import Settings, load_settings
from rag.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_documents_exactly_the_defaults():
    data = tomllib.loads((ROOT / "config.toml").read_text())
    assert Settings.model_validate(data) == Settings()
    assert set(data) == set(Settings.model_fields)


def test_unknown_key_names_key_value_and_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retrieval]\ntop_k = 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "retrieval.top_k" in str(err.value) and "3" in str(err.value) and str(cfg) in str(err.value)


def test_bad_value_names_key_value_and_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[index]\ntype = "annoy"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "index.type" in str(err.value) and "annoy" in str(err.value) and str(cfg) in str(err.value)


def test_unknown_table_is_an_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retreival]\nk = 3\n")
    with pytest.raises(ConfigError, match="retreival"):
        load_settings(cfg)


def test_invalid_toml_and_missing_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retrieval\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_override_is_validated_and_leaves_the_original():
    base = Settings()
    changed = base.override({"retrieval.k": 9})
    assert changed.retrieval.k == 9 and base.retrieval.k == 5
    with pytest.raises(ConfigError, match="retrieval.k"):
        base.override({"retrieval.k": -1})
    with pytest.raises(ConfigError, match="unknown setting 'retrieval.kk'"):
        base.override({"retrieval.kk": 1})


def test_settings_extend_the_kb_settings_and_override_keeps_the_type(tmp_path):
    assert issubclass(Settings, KBSettings)
    kb_tables = set(KBSettings.model_fields)
    assert {"kb", "embedding", "index", "retrieval", "log", "distill"} <= kb_tables
    assert {"prompt", "generation", "answer", "eval", "serve"}.isdisjoint(kb_tables)
    changed = Settings().override({"kb.path": "elsewhere", "generation.max_new_tokens": 7, "serve.port": 9})
    assert type(changed) is Settings
    assert (changed.kb.path, changed.generation.max_new_tokens, changed.serve.port) == ("elsewhere", 7, 9)
    # the JSON a background child receives reads back as the same settings
    handed = tmp_path / "settings.json"
    handed.write_text(json.dumps(changed.model_dump()))
    assert load_settings(handed) == changed
    # the knowledge layer's settings override their own tables only
    kb = KBSettings().override({"index.type": "hnsw"})
    assert type(kb) is KBSettings and kb.index.type == "hnsw"
    with pytest.raises(ConfigError, match="unknown setting 'generation.model'"):
        kb.override({"generation.model": "x"})
    with pytest.raises(ConfigError, match="index.type"):
        kb.override({"index.type": "annoy"})
