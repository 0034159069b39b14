"""The config system: presets, `extends`, overrides, strict keys, helpful errors, stable hashes."""

from pathlib import Path

import pytest

from unipic.config import config_hash, config_to_dict, load_config
from unipic.config.base import available_presets, read_preset
from unipic.errors import ConfigError


def test_presets_exist_and_load():
    assert {"ci", "smoke", "base"} <= set(available_presets())
    for name in ("ci", "smoke", "base"):
        cfg = load_config(name)
        assert cfg.preset == name


def test_extends_inherits_and_overrides():
    ci, smoke = read_preset("ci"), read_preset("smoke")
    assert "extends" not in smoke
    assert smoke["shapes"]["n_t2i"] > ci["shapes"]["n_t2i"]
    assert smoke["shapes"]["image_size"] == ci["shapes"]["image_size"]


def test_override_sets_typed_value():
    cfg = load_config("ci", ["shapes.n_t2i=7", "shapes.t2i_tasks=[counting, position]"])
    assert cfg.shapes.n_t2i == 7
    assert cfg.shapes.t2i_tasks == ["counting", "position"]


def test_unknown_key_names_key_and_allowed_keys():
    with pytest.raises(ConfigError) as exc:
        load_config("ci", ["shapes.n_tt=3"])
    msg = str(exc.value)
    assert "shapes.n_tt" in msg and "n_t2i" in msg and "image_size" in msg


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="unknown key 'nosuch'"):
        load_config("ci", ["nosuch.x=1"])


def test_bad_literal_lists_allowed_values():
    with pytest.raises(ConfigError) as exc:
        load_config("ci", ["shapes.t2i_tasks=[juggling]"])
    assert "shapes.t2i_tasks.0" in str(exc.value) and "single_object" in str(exc.value)


def test_bad_range_names_key():
    with pytest.raises(ConfigError, match="shapes.image_size"):
        load_config("ci", ["shapes.image_size=4"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config("ci", ["shapes.n_t2i"])


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError, match="available presets: .*ci"):
        load_config("nope")


def test_preset_from_path_and_cycle(tmp_path: Path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\nshapes:\n  n_t2i: 3\n")
    b.write_text("shapes:\n  n_edit: 4\n")
    cfg = load_config(str(a))
    assert (cfg.shapes.n_t2i, cfg.shapes.n_edit) == (3, 4)
    b.write_text(f"extends: {a}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(a))


def test_hash_is_stable_and_sensitive():
    h1 = config_hash(load_config("ci"))
    assert h1 == config_hash(load_config("ci"))
    assert h1 != config_hash(load_config("ci", ["shapes.seed=1"]))


def test_secrets_never_dumped_or_hashed(monkeypatch):
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", "s3cr3t-value")
    cfg = load_config("ci")
    assert cfg.store.secret_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in str(config_to_dict(cfg))
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", "other")
    assert config_hash(load_config("ci")) == config_hash(cfg)


def test_store_endpoint_validation():
    with pytest.raises(ConfigError, match="store.endpoint"):
        load_config("ci", ["store.endpoint=http://127.0.0.1:9000"])


@pytest.mark.parametrize("preset", ["ci", "smoke"])  # base curates a given source (web data), not ShapesWorld
def test_presets_generate_data_their_own_curation_gate_accepts(preset):
    """Each task's expected share of the generated data must sit inside the gate's balance bounds with room
    for rejections, or the preset's pipeline fails its own GX suite (found by running the smoke DAG)."""
    cfg = load_config(preset)
    sh, gate = cfg.shapes, cfg.curation.gate
    total = sh.n_t2i + sh.n_edit
    shares = [sh.n_t2i / total / len(sh.t2i_tasks)] * len(sh.t2i_tasks)
    shares += [sh.n_edit / total / len(sh.edit_categories)] * len(sh.edit_categories)
    assert min(shares) * 0.8 >= gate.min_task_fraction, (preset, min(shares), gate.min_task_fraction)
    assert max(shares) * 1.2 <= gate.max_task_fraction, (preset, max(shares), gate.max_task_fraction)
    assert total >= gate.min_rows / 0.9, (preset, total, gate.min_rows)
