"""Image classification data for the deep-network studies: CIFAR-10's python batches and scikit-learn's digits.

Contract: :func:`load` takes the ``--data`` text (``digits`` or ``cifar10:DIR``) and returns an :class:`ImageData`
with float32 train / validation / test splits, each image a flat row, preprocessed as the course does (EECS 182 Sp23
HW2 Q5, Sp25 HW0 Q6): the mean training image (over the training split only) subtracted from every split, no other
scaling. Nothing here imports JAX; scikit-learn is imported only for the digits. Every problem with the input (an
unknown source, a missing folder or file, a file that is not a CIFAR-10 batch) raises
:class:`sim.core.validate.InputError` with parameter ``data`` and one line naming the path and what is wrong.

Sources:

* ``cifar10:DIR`` — the python version of CIFAR-10: ``DIR/batches.meta`` (a pickled dict with ``b"label_names"``),
  ``DIR/data_batch_1`` … ``data_batch_5`` and ``DIR/test_batch`` (pickled dicts with ``b"data"``, uint8
  [N, 3072], each row the red, green and blue 32 × 32 planes, and ``b"labels"``, N integers in 0 … 9). Rows are
  reordered to height × width × channel (the layout the course's loader gives; a fixed permutation of the inputs).
  ``data_batch_1`` is required and further training batches are used in order up to the first one missing (a gap
  followed by a later batch is refused as an incomplete download). The complete folder gives the course's splits:
  49,000 training and 1,000 validation images (the first 49,000 and the next 1,000 of the training batches, in file
  order) and the first 1,000 test images. A folder holding fewer images gets proportionally smaller splits
  (:func:`cifar_split_sizes`): validation = round(N / 50) of the N training-batch images (at least 1), training the
  rest, test = round(M / 10) of the M test images (at least 1).
* ``digits`` — scikit-learn's bundled 8 × 8 digits (1,797 images, 16 grey levels, 10 classes; shipped inside the
  package, so it runs offline): the first 1,497 images (in the file's order) for training, the next 150 for validation
  and the last 150 for testing, each class 13–18 times in either small split.

The pickles are read with an unpickler that builds only dicts, lists, strings, numbers and NumPy arrays (never an
arbitrary object), so a crafted file cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from pathlib import Path

import numpy as np

from sim.core.validate import InputError

SOURCES = ("digits", "cifar10:DIR")
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_META = "batches.meta"
CIFAR_ROW = 3072  # 3 × 32 × 32
CIFAR_CLASSES = 10
CIFAR_FULL = {"train": 49_000, "val": 1_000, "test": 1_000}  # of 50,000 training-batch and 10,000 test images
DIGITS_SPLITS = {"train": 1_497, "val": 150, "test": 150}


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Preprocessed image data: flat float32 rows, the mean training image already subtracted.

    Attributes:
      name: ``digits`` or ``cifar10``.
      source: the ``--data`` text it was loaded from.
      x_train, x_val, x_test: float32 arrays [n, input_dim].
      y_train, y_val, y_test: int32 labels [n] in 0 … num_classes − 1.
      mean_image: the mean training image that was subtracted, float64 [input_dim].
      class_names: one name per class.
      image_shape: the shape of one image (height, width, channels) before flattening.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean_image: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def summary(self) -> dict:
        """Sizes and source, JSON-ready."""
        return {
            "data": self.source,
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "n_train": self.n_train,
            "n_val": int(self.x_val.shape[0]),
            "n_test": int(self.x_test.shape[0]),
        }


def load(spec: str) -> ImageData:
    """The data named by ``spec``: ``digits`` or ``cifar10:DIR`` (module docstring)."""
    text = str(spec).strip()
    if text == "digits":
        return load_digits()
    if text.startswith("cifar10:"):
        folder = text[len("cifar10:") :]
        if not folder:
            raise InputError("data", "cifar10: needs a folder, e.g. --data cifar10:~/data/cifar-10-batches-py")
        return load_cifar10(folder, source=text)
    raise InputError("data", f"must be one of {', '.join(SOURCES)}, got {text!r}")


def preprocess(x_train, x_val, x_test) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Subtract the mean training image (float64 mean over the training rows) from every split; no scaling.

    Returns:
      ``(x_train, x_val, x_test, mean_image)``: the three splits as float32 and the mean image as float64.
    """
    mean = np.mean(np.asarray(x_train, dtype=np.float64), axis=0)
    out = [(np.asarray(x, dtype=np.float64) - mean).astype(np.float32) for x in (x_train, x_val, x_test)]
    return out[0], out[1], out[2], mean


def load_digits() -> ImageData:
    """scikit-learn's 8 × 8 digits: 1,497 / 150 / 150 images in file order, mean training image subtracted."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int32)
    a = DIGITS_SPLITS["train"]
    b = a + DIGITS_SPLITS["val"]
    x_train, x_val, x_test, mean = preprocess(x[:a], x[a:b], x[b:])
    return ImageData(
        name="digits",
        source="digits",
        x_train=x_train,
        y_train=y[:a],
        x_val=x_val,
        y_val=y[a:b],
        x_test=x_test,
        y_test=y[b:],
        mean_image=mean,
        class_names=tuple(str(c) for c in bunch.target_names),
        image_shape=(8, 8, 1),
    )


def cifar_split_sizes(n_train_pool: int, n_test_pool: int) -> dict[str, int]:
    """Training, validation and test sizes for ``n_train_pool`` training-batch and ``n_test_pool`` test images.

    The complete folder (50,000 and 10,000) gives 49,000 / 1,000 / 1,000; fewer images give proportionally smaller
    splits: validation round(N / 50) (at least 1), training N minus that, test round(M / 10) (at least 1).
    """
    if n_train_pool < 2:
        raise InputError("data", f"CIFAR-10 training batches hold {n_train_pool} image(s); need at least 2")
    if n_test_pool < 1:
        raise InputError("data", "the CIFAR-10 test batch holds no image")
    val = max(1, round(n_train_pool / 50))
    return {"train": n_train_pool - val, "val": val, "test": max(1, round(n_test_pool / 10))}


def load_cifar10(folder, *, source: str | None = None) -> ImageData:
    """CIFAR-10's python batches in ``folder`` (module docstring), split and preprocessed as the course does."""
    path = Path(os.path.expanduser(str(folder)))
    source = source or f"cifar10:{folder}"
    if not path.exists():
        raise InputError("data", f"{path} does not exist (expected CIFAR-10's python batches there)")
    if not path.is_dir():
        raise InputError("data", f"{path} is not a folder (expected CIFAR-10's python batches in it)")
    missing = [name for name in (CIFAR_META, CIFAR_TRAIN_BATCHES[0], CIFAR_TEST_BATCH) if not (path / name).is_file()]
    if missing:
        raise InputError(
            "data",
            f"{path} has no {', '.join(missing)} (CIFAR-10 python batches: data_batch_1 … data_batch_5, "
            f"test_batch, batches.meta)",
        )
    present = [name for name in CIFAR_TRAIN_BATCHES if (path / name).is_file()]
    used = []
    for name in CIFAR_TRAIN_BATCHES:
        if name not in present:
            break
        used.append(name)
    if len(used) < len(present):
        gap = CIFAR_TRAIN_BATCHES[len(used)]
        raise InputError("data", f"{path} has no {gap} but has a later training batch (an incomplete download?)")
    class_names = _read_meta(path / CIFAR_META)
    batches = [_read_batch(path / name) for name in used]
    x_pool = np.concatenate([x for x, _ in batches])
    y_pool = np.concatenate([y for _, y in batches])
    x_test_pool, y_test_pool = _read_batch(path / CIFAR_TEST_BATCH)
    sizes = cifar_split_sizes(len(y_pool), len(y_test_pool))
    a, b, t = sizes["train"], sizes["train"] + sizes["val"], sizes["test"]
    x_train, x_val, x_test, mean = preprocess(x_pool[:a], x_pool[a:b], x_test_pool[:t])
    return ImageData(
        name="cifar10",
        source=source,
        x_train=x_train,
        y_train=y_pool[:a],
        x_val=x_val,
        y_val=y_pool[a:b],
        x_test=x_test,
        y_test=y_test_pool[:t],
        mean_image=mean,
        class_names=class_names,
        image_shape=(32, 32, 3),
    )


# --------------------------------------------------------------------------------------------------------------
# Implementation

_ALLOWED = {  # what a CIFAR-10 pickle (written by Python 2's cPickle or by NumPy 1 / 2) needs to rebuild its arrays
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(file: Path) -> dict:
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise InputError("data", f"cannot read {file}: {err.strerror or err}") from None
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # truncated, not a pickle, or an object we refuse
        raise InputError("data", f"{file} is not a CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise InputError("data", f"{file} is not a CIFAR-10 python batch (holds a {type(obj).__name__}, not a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch's images [N, 3072] (height × width × channel order, uint8) and labels [N] (int32)."""
    d = _unpickle(file)
    for key in ("data", "labels"):
        if key not in d:
            raise InputError("data", f"{file} has no {key!r} entry (a CIFAR-10 batch holds b'data' and b'labels')")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_ROW:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise InputError("data", f"{file}: 'data' must be uint8 [N, {CIFAR_ROW}], got {dtype} {shape}")
    try:
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError("data", f"{file}: 'labels' must be a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise InputError("data", f"{file}: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= CIFAR_CLASSES):
        bad = f"{labels.min()} … {labels.max()}"
        raise InputError("data", f"{file}: labels must lie in 0 … {CIFAR_CLASSES - 1}, got {bad}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(-1, CIFAR_ROW)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def _read_meta(file: Path) -> tuple[str, ...]:
    d = _unpickle(file)
    names = d.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != CIFAR_CLASSES:
        raise InputError("data", f"{file}: 'label_names' must list {CIFAR_CLASSES} class names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)
