"""Distillation rounds with real training on invented facts: a working recipe is promoted and answers closed-book;
a destructive one is refused by the accuracy gate; a killed round leaves the active adapter working."""

import json

import pytest
import torch

from knowledge.distill.adapters import AdapterRegistry
from knowledge.distill.data import Prompter
from knowledge.distill.facts import is_correct
from knowledge.kb import KnowledgeBase, release_lock
from knowledge.log import RetrievalLog
from pipelines.cli import main
from pipelines.config import Settings
from rag.generation.backends import make_generator
from pipelines.distill import DistillRound, is_due
from rag.generation.generate import HFGenerator
from rag.types import Answer, Hit, Passage, content_hash

# invented: the base model cannot know these
TEXTS = {
    "kiln": "The Velmora kiln reaches 1280 degrees Celsius. It was built by Anna Kestrel in 1931.",
    "bridge": "The Orlen bridge is 412 metres long. It opened to traffic in 1978 after six years of work.",
    "lake": "Lake Tarvo freezes every January. Its deepest point is 67 metres below the surface.",
}
QUESTIONS = {  # (phrasings a user asked, the answer's key span)
    "kiln": [(["What temperature does the Velmora kiln reach?", "How hot does the Velmora kiln get?",
               "What is the top temperature of the Velmora kiln?"], "1280"),
             (["Who built the Velmora kiln?", "Who was the builder of the Velmora kiln?",
               "By whom was the Velmora kiln built?"], "Anna Kestrel")],
    "bridge": [(["How long is the Orlen bridge?", "What is the length of the Orlen bridge?",
                 "How many metres long is the Orlen bridge?"], "412"),
               (["When did the Orlen bridge open?", "In what year did the Orlen bridge open?",
                 "What year did the Orlen bridge open to traffic?"], "1978")],
    "lake": [(["How deep is Lake Tarvo?", "What is the deepest point of Lake Tarvo?",
               "How many metres deep is Lake Tarvo?"], "67")],
}
GENERAL = [("What is the capital of France?", ("Paris",)), ("What is 2 plus 3?", ("5", "five")),
           ("How many days are there in a week?", ("7", "seven")), ("What do bees make?", ("honey",)),
           ("What colour is grass?", ("green",)), ("What is the capital of Italy?", ("Rome",)),
           ("What language is spoken in Spain?", ("Spanish",)), ("What is 4 plus 4?", ("8", "eight"))]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two spinning OpenMP threads on a busy 2-core box are ~10x slower
    yield
    torch.set_num_threads(before)


def _passage(name):
    return Passage(content_hash(TEXTS[name]), TEXTS[name], f"{name}.md", f"/src/{name}.md", name.title())


def _ask_all(log, names):
    for name in names:
        for phrasings, _ in QUESTIONS[name]:
            for n, q in enumerate(phrasings):
                log.record(Answer(id=f"{name}-{q}-{n}", question=q, text="x", hits=(Hit(_passage(name), 1.0, 1),)))


def _kb(root, names):
    with KnowledgeBase.open(root, embedding={"model": "fake", "dimension": 4}, create=True) as kb:
        passages = [_passage(n) for n in TEXTS]
        kb.store.replace_source("/src/all.md", "h", 1, 0.0, "{}", passages, [p.text for p in passages], 3)
        kb.store.assign_vectors([(p.id, i) for i, p in enumerate(passages)])
        _ask_all(RetrievalLog(kb.store, Settings().log), names)
    return root


def _settings(root, **extra):
    return Settings().override({
        "kb.path": str(root), "generation.max_new_tokens": 32, "distill.min_hits": 2, "distill.every_n_queries": 2,
        "distill.max_seq_len": 256, "distill.general_ratio": 0.1} | extra)


def _round(root, generator, **kw):
    settings = kw.pop("settings", None) or _settings(root)
    return DistillRound(settings, generator=generator, general=GENERAL, progress=False, **kw)


@pytest.fixture(scope="module")
def kb_root(tmp_path_factory):
    return _kb(tmp_path_factory.mktemp("kb"), ["kiln", "bridge"])


@pytest.fixture(scope="module")
def first(kb_root, generator):
    return _round(kb_root, generator).run(if_due=True)


@pytest.mark.slow
@pytest.mark.integration
def test_a_working_recipe_is_promoted_and_answers_a_fact_closed_book(kb_root, first, generator, capsys):
    assert first.promoted, first.reason
    gate = first.metrics["gate"]
    assert gate["heldout"]["after"] > gate["heldout"]["before"] and gate["heldout"]["p_gain"] <= 0.05
    registry = AdapterRegistry(kb_root)
    manifest = registry.active()
    assert manifest["id"] == first.adapter and manifest["promoted"] and manifest["metrics"]["gate"] == gate
    assert set(manifest["passages"]) == {content_hash(TEXTS["kiln"]), content_hash(TEXTS["bridge"])}
    adapted = HFGenerator(generator.config, adapter=str(registry.active_path()))
    prompter = Prompter(adapted)
    right = [is_correct(adapted.generate(prompter.closed(qs[-1]), max_new_tokens=24), (span,))
             for name in ("kiln", "bridge") for qs, span in QUESTIONS[name]]
    assert sum(right) >= 1, right  # held-out phrasings: never trained
    base = [is_correct(generator.generate(prompter.closed(qs[-1]), max_new_tokens=24), (span,))
            for name in ("kiln", "bridge") for qs, span in QUESTIONS[name]]
    assert sum(right) > sum(base)
    with KnowledgeBase.open(kb_root) as kb:
        assert not is_due(kb, _settings(kb_root))  # the round reset the counter
    assert main(["--kb", str(kb_root), "adapters", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["id"], a["active"], a["passages"]) for a in listed] == [(first.adapter, True, 2)]
    assert listed[0]["gate"]["heldout"]["n"] == gate["heldout"]["n"]


@pytest.mark.slow
@pytest.mark.integration
def test_a_destructive_recipe_is_refused_by_the_gate(tmp_path, generator):
    root = _kb(tmp_path / "kb", ["kiln", "bridge"])
    wrecked = _settings(root, **{"distill.learning_rate": 0.1, "distill.max_steps": 12})  # 100x the default
    report = _round(root, generator, settings=wrecked).run()
    assert not report.promoted, report.reason
    general = report.metrics["gate"]["general"]
    assert general["after"] < general["before"] and general["lost"] > general["gained"]
    registry = AdapterRegistry(root)
    assert registry.active_path() is None and registry.list()[0]["reason"] == report.reason


@pytest.mark.slow
@pytest.mark.integration
def test_a_round_killed_mid_training_leaves_the_active_adapter_working(kb_root, first, generator, capsys):
    with KnowledgeBase.open(kb_root) as kb:
        _ask_all(RetrievalLog(kb.store, Settings().log), ["lake"])

    def crash(step, loss):
        if step == 1:
            raise KeyboardInterrupt  # what a Ctrl-C or a kill during the loop looks like to the round

    registry = AdapterRegistry(kb_root)
    with pytest.raises(KeyboardInterrupt):
        _round(kb_root, generator, on_step=crash).run()
    assert registry.active()["id"] == first.adapter
    assert not [p for p in (kb_root / "adapters").iterdir() if p.name.startswith(".tmp-")]
    assert main(["--kb", str(kb_root), "adapters", "rollback", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"active": None} and registry.active_path() is None


def test_nothing_to_learn_when_no_question_ranked_the_passage_first(tmp_path, generator):
    root = tmp_path / "kb"
    with KnowledgeBase.open(root, embedding={"model": "fake", "dimension": 4}, create=True) as kb:
        p = _passage("lake")
        kb.store.replace_source("/src/lake.md", "h", 1, 0.0, "{}", [p], [p.text], 1)
        log = RetrievalLog(kb.store, Settings().log)
        for n in range(4):  # retrieved often, but only ever at rank 4: not what these questions were about
            log.record(Answer(id=f"a{n}", question=f"bus times {n}?", text="x", hits=(Hit(p, 0.1, 4),)))
    report = _round(root, generator).run()
    assert not report.promoted and report.adapter is None and "ranked first" in report.reason


def test_maybe_schedule_starts_one_background_round_only_when_due(tmp_path, monkeypatch):
    import subprocess

    from pipelines import distill

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kw: started.append(cmd))
    root = tmp_path / "kb"
    with KnowledgeBase.open(root, embedding={"model": "fake", "dimension": 4}, create=True) as kb:
        log = RetrievalLog(kb.store, Settings().log)
        log.record(Answer(id="a0", question="q", text="x", hits=(Hit(_passage("kiln"), 1.0, 1),)))
        settings = _settings(root, **{"distill.epochs": 3})  # every_n_queries = 2
        assert not distill.maybe_schedule(settings)
        log.record(Answer(id="a1", question="q", text="x", hits=(Hit(_passage("kiln"), 1.0, 1),)))
        fd = distill._lock(kb.root)  # a round is running
        assert not distill.maybe_schedule(settings)
        release_lock(fd)
        assert distill.maybe_schedule(settings)
    assert len(started) == 1 and started[0][-3:] == ["distill", "--if-due", "--json"]
    handed = started[0][started[0].index("--config") + 1]
    assert json.loads(open(handed).read())["distill"]["epochs"] == 3  # the child gets these exact settings



@pytest.mark.slow
@pytest.mark.integration
def test_closed_book_the_adapter_answers_only_about_subjects_it_learnt(kb_root, first, generator, embedder):
    """The adapter learnt the kiln and the bridge, not the lake: a closed-book question about another bridge or
    about the lake is the base model's to answer (a 135M adapter would lend it the Orlen bridge's length)."""
    from pipelines.qa import QAPipeline

    adapted = HFGenerator(generator.config, adapter=str(kb_root / "adapters" / first.adapter))
    settings = _settings(kb_root, **{"log.enabled": False})
    with KnowledgeBase.open(kb_root) as kb:
        pipe = QAPipeline(settings, kb, embedder, generator, adapted)
        learnt = pipe.ask("How long is the Orlen bridge?", retrieval=False, log=False, style="generative")
        assert learnt.adapter == first.adapter and learnt.path == "closed"
        for question in ("How long is the Kesra bridge?", "How deep is Lake Tarvo?"):
            answer = pipe.ask(question, retrieval=False, log=False, style="generative")
            assert answer.adapter is None, question
            assert "412" not in answer.text
        assert pipe.closed_book.model("How long is a bridge, usually?") is adapted  # "bridge": a subject it learnt
        # its answer stands only when the passage it learnt about that subject holds it: the kiln's 1280 lent to
        # the bridge it also learnt is not vouched for, and that ask is the base model's
        assert "412" in learnt.text and pipe.closed_book.vouched("How long is the Orlen bridge?", learnt.text)
        assert pipe.closed_book.vouched("How long is the Orlen bridge?", "The Orlen bridge is 1280 metres long.") is None
        assert pipe.closed_book.vouched("Who built the Orlen bridge?", "Anna Kestrel built the Orlen bridge.") is None
        assert pipe.closed_book.vouched("Why is the sky blue?", "About 1280 metres.")  # no subject: nothing to lend
        # a subject named without capitals is named by the KB's rare words ("orlen", "tarvo"): the same guard
        assert pipe.closed_book.vouched("how long is the orlen bridge?", "It is 1280 metres long.") is None
        assert pipe.closed_book.vouched("how long is the orlen bridge?", "It is 412 metres long.") == \
            "It is 412 metres long."
        assert pipe.closed_book.model("how deep is lake tarvo?") is generator  # it learnt nothing about the lake
        assert pipe.closed_book.model("Why is the sky blue?") is adapted  # no word of the KB's: general ability
        assert pipe.closed_book.vouched("How long is the Orlen bridge?", "I do not know.")  # its own words lend nothing
        # a word the token budget cut claims nothing ("19" of 1978); a whole wrong year does
        assert pipe.closed_book.vouched("How long is the Orlen bridge?", "It is 412 metres long. It opened in 19")
        # a sentence or clause that lends is cut when what is left still answers; else the base model answers
        assert pipe.closed_book.vouched("How long is the Orlen bridge?",
                                        "It is 412 metres long. It opened in 1931.") == "It is 412 metres long."
        assert pipe.closed_book.vouched("How long is the Orlen bridge?", "The Orlen bridge is 412 metres long, "
                                        "built by Anna Kestrel in 1931.") == "The Orlen bridge is 412 metres long."
        assert pipe.closed_book.vouched("Who built the Orlen bridge?", "Anna Kestrel built it, in 1931.") is None
        assert pipe.closed_book.vouched("How long is the Orlen bridge?", "It opened in 1931, 412 metres long.") is None
        pipe.settings = settings.override({"generation.adapter_subjects": False})
        assert pipe.closed_book.model("How long is the Kesra bridge?") is adapted


@pytest.mark.slow
@pytest.mark.integration
def test_rag_eval_measures_the_promoted_adapter_closed_book(kb_root, first, generator, sample_kb, tmp_path):
    """``rag eval --adapter`` answers closed-book with the adapter (under the default adapter_scope "closed" the
    pipeline's ``generator`` is the base model) and gives the figure one gets by asking the adapter directly."""
    from pipelines.evaluate import EvalJob

    adapter = kb_root / "adapters" / first.adapter  # by id: an earlier test may have rolled the active one back
    assert (adapter / "adapter_config.json").is_file()
    rows = [{"id": f"{name}{i}", "question": qs[-1], "answers": [span], "context": TEXTS[name]}
            for name in ("kiln", "bridge") for i, (qs, span) in enumerate(QUESTIONS[name])]
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = Settings().override({"eval.runs_dir": str(tmp_path / "runs"), "generation.max_new_tokens": 24})
    # closed-book asks need no retrieval; the pipeline opens a KB all the same (the sample one, unchanged)
    report = EvalJob(data, settings, modes=["closed"], adapter=str(adapter), show_progress=False, kb=sample_kb).run()
    with_adapter, base = report.metrics["closed+adapter/accuracy"], report.metrics["closed/accuracy"]
    adapted = make_generator(settings.generation, adapter=str(adapter))  # what serves closed-book answers
    prompter = Prompter(adapted)
    direct = [is_correct(adapted.generate(prompter.closed(r["question"]), max_new_tokens=24), tuple(r["answers"]))
              for r in rows]
    assert with_adapter > base
    assert abs(with_adapter - sum(direct) / len(rows)) <= 1 / len(rows) + 1e-9, (with_adapter, direct)
    # the adapter's answers were generated (before the answer check saw them): their tokens count
    records = [json.loads(line) for line in (report.run_dir / "results.jsonl").read_text().splitlines()]
    adapted_records = [r for r in records if r.get("mode") == "closed+adapter"]
    assert adapted_records and all(r["completion_tokens"] > 0 for r in adapted_records if r["answer"])


@pytest.mark.slow
@pytest.mark.integration
def test_a_correction_replaces_the_learnt_fact_closed_book_after_one_round(tmp_path, generator):
    """People correct the model and the weights follow: the adapter says 1280, a person marks that bad with the
    correction 1410, and after the next round the closed-book answer is the correction."""
    root = _kb(tmp_path / "kb", ["kiln"])
    assert _round(root, generator).run().promoted
    registry = AdapterRegistry(root)
    question = QUESTIONS["kiln"][0][0][0]
    learnt = HFGenerator(generator.config, adapter=str(registry.active_path()))
    prompter = Prompter(learnt)
    said = learnt.generate(prompter.closed(question), max_new_tokens=24)
    assert is_correct(said, ("1280",)), said
    with KnowledgeBase.open(root) as kb:
        log = RetrievalLog(kb.store, Settings().log)
        log.record(Answer(id="wrong", question=question, text=said, hits=(Hit(_passage("kiln"), 1.0, 1),)))
        log.feedback("wrong", good=False, correction="The Velmora kiln reaches 1410 degrees Celsius.")
    report = _round(root, generator).run()
    assert report.promoted, report.reason
    assert report.metrics["gate"]["corrected"]["after"] > report.metrics["gate"]["corrected"]["before"]
    corrected = HFGenerator(generator.config, adapter=str(registry.active_path()))
    answers = [corrected.generate(prompter.closed(q), max_new_tokens=24) for q in QUESTIONS["kiln"][0][0]]
    assert is_correct(answers[0], ("1410",)) and not is_correct(answers[0], ("1280",)), answers
    builder = corrected.generate(prompter.closed(QUESTIONS["kiln"][1][0][-1]), max_new_tokens=24)
    assert is_correct(builder, ("Anna Kestrel",)), builder  # the passage's other fact is still known
    train = (registry.active_path() / "train.jsonl").read_text()
    assert "1410" in train and "1280" not in train  # the wrong fact is neither taught again nor replayed
