"""Caption metrics: the course BLEU@1 (both variants), corpus BLEU-4 (nltk) and CIDEr-D.

``python -m hw2_video_caption.evaluate <labels.json> <captions.txt>`` prints all four.

The course BLEU@1 follows the course's ``bleu_eval.py``: whitespace tokens, lowercased, references
``rstrip('.')``-ed then stripped, clipped unigram precision, brevity penalty ``exp(1 - r/c)`` when
``c <= r`` where ``r`` is the reference length closest to ``c`` (the first one on ties). The course
script divides by zero on an empty caption; here an empty caption scores 0.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

from common.errors import UserError, run_cli
from hw2_video_caption.data import load_labels, normalize_caption, read_captions

CONSTANT_CAPTION = "a man is playing a guitar"


def _closest_length(ref_lengths: Sequence[int], cand_len: int) -> int:
    best = ref_lengths[0]
    for length in ref_lengths:  # strict '<' keeps the first reference on ties, as the course did
        if abs(cand_len - length) < abs(cand_len - best):
            best = length
    return best


def bleu1(candidate: str, references: Sequence[str]) -> float:
    """Course BLEU@1 of one candidate against the given references scored together ("new")."""
    words = candidate.strip().lower().split()
    if not words or not references:
        return 0.0
    ref_words = [ref.rstrip(".").strip().lower().split() for ref in references]
    max_ref = Counter()
    for ref in ref_words:
        for word, n in Counter(ref).items():
            max_ref[word] = max(max_ref[word], n)
    clipped = sum(min(n, max_ref[word]) for word, n in Counter(words).items())
    precision = clipped / len(words)
    c, r = len(words), _closest_length([len(ref) for ref in ref_words], len(words))
    penalty = 1.0 if c > r else math.exp(1 - r / c)
    return precision * penalty


def bleu1_original(candidate: str, references: Sequence[str]) -> float:
    """Course BLEU@1 "original": scored against each reference alone, then averaged."""
    if not references:
        return 0.0
    return sum(bleu1(candidate, [ref]) for ref in references) / len(references)


def cider_d(
    candidates: Mapping[str, str], references: Mapping[str, Sequence[str]], n: int = 4, sigma: float = 6.0
) -> float:
    """CIDEr-D as in pycocoevalcap (×10, clipped tf-idf, Gaussian length penalty).

    Document frequencies come from the references of the videos being scored, as in the COCO code.
    """

    def grams(words: list[str]) -> list[Counter]:
        return [Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1)) for k in range(1, n + 1)]

    ids = list(candidates)
    refs = {v: [grams(normalize_caption(r)) for r in references[v]] for v in ids}
    hyps = {v: grams(normalize_caption(candidates[v])) for v in ids}
    df: Counter = Counter()
    for v in ids:
        seen = set()
        for ref in refs[v]:
            for k in range(n):
                seen.update(ref[k])
        df.update(seen)
    log_n = math.log(float(max(len(ids), 1)))

    def vec(counts: list[Counter]) -> tuple[list[dict], list[float], int]:
        vecs, norms = [], []
        for k in range(n):
            v = {g: tf * (log_n - math.log(max(1.0, df[g]))) for g, tf in counts[k].items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vecs, norms, sum(counts[0].values())

    total = 0.0
    for v in ids:
        hv, hn, hl = vec(hyps[v])
        score = [0.0] * n
        for ref in refs[v]:
            rv, rn, rl = vec(ref)
            for k in range(n):
                dot = sum(min(x, rv[k][g]) * rv[k][g] for g, x in hv[k].items() if g in rv[k])
                if hn[k] and rn[k]:
                    score[k] += dot / (hn[k] * rn[k]) * math.exp(-((hl - rl) ** 2) / (2 * sigma**2))
        total += sum(score) / n / max(len(refs[v]), 1) * 10.0
    return total / max(len(ids), 1)


def score_all(candidates: Mapping[str, str], labels: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Every metric over the videos in ``candidates`` (each must have labels)."""
    ids = list(candidates)
    if not ids:
        raise UserError("no captions to score")
    new = sum(bleu1(candidates[v], labels[v]) for v in ids) / len(ids)
    orig = sum(bleu1_original(candidates[v], labels[v]) for v in ids) / len(ids)
    hyps = [normalize_caption(candidates[v]) for v in ids]
    refs = [[normalize_caption(r) for r in labels[v]] for v in ids]
    bleu4 = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1) if any(hyps) else 0.0
    return {
        "bleu1_new": new,
        "bleu1_original": orig,
        "bleu4": float(bleu4),
        "cider_d": cider_d(candidates, labels),
        "distinct": len(set(candidates.values())),
        "videos": len(ids),
    }


def format_scores(s: Mapping[str, float]) -> str:
    return (
        f"BLEU@1 new {s['bleu1_new']:.4f}  original {s['bleu1_original']:.4f}  BLEU-4 {s['bleu4']:.4f}  "
        f"CIDEr-D {s['cider_d']:.4f}  ({int(s['distinct'])} different captions for {int(s['videos'])} videos)"
    )


def _main(args: argparse.Namespace) -> int:
    labels = load_labels(args.labels)
    captions = read_captions(args.captions)
    unknown = [v for v in captions if v not in labels]
    if unknown:
        raise UserError(f"{args.captions}: {len(unknown)} ids not in {args.labels}, first: {unknown[0]}")
    if len(captions) < len(labels):  # the course script would crash here; score what there is, and say so
        print(
            f"note: {len(captions)} of the {len(labels)} labelled videos have captions; scoring those", file=sys.stderr
        )
    scores = score_all(captions, labels)
    print(format_scores(scores))
    if args.constant:
        print(
            "constant caption '"
            + CONSTANT_CAPTION
            + "': "
            + format_scores(score_all({v: CONSTANT_CAPTION for v in captions}, labels))
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw2_video_caption.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("labels", help="label JSON in the course format (testing_label.json)")
    p.add_argument("captions", help="id,caption lines (the predict output)")
    p.add_argument("--constant", action="store_true", help=f"also score the constant caption '{CONSTANT_CAPTION}'")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
