"""The end of a run: the best checkpoint and the bag-of-words baseline scored on the same held-out test part,
side by side, with a plain sentence saying which one wins (by macro F1, which a majority class cannot carry;
accuracy breaks a tie). Written to ``report.md`` and ``report.json`` and printed."""
from __future__ import annotations

import json
import os

import numpy as np

from ...io.safetensors import atomic_write
from .baseline import predict_proba, train_baseline
from .scores import format_scores, scores
from .split import Prepared

REPORT_FILES = ("report.md", "report.json")


def _macro_f1(n_classes):
    return lambda y, p: scores(y, p.argmax(axis=1), n_classes)["macro_f1"]


def run_baseline(data: Prepared, n_classes: int) -> dict:
    """The baseline's test scores, its L2 strength chosen on the validation part."""
    feats, w, b, lam = train_baseline(data.tokenizer.level, data.texts["train"], data.y["train"],
                                      data.texts["val"], data.y["val"], n_classes, _macro_f1(n_classes))
    p = predict_proba(feats.transform(data.texts["test"]), w, b)
    return {"scores": scores(data.y["test"], p.argmax(axis=1), n_classes), "l2": lam,
            "features": len(feats.columns)}


def verdict(model: dict, base: dict) -> str:
    """Which one wins on the test part, in one sentence."""
    m, b = model["macro_f1"], base["macro_f1"]
    if np.isclose(m, b, atol=5e-5):
        m, b = model["accuracy"], base["accuracy"]
        if np.isclose(m, b, atol=5e-5):
            return "The recurrent model and the bag-of-words baseline tie on the test part."
    if m > b:
        return (f"The recurrent model wins: macro F1 {model['macro_f1']:.4f} against the baseline's "
                f"{base['macro_f1']:.4f} (accuracy {model['accuracy']:.4f} against {base['accuracy']:.4f}).")
    return (f"The bag-of-words baseline wins: macro F1 {base['macro_f1']:.4f} against the recurrent model's "
            f"{model['macro_f1']:.4f} (accuracy {base['accuracy']:.4f} against {model['accuracy']:.4f}); "
            "on data this size, word and character counts carry most of the signal.")


def write_report(folder: str, *, labels: list, model_name: str, model_scores: dict, best_step, baseline: dict,
                 sizes: dict, source: str) -> str:
    """Write report.md and report.json to ``folder``; returns the text of report.md."""
    verdict_text = verdict(model_scores, baseline["scores"])
    lines = ["# Text classification report", "",
             f"Data: {source}; {sizes['train']:,} training, {sizes['val']:,} validation and {sizes['test']:,} test "
             f"texts (stratified split); classes: {', '.join(labels)}.", "",
             f"## {model_name} (best checkpoint by validation loss, step {best_step}), on the test part", "",
             "```", format_scores(model_scores, labels), "```", "",
             f"## Baseline: bag of n-grams (tf-idf, {baseline['features']:,} features) + logistic regression "
             f"(L2 {baseline['l2']:g}, chosen on the validation part), on the same test part", "",
             "```", format_scores(baseline["scores"], labels), "```", "",
             "## Verdict", "", verdict_text, ""]
    text = "\n".join(lines)
    atomic_write(os.path.join(folder, "report.md"), text.encode("utf-8"))
    payload = {"labels": labels, "sizes": sizes, "source": source, "model": model_name, "best_step": best_step,
               "test": model_scores, "baseline": baseline, "verdict": verdict_text}
    atomic_write(os.path.join(folder, "report.json"), (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    return text
