"""evaluate carries the training guard's verdict into the metrics JSON (read from the loss log)."""

from medgan import evaluate, paths


def test_collapse_flags_and_last_spread_reach_the_metrics(project):
    log = paths.path(paths.TRAIN_LOG, experiment="e")
    log.parent.mkdir(parents=True)
    log.write_text("step,loss_d,spread,guard\n10,0.5,0.8,\n20,0.1,0.04,mode_collapse\n30,0.1,0.03,\n")
    assert evaluate.training_signals("e") == {"guard": [{"step": 20, "flag": "mode_collapse"}], "spread_last": 0.03}


def test_a_log_without_guard_columns_reads_as_unflagged(project):
    log = paths.path(paths.TRAIN_LOG, experiment="e")
    log.parent.mkdir(parents=True)
    log.write_text("step,loss_d\n10,0.5\n")
    assert evaluate.training_signals("e") == {"guard": [], "spread_last": None}


def test_a_model_without_its_training_log_is_evaluated_with_no_training_record(project):
    signals = evaluate.training_signals("fetched_alone")
    assert signals["guard"] == [] and signals["spread_last"] is None
    assert signals["record"].startswith("none: ") and paths.TRAIN_LOG.format(experiment="fetched_alone", replicate=0) in signals["record"]


def test_a_damaged_training_log_is_named_not_a_traceback(project):
    log = paths.path(paths.TRAIN_LOG, experiment="e")
    log.parent.mkdir(parents=True)
    log.write_bytes(b"\xff\xfe\x00garbage\x00\n\x01,\x02\n")
    signals = evaluate.training_signals("e")
    assert signals["record"].startswith("unreadable: ") and str(log) in signals["record"]
