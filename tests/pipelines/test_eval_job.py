"""EvalJob end to end with exactly predictable fakes: metrics, files, resume, determinism, adapter, CLI."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import eval as cli_eval
from pipelines.config import Settings
from pipelines.evaluate.data import load_dataset, read_jsonl
from pipelines.evaluate import EvalJob, JobFileError, recovery_ratio
from rag.types import Hit, Passage

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
WORD = re.compile(r"[a-z0-9]+")
STOP = {"the", "a", "of", "in", "what", "does", "do", "how", "is", "by", "with", "to", "was", "we", "for"}


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower())) - STOP


@dataclass(frozen=True)
class FakePrompt:
    text: str
    context: tuple[Hit, ...]
    n_tokens: int
    truncated: bool = False


class FakeRetriever:
    """Ranks passages by shared words (sparse), or shared words per doc word (dense), or their sum (hybrid)."""

    def __init__(self, corpus: Path) -> None:
        self.passages = [Passage(id=f"p{r['_id']}", text=r["text"], doc_id=f"{corpus.resolve()}#{r['_id']}",
                                 source=str(corpus)) for _, r in read_jsonl(corpus)]
        self.calls = 0

    def _score(self, query: str, passage: Passage, mode: str) -> float:
        shared = len(_words(query) & _words(passage.text))
        dense = shared / len(_words(passage.text))
        return {"sparse": shared, "dense": dense, "hybrid": shared + dense}[mode]

    def retrieve_batch(self, queries: list[str], k: int | None = None, filters: Any = None,
                       mode: str | None = None) -> list[list[Hit]]:
        self.calls += len(queries)
        out = []
        for q in queries:
            scored = sorted(((self._score(q, p, mode or "hybrid"), p) for p in self.passages), key=lambda sp: (-sp[0], sp[1].id))
            out.append([Hit(p, s, i) for i, (s, p) in enumerate([sp for sp in scored if sp[0] > 0][: k or 2], 1)])
        return out


class FakeBuilder:
    def build(self, question: str, hits: list[Hit]) -> FakePrompt:
        lines = [f"[{i}] {h.passage.text}" for i, h in enumerate(hits, 1)]
        return FakePrompt("\n".join(lines + [f"Q: {question}"]), tuple(hits), 10)

    def build_closed_book(self, question: str) -> FakePrompt:
        return FakePrompt(f"Q: {question}", (), 5)


class FakeGenerator:
    """Reads answers off the context: the first number, or 'was <label>'; closed-book it knows nothing."""

    def __init__(self, closed_label: str) -> None:
        self.closed_label = closed_label
        self.generated = 0

    def generate_batch(self, prompts: list[str]) -> list[str]:
        self.generated += len(prompts)
        return [self._answer(p) for p in prompts]

    def _answer(self, prompt: str) -> str:
        if "yes, no or maybe" in prompt and "[1]" in prompt:
            return "Yes, they do [1]."
        number = re.search(r"\[1\][^\n]*?(\d+)", prompt)
        if number:
            return f"It is {number.group(1)} [1]."
        if "[1]" in prompt:
            return "Yes, they do [1]."
        return "The knowledge base does not contain the answer."

    def stream(self, prompt: str):  # noqa: ANN201 - the product answers one question at a time, streaming
        self.generated += 1
        yield from self._answer(prompt).split(" ")[:1]
        rest = self._answer(prompt).split(" ")[1:]
        yield from (" " + word for word in rest)

    def choose(self, prompt: str, options: list[str]) -> tuple[str, dict[str, float]]:
        found = re.search(r"\[1\].* was (yes|no|maybe)\.", prompt)
        pick = found.group(1) if found else self.closed_label
        return pick, {o: (0.0 if o == pick else -1.0) for o in options}

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class FakePipeline:
    def __init__(self, corpus: Path, closed_label: str) -> None:
        self.retriever, self.builder, self.generator = FakeRetriever(corpus), FakeBuilder(), FakeGenerator(closed_label)


class Fakes:
    """Records ingests and pipelines so tests can check what the job did."""

    def __init__(self, corpus: Path | None = None) -> None:
        self.corpus, self.ingested, self.pipes = corpus, [], []

    def ingest(self, settings: Settings, kb: Path, corpus: Path) -> None:
        self.ingested.append((kb, corpus))
        self.corpus = corpus

    def factory(self, settings: Settings, kb: Path | None, adapter: str | None) -> FakePipeline:
        pipe = FakePipeline(self.corpus, "no" if adapter else "yes")
        self.pipes.append((adapter, pipe))
        return pipe


def _settings(tmp_path: Path, batch_size: int = 2) -> Settings:
    return Settings().override({"eval.runs_dir": str(tmp_path / "runs"), "eval.batch_size": batch_size,
                                "eval.k_values": [1, 2, 5]})


def _job(tmp_path: Path, dataset: Path, fakes: Fakes, **kw: Any) -> EvalJob:
    return EvalJob(dataset, kw.pop("settings", None) or _settings(tmp_path), show_progress=False,
                   pipeline_factory=fakes.factory, ingest=fakes.ingest, **kw)


def test_beir_retrieval_job_metrics_and_files(tmp_path: Path) -> None:
    fakes = Fakes()
    report = _job(tmp_path, FIX / "beir", fakes).run()
    assert fakes.ingested[0][1] == FIX / "beir" / "corpus.jsonl"
    assert fakes.ingested[0][0].parent == (tmp_path / "runs" / "kbs").resolve()
    # q1, q3, q4 find their doc first; q2 finds d2 first and d5 (vitamin C) never; q5's judged doc is missing
    assert report.metrics["sparse/recall@5"] == pytest.approx((1 + 0.5 + 1 + 1 + 0) / 5)
    assert report.metrics["sparse/mrr@5"] == pytest.approx(4 / 5)
    assert report.metrics["ndcg@5"] == report.metrics["hybrid/ndcg@5"]
    assert report.primary_mode == "hybrid" and report.counts["queries"] == 5
    for name in ("metrics.json", "results.jsonl", "report.md", "recall_at_k.png", "latency_hist.png"):
        assert (report.run_dir / name).stat().st_size > 0
    rows = [json.loads(line) for line in (report.run_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 15 and rows[0]["hits"][0] == "d1"
    md = (report.run_dir / "report.md").read_text()
    assert "| recall@5 |" in md and "judged docs not in corpus.jsonl" in md


def test_kb_is_reused_when_corpus_and_embedding_are_unchanged(tmp_path: Path) -> None:
    fakes = Fakes()
    _job(tmp_path, FIX / "beir", fakes, modes=["sparse"]).run()
    _job(tmp_path, FIX / "beir", fakes, modes=["sparse"], name="again").run()
    other = _settings(tmp_path).override({"embedding.query_prefix": "query: "})
    _job(tmp_path, FIX / "beir", fakes, modes=["sparse"], settings=other).run()
    kbs = [kb for kb, _ in fakes.ingested]
    assert kbs[0] == kbs[1] != kbs[2]


def test_resume_skips_finished_query_ids(tmp_path: Path) -> None:
    fakes = Fakes()
    first = _job(tmp_path, FIX / "beir", fakes, modes=["sparse"], name="r").run()
    results = first.run_dir / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # interrupted mid-write of the third
    again = _job(tmp_path, FIX / "beir", fakes, modes=["sparse"], name="r", resume=True).run()
    assert again.run_dir == first.run_dir
    assert fakes.pipes[-1][1].retriever.calls == 3  # only q3, q4, q5 were retrieved again
    assert {k: v for k, v in again.metrics.items() if "latency" not in k and "rss" not in k} == \
           {k: v for k, v in first.metrics.items() if "latency" not in k and "rss" not in k}


def test_resume_refuses_a_run_of_another_job(tmp_path: Path) -> None:
    fakes = Fakes()
    _job(tmp_path, FIX / "beir", fakes, modes=["sparse"], name="r").run()
    with pytest.raises(ValueError, match="nothing to resume"):
        _job(tmp_path, FIX / "beir", fakes, modes=["dense"], name="r", resume=True).run()


def test_rerun_gives_identical_quality_metrics(tmp_path: Path) -> None:
    a = _job(tmp_path, FIX / "qa.jsonl", Fakes(FIX / "beir" / "corpus.jsonl"), name="a").run()
    b = _job(tmp_path, FIX / "qa.jsonl", Fakes(FIX / "beir" / "corpus.jsonl"), name="b").run()
    quality = lambda m: {k: v for k, v in m.items() if "latency" not in k and "rss" not in k and "per_s" not in k}  # noqa: E731
    assert quality(a.metrics) == quality(b.metrics) and a.fingerprint == b.fingerprint


def test_qa_modes_em_f1_citations_and_abstention(tmp_path: Path) -> None:
    report = _job(tmp_path, FIX / "qa.jsonl", Fakes(FIX / "beir" / "corpus.jsonl")).run()
    m = report.metrics
    assert report.modes == ("closed", "rag", "oracle")
    # a1: "It is 1300 [1]." -> tokens it/is/1300/1: EM 0, F1 vs "1300" = 2*(1/4)*1/(5/4) = 0.4
    # a2: no number in [1] -> "Yes, they do [1]." -> F1 0; a3 has a label, so no EM/F1
    assert m["rag/f1"] == pytest.approx(0.2) and m["rag/em"] == 0.0
    assert m["closed/abstention_rate"] == pytest.approx(2 / 3)  # a3 is a label question scored by choice
    assert m["closed/accuracy"] == pytest.approx(1 / 3)  # closed-book choice says 'yes'; a3's label is yes
    assert m["rag/citation_precision"] == pytest.approx(1.0)  # [1] is always the judged doc here
    assert m["oracle/accuracy"] >= m["closed/accuracy"]


def test_pubmedqa_job_with_adapter_and_recovery_ratio(tmp_path: Path) -> None:
    fakes = Fakes()
    report = _job(tmp_path, FIX / "pubmedqa", fakes, adapter="/adapters/a1").run()
    m = report.metrics
    rows = {json.loads(r)["_id"]: json.loads(r) for r in fakes.ingested[0][1].read_text().splitlines()}
    assert len(rows) == 16 and rows["1000"]["text"].startswith("We studied aspirin")
    assert m["closed/accuracy"] == pytest.approx(6 / 12)  # base always says 'yes'
    assert m["rag/accuracy"] == pytest.approx(1.0) and m["oracle/accuracy"] == pytest.approx(1.0)
    assert m["closed+adapter/accuracy"] == pytest.approx(4 / 12)  # the fake adapter always says 'no'
    assert m["recovery_ratio"] == pytest.approx((4 / 12 - 6 / 12) / (1.0 - 6 / 12))
    assert [a for a, _ in fakes.pipes] == [None, "/adapters/a1"]
    assert (report.run_dir / "accuracy_per_mode.png").exists()
    assert "BioBERT" in (report.run_dir / "report.md").read_text()


def test_generate_scoring_parses_labels_and_counts_unparsed(tmp_path: Path) -> None:
    report = _job(tmp_path, FIX / "pubmedqa", Fakes(), modes=["closed", "rag"], scoring="generate", limit=4).run()
    # closed-book the fake abstains (no label word), with context it says "Yes, they do [1]."
    assert report.metrics["closed/unparsed"] == 4 and report.metrics["closed/accuracy"] == 0.0
    assert report.metrics["rag/unparsed"] == 0
    labels = [q.label for q in load_dataset(FIX / "pubmedqa", limit=4, seed=0).queries]
    assert report.metrics["rag/accuracy"] == pytest.approx(labels.count("yes") / 4)


def test_recovery_ratio_formula() -> None:
    assert recovery_ratio(0.4, 0.5, 0.6) == pytest.approx(0.5)
    assert recovery_ratio(0.4, 0.5, 0.4) is None
    assert recovery_ratio(0.6, 0.4, 0.5) is None  # open-book below closed-book: a regression, not a 3.0 "recovery"


def test_bad_mode_and_modes_the_data_cannot_support(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        _job(tmp_path, FIX / "beir", Fakes(), modes=["fast"])
    with pytest.raises(ValueError, match="needs answers or labels"):
        _job(tmp_path, FIX / "beir", Fakes(), modes=["rag"]).run()


def test_job_file_and_cli_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'dataset = "{FIX / "beir"}"\nmodes = ["sparse", "dense"]\nname = "toml"\nlimit = 3\nseed = 0\n')
    fakes = Fakes()
    real_init = EvalJob.__init__
    monkeypatch.setattr(EvalJob, "__init__", lambda self, *a, **kw: real_init(
        self, *a, **kw | {"pipeline_factory": fakes.factory, "ingest": fakes.ingest}))
    parser = argparse.ArgumentParser()
    cli_eval.register(parser.add_subparsers())
    args = parser.parse_args(["eval", "--job", str(job), "--json", "--mode", "sparse"])
    assert args.func(args, _settings(tmp_path)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["modes"] == ["sparse"] and out["counts"]["queries"] == 3
    assert out["metrics"]["ndcg@5"] == out["metrics"]["sparse/ndcg@5"]
    assert "sparse/recall@5" in out["metrics"] and "recall@5" in out["metrics"]


def test_job_file_unknown_key_is_named(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('dataset = "x"\nmodez = ["sparse"]\n')
    with pytest.raises(ValueError, match="unknown job key 'modez'"):
        EvalJob.from_toml(job, Settings())


@pytest.mark.parametrize(("body", "match"), [
    ('dataset = "x"\nlimit = "ten"\n', "job key 'limit' must be a int, got 'ten'"),
    ('dataset = "x"\nmodes = "rag"\n', "job key 'modes' must be a list"),
    ('dataset = "x"\nmodes = ["fast"]\n', "unknown mode 'fast'"),
    ('modes = ["rag"]\n', "a job needs 'dataset'"),
    ('dataset = \n', "cannot read job file"),
])
def test_job_file_errors_name_the_file_and_the_field(tmp_path: Path, body: str, match: str) -> None:
    job = tmp_path / "job.toml"
    job.write_text(body)
    with pytest.raises(JobFileError, match=re.escape(match)) as caught:
        EvalJob.from_toml(job, Settings())
    assert str(job) in str(caught.value)


def test_unanswerable_questions_give_abstention_precision_recall_and_examples(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    rows = [{"id": "a1", "question": "What temperature does the Velmora kiln reach?", "answers": ["1300"],
             "context": "The Velmora kiln reaches 1300 degrees when firing stoneware glaze."},
            {"id": "u1", "question": "Xyzzy plugh?", "answers": [], "unanswerable": True},
            {"id": "u2", "question": "What causes scurvy in sailors?", "answers": [], "unanswerable": True}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = _job(tmp_path, data, Fakes(FIX / "beir" / "corpus.jsonl"), modes=["rag"]).run()
    m = report.metrics
    # the fake answers a1 "It is 1300 [1]." (contains the gold), abstains on u1 (nothing retrieved), and answers
    # u2 from the scurvy passage: recall 1/2, precision 1/1, no answerable question abstained
    assert m["rag/contains"] == 1.0 and m["rag/abstention_recall"] == 0.5
    assert m["rag/abstention_precision"] == 1.0 and m["rag/answerable_abstain_rate"] == 0.0
    assert m["rag/accuracy"] == pytest.approx(2 / 3)  # a1 contains the answer, u1 abstained, u2 did not
    md = (report.run_dir / "report.md").read_text()
    assert "## Best answers" in md and "## Worst answers" in md and "**u2**" in md
    assert "Label scoring" not in md  # the dataset has no labels
    records = [json.loads(line) for line in (report.run_dir / "results.jsonl").read_text().splitlines()]
    assert len({r["latency_s"] for r in records}) == len(records)  # each answer timed on its own
