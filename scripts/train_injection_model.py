"""Train the injection sentence model (``gateway/detect/injection_model.json``) with numpy alone.

    PYTHONPATH=. python scripts/train_injection_model.py [--data ../shared/datasets/agent] [--without bipia]
        [--out gateway/detect/injection_model.json]

Sentences come from the MIT-licensed development corpora (their formats in the datasets' READMEs) and from
``injection_synthetic`` templates, with the READMEs of the permissively licensed packages installed beside
modelgate as further negatives (documentation, full of imperatives addressed to people). A corpus's negatives
are the sentences of its clean texts; its positives are the sentences of the attacks it inserts (and that no
clean text contains). ``--without`` leaves corpora out, for the leave-one-corpus-out table of
``eval_injection.py --loco``.

The model: logistic regression over ``gateway.detect.model.features``, features seen in at least two
sentences, classes weighted equally, L2-regularised, full-batch Adam. The threshold is the sentence
probability above which at most ``TEXT_FPR`` of the training corpora's clean texts (counted as often as they
occur) would be flagged, and no lower than ``MIN_THRESHOLD`` (held-out corpora are flagged more often than the
corpora a threshold was fitted on: see the leave-one-corpus-out table).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from eval_injection import CORPORA, DEFAULT_DATA, package_documents
from injection_synthetic import synthetic

from gateway.detect.model import DEFAULT_MODEL, FORMAT, MAX_WORDS, MIN_WORDS, TOKEN, SentenceModel, features, sentences
from gateway.detect.text import prepare

TEXT_FPR = 0.002
MIN_THRESHOLD = 0.9
L2 = 1e-4
STEPS = 300
PROVENANCE = (
    "Trained by scripts/train_injection_model.py on sentences of the AgentDojo v1.2.2 workspace/travel traces, "
    "the BIPIA email/table/code test contexts and attacks, the ASB tools and attacker instructions (all MIT "
    "licensed), the READMEs of the MIT/BSD/Apache licensed packages installed beside modelgate (as negatives) "
    "and template-generated sentences (scripts/injection_synthetic.py)."
)


def _tokens(text: str) -> list[tuple[str, ...]]:
    out = []
    for piece in sentences(prepare(text).lowered):
        tokens = tuple(TOKEN.findall(piece))
        if MIN_WORDS <= len(tokens) <= MAX_WORDS:
            out.append(tokens)
    return out


def corpus_sentences(name: str, data: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]], list[str]]:
    """Positive sentences (of the inserted attacks), negative sentences and the clean texts (as often as they
    occur) of one corpus."""
    payloads: set[str] = set()
    clean: list[str] = []
    for sample in CORPORA[name](data):
        if sample.kind != "content":
            continue
        if sample.positive:
            payloads.add(sample.payload)
        else:
            clean.append(sample.text)
    negatives = {tokens for text in set(clean) for tokens in _tokens(text)}
    positives = {tokens for text in payloads for tokens in _tokens(text)} - negatives
    return positives, negatives, clean


def train(data: Path, without: tuple[str, ...] = ()) -> dict:
    """The model document, trained on every corpus but ``without``, package READMEs and synthetic sentences."""
    positives, negatives = (set(map(tuple, map(TOKEN.findall, group))) for group in synthetic())
    clean_texts = package_documents()
    negatives |= {tokens for text in clean_texts for tokens in _tokens(text)}
    used = [name for name in sorted(CORPORA) if name not in without]
    for name in used:
        pos, neg, clean = corpus_sentences(name, data)
        positives |= pos
        negatives |= neg
        clean_texts += clean
    negatives -= positives
    rows = [features(list(t)) for t in sorted(positives)] + [features(list(t)) for t in sorted(negatives)]
    labels = np.array([1.0] * len(positives) + [0.0] * len(negatives))
    seen = Counter(f for row in rows for f in set(row))
    vocabulary = {f: i for i, f in enumerate(sorted(f for f, n in seen.items() if n >= 2))}
    indices = [np.array([vocabulary[f] for f in row if f in vocabulary], dtype=np.int64) for row in rows]
    lengths = np.array([len(i) for i in indices])
    keep = lengths > 0
    flat = np.concatenate([i for i in indices if len(i)])
    starts = np.concatenate([[0], np.cumsum(lengths[keep])[:-1]])
    y = labels[keep]
    balance = np.where(y == 1.0, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    weights, bias = np.zeros(len(vocabulary)), 0.0
    m, v, mb, vb = np.zeros_like(weights), np.zeros_like(weights), 0.0, 0.0
    for step in range(1, STEPS + 1):
        z = bias + np.add.reduceat(weights[flat], starts)
        error = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) - y) * balance
        grad = np.bincount(flat, weights=np.repeat(error, lengths[keep]), minlength=len(weights)) + L2 * weights
        grad_b = error.sum()
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
        mb, vb = 0.9 * mb + 0.1 * grad_b, 0.999 * vb + 0.001 * grad_b**2
        rate = 0.05 * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        weights -= rate * m / (np.sqrt(v) + 1e-8)
        bias -= rate * mb / (np.sqrt(vb) + 1e-8)
    names = sorted(vocabulary, key=vocabulary.__getitem__)
    document = {
        "format": FORMAT,
        "provenance": PROVENANCE,
        "trained_on": used + ["synthetic"],
        "sentences": {"positive": len(positives), "negative": len(negatives)},
        "bias": round(float(bias), 4),
        "threshold": 0.5,
        "weights": {f: round(float(w), 3) for f, w in zip(names, weights, strict=True) if abs(w) >= 0.005},
    }
    model = SentenceModel.from_document(document)
    cache: dict[str, float] = {}
    for text in clean_texts:
        if text not in cache:
            cache[text] = model.strongest(prepare(text).lowered)[0]
    scores = sorted(cache[text] for text in clean_texts)
    if scores:
        quantile = scores[min(len(scores) - 1, int(len(scores) * (1 - TEXT_FPR)))]
        document["threshold"] = round(max(MIN_THRESHOLD, quantile), 4)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--without", action="append", default=[], choices=sorted(CORPORA))
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no datasets at {args.data}", file=sys.stderr)
        return 2
    document = train(args.data, tuple(args.without))
    args.out.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(document['weights'])} weights, threshold {document['threshold']}, "
          f"{document['sentences']}, {args.out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
