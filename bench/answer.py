"""Answer latency and accuracy per generation backend: transformers, our llama.cpp backend, raw llama-cpp-python.

Builds ``--n`` RAG prompts of about ``--tokens`` tokens from SciFact claims with corpus abstracts as context (via
``PromptBuilder``; llama.cpp and transformers render and count identically), streams a greedy answer of at most
``--max-new-tokens`` for each after two warm-up asks, and reports medians of time to first token, decode tokens/s
and the whole answer's time. Every backend runs in its own process, one after another, in the same run:

- ``transformers``: ``rag.generation.generate.HFGenerator`` as configured by default (the reference).
- ``llamacpp``: ``rag.generation.llamacpp.LlamaCppGenerator`` (``--gguf-type``, ``--n-batch``, ``--threads``).
- ``raw``: the peer: llama-cpp-python's own ``create_completion(stream=True)`` on the very same ``Llama`` object.
- ``raw-default``: llama-cpp-python with its defaults on the bundled file as shipped (Q4_1, its thread default).

``--accuracy`` also scores each backend: the sample corpus' facts through the real QA pipeline, and a seeded
PubMedQA sample (oracle abstract as context; yes/no/maybe by ``choose`` and by the generated answer's first word).
``--pipeline KB`` times whole asks (retrieval + packing + generation) through ``QAPipeline`` on that KB.

    .venv/bin/python bench/answer.py --backend all --n 24 --accuracy
    .venv/bin/python bench/answer.py --backend llamacpp --sweep gguf_type=Q4_1,Q8_0,F16,BF16 --n 20
    .venv/bin/python bench/answer.py --backend llamacpp --pipeline /tmp/bench-kb-xyz --n 24
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings  # noqa: E402
from rag.config import GenerationConfig, PromptConfig  # noqa: E402
from rag.types import Hit, Passage  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"  # ../shared beside the project
BACKENDS = ("transformers", "llamacpp", "raw", "raw-default")
LABELS = ("yes", "no", "maybe")
LABEL_SUFFIX = "\nAnswer with one word: yes, no or maybe."  # as pipelines/evaluate asks PubMedQA
FACTS = {  # sample-corpus questions and a string the right answer contains
    "What temperature does the Velmora kiln reach?": "1,340",
    "How tall is the Gull Point lighthouse?": "38",
    "How many member boats does the fishing cooperative have?": "64",
    "How long does the ferry crossing to Dunmere take?": "2 hours",
    "When did Aubrey Academy open?": "1894",
    "When was the Gull Point lighthouse built?": "1871",
    "When was the fishing cooperative founded?": "1952",
    "What capacity will the energy cooperative reach once the new turbine is installed?": "9.2",
}


def load_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def make_hits(query: dict, corpus: dict[str, dict], order: list[str], offset: int) -> list[Hit]:
    """The claim's evidence abstracts first, then other abstracts, as ranked hits."""
    ids = [doc_id for doc_id in query.get("metadata", {}) if doc_id in corpus]
    ids += [order[(offset + i) % len(order)] for i in range(10)]
    hits = []
    for rank, doc_id in enumerate(dict.fromkeys(ids), start=1):
        doc = corpus[doc_id]
        passage = Passage(id=doc_id, text=doc["text"], doc_id=f"scifact#{doc_id}", source="scifact", title=doc["title"])
        hits.append(Hit(passage=passage, score=1.0 / rank, rank=rank))
    return hits


def build_prompts(generator, n: int, tokens: int) -> list[str]:  # noqa: ANN001 - any Generator
    from rag.prompt import PromptBuilder

    corpus_rows = load_jsonl(SHARED / "scifact" / "corpus.jsonl")
    corpus = {row["_id"]: row for row in corpus_rows}
    order = [row["_id"] for row in corpus_rows]
    config = PromptConfig()
    builder = PromptBuilder(config, generator, generator.context_window - config.reserve_tokens - tokens)
    queries = load_jsonl(SHARED / "scifact" / "queries.jsonl", n)
    return [builder.build(q["text"], make_hits(q, corpus, order, 37 * i)).text for i, q in enumerate(queries)]


# ---- one backend, in its own process --------------------------------------------------------------------------


def make_backend(name: str, cfg: GenerationConfig):  # noqa: ANN201
    """(generator used for prompts/accuracy, stream function prompt -> (pieces, stats getter))."""
    from rag.generation.backends import make_generator

    if name == "transformers":
        gen = make_generator(cfg.model_copy(update={"backend": "transformers"}))
        gen.model  # noqa: B018
        return gen, gen.stream
    gen = make_generator(cfg.model_copy(update={"backend": "llamacpp"}))
    if name == "raw-default":
        import llama_cpp

        from rag.generation.llamacpp import amx_int8, model_params

        with model_params(llama_cpp, extra_buffers=not amx_int8(llama_cpp)):  # AMX: see model_params
            gen.__dict__["llm"] = llama_cpp.Llama(model_path=str(gen.source_gguf), n_ctx=8192, verbose=False)
    gen.llm  # noqa: B018
    if name == "llamacpp":
        return gen, gen.stream

    def raw(prompt: str, **_: object):  # noqa: ANN202 - llama-cpp-python's own streaming completion
        chunks = gen.llm.create_completion(prompt, max_tokens=cfg.max_new_tokens, temperature=0.0, stream=True)
        return (chunk["choices"][0]["text"] for chunk in chunks)

    return gen, raw


def time_asks(stream, prompts: list[str]) -> list[dict]:  # noqa: ANN001
    """Each prompt streamed: first-piece time, pieces (one per token for every backend here), total time."""
    for prompt in prompts[:2]:  # first calls pay for allocation and kernel selection
        "".join(stream(prompt))
    rows = []
    for prompt in prompts:
        start, first, pieces = time.perf_counter(), 0.0, []
        for piece in stream(prompt):
            first = first or time.perf_counter() - start
            pieces.append(piece)
        total = time.perf_counter() - start
        decode_s = total - first
        rows.append({"first_token_s": first, "total_s": total, "completion_tokens": len(pieces),
                     "decode_tok_s": (len(pieces) - 1) / decode_s if decode_s > 0 and len(pieces) > 1 else 0.0,
                     "answer": "".join(pieces)})
    return rows


def pipeline_asks(gen, kb: str, n: int, max_new: int) -> list[dict]:  # noqa: ANN001
    """Whole asks through QAPipeline on ``kb`` (retrieval + packing + generation), one per SciFact claim."""
    from pipelines.qa import QAPipeline

    settings = Settings().override({"generation.max_new_tokens": max_new})
    pipe = QAPipeline.from_config(settings, kb=kb, generator=gen)
    questions = [q["text"] for q in load_jsonl(SHARED / "scifact" / "queries.jsonl", n + 2)]
    for q in questions[:2]:
        pipe.ask(q, log=False)
    rows = []
    for q in questions[2:]:
        start = time.perf_counter()
        answer = pipe.ask(q, log=False)
        rows.append({"first_token_s": answer.timings.get("first_token_s", 0.0), "total_s": time.perf_counter() - start,
                     "completion_tokens": answer.tokens.get("completion", 0), "decode_tok_s": 0.0, "answer": answer.text})
    pipe.close()
    return rows


def accuracy(gen, kb: str, n_pubmed: int, seed: int) -> dict:  # noqa: ANN001
    """Sample-corpus facts through the QA pipeline; PubMedQA yes/no/maybe with the oracle abstract."""
    from pipelines.qa import QAPipeline
    from rag.prompt import PromptBuilder

    pipe = QAPipeline.from_config(Settings().override({"generation.max_new_tokens": 64}), kb=kb, generator=gen)
    facts = {q: expected in pipe.ask(q, log=False).text.replace("1340", "1,340") for q, expected in FACTS.items()}
    pipe.close()
    data = json.loads((SHARED / "pubmedqa" / "ori_pqal.json").read_text(encoding="utf-8"))
    truth = json.loads((SHARED / "pubmedqa" / "test_ground_truth.json").read_text(encoding="utf-8"))
    pmids = random.Random(seed).sample(sorted(truth), n_pubmed)
    builder = PromptBuilder(PromptConfig(), gen, 64)
    chosen = generated = 0
    for pmid in pmids:
        text = " ".join(data[pmid]["CONTEXTS"])
        hit = Hit(passage=Passage(id=pmid, text=text, doc_id=f"pubmed#{pmid}", source="pubmedqa"), score=1.0, rank=1)
        prompt = builder.build(data[pmid]["QUESTION"] + LABEL_SUFFIX, [hit]).text
        chosen += gen.choose(prompt, list(LABELS))[0] == truth[pmid]
        words = re.findall(r"[a-z]+", gen.generate(prompt, max_new_tokens=8).lower())
        generated += next((w for w in words if w in LABELS), "") == truth[pmid]
    return {"facts": f"{sum(facts.values())}/{len(facts)}", "facts_missed": [q for q, ok in facts.items() if not ok],
            "pubmedqa_choose": chosen / n_pubmed, "pubmedqa_generate": generated / n_pubmed, "pubmedqa_n": n_pubmed}


def worker(args: argparse.Namespace) -> dict:
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, gguf_type=args.gguf_type, n_batch=args.n_batch,
                           threads=args.threads)
    start = time.perf_counter()
    gen, stream = make_backend(args.worker, cfg)
    load_s = time.perf_counter() - start
    if args.pipeline:
        rows = pipeline_asks(gen, args.pipeline, args.n, args.max_new_tokens)
    else:
        rows = time_asks(stream, build_prompts(gen, args.n, args.tokens))
    shipped = args.worker == "raw-default"  # the bundled file as shipped, llama-cpp-python's own defaults
    out = {"backend": args.worker, "gguf_type": "Q4_1 (shipped)" if shipped else args.gguf_type,
           "n_batch": "default" if shipped else args.n_batch, "threads": "default" if shipped else args.threads,
           "load_s": load_s, "rows": rows}
    if args.worker == "transformers":
        out.update(gguf_type="-", n_batch="-", prefill_bf16=gen.prefill_bf16)
    if args.accuracy_kb and args.worker in ("transformers", "llamacpp"):
        out["accuracy"] = accuracy(gen, args.accuracy_kb, args.pubmed_n, args.seed)
    return out


# ---- the driver -----------------------------------------------------------------------------------------------


def median(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key != "decode_tok_s" or r["completion_tokens"] > 1]
    return statistics.median(values) if values else 0.0


def summarise(result: dict) -> dict:
    rows = result["rows"]
    return {k: result[k] for k in ("backend", "gguf_type", "n_batch", "threads", "load_s")} | {
        "asks": len(rows), "ttft_p50_s": median(rows, "first_token_s"), "decode_tok_s_p50": median(rows, "decode_tok_s"),
        "total_p50_s": median(rows, "total_s"), "completion_tokens_mean": statistics.mean(r["completion_tokens"] for r in rows),
        **({"accuracy": result["accuracy"]} if "accuracy" in result else {})}


def run_worker(args: argparse.Namespace, backend: str, **changes: object) -> dict:
    opts = {"n": args.n, "tokens": args.tokens, "max-new-tokens": args.max_new_tokens, "gguf-type": args.gguf_type,
            "n-batch": args.n_batch, "threads": args.threads, "pubmed-n": args.pubmed_n, "seed": args.seed,
            **{k.replace("_", "-"): v for k, v in changes.items()}}
    cmd = [sys.executable, __file__, "--worker", backend] + [x for k, v in opts.items() for x in (f"--{k}", str(v))]
    cmd += ["--pipeline", args.pipeline] if args.pipeline else []
    cmd += ["--accuracy-kb", args.accuracy_kb] if args.accuracy_kb else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{backend} {changes} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def sample_kb() -> str:
    from pipelines.ingest import IngestPipeline

    kb = Path(tempfile.mkdtemp(prefix="bench-sample-")) / "kb"
    settings = Settings().override({"kb.path": str(kb), "ingest.show_progress": False})
    IngestPipeline.from_config(settings).run([ROOT / "knowledge" / "sample"])
    return str(kb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="all", help=f"'all' or a comma list of {BACKENDS}")
    parser.add_argument("--n", type=int, default=24, help="timed asks per backend (after 2 warm-up asks)")
    parser.add_argument("--tokens", type=int, default=700, help="prompt size in LLM tokens")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--gguf-type", default=GenerationConfig().gguf_type)
    parser.add_argument("--n-batch", type=int, default=GenerationConfig().n_batch)
    parser.add_argument("--threads", type=int, default=GenerationConfig().threads)
    parser.add_argument("--sweep", help="KEY=V1,V2 over gguf_type, n_batch or threads (llamacpp and raw only)")
    parser.add_argument("--accuracy", action="store_true", help="also score sample facts and PubMedQA")
    parser.add_argument("--pubmed-n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", metavar="KB_DIR", help="time whole asks through QAPipeline on this KB")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "answer.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--accuracy-kb", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    backends = BACKENDS if args.backend == "all" else tuple(args.backend.split(","))
    if args.accuracy:
        args.accuracy_kb = sample_kb()
    key, _, values = (args.sweep or "").partition("=")
    variants = [{key: v} for v in values.split(",")] if args.sweep else [{}]
    results = [run_worker(args, b, **v) for b in backends for v in (variants if b != "transformers" else [{}])]
    report([summarise(r) for r in results], results, args)


def report(summary: list[dict], results: list[dict], args: argparse.Namespace) -> None:
    peer = next((s for s in summary if s["backend"] == "raw"), None)
    print(f"{'backend':<12} {'gguf':>5} {'batch':>5} {'TTFT p50':>9} {'decode tok/s':>12} {'answer p50':>10} "
          f"{'tokens':>6} {'vs raw':>7}  accuracy")
    for s in summary:
        ratio = s["decode_tok_s_p50"] / peer["decode_tok_s_p50"] if peer and peer["decode_tok_s_p50"] else 0.0
        s["decode_vs_raw"] = ratio
        acc = s.get("accuracy", {})
        acc_text = f"facts {acc['facts']}, PubMedQA choose {acc['pubmedqa_choose']:.2f} gen {acc['pubmedqa_generate']:.2f}" if acc else ""
        print(f"{s['backend']:<12} {s['gguf_type']:>5} {s['n_batch']:>5} {s['ttft_p50_s']:>9.3f} {s['decode_tok_s_p50']:>12.1f} "
              f"{s['total_p50_s']:>10.3f} {s['completion_tokens_mean']:>6.1f} {ratio:>7.2f}  {acc_text}")
    from bench.docs import machine

    out = {"command": " ".join(sys.argv), "machine": machine(), "settings": {"n": args.n, "tokens": args.tokens,
           "max_new_tokens": args.max_new_tokens, "pipeline": args.pipeline}, "summary": summary, "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
