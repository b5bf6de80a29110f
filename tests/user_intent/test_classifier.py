"""The intent classifier: held-out accuracy, calibration, input checks, persistence, message validity."""
import numpy as np
import pytest

from netgpt.edge_agent.user_intent import classifier as ui
from netgpt.core.messages import ServiceClass, UserIntent, parse_message
from netgpt.core.settings import Settings

REQUIRED_HELDOUT_ACCURACY = 0.90
MAX_VALIDATION_ECE = 0.10


def test_heldout_accuracy_at_least_90_percent(trained_classifier):
    texts, labels = ui.load_heldout()
    predicted = [c.value for c, _ in trained_classifier.predict(texts)]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels)]))
    print(f"held-out accuracy {accuracy:.4f} on {len(texts)} hand-written prompts")
    assert accuracy >= REQUIRED_HELDOUT_ACCURACY


def test_confidence_is_calibrated_on_unseen_templates():
    report = ui.template_validation()
    print(f"template-held-out validation: accuracy {report['accuracy']:.3f}, ECE {report['ece']:.3f}, n={report['n']}")
    assert report["ece"] < MAX_VALIDATION_ECE
    assert report["accuracy"] > 0.9


def test_probabilities_are_distributions_in_class_order(trained_classifier):
    probs = trained_classifier.predict_proba(["call my uncle", "download the installer"])
    assert probs.shape == (2, len(ServiceClass))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert [c for c, _ in trained_classifier.predict(["call my uncle"])] == [ServiceClass.voice_video_call]


@pytest.mark.parametrize("bad", ["", "   \n", "x" * (ui.MAX_PROMPT_CHARS + 1), None, 42, b"call mom", ["call mom"]])
def test_unusable_prompts_raise_value_error(trained_classifier, bad):
    with pytest.raises(ValueError):
        trained_classifier.infer_intent(bad, "u1", "c1", "r1")


@pytest.mark.parametrize("field", ["user", "cell", "request_id"])
def test_missing_identifiers_raise_value_error(trained_classifier, field):
    args = {"user": "u1", "cell": "c1", "request_id": "r1", field: " "}
    with pytest.raises(ValueError, match=field):
        trained_classifier.infer_intent("call mom", args["user"], args["cell"], args["request_id"])


def test_infer_intent_returns_a_valid_message_with_the_demand_table(trained_classifier):
    intent = trained_classifier.infer_intent("put on a nature documentary", user="alice", cell="c1",
                                             request_id="req-1", source="edge:m1")
    assert isinstance(intent, UserIntent)
    demand = ui.DEMAND_TABLE[intent.service_class]
    assert (intent.bandwidth_mbps, intent.duration_s, intent.latency_class) == (
        demand.bandwidth_mbps, demand.duration_s, demand.latency_class)
    assert 0 <= intent.confidence <= 1 and intent.model == ui.MODEL_NAME
    assert parse_message(intent.model_dump_json()) == intent


def test_batch_matches_single(trained_classifier):
    requests = [("call my uncle", "u1", "c1", "r1"), ("vr space walk", "u2", "c2", "r2")]
    batch = trained_classifier.infer_intents(requests)
    single = [trained_classifier.infer_intent(*r) for r in requests]
    assert [(i.service_class, round(i.confidence, 6)) for i in batch] == [
        (i.service_class, round(i.confidence, 6)) for i in single]


def test_demand_table_covers_every_class():
    assert set(ui.DEMAND_TABLE) == set(ServiceClass)


def test_save_load_and_load_or_train_reuse_the_saved_head(trained_classifier, tmp_path):
    settings = Settings(cache_dir=tmp_path)
    path = trained_classifier.save(ui.UserIntentClassifier.default_path(settings))
    assert path == tmp_path / "user_intent" / "head.joblib"
    texts = ["join the standup call", "closest tram stop"]
    loaded = ui.UserIntentClassifier.load_or_train(settings)  # same fingerprint: loaded, not retrained
    assert loaded.fingerprint == trained_classifier.fingerprint
    assert np.allclose(loaded.predict_proba(texts), trained_classifier.predict_proba(texts))


def test_a_save_between_another_saves_write_and_rename_breaks_neither(tmp_path, monkeypatch):
    """Edge agents started together on a fresh machine each train the head and save it to the one cache. Here a second
    save lands between the first's write and its rename: both must succeed (with one shared temporary file the first
    rename raised FileNotFoundError and the agent died), the file must load, and no temporary file is left."""
    path, real_dump, written = tmp_path / "head.joblib", ui.joblib.dump, []

    def dump_then_another_agent_saves(obj, filename, *args, **kwargs):
        real_dump(obj, filename, *args, **kwargs)
        written.append(filename)
        if len(written) == 1:
            ui.UserIntentClassifier(fingerprint="the other agent").save(path)

    monkeypatch.setattr(ui.joblib, "dump", dump_then_another_agent_saves)
    assert ui.UserIntentClassifier(fingerprint="this agent").save(path) == path
    assert len(written) == 2 and written[0] != written[1]
    assert ui.UserIntentClassifier.load(path).fingerprint == "this agent"  # the last rename wins
    assert [p.name for p in tmp_path.iterdir()] == ["head.joblib"]


def test_unknown_training_labels_are_refused():
    with pytest.raises(ValueError, match="unknown labels"):
        ui.UserIntentClassifier().fit(["a", "b"], ["video_streaming", "telepathy"])
