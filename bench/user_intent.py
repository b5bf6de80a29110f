"""Benchmark of user-intent inference on the hand-written held-out set. Run: .venv/bin/python bench/user_intent.py [--no-lora]

Trains the head from the GENERATED data (never from the held-out set), then prints: held-out accuracy, per-class
precision/recall, expected calibration error (held-out and template-held-out validation), the held-out mistakes, and
inference time per prompt, single and batched, with the embedding memo cleared so the encoder really runs.

Then (unless --no-lora) the LoRA classifier (netgpt.edge_agent.user_intent.lora: MiniLM with LoRA, fine-tuned on the
same generated data) next to the current one: accuracy, macro-F1 and ECE on the held-out set with 95% intervals from
2000 bootstrap resamples of the held-out prompts (seed 0), the paired differences (LoRA - current, same resamples),
training time, load time (from a saved copy, the encoder loaded again) and inference time per prompt.
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

import argparse  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402

from netgpt.edge_agent.user_intent import classifier as ui  # noqa: E402
from netgpt.edge_agent.user_intent import lora as ul  # noqa: E402

N_BOOT = 2000


def scores(probs: np.ndarray, labels: list[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    predicted = [ui.CLASSES[i] for i in probs.argmax(axis=1)]
    return {"accuracy": float(np.mean([p == y for p, y in zip(predicted, labels)])),
            "macro-F1": float(f1_score(labels, predicted, labels=ui.CLASSES, average="macro", zero_division=0)),
            "ECE": ui.expected_calibration_error(probs, labels)}


def bootstrap(runs: dict[str, np.ndarray], labels: list[str], seed: int = 0) -> dict:
    """{name: {metric: (value, lo, hi)}} and {metric: (diff, lo, hi)} for the second run minus the first."""
    rng = np.random.default_rng(seed)
    labels_a = np.array(labels)
    samples = {name: {m: [] for m in ("accuracy", "macro-F1", "ECE")} for name in runs}
    for _ in range(N_BOOT):
        idx = rng.integers(0, len(labels), len(labels))
        for name, probs in runs.items():
            for m, v in scores(probs[idx], list(labels_a[idx])).items():
                samples[name][m].append(v)
    out = {name: {m: (scores(runs[name], labels)[m], *np.percentile(v, [2.5, 97.5])) for m, v in ms.items()}
           for name, ms in samples.items()}
    a, b = list(runs)
    diff = {m: (out[b][m][0] - out[a][m][0],
                *np.percentile(np.array(samples[b][m]) - np.array(samples[a][m]), [2.5, 97.5]))
            for m in samples[a]}
    return {"runs": out, "diff": diff}


def latency_ms(classifier, texts: list[str], clear=None) -> tuple[float, float, float]:
    """(single median, single p90, batched) ms per prompt."""
    single = []
    for text in texts[:50]:
        if clear:
            clear()
        t = time.perf_counter()
        classifier.infer_intent(text, "bench", "c1", "r")
        single.append((time.perf_counter() - t) * 1000)
    if clear:
        clear()
    t = time.perf_counter()
    classifier.infer_intents([(text, "bench", "c1", f"r{i}") for i, text in enumerate(texts)])
    batch = (time.perf_counter() - t) * 1000 / len(texts)
    return float(np.median(single)), float(np.percentile(single, 90)), batch


def compare_lora(current, texts: list[str], labels: list[str], current_train_s: float) -> None:
    print("\n--- LoRA classifier vs the current one (hand-written held-out set) ---")
    started = time.perf_counter()
    lora = ul.LoRAIntentClassifier.train_default()
    lora_train_s = time.perf_counter() - started
    report = lora.report
    print(f"LoRA: {ul.MODEL_NAME}, config {lora.cfg}")
    print(f"LoRA trained in {lora_train_s:.0f} s: calibration pass {report['calibration_train']['steps']} steps "
          f"({report['calibration_train']['steps_per_s']:.2f} steps/s), then {report['train']['steps']} steps on all "
          f"{report['n']} generated prompts; template-held-out validation (calibration split, n="
          f"{report['calibration']['n']}): accuracy {report['calibration']['accuracy']:.4f}, temperature "
          f"{report['calibration']['temperature']:.3f}")
    runs = {"current (MiniLM embeddings + char n-grams, logreg)": current.predict_proba(texts),
            "LoRA (MiniLM + LoRA, linear head)": lora.predict_proba(texts)}
    result = bootstrap(runs, labels)

    with tempfile.TemporaryDirectory() as tmp:
        current.save(Path(tmp) / "head.joblib")
        lora.save(Path(tmp) / "lora")
        ui.load_encoder.cache_clear()
        ui.forget_embeddings()
        t = time.perf_counter()
        ui.UserIntentClassifier.load(Path(tmp) / "head.joblib").predict(["warm up"])
        load_current = time.perf_counter() - t
        t = time.perf_counter()
        again = ul.LoRAIntentClassifier.load(Path(tmp) / "lora")
        again.predict(["warm up"])
        load_lora = time.perf_counter() - t
        assert np.allclose(again.predict_proba(texts[:5]), runs["LoRA (MiniLM + LoRA, linear head)"][:5], atol=1e-5)
    lat = {"current (MiniLM embeddings + char n-grams, logreg)": latency_ms(current, texts, ui.forget_embeddings),
           "LoRA (MiniLM + LoRA, linear head)": latency_ms(lora, texts)}
    train_s = {"current (MiniLM embeddings + char n-grams, logreg)": current_train_s,
               "LoRA (MiniLM + LoRA, linear head)": lora_train_s}
    load_s = {"current (MiniLM embeddings + char n-grams, logreg)": load_current,
              "LoRA (MiniLM + LoRA, linear head)": load_lora}

    def cell(v):
        return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"

    print(f"\nn = {len(texts)} hand-written prompts; 95% intervals from {N_BOOT} bootstrap resamples (seed 0); "
          f"torch threads {torch.get_num_threads()}\n")
    print("| classifier | accuracy | macro-F1 | ECE | train s | load s | ms/prompt single (p90) | ms/prompt batched |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in result["runs"].items():
        single, p90, batch = lat[name]
        print(f"| {name} | {cell(r['accuracy'])} | {cell(r['macro-F1'])} | {cell(r['ECE'])} | {train_s[name]:.0f} | "
              f"{load_s[name]:.1f} | {single:.1f} ({p90:.1f}) | {batch:.2f} |")
    d = result["diff"]
    print(f"| LoRA - current (paired) | {d['accuracy'][0]:+.3f} [{d['accuracy'][1]:+.3f}, {d['accuracy'][2]:+.3f}] | "
          f"{d['macro-F1'][0]:+.3f} [{d['macro-F1'][1]:+.3f}, {d['macro-F1'][2]:+.3f}] | "
          f"{d['ECE'][0]:+.3f} [{d['ECE'][1]:+.3f}, {d['ECE'][2]:+.3f}] | | | | |")
    predicted = [ui.CLASSES[i] for i in runs["LoRA (MiniLM + LoRA, linear head)"].argmax(axis=1)]
    print("\nLoRA held-out mistakes (true -> predicted, confidence):")
    for text, y, p, row in zip(texts, labels, predicted, runs["LoRA (MiniLM + LoRA, linear head)"]):
        if p != y:
            print(f"  {y:17} -> {p:17} {row.max():.2f}  {text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-lora", action="store_true", help="skip the LoRA classifier comparison")
    args = ap.parse_args()
    torch.set_num_threads(2)  # both classifiers infer with 2 threads (the LoRA one also trains with 2)
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()  # no load report for the unused pooler weights
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
    if not args.no_lora:
        compare_lora(classifier, texts, labels, train_s)


if __name__ == "__main__":
    main()
