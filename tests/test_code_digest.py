"""A rule re-runs when the package code it runs changes, and only then (actlab.workflow.code_digest)."""

from __future__ import annotations

import json

from actlab.workflow import code_digest

BEFORE = '''
"""Module docstring."""


def metric(x):
    """Mean of x."""
    return x.mean()  # the claim's metric
'''


def test_docstrings_comments_and_formatting_do_not_count():
    reworded = BEFORE.replace("Mean of x.", "The average.").replace("# the claim's metric", "# reworded")
    reformatted = BEFORE.replace("return x.mean()", "return (\n        x.mean()\n    )")
    assert code_digest.normalized(reworded) == code_digest.normalized(BEFORE)
    assert code_digest.normalized(reformatted) == code_digest.normalized(BEFORE)


def test_a_change_in_what_the_code_does_counts():
    assert code_digest.normalized(BEFORE.replace("x.mean()", "x.mean() - 100")) != code_digest.normalized(BEFORE)
    # a string that is not a docstring is code
    assert code_digest.normalized(BEFORE + "\nLABEL = 'a'\n") != code_digest.normalized(BEFORE + "\nLABEL = 'b'\n")


def test_a_training_job_depends_on_its_experiment_and_the_engine_not_on_the_judging():
    used = code_digest.closure(["actlab.claims.experiments.dying"])
    assert {
        "actlab.claims.experiments.dying",
        "actlab.engine.network",
        "actlab.engine.training",
        "actlab.engine.activations",
    } <= set(used)
    assert "actlab.claims.judging" not in used and "actlab.claims.experiments.single_neuron" not in used
    judged = code_digest.closure(["actlab.workflow.pipeline"])
    assert {"actlab.claims.judging", "actlab.claims.stats", "actlab.claims.experiments.single_neuron"} <= set(judged)


def test_the_digest_is_stable_and_covers_named_files():
    first = code_digest.digest(["actlab.claims.report"], ["claims/templates/report.html.j2"])
    assert first == code_digest.digest(["actlab.claims.report"], ["claims/templates/report.html.j2"])
    assert first != code_digest.digest(["actlab.claims.report"], ["claims/templates/claims.md.j2"])
    assert first != code_digest.digest(["actlab.claims.report"])


def test_the_digest_cache_gives_the_same_digests_and_is_keyed_by_the_file_state(tmp_path):
    cache_file = tmp_path / "digests.json"
    try:
        code_digest.use_cache(None)
        plain = code_digest.digest(["actlab.workflow.pipeline"])
        code_digest.use_cache(cache_file)
        assert code_digest.digest(["actlab.workflow.pipeline"]) == plain  # computed, then saved
        entries = json.loads(cache_file.read_text())
        assert len(entries) == len(code_digest.closure(["actlab.workflow.pipeline"]))
        code_digest.use_cache(cache_file)
        assert code_digest.digest(["actlab.workflow.pipeline"]) == plain  # read back

        # an entry is used only while its file has the size and modification time it was taken at
        forged = {key: ["0" * 64, imported] for key, (_, imported) in entries.items()}
        cache_file.write_text(json.dumps(forged))
        code_digest.use_cache(cache_file)
        assert code_digest.digest(["actlab.workflow.pipeline"]) != plain  # the cache is what it reads
        stale = {key.rsplit(":", 1)[0] + ":1": entry for key, entry in forged.items()}
        cache_file.write_text(json.dumps(stale))
        code_digest.use_cache(cache_file)
        assert code_digest.digest(["actlab.workflow.pipeline"]) == plain
        assert set(json.loads(cache_file.read_text())) == set(entries)  # stale entries dropped, current kept

        cache_file.write_text("{not json")
        code_digest.use_cache(cache_file)
        assert code_digest.digest(["actlab.workflow.pipeline"]) == plain
    finally:
        code_digest.use_cache(None)
