"""`rag ask | summarize | chat | translate | stats | feedback`."""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.cli.output import print_json
from pipelines.config import Settings
from rag.types import Answer, Filters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question from the knowledge base, with citations")
    p.add_argument("question")
    _retrieval_args(p)
    p.add_argument("--no-retrieval", action="store_true", help="answer closed-book")
    p.add_argument("--style", choices=["generative", "extractive", "auto"],
                   help="answer style (default: answer.style): the model's text, a quoted sentence, or checked")
    p.set_defaults(func=_ask)
    p = sub.add_parser("warmup", help="load the configured models once, converting the bundled LLM on first use, "
                       "so that the first ask is not the slow one")
    p.set_defaults(func=_warmup)
    p = sub.add_parser("summarize", help="summarise a source, or a topic via retrieval")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--source", help="a source path in the knowledge base")
    group.add_argument("--topic", help="a topic to retrieve passages about")
    p.add_argument("--k", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_summarize)
    p = sub.add_parser("chat", help="multi-turn chat over the knowledge base (empty line or Ctrl-D ends)")
    p.add_argument("--k", type=int)
    p.set_defaults(func=_chat)
    p = sub.add_parser("translate", help="translate text with the configured model (bundled model: English-only)")
    p.add_argument("text")
    p.add_argument("--to", required=True, dest="target", help="target language, e.g. French")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_translate)
    p = sub.add_parser("stats", help="most retrieved passages, with time-decayed counts")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_stats)
    p = sub.add_parser("feedback", help="mark an answer good or bad, optionally with a correction")
    p.add_argument("answer_id")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--good", action="store_true")
    verdict.add_argument("--bad", action="store_true")
    p.add_argument("--correction", help="the right answer, used as a training example by distillation")
    p.set_defaults(func=_feedback)


def _retrieval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, help="passages to retrieve")
    p.add_argument("--source", help="only passages whose source path matches this path or glob")
    p.add_argument("--tag", action="append", default=[], help="only passages with this tag (repeatable)")
    p.add_argument("--date-from")
    p.add_argument("--date-to")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _pipeline(settings: Settings):  # noqa: ANN202
    from pipelines.qa import QAPipeline

    return QAPipeline.from_config(settings)


def answer_dict(answer: Answer) -> dict:
    """The JSON shape of an answer (``Answer.to_dict``; kept here for callers of the CLI module)."""
    return answer.to_dict()


CITATION_NOTES = {
    "supported": "",
    "attributed": "  (attributed: no marker; this passage supports the sentence)",
    "unsupported": "  (UNSUPPORTED: this passage does not support the sentence that cites it)",
}


def print_answer(answer: Answer, streamed: bool) -> None:
    if not streamed:
        print(answer.text)
    if answer.supported is False:
        print("\n(warning: the passages do not support this answer; check it before relying on it)")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            quote = ""
            if c.span:
                passage = next((h.passage for h in answer.context if h.passage.id == c.passage_id), None)
                quote = f'\n      "{passage.text[c.span[0]:c.span[1]]}"' if passage else ""
            print(f"  [{c.marker}] {c.location}{CITATION_NOTES.get(c.kind, '')}{quote}")
    if answer.invalid_markers:
        print(f"  (dropped citation markers outside the context: {list(answer.invalid_markers)})")
    print(f"\nanswer id {answer.id} · {answer.path} · {answer.style} · first token "
          f"{answer.timings.get('first_token_s', 0):.2f}s · total {answer.timings.get('total_s', 0):.2f}s",
          file=sys.stderr)


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    qa = _pipeline(settings)
    filters = Filters(args.source, tuple(args.tag), args.date_from, args.date_to)
    stream = qa.ask_stream(args.question, k=args.k, filters=filters, retrieval=not args.no_retrieval,
                           style=args.style)
    for piece in stream:
        if not args.json:
            print(piece, end="", flush=True)
    if args.json:
        print_json(answer_dict(stream.answer))
    else:
        print()
        print_answer(stream.answer, streamed=True)
    return 0


def _warmup(args: argparse.Namespace, settings: Settings) -> int:
    """Make the one-time files the first ask would make: the LLM's converted or re-typed copy, the int8 ONNX export."""
    from rag.generation.backends import chosen_backend, make_generator
    from rag.embedding.embed import SentenceTransformerEmbedder

    t0 = time.perf_counter()
    SentenceTransformerEmbedder(settings.embedding).embed(["warm up"])
    generator = make_generator(settings.generation)
    warm_up = getattr(generator, "warm_up", None)  # a server backend has nothing to prepare here
    if warm_up is not None:
        warm_up()
    print(f"ready: {settings.embedding.model} ({settings.embedding.runtime}), {generator.model_id} "
          f"({chosen_backend(settings.generation.backend)}) in {time.perf_counter() - t0:.1f}s")
    return 0


def _summarize(args: argparse.Namespace, settings: Settings) -> int:
    answer = _pipeline(settings).summarize(source=args.source, topic=args.topic, k=args.k)
    print_json(answer_dict(answer)) if args.json else print_answer(answer, streamed=False)
    return 0


def _translate(args: argparse.Namespace, settings: Settings) -> int:
    answer = _pipeline(settings).translate(args.text, args.target)
    print_json(answer_dict(answer)) if args.json else print(answer.text)
    return 0


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    qa = _pipeline(settings)
    history: list[tuple[str, str]] = []
    for turn, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            break
        answer = qa.chat(line.strip(), history, k=args.k)
        print(f"--- turn {turn} ---\nYou: {answer.question}")
        if answer.query != answer.question:
            print(f"(searched for: {answer.query})")
        print("Assistant: ", end="")
        print_answer(answer, streamed=False)
        history.append((line.strip(), answer.text))
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.log import RetrievalLog

    with KnowledgeBase.open(settings.kb.path) as kb:
        usage = RetrievalLog(kb.store, settings.log).usage(time.time(), args.limit)
        passages = kb.store.get_passages([u.passage_id for u in usage])
        rows = [{"passage_id": u.passage_id, "decayed_hits": round(u.hits, 4), "decayed_cited": round(u.cited, 4),
                 "hits": u.total_hits, "cited": u.total_cited, "location": passages[u.passage_id].location
                 if u.passage_id in passages else "(removed)"} for u in usage]
        asks = RetrievalLog(kb.store, settings.log).asks_since(0.0)
    if args.json:
        print_json({"asks": asks, "half_life_days": settings.log.half_life_days, "passages": rows})
        return 0
    print(f"{asks} asks logged; counts decay with a half-life of {settings.log.half_life_days} days")
    for r in rows:
        print(f"  {r['decayed_hits']:8.2f} hits {r['decayed_cited']:8.2f} cited  {r['location']}")
    return 0


def _feedback(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.log import RetrievalLog

    with KnowledgeBase.open(settings.kb.path) as kb:
        RetrievalLog(kb.store, settings.log).feedback(args.answer_id, args.good, args.correction)
    print(f"feedback stored for {args.answer_id}")
    return 0
