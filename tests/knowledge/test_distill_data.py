"""Training data and gate items from logged questions, with a teacher whose answers are exactly predictable."""

from knowledge.config import DistillConfig
from knowledge.distill.data import (Example, Prompter, build_dataset, fact_examples, gate_items, held_out,
                                    rag_gate_items, rag_split, replay_examples, write_jsonl)
from knowledge.distill.teach import teach
from rag.types import Passage, content_hash

TEXT = ("Zolshigar is a village. Zolshigar was built on the banks of the River Votordra. "
        "About 265 people live in Zolshigar. The mayor of Zolshigar is Lenqui Nenseltor.")
PASSAGE = Passage(content_hash(TEXT), TEXT, "z.md", "/src/z.md", "Zolshigar")
ANSWERS = {  # question -> what the teacher says with the passage in its prompt
    "Which river flows through Zolshigar?": "The passage mentions that the River Votordra flows through it [1].",
    "What river runs through Zolshigar?": "Votordra runs through Zolshigar.",
    "How many people live in Zolshigar?": "About 265 people live there.",
    "Who is the mayor of Zolshigar?": "Zolshigar is a village.",  # no name: does not answer a "who" question
    "How many residents does Zolshigar have?": "It has 9,000 residents.",  # not in the passage
}


class Teacher:
    context_window = 4096

    def render(self, messages):
        return "\n".join(f"<{m['role']}>{m['content']}" for m in messages) + "\n<assistant>"

    def count_tokens(self, text):
        return len(text.split())

    def generate_batch(self, prompts, **kw):
        return [next(a for q, a in ANSWERS.items() if p.rstrip().endswith(f"{q}\n<assistant>")) for p in prompts]


def _facts():
    prompter = Prompter(Teacher(), max_new_tokens=32)
    return prompter, teach(prompter, [PASSAGE], {PASSAGE.id: list(ANSWERS)})


def test_teacher_answers_are_kept_only_when_the_passage_supports_them_and_fit_the_question():
    _, facts = _facts()
    by_span = {f.spans: f for f in facts}
    assert set(by_span) == {("Votordra",), ("265",)}  # the mayor and 9,000-residents answers are dropped
    river = by_span[("Votordra",)]
    assert river.questions == ("Which river flows through Zolshigar?", "What river runs through Zolshigar?")
    assert river.answer == "Votordra runs through Zolshigar."  # the shorter span; passage talk stripped anyway
    assert river.sentence == "Zolshigar was built on the banks of the River Votordra."
    assert held_out(river) == "What river runs through Zolshigar?" and held_out(by_span[("265",)]) is None


def test_the_held_out_phrasing_is_never_trained_and_is_what_the_gate_asks():
    prompter, facts = _facts()
    river = next(f for f in facts if f.spans == ("Votordra",))
    examples = fact_examples(prompter, river, PASSAGE)
    assert not any("What river runs" in e.prompt for e in examples)
    assert {e.kind for e in examples} == {"question", "statement", "open"}
    assert any(e.answer == "Votordra." and "Complete the sentence" in e.prompt for e in examples)
    items = gate_items(prompter, facts, {PASSAGE.id: PASSAGE})
    held = [i for i in items if i.group == "heldout" and i.spans == ("Votordra",)]
    assert held[0].question == "What river runs through Zolshigar?"
    assert {i.group for i in items} == {"heldout", "open"} and all(i.spans for i in items)
    trained = {e.prompt for e in examples}
    assert not trained & {i.prompt for i in held}


def test_phrasings_and_statements_settings_shape_a_facts_examples():
    prompter, facts = _facts()
    river = next(f for f in facts if f.spans == ("Votordra",))
    full = fact_examples(prompter, river, PASSAGE)
    plain = fact_examples(prompter, river, PASSAGE, phrasings=1, statements=False)
    asked = [e for e in plain if e.kind == "question"]
    assert len(asked) == 1 and asked[0].prompt == prompter.closed("Which river flows through Zolshigar?")
    assert {e.kind for e in plain} == {"question", "open"}
    assert len([e for e in full if e.kind == "question"]) == 3


def test_a_closed_book_only_adapter_gets_no_passage_prompts_to_train_or_be_gated_on(tmp_path):
    prompter, facts = _facts()
    river = next(f for f in facts if f.spans == ("Votordra",))
    closed = fact_examples(prompter, river, PASSAGE, open_book=False)
    assert {e.kind for e in closed} == {"question", "statement"}
    assert closed == [e for e in fact_examples(prompter, river, PASSAGE) if e.kind != "open"]
    assert {i.group for i in gate_items(prompter, facts, {PASSAGE.id: PASSAGE}, open_book=False)} == {"heldout"}
    # an earlier round trained under adapter_scope "all": its passage prompts are not replayed
    write_jsonl([Example("open", "P1", "a"), Example("question", "Q1", "b"), Example("rag", "P2", "c"),
                 Example("general", "G", "d")], tmp_path / "train.jsonl")
    assert [e.prompt for e in replay_examples(tmp_path, open_book=False)] == ["Q1"]
    assert [e.prompt for e in replay_examples(tmp_path)] == ["P1", "Q1", "P2"]
    data = build_dataset(prompter, [PASSAGE], facts, DistillConfig(), previous=tmp_path, open_book=False)
    assert data and not any(e.prompt in ("P1", "P2") or e.kind == "open" for e in data)


def test_capped_replay_takes_every_earlier_fact_in_turns(tmp_path):
    # fact A was trained with five examples, fact B with two, fact C with one
    rows = [Example("question", f"A{i}", "a", "p1") for i in range(5)] + [
        Example("question", f"B{i}", "b", "p1") for i in range(2)] + [Example("statement", "C0", "c", "p2")]
    write_jsonl(rows, tmp_path / "train.jsonl")
    assert len(replay_examples(tmp_path)) == 8 == len(replay_examples(tmp_path, limit=20))
    capped = replay_examples(tmp_path, limit=4)
    assert len(capped) == 4 and {e.answer for e in capped[:3]} == {"a", "b", "c"}  # each fact before any twice
    assert sorted(e.answer for e in capped) == ["a", "a", "b", "c"]
    assert capped == replay_examples(tmp_path, limit=4)  # seeded: the same cap picks the same examples
    # build_dataset caps the replay at replay_ratio x the new fact examples (0 = no cap)
    prompter, facts = _facts()
    new = len([e for f in facts for e in fact_examples(prompter, f, PASSAGE)])
    for ratio, expected in ((0.0, 8), (1.0, min(8, new)), (2 / new, 2)):
        data = build_dataset(prompter, [PASSAGE], facts, DistillConfig(replay_ratio=ratio), previous=tmp_path)
        assert len([e for e in data if e.kind == "replay"]) == expected


def test_rag_anchors_and_rag_gate_items_never_share_a_question():
    prompter, facts = _facts()
    gate_facts, anchors = rag_split(facts)
    assert gate_facts and anchors and not {q for f in gate_facts for q in f.questions} & {
        q for f in anchors for q in f.questions}
    items = rag_gate_items(prompter, gate_facts, {PASSAGE.id: PASSAGE})
    assert {i.group for i in items} == {"rag"} and all(PASSAGE.text[:40] in i.prompt for i in items)
    examples = build_dataset(prompter, [PASSAGE], [], DistillConfig(replay=False), rag=[(f, PASSAGE) for f in anchors])
    assert {e.kind for e in examples} == {"rag"} and {e.answer for e in examples} == {f.answer for f in anchors}
    assert not build_dataset(prompter, [PASSAGE], [], DistillConfig(replay=False, rag_anchors=False),
                             rag=[(f, PASSAGE) for f in anchors])


def test_general_anchors_replay_only_what_the_base_model_got_right():
    prompter, facts = _facts()
    general = [("What is the capital of France?", ("Paris",)), ("What is 12 plus 7?", ("19", "nineteen"))]
    answers = {"What is the capital of France?": "Paris.", "What is 12 plus 7?": "12 + 7 = 8."}
    examples = build_dataset(prompter, [PASSAGE], facts, DistillConfig(general_ratio=1.0), general=general,
                             general_answers=answers)
    anchors = [e for e in examples if e.kind == "general"]
    assert {(e.question, e.answer) for e in anchors} == {("What is the capital of France?", "Paris.")}
    facts_and_replay = len(examples) - len(anchors)
    assert len(anchors) == facts_and_replay  # general_ratio 1.0: repeated up to as many as the fact examples
    few = build_dataset(prompter, [PASSAGE], facts, DistillConfig(general_ratio=0.0), general=general,
                        general_answers=answers)
    assert [e.question for e in few if e.kind == "general"] == ["What is the capital of France?"]  # once at least


def test_the_gate_never_asks_a_general_question_the_round_trains():
    from knowledge.distill.data import general_set, general_split

    asked, anchors = general_split(general_set())
    assert len(asked) >= 70 and len(anchors) >= 70 and not {q for q, _ in asked} & {q for q, _ in anchors}
