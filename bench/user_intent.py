"""Benchmark of user-intent inference on the hand-written held-out set. Run: .venv/bin/python bench/user_intent.py

Trains the head from the GENERATED data (never from the held-out set), then prints: held-out accuracy, per-class
precision/recall, expected calibration error (held-out and template-held-out validation), the held-out mistakes, and
inference time per prompt, single and batched, with the embedding memo cleared so the encoder really runs.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# The Hugging Face libraries' own switch (not a NETGPT setting): never reach for a model hub. They read it when they are
# imported, so it is set before anything that imports them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402

from netgpt.edge_agent.user_intent import classifier as ui  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    classifier = ui.UserIntentClassifier.train_default()
    train_s = time.perf_counter() - started
    texts, labels = ui.load_heldout()
    probs = classifier.predict_proba(texts)
    predicted = [ui.CLASSES[i] for i in probs.argmax(axis=1)]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels)]))
    validation = ui.template_validation()

    print(f"model {ui.MODEL_NAME}; trained in {train_s:.1f} s (embedding the generated set included)")
    print(f"\nheld-out accuracy  {accuracy:.4f}  ({sum(p == y for p, y in zip(predicted, labels))}/{len(texts)})")
    print(f"held-out ECE       {ui.expected_calibration_error(probs, labels):.4f}  "
          f"(mean confidence {probs.max(axis=1).mean():.3f})")
    print(f"validation ECE     {validation['ece']:.4f}  (unseen templates, n={validation['n']}, "
          f"accuracy {validation['accuracy']:.4f})")

    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=ui.CLASSES,
                                                                     zero_division=0)
    print(f"\n{'class':18} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
    for name, p, r, f, n in zip(ui.CLASSES, precision, recall, f1, support):
        print(f"{name:18} {p:9.3f} {r:7.3f} {f:6.3f} {n:4d}")

    print("\nheld-out mistakes (true -> predicted, confidence):")
    for text, y, p, row in zip(texts, labels, predicted, probs):
        if p != y:
            print(f"  {y:17} -> {p:17} {row.max():.2f}  {text}")

    single_ms = []
    for text in texts[:50]:
        ui.forget_embeddings()  # time the encoder too, as for a prompt never seen before
        t = time.perf_counter()
        classifier.infer_intent(text, "bench", "c1", "r")
        single_ms.append((time.perf_counter() - t) * 1000)
    ui.forget_embeddings()
    t = time.perf_counter()
    classifier.infer_intents([(text, "bench", "c1", f"r{i}") for i, text in enumerate(texts)])
    batch_ms = (time.perf_counter() - t) * 1000 / len(texts)
    print(f"\ninference ms/prompt: single median {np.median(single_ms):.1f} (p90 {np.percentile(single_ms, 90):.1f}, "
          f"n=50); batched {batch_ms:.2f} (batch of {len(texts)}); torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
