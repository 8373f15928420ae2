"""The teacher: the base model answers each logged question from the passage it retrieved, and only answers that
answer *the question* become facts (``verify`` for the checks without a model, the round trip here).

Example:
    >>> facts = teach(prompter, hot_passages, log.questions_for([p.id for p in hot_passages], max_rank=1))
    >>> facts[0].answer, facts[0].spans
    ('The Velmora kiln reaches 1,340 °C.', ('1,340',))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from knowledge.distill.data import TEACHER_TOKENS, Prompter, sentences
from knowledge.distill.facts import Fact, Unlearn, clean_answer, is_correct, key_spans, sentence_with, supported
from knowledge.distill.verify import fault, fits_kind, unmet
from rag.text import contains, content_words
from rag.types import Passage

SECOND_PHRASING = "Please answer this question: {q}"  # the round trip: the same question asked another way


def teach(prompter: Prompter, passages: Sequence[Passage], questions: Mapping[str, Sequence[str]], *,
          rivals: Mapping[str, Sequence[Passage]] | None = None, rare: Callable[[str], bool] | None = None,
          unlearn: Sequence[Unlearn] = (), stats: dict[str, int] | None = None) -> list[Fact]:
    """The teacher answers each logged question from its passage alone; verified answers grouped into facts.

    An answer is taught only when it answers *the question* (``verify``): the passage meets the question's
    constraints (names, numbers, dates, ``rare`` words), it holds the answer's key spans, the spans are the kind
    of answer asked for, and the round trip agrees — the question asked another way gets the same spans, and no
    other passage retrieved for it (``rivals``) that also meets its constraints answers it differently. An answer
    people marked wrong (``unlearn``) is never taught again. Answers on one passage with the same key spans are one
    fact asked in several phrasings; the fact keeps the answer with the shortest spans.
    """
    count = stats if stats is not None else {}
    pairs = [(p, q) for p in passages for q in questions.get(p.id, [])]
    count["asked"] = count.get("asked", 0) + len(pairs)
    rivals = rivals or {}
    telling = {(p.id, q): _telling(rare, [p, *rivals.get(q, ())]) for p, q in pairs}  # once per question
    pairs = [(p, q) for p, q in pairs if not _reject(count, "constraints", unmet(q, haystack(p), telling[p.id, q]))]
    answers = _answer(prompter, [(p, q) for p, q in pairs])
    kept = []
    for (p, q), raw in zip(pairs, answers, strict=True):
        answer = clean_answer(raw)
        spans = key_spans(answer, q)
        why = fault(q, answer, spans, haystack(p), p.text)
        if why is not None:
            _reject(count, why, True)
            continue
        if _reject(count, "marked wrong", any(u.covers(p.id, q, answer) for u in unlearn)):
            continue
        kept.append((p, q, answer, spans))
    kept = _round_trip(prompter, kept, rivals, telling, count)
    count["taught"] = count.get("taught", 0) + len(kept)
    return _group(kept)


def haystack(passage: Passage) -> str:
    """What a passage says, for the teacher's checks: its title and its text."""
    return f"{passage.title}. {passage.text}" if passage.title else passage.text


def _telling(rare: Callable[[str], bool] | None, candidates: Sequence[Passage]) -> Callable[[str], bool] | None:
    """Rare words that tell the question's candidate passages apart: held by one of them at least. A rare word none
    of them holds is the asker's wording ("written", "full name"), not what the subject is."""
    if rare is None:
        return None
    held = {w for p in candidates for w in content_words(haystack(p))}
    return lambda word: word in held and rare(word)


def _reject(count: dict[str, int], reason: str, failed: object) -> bool:
    if failed:
        count[reason] = count.get(reason, 0) + 1
    return bool(failed)


def _answer(prompter: Prompter, pairs: Sequence[tuple[Passage, str]]) -> list[str]:
    """The teacher's answers, each question with its one passage in the prompt."""
    prompts = [prompter.open(q, [p]) for p, q in pairs]
    return prompter.generator.generate_batch(prompts, max_new_tokens=TEACHER_TOKENS) if prompts else []


def _round_trip(prompter: Prompter, kept: list[tuple[Passage, str, str, tuple[str, ...]]],
                rivals: Mapping[str, Sequence[Passage]],
                telling: Mapping[tuple[str, str], Callable[[str], bool] | None], count: dict[str, int]) -> list[tuple[Passage, str, str, tuple[str, ...]]]:
    """The answers that survive asking again: in a second phrasing (same passage) the key spans come back, and
    every rival passage that meets the question's constraints too answers with the same spans."""
    checks = [(p, SECOND_PHRASING.format(q=q), i) for i, (p, q, _, _) in enumerate(kept)]
    checks += [(r, q, i) for i, (p, q, _, _) in enumerate(kept)
               for r in rivals.get(q, ())[:3]
               if r.id != p.id and not unmet(q, haystack(r), telling[p.id, q])]
    replies = _answer(prompter, [(p, q) for p, q, _ in checks])
    failed: dict[int, str] = {}
    for (passage, q, i), raw in zip(checks, replies, strict=True):
        if is_correct(clean_answer(raw), kept[i][3]):
            continue
        if passage.id == kept[i][0].id:
            failed.setdefault(i, "second phrasing disagrees")
        elif supported(key_spans(clean_answer(raw), q), haystack(passage)):
            failed.setdefault(i, "another passage answers otherwise")  # the evidence does not single out one answer
    for reason in failed.values():
        count[reason] = count.get(reason, 0) + 1
    return [k for i, k in enumerate(kept) if i not in failed]


def _group(kept: Sequence[tuple[Passage, str, str, tuple[str, ...]]]) -> list[Fact]:
    """Answers on one passage that state the same key spans (one within the other: "Votordra", "River Votordra")
    are one fact asked in several phrasings. A sentence can hold several facts (a birth place and a birth date):
    answers that only share a sentence are separate facts."""
    groups: list[list[tuple[Passage, str, str, tuple[str, ...]]]] = []
    for item in kept:
        p, _, _, spans = item
        home = next((g for g in groups if g[0][0].id == p.id and any(_same(spans, other) for *_, other in g)), None)
        if home is None:
            groups.append([item])
        else:
            home.append(item)
    facts = []
    for group in groups:
        best = min(group, key=lambda a: (sum(map(len, a[3])), a[1]))
        p, _, answer, spans = best
        # spans chain ("X" ~ "X, who won the Y Award" ~ "the Y Award"): a question joins the fact only when the
        # fact's answer answers it too; the others make facts of their own
        own = [a for a in group if a is best or _answers(a[1], answer, spans)]  # in the order asked
        where = sentence_with(spans, sentences(p.text))
        facts.append(Fact(p.id, tuple(dict.fromkeys(q for _, q, _, _ in own)), answer, spans, where))
        facts += _group([a for a in group if not any(a is o for o in own)])
    return facts


def _answers(question: str, answer: str, spans: Sequence[str]) -> bool:
    """True when a fact's ``answer`` (its key ``spans``) answers ``question`` as well: it states something the
    question does not ("What prize has X won?" is not answered by "X") and is of the kind the question asks for."""
    return not all(contains(question, s) for s in spans) and fits_kind(spans, answer, question)


def _same(a: Sequence[str], b: Sequence[str]) -> bool:
    """True when every span of one answer lies within a span of the other ("Votordra" in "River Votordra")."""
    def within(x: Sequence[str], y: Sequence[str]) -> bool:
        return all(any(contains(big, small) for big in y) for small in x)

    return within(a, b) or within(b, a)
