import json

import pytest

from knowledge.distill.adapters import AdapterRegistry


def _finish(reg, adapter_id, passages, activate=True):
    tmp = reg.new_temp(adapter_id)
    (tmp / "adapter_config.json").write_text("{}")
    return reg.finish(tmp, {"id": adapter_id, "passages": passages}, activate=activate)


def test_promotion_renames_temp_and_moves_the_pointer(tmp_path):
    reg = AdapterRegistry(tmp_path)
    assert reg.active() is None and reg.active_path() is None
    final = _finish(reg, "a1", {"p1": 0.95})
    assert final == tmp_path.resolve() / "adapters" / "a1" and not (final.parent / ".tmp-a1").exists()
    assert reg.active()["id"] == "a1" and reg.active_path() == final
    assert json.loads((final.parent / "active.json").read_text())["active"] == "a1"


def test_rejected_candidate_is_kept_but_not_active(tmp_path):
    reg = AdapterRegistry(tmp_path)
    _finish(reg, "a1", {})
    _finish(reg, "a2", {}, activate=False)
    assert reg.active()["id"] == "a1"
    assert [(m["id"], m["active"]) for m in reg.list()] == [("a1", True), ("a2", False)]


def test_rollback_walks_the_history_back_to_the_base(tmp_path):
    reg = AdapterRegistry(tmp_path)
    _finish(reg, "a1", {})
    _finish(reg, "a2", {})
    assert reg.rollback() == "a1" and reg.active()["id"] == "a1"
    assert reg.rollback() is None and reg.active() is None
    with pytest.raises(ValueError, match="nothing to roll back"):
        reg.rollback()
    reg.activate("a2")
    assert reg.active()["id"] == "a2"


def test_activate_unknown_id_names_it(tmp_path):
    with pytest.raises(ValueError, match="'nope'"):
        AdapterRegistry(tmp_path).activate("nope")


def test_covers_needs_every_passage_with_enough_confidence(tmp_path):
    reg = AdapterRegistry(tmp_path)
    assert not reg.covers(["p1"], 0.5)
    _finish(reg, "a1", {"p1": 0.95, "p2": 0.6})
    assert reg.covers(["p1"], 0.9)
    assert not reg.covers(["p1", "p2"], 0.9) and reg.covers(["p1", "p2"], 0.5)
    assert not reg.covers(["p1", "p3"], 0.1) and not reg.covers([], 0.1)


def test_an_abandoned_temp_never_changes_the_active_adapter(tmp_path):
    reg = AdapterRegistry(tmp_path)
    _finish(reg, "a1", {"p1": 1.0})
    tmp = reg.new_temp("a2")
    (tmp / "manifest.json").write_text('{"id": "a2"}')  # a killed round's half-written folder
    assert reg.active()["id"] == "a1" and [m["id"] for m in reg.list()] == ["a1"]
    assert reg.clean_temps() == 1 and not tmp.exists()


def test_the_adapters_subfolder_of_a_kb_is_accepted_too(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    _finish(AdapterRegistry(tmp_path), "a1", {"p1": 1.0})
    assert AdapterRegistry(tmp_path / "adapters").active_path() == AdapterRegistry(tmp_path).active_path()


def test_gate_answers_are_kept_per_adapter_and_for_the_base_under_their_settings_key(tmp_path):
    reg = AdapterRegistry(tmp_path)
    assert reg.answers(None, "k1") == {}
    reg.save_answers(None, "k1", {"p1": "Paris"})
    reg.save_answers(None, "k1", {"p2": "4"})  # the base's answers accumulate across rounds
    assert reg.answers(None, "k1") == {"p1": "Paris", "p2": "4"}
    assert reg.answers(None, "k2") == {}  # another model or answer length: nothing reused
    tmp = reg.new_temp("a1")
    reg.save_answers(tmp, "k1", {"p1": "Lyon"})
    (tmp / "adapter_config.json").write_text("{}")
    final = reg.finish(tmp, {"id": "a1", "passages": {}}, activate=True)
    assert reg.answers(final, "k1") == {"p1": "Lyon"} and reg.answers(None, "k1")["p1"] == "Paris"
    (final / "answers.json").write_text("{not json")
    assert reg.answers(final, "k1") == {}  # damaged: answered afresh, never an error
    assert [m["id"] for m in reg.list()] == ["a1"]  # the base's file is not an adapter
