"""Unreadable result files are set aside (and so rebuilt) instead of failing every job that reads them."""

from __future__ import annotations

import json

import numpy as np

from actlab.workflow import integrity


def _results(tmp_path):
    runs = tmp_path / "results/runs/claim"
    runs.mkdir(parents=True)
    np.savez(runs / "good.npz", a=np.arange(1000.0))
    np.savez(runs / "truncated.npz", a=np.arange(1000.0))
    data = (runs / "truncated.npz").read_bytes()
    (runs / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(runs / "flipped.npz", a=np.arange(1000.0))
    data = bytearray((runs / "flipped.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF  # a flipped byte inside the array: the CRC check catches it
    (runs / "flipped.npz").write_bytes(bytes(data))
    (runs / "good.json").write_text(json.dumps({"a": 1}))
    (runs / "garbled.json").write_text('{"a": ')
    return tmp_path / "results", runs


def test_each_unreadable_file_is_named_and_moved_aside_and_the_rest_untouched(tmp_path):
    results, runs = _results(tmp_path)
    names = ["good.npz", "truncated.npz", "flipped.npz", "good.json", "garbled.json", "absent.npz"]
    moved = integrity.set_aside([runs / n for n in names], results)
    assert len(moved) == 3
    for name in ("truncated.npz", "flipped.npz", "garbled.json"):
        assert not (runs / name).exists()
        assert (results / integrity.SET_ASIDE / "runs/claim" / name).exists()  # kept for inspection
        assert any(name in line and "rebuilt" in line for line in moved)
    assert (runs / "good.npz").exists() and (runs / "good.json").exists()
    assert integrity.set_aside([runs / n for n in names], results) == []
