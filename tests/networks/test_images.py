"""The image loaders: CIFAR-10's python batches (files in exactly that format, written here) and scikit-learn's digits.

Expected values are computed here from the arrays the test writes (NumPy, float64), never by the loader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import images

ROW = 3072


def _batch(rng, n: int, *, offset: int = 0) -> dict:
    data = rng.integers(0, 256, size=(n, ROW), dtype=np.uint8)
    labels = [int(v) for v in (np.arange(n) + offset) % 10]
    return {b"batch_label": b"training batch", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}


def _write(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def write_cifar(folder, *, per_batch=(20, 20, 20, 20, 20), test=30, seed=0) -> dict:
    """CIFAR-10 python batches with random pixels; returns the raw arrays written (channel-major rows)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"class{i}".encode() for i in range(10)]
    _write(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": per_batch[0], b"num_vis": ROW})
    written = {"train": [], "labels": []}
    for i, n in enumerate(per_batch):
        b = _batch(rng, n, offset=i)
        _write(folder / f"data_batch_{i + 1}", b)
        written["train"].append(b[b"data"])
        written["labels"] += b[b"labels"]
    t = _batch(rng, test, offset=3)
    _write(folder / "test_batch", t, protocol=4)
    written["test"], written["test_labels"] = t[b"data"], t[b"labels"]
    written["train"] = np.concatenate(written["train"])
    return written


def _hwc(rows: np.ndarray) -> np.ndarray:
    """Channel-major rows (R plane, G plane, B plane) → height × width × channel rows, by explicit indexing."""
    out = np.empty_like(rows)
    for c in range(3):
        for pix in range(1024):
            out[:, pix * 3 + c] = rows[:, c * 1024 + pix]
    return out


def test_cifar_loader_shapes_labels_splits_and_mean_subtraction(tmp_path):
    raw = write_cifar(tmp_path / "cifar")
    d = images.load(f"cifar10:{tmp_path / 'cifar'}")
    # 100 training-batch images: validation round(100 / 50) = 2, training 98; 30 test images: round(30 / 10) = 3
    assert (d.x_train.shape, d.x_val.shape, d.x_test.shape) == ((98, ROW), (2, ROW), (3, ROW))
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.input_dim == ROW and d.num_classes == 10 and d.class_names[3] == "class3"
    assert d.y_train.tolist() == raw["labels"][:98] and d.y_val.tolist() == raw["labels"][98:100]
    assert d.y_test.tolist() == raw["test_labels"][:3]
    hwc = _hwc(raw["train"]).astype(np.float64)
    mean = hwc[:98].mean(axis=0)  # the mean of the training split only
    np.testing.assert_allclose(d.mean_image, mean, rtol=0, atol=1e-9)
    # float32 storage of values up to 255 in magnitude: absolute error <= 255 * 2^-24 ≈ 1.5e-5
    np.testing.assert_allclose(d.x_train, hwc[:98] - mean, rtol=0, atol=2e-5)
    np.testing.assert_allclose(d.x_val, hwc[98:100] - mean, rtol=0, atol=2e-5)
    np.testing.assert_allclose(d.x_test, _hwc(raw["test"][:3]).astype(np.float64) - mean, rtol=0, atol=2e-5)
    # no scaling: the pixel spread stays in the 0–255 range's units
    assert 50 < float(np.std(d.x_train)) < 100


def test_cifar_split_sizes_of_the_complete_folder_and_of_fewer_images():
    assert images.cifar_split_sizes(50_000, 10_000) == {"train": 49_000, "val": 1_000, "test": 1_000}
    assert images.cifar_split_sizes(10_000, 10_000) == {"train": 9_800, "val": 200, "test": 1_000}
    assert images.cifar_split_sizes(60, 5) == {"train": 59, "val": 1, "test": 1}


def test_cifar_uses_the_training_batches_up_to_the_first_missing_one(tmp_path):
    write_cifar(tmp_path / "c", per_batch=(30, 20))
    d = images.load_cifar10(tmp_path / "c")
    assert d.x_train.shape[0] + d.x_val.shape[0] == 50 and d.x_val.shape[0] == 1


def _error(spec) -> InputError:
    with pytest.raises(InputError) as info:
        images.load(spec)
    assert info.value.param == "data" and "\n" not in str(info.value)
    return info.value


def test_cifar_missing_and_malformed_folders_are_one_line_naming_the_path(tmp_path):
    assert "does not exist" in str(_error(f"cifar10:{tmp_path / 'nowhere'}"))
    (tmp_path / "file").write_text("x")
    assert "not a folder" in str(_error(f"cifar10:{tmp_path / 'file'}"))
    folder = tmp_path / "c"
    write_cifar(folder)
    (folder / "test_batch").unlink()
    err = _error(f"cifar10:{folder}")
    assert str(folder) in str(err) and "test_batch" in str(err)

    folder = tmp_path / "gap"
    write_cifar(folder)
    (folder / "data_batch_2").unlink()
    assert "data_batch_2" in str(_error(f"cifar10:{folder}"))

    folder = tmp_path / "corrupt"
    write_cifar(folder)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])  # truncated
    err = _error(f"cifar10:{folder}")
    assert str(folder / "data_batch_3") in str(err) and "not a CIFAR-10 python batch" in str(err)

    folder = tmp_path / "shape"
    write_cifar(folder)
    _write(folder / "data_batch_1", {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]})
    assert "uint8 [N, 3072]" in str(_error(f"cifar10:{folder}"))

    folder = tmp_path / "labels"
    write_cifar(folder)
    _write(folder / "data_batch_1", {b"data": np.zeros((2, ROW), np.uint8), b"labels": [0, 10]})
    assert "0 … 9" in str(_error(f"cifar10:{folder}"))

    folder = tmp_path / "nolabels"
    write_cifar(folder)
    _write(folder / "data_batch_1", {b"data": np.zeros((2, ROW), np.uint8)})
    assert "'labels'" in str(_error(f"cifar10:{folder}"))


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_a_pickle_that_would_build_another_object_is_refused(tmp_path):
    folder = tmp_path / "evil"
    write_cifar(folder)
    _write(folder / "batches.meta", {b"label_names": _Evil()})
    assert "refusing" in str(_error(f"cifar10:{folder}"))


def test_digits_splits_and_preprocessing():
    from sklearn.datasets import load_digits

    raw = load_digits()
    d = images.load("digits")
    assert (d.x_train.shape, d.x_val.shape, d.x_test.shape) == ((1497, 64), (150, 64), (150, 64))
    assert d.num_classes == 10 and d.image_shape == (8, 8, 1)
    mean = raw.data[:1497].mean(axis=0)
    np.testing.assert_allclose(d.x_train, raw.data[:1497] - mean, rtol=0, atol=1e-5)  # float32 of values <= 16
    np.testing.assert_allclose(d.x_test, raw.data[1647:] - mean, rtol=0, atol=1e-5)
    assert d.y_val.tolist() == raw.target[1497:1647].tolist()
    assert abs(float(d.x_train.astype(np.float64).mean())) < 1e-6


def test_unknown_source_is_refused():
    assert "digits" in str(_error("mnist"))
    assert "folder" in str(_error("cifar10:"))
