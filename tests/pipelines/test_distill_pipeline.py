import hashlib
import json

import pytest
import torch

from knowledge.distill.adapters import AdapterRegistry
from knowledge.distill.data import GENERAL_QUESTIONS
from knowledge.kb import KnowledgeBase, release_lock
from knowledge.log import RetrievalLog
from pipelines.cli import main
from pipelines.distill import DistillRound, is_due
from rag.config import Settings
from rag.generate import HFGenerator
from rag.types import Answer, Hit, Passage, content_hash

TEXTS = {
    "kiln": "The Velmora kiln reaches 1280 degrees Celsius. It was built by Anna Kestrel in 1931.",
    "bridge": "The Orlen bridge is 412 metres long. It opened to traffic in 1978 after six years of work.",
    "lake": "Lake Tarvo freezes every January. Its deepest point is 67 metres below the surface.",
}
QUESTIONS = {"kiln": ["What temperature does the Velmora kiln reach?", "Who built the Velmora kiln?"],
             "bridge": ["How long is the Orlen bridge?", "When did the Orlen bridge open?"]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two spinning OpenMP threads on a busy 2-core box are ~10x slower
    yield
    torch.set_num_threads(before)


def _passage(name):
    return Passage(content_hash(TEXTS[name]), TEXTS[name], f"{name}.md", f"/src/{name}.md", name.title())


def _ask(log, name, question, n):
    hits = (Hit(_passage(name), 1.0, 1),)
    log.record(Answer(id=f"{name}-{n}", question=question, text="x", hits=hits))


@pytest.fixture(scope="module")
def kb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kb")
    with KnowledgeBase.open(root, embedding={"model": "fake", "dimension": 4}, create=True) as kb:
        passages = [_passage(n) for n in TEXTS]
        kb.store.replace_source("/src/all.md", "h", 1, 0.0, "{}", passages, [p.text for p in passages], 3)
        kb.store.assign_vectors([(p.id, i) for i, p in enumerate(passages)])
        log = RetrievalLog(kb.store, Settings().log)
        for n, q in enumerate(QUESTIONS["kiln"] * 2):
            _ask(log, "kiln", q, n)
    return root


def _settings(root, **extra):
    return Settings().override({
        "kb.path": str(root), "generation.max_new_tokens": 24, "distill.min_hits": 3, "distill.max_passages": 1,
        "distill.restatements": 1, "distill.lora_r": 8, "distill.lora_alpha": 16, "distill.learning_rate": 2e-3,
        "distill.max_steps": 4, "distill.epochs": 4, "distill.max_seq_len": 128, "distill.min_improvement": 0.0,
        "distill.max_regression": 1.0, "distill.holdout_fraction": 0.5, "distill.every_n_queries": 2} | extra)


def _round(root, generator, settings=None, **kw):
    return DistillRound(settings or _settings(root), generator=generator, general=GENERAL_QUESTIONS[:2], other_passages=2,
                        progress=False, **kw)


@pytest.fixture(scope="module")
def first(kb_root, generator):
    return _round(kb_root, generator).run(if_due=True)


@pytest.mark.slow
@pytest.mark.integration
def test_round_trains_gates_and_promotes_a_described_adapter(kb_root, first, capsys):
    kiln = content_hash(TEXTS["kiln"])
    assert first.promoted and first.passages == 1, first.reason
    assert first.metrics["closed"]["after"] > first.metrics["closed"]["before"]
    manifest = AdapterRegistry(kb_root).active()
    assert manifest["id"] == first.adapter and list(manifest["passages"]) == [kiln]
    data = (kb_root / "adapters" / first.adapter / "train.jsonl").read_bytes()
    assert manifest["data_hash"] == hashlib.sha256(data).hexdigest()
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert {"context", "restatement", "replay"} <= set(manifest["data_kinds"]) == {r["kind"] for r in rows}
    assert any(r["split"] == "holdout" for r in rows) and manifest["metrics"]["held_out"] >= 1
    with KnowledgeBase.open(kb_root) as kb:
        assert not is_due(kb, _settings(kb_root))  # the round reset the counter
    assert main(["--kb", str(kb_root), "adapters", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["id"], a["active"], a["passages"]) for a in listed] == [(first.adapter, True, 1)]


@pytest.mark.slow
@pytest.mark.integration
def test_a_round_killed_mid_training_leaves_the_active_adapter_working(kb_root, first, generator, capsys):
    with KnowledgeBase.open(kb_root) as kb:
        log = RetrievalLog(kb.store, Settings().log)
        for n, q in enumerate(QUESTIONS["bridge"] * 2):
            _ask(log, "bridge", q, n)

    def crash(step, loss):
        if step == 1:
            raise KeyboardInterrupt  # what a Ctrl-C or a kill during the loop looks like to the round

    registry = AdapterRegistry(kb_root)
    with pytest.raises(KeyboardInterrupt):
        light = _settings(kb_root, **{"distill.synthetic_qa": False, "distill.restatements": 0, "distill.replay": False})
        _round(kb_root, generator, light, on_step=crash).run()
    assert registry.active()["id"] == first.adapter
    assert not [p for p in (kb_root / "adapters").iterdir() if p.name.startswith(".tmp-")]
    adapted = HFGenerator(generator.config, adapter=str(registry.active_path()))
    prompt = generator.render([{"role": "user", "content": QUESTIONS["kiln"][0]}])
    assert adapted.loglikelihood(prompt, "1280 degrees") != generator.loglikelihood(prompt, "1280 degrees")
    assert main(["--kb", str(kb_root), "adapters", "rollback", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"active": None} and registry.active_path() is None


def test_maybe_schedule_starts_one_background_round_only_when_due(tmp_path, monkeypatch):
    import subprocess

    from pipelines import distill

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kw: started.append(cmd))
    root = tmp_path / "kb"
    with KnowledgeBase.open(root, embedding={"model": "fake", "dimension": 4}, create=True) as kb:
        log = RetrievalLog(kb.store, Settings().log)
        _ask(log, "kiln", "q", 0)
        settings = _settings(root)  # every_n_queries = 2
        assert not distill.maybe_schedule(settings)
        _ask(log, "kiln", "q", 1)
        fd = distill._lock(kb.root)  # a round is running
        assert not distill.maybe_schedule(settings)
        release_lock(fd)
        assert distill.maybe_schedule(settings)
    assert len(started) == 1 and started[0][-3:] == ["distill", "--if-due", "--json"]
