"""Tests of the resumable result store (invnb.runs)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from invnb.runs import Record, ResultStore, config_hash, run_items


def test_save_load_roundtrip_keeps_values_shapes_and_dtypes(tmp_path):
    store = ResultStore(tmp_path)
    rng = np.random.default_rng(0)
    attr = rng.random((3, 5, 7)).astype(np.float32)
    classes = torch.tensor([2, 0, 1])
    store.save("img-0", arrays={"attr": attr, "classes": classes}, scalars={"reid": True, "amount": 0.25, "n": np.int64(3)})
    rec = ResultStore(tmp_path).load("img-0")  # a fresh handle reads the same
    assert rec.key == "img-0"
    np.testing.assert_array_equal(rec.arrays["attr"], attr)
    assert rec.arrays["attr"].dtype == np.float32
    np.testing.assert_array_equal(rec.arrays["classes"], classes.numpy())
    assert rec.scalars == {"reid": True, "amount": 0.25, "n": 3}
    assert isinstance(rec.scalars["n"], int)


def test_done_and_keys_follow_saves(tmp_path):
    store = ResultStore(tmp_path)
    assert not store.done("a") and store.keys() == []
    store.save("b", scalars={"x": 1})
    store.save("a", scalars={"x": 2})
    assert store.done("a") and store.done("b")
    assert store.keys() == ["a", "b"]
    assert store.scalars_table() == [{"key": "a", "x": 2}, {"key": "b", "x": 1}]


@pytest.mark.parametrize("key", ["", "../evil", "a/b", "with space", ".hidden", "x.tmp", 3])
def test_bad_keys_are_refused_with_a_clear_message(tmp_path, key):
    with pytest.raises(ValueError, match="invalid key"):
        ResultStore(tmp_path).save(key, scalars={"x": 1})


def test_bad_values_are_refused(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(TypeError, match="scalar 'x'"):
        store.save("k", scalars={"x": [1, 2]})
    with pytest.raises(TypeError, match="dtype object"):
        store.save("k", arrays={"a": [object()]})
    assert not store.done("k")


def test_load_of_missing_key_says_so(tmp_path):
    with pytest.raises(KeyError, match="not in the store"):
        ResultStore(tmp_path).load("nothing")


def test_config_mismatch_refuses_to_mix_runs(tmp_path):
    ResultStore(tmp_path, config={"mask_weight": 0.7, "model": "vgg16"})
    ResultStore(tmp_path, config={"model": "vgg16", "mask_weight": 0.7})  # same config, any order
    with pytest.raises(ValueError, match="another run config"):
        ResultStore(tmp_path, config={"mask_weight": 2.0, "model": "vgg16"})


def test_leftover_temporary_file_is_not_a_finished_item(tmp_path):
    store = ResultStore(tmp_path)
    (tmp_path / ".abc.tmp").write_bytes(b"half written")
    assert store.keys() == []


def test_run_items_computes_once_then_reuses(tmp_path):
    calls = []

    def fn(key):
        calls.append(key)
        return {"score": float(len(key)), "vec": torch.arange(3) * len(key), "name": key}

    keys = ["a", "bb", "ccc"]
    first = run_items(keys, fn, ResultStore(tmp_path), progress=False)
    assert first.computed == keys and first.reused == []
    second = run_items(keys, fn, ResultStore(tmp_path), progress=False)
    assert second.computed == [] and second.reused == keys
    assert calls == keys  # nothing recomputed
    for a, b in zip(first.records, second.records):
        assert a.key == b.key and a.scalars == b.scalars
        np.testing.assert_array_equal(a.arrays["vec"], b.arrays["vec"])
    assert second.records[1].scalars == {"score": 2.0, "name": "bb"}


def test_run_items_resumes_after_an_exception_without_recomputing(tmp_path):
    calls = []

    def flaky(key):
        calls.append(key)
        if key == "k2" and calls.count("k2") == 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during item k2
        return {"v": int(key[1:])}

    keys = [f"k{i}" for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        run_items(keys, flaky, ResultStore(tmp_path), progress=False)
    assert ResultStore(tmp_path).keys() == ["k0", "k1"]
    res = run_items(keys, flaky, ResultStore(tmp_path), progress=False)
    assert res.reused == ["k0", "k1"] and res.computed == ["k2", "k3", "k4"]
    assert calls == ["k0", "k1", "k2", "k2", "k3", "k4"]
    assert [r.scalars["v"] for r in res.records] == [0, 1, 2, 3, 4]


def test_run_items_rejects_duplicates_and_bad_returns(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(ValueError, match="duplicate keys"):
        run_items(["a", "a"], lambda k: {}, store, progress=False)
    with pytest.raises(TypeError, match="returned a list"):
        run_items(["a"], lambda k: [1], store, progress=False)


_WORKER = textwrap.dedent(
    """
    import sys, time
    from invnb.runs import ResultStore, run_items
    log = open(sys.argv[2], "a")
    def fn(key):
        log.write(key + "\\n"); log.flush()
        time.sleep(0.3)
        return {"value": int(key[4:]) ** 2}
    run_items([f"item{i}" for i in range(8)], fn, ResultStore(sys.argv[1]), progress=False)
    """
)


def test_a_killed_process_resumes_where_it_stopped(tmp_path):
    """SIGKILL a real run mid-way; the rerun computes only the unfinished items."""
    store_dir, log = tmp_path / "store", tmp_path / "calls.log"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(store_dir), str(log)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(ResultStore(store_dir).keys()) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = ResultStore(store_dir).keys()
    assert 3 <= len(finished) < 8, "the worker should have been killed mid-run"
    subprocess.run([sys.executable, str(script), str(store_dir), str(log)], env=env, check=True)
    calls = log.read_text().split()
    # every item finished before the kill was computed exactly once
    assert all(calls.count(k) == 1 for k in finished)
    # every item was computed at most twice (the one in progress at the kill)
    assert sorted(set(calls)) == [f"item{i}" for i in range(8)]
    assert len(calls) <= 8 + 1
    store = ResultStore(store_dir)
    assert [store.load(f"item{i}").scalars["value"] for i in range(8)] == [i**2 for i in range(8)]


def test_record_is_returned_by_save(tmp_path):
    rec = ResultStore(tmp_path).save("x", scalars={"a": 1})
    assert isinstance(rec, Record) and rec.scalars == {"a": 1}


def test_config_hash_ignores_key_order_and_separates_configs(tmp_path):
    a = config_hash({"mask_weight": 0.7, "model": "vgg16"})
    assert a == config_hash({"model": "vgg16", "mask_weight": 0.7}) and len(a) == 12
    assert a != config_hash({"model": "vgg16", "mask_weight": 0.5})
    s1 = ResultStore.for_config(tmp_path, {"mask_weight": 0.7})
    s2 = ResultStore.for_config(tmp_path, {"mask_weight": 0.5})
    s1.save("x", scalars={"v": 1})
    assert s1.directory != s2.directory and not s2.done("x")
    assert ResultStore.for_config(tmp_path, {"mask_weight": 0.7}).done("x")


# --- damaged items: detected, named, moved aside, recomputed -----------------------------


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # one bit in the middle of the compressed data
        mid = len(data) // 3
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0x04]) + data[mid + 1 :])
    elif how == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    else:
        raise AssertionError(how)


def _item(key):
    rng = np.random.default_rng(int(key[4:]))
    return {"attr": rng.random((16, 16)).astype(np.float32), "score": float(int(key[4:])) / 3}


@pytest.mark.parametrize("how", ["truncate", "empty", "flip", "garbage"])
def test_a_damaged_item_is_named_moved_aside_and_recomputed(tmp_path, how):
    keys = [f"item{i}" for i in range(5)]
    calls = []

    def fn(key):
        calls.append(key)
        return _item(key)

    reference = run_items(keys, _item, ResultStore(tmp_path / "ref"), progress=False)
    run_items(keys, fn, ResultStore(tmp_path / "s"), progress=False)
    victim = tmp_path / "s" / "item2.npz"
    _damage(victim, how)
    store = ResultStore(tmp_path / "s")
    calls.clear()
    with pytest.warns(UserWarning, match=r"'item2' at .*item2\.npz is broken") as record:
        res = run_items(keys, fn, store, progress=False)
    assert len([w for w in record if "broken" in str(w.message)]) == 1
    assert calls == ["item2"] and res.computed == ["item2"]
    assert res.reused == ["item0", "item1", "item3", "item4"]
    assert (tmp_path / "s" / "item2.npz.corrupt").exists()
    for a, b in zip(res.records, reference.records):
        np.testing.assert_array_equal(a.arrays["attr"], b.arrays["attr"])
        assert a.scalars == b.scalars
    # and a third run reuses everything, silently
    calls.clear()
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        again = run_items(keys, fn, ResultStore(tmp_path / "s"), progress=False)
    assert calls == [] and again.reused == keys


@pytest.mark.parametrize("how", ["truncate", "empty", "flip"])
def test_done_and_keys_do_not_count_a_damaged_item(tmp_path, how):
    store = ResultStore(tmp_path)
    for k in ("a0", "b1"):
        store.save(k, arrays={"x": np.arange(50.0)}, scalars={"k": k})
    _damage(tmp_path / "a0.npz", how)
    fresh = ResultStore(tmp_path)
    from invnb.runs import CorruptItemError

    with pytest.raises(CorruptItemError, match=r"'a0' at .*a0\.npz"):
        fresh.load("a0")  # load names it and leaves the file where it is
    with pytest.warns(UserWarning, match="'a0'"):
        assert not fresh.done("a0")
    assert fresh.done("b1") and fresh.keys() == ["b1"]


def test_a_changed_value_with_intact_zip_fails_the_checksum(tmp_path):
    """Rewrite an item's array through numpy (valid zip, valid CRCs): only the SHA-256 catches it."""
    store = ResultStore(tmp_path)
    store.save("k0", arrays={"x": np.arange(4.0)}, scalars={"s": 1})
    with np.load(tmp_path / "k0.npz") as data:
        entries = {k: data[k] for k in data.files}
    entries["x"] = entries["x"] + 1e-6
    np.savez_compressed(tmp_path / "k0.npz", **entries)
    with pytest.warns(UserWarning, match="SHA-256"):
        assert not ResultStore(tmp_path).done("k0")


def test_an_unreadable_config_of_a_for_config_store_is_rewritten(tmp_path):
    config = {"mask_weight": 0.7}
    store = ResultStore.for_config(tmp_path, config)
    store.save("k", scalars={"v": 1})
    (store.directory / "config.json").write_bytes(b'{"mask_w')
    with pytest.warns(UserWarning, match="config.json"):
        again = ResultStore.for_config(tmp_path, config)
    assert again.done("k")
    assert ResultStore.for_config(tmp_path, config).config == config


def test_items_without_a_checksum_are_still_read(tmp_path):
    """Items written before checksums existed (only zip CRCs) are reused if they read back whole."""
    import json as _json

    np.savez_compressed(
        tmp_path / "old.npz", x=np.arange(3), **{"__scalars__.json": np.frombuffer(_json.dumps({"v": 2}).encode(), np.uint8)}
    )
    rec = ResultStore(tmp_path).get("old")
    assert rec is not None and rec.scalars == {"v": 2}
