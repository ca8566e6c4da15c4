"""Tests for ember.datasets: IDX I/O, downloads against a local HTTP server, loaders, helpers."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from ember.datasets import (
    DatasetUnavailableError,
    Standardizer,
    digits,
    ember_cache_dir,
    fashion_mnist,
    get_file,
    mnist,
    read_idx,
    synthetic,
    to_categorical,
    train_test_split,
    write_idx,
)

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
STD_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_idx_round_trip(tmp_path, dtype, suffix, shape):
    original = _sample(dtype, shape)
    path = write_idx(tmp_path / f"data-idx{len(shape)}{suffix}", original)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, original)
    assert loaded.flags.writeable
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_layout_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "x", np.array([[1, 2, 3]], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3])


def test_idx_gzip_detected_by_magic_not_name(tmp_path):
    data = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = write_idx(tmp_path / "no-extension", data, compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), data)
    # And a raw file misleadingly named .gz still loads.
    path = write_idx(tmp_path / "raw.gz", data, compress=False)
    np.testing.assert_array_equal(read_idx(path), data)


def test_idx_reads_file_objects(tmp_path):
    data = _sample("float64", (4, 2))
    for compress in (True, False):
        path = write_idx(tmp_path / "f", data, compress=compress)
        with open(path, "rb") as f:
            np.testing.assert_array_equal(read_idx(f), data)
        np.testing.assert_array_equal(read_idx(io.BytesIO(path.read_bytes())), data)


def test_idx_truncated_raw_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[: 16 + 1000])
    with pytest.raises(ValueError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "expected 7840 bytes" in msg and "found 1000" in msg
    assert "truncated" in msg and "download again" in msg


def test_idx_truncated_gzip_payload_and_stream(tmp_path):
    # A well-formed gzip whose content is short.
    full = write_idx(tmp_path / "full", np.ones((5, 4), np.float32)).read_bytes()
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(full[:-8]))
    with pytest.raises(ValueError, match=r"expected 80 bytes.*found 72"):
        read_idx(short)
    # A gzip stream cut off in the middle (interrupted download).
    cut = tmp_path / "cut.gz"
    blob = gzip.compress(full)
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*(gzip stream|truncated)"):
        read_idx(cut)


def test_idx_trailing_bytes_rejected(tmp_path):
    path = write_idx(tmp_path / "x", np.arange(4, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(ValueError, match="expected 4 bytes.*found 8.*longer than its header"):
        read_idx(path)


def test_idx_bad_magic_and_type_code(tmp_path):
    html = tmp_path / "page.gz"
    html.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError) as info:
        read_idx(html)
    assert "page.gz" in str(info.value) and "00 00" in str(info.value)

    bad_code = tmp_path / "code"
    bad_code.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(bad_code)

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="4-byte IDX header"):
        read_idx(empty)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64.*astype"):
        write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))


# --------------------------------------------------------------------- local HTTP mirror


class _Mirror:
    """A real HTTP server on 127.0.0.1 serving one directory and counting requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    server = _Mirror(root)
    yield server
    server.close()


@pytest.fixture
def dead_url():
    """URL of a port nothing listens on (bound then closed), so connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_mnist(mirror, monkeypatch, tmp_path):
    """Serve a tiny MNIST-shaped dataset and point ember.datasets.mnist at it."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.array([5, 6, 7, 8], dtype=np.uint8),
    }
    hashes = {}
    for key, stem in STD_FILES.items():
        path = write_idx(mirror.root / f"{stem}.gz", arrays[key])
        hashes[path.name] = _sha(path)
    monkeypatch.setattr(mnist, "MIRRORS", [mirror.url])
    monkeypatch.setattr(mnist, "SHA256", hashes)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", [str(tmp_path / "no-system-dir")])
    return arrays


def _check_arrays(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, key in [(x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test")]:
        np.testing.assert_array_equal(got, arrays[key])
        assert got.dtype == np.uint8
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# -------------------------------------------------------------------------- get_file


def test_get_file_downloads_then_uses_cache(mirror, tmp_path):
    payload = mirror.root / "blob.bin"
    payload.write_bytes(b"x" * 5000)
    cache = tmp_path / "cache"
    path = get_file("blob.bin", [mirror.url], _sha(payload), cache_dir=cache)
    assert path == cache / "blob.bin" and path.read_bytes() == b"x" * 5000
    assert len(mirror.requests) == 1
    assert get_file("blob.bin", [mirror.url], _sha(payload), cache_dir=cache) == path
    assert len(mirror.requests) == 1  # served from the cache
    assert _leftovers(cache) == ["blob.bin"]


def test_get_file_accepts_full_url_and_redownloads_bad_cache(mirror, tmp_path):
    payload = mirror.root / "blob.bin"
    payload.write_bytes(b"good data")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"stale or damaged")
    path = get_file("blob.bin", mirror.url + "blob.bin", _sha(payload), cache_dir=cache)
    assert path.read_bytes() == b"good data"
    assert mirror.requests == ["/blob.bin"]


def test_get_file_hash_mismatch_leaves_nothing(mirror, tmp_path):
    (mirror.root / "blob.bin").write_bytes(b"tampered")
    cache = tmp_path / "cache"
    wrong = "0" * 64
    actual = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(DatasetUnavailableError) as info:
        get_file("blob.bin", [mirror.url], wrong, cache_dir=cache)
    msg = str(info.value)
    assert wrong in msg and actual in msg and "mismatch" in msg
    assert _leftovers(cache) == []  # neither the file nor a temp file


def test_get_file_falls_through_dead_and_missing_mirrors(mirror, dead_url, tmp_path):
    payload = mirror.root / "blob.bin"
    payload.write_bytes(b"payload")
    path = get_file(
        "blob.bin", [dead_url, mirror.url + "nope/", mirror.url], _sha(payload), tmp_path / "c"
    )
    assert path.read_bytes() == b"payload"
    assert mirror.requests == ["/nope/blob.bin", "/blob.bin"]


def test_get_file_all_mirrors_down(dead_url, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        get_file("blob.bin", [dead_url, dead_url + "x/"], "0" * 64, cache_dir=cache)
    err = info.value
    assert isinstance(err, OSError)
    assert str(cache) in str(err) and dead_url + "blob.bin" in str(err)
    assert len(err.failures) == 2
    assert _leftovers(cache) == []


def test_ember_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "eh"))
    assert ember_cache_dir() == tmp_path / "eh" / "datasets"
    monkeypatch.delenv("EMBER_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ember_cache_dir() == tmp_path / "home" / ".ember" / "datasets"


# ------------------------------------------------------------------ mnist-style loaders


def test_load_data_downloads_into_cache_then_reuses_it(fake_mnist, mirror, tmp_path):
    cache = tmp_path / "cache"
    _check_arrays(mnist.load_data(cache_dir=cache), fake_mnist)
    assert len(mirror.requests) == 4
    assert sorted(_leftovers(cache / "mnist")) == sorted(f"{s}.gz" for s in STD_FILES.values())
    _check_arrays(mnist.load_data(cache_dir=cache), fake_mnist)
    assert len(mirror.requests) == 4  # no new requests


def test_load_data_default_cache_follows_ember_home(fake_mnist, monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    _check_arrays(mnist.load_data(), fake_mnist)
    assert (tmp_path / "home" / "datasets" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_load_data_first_mirror_down(fake_mnist, mirror, dead_url, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "MIRRORS", [dead_url, mirror.url])
    _check_arrays(mnist.load_data(cache_dir=tmp_path / "cache"), fake_mnist)
    assert len(mirror.requests) == 4


def test_load_data_all_mirrors_down(fake_mnist, dead_url, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "MIRRORS", [dead_url])
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache)
    msg = str(info.value)
    assert str(cache / "mnist") in msg and "path=" in msg
    assert all(f"{stem}.gz" in msg for stem in STD_FILES.values())
    assert dead_url in msg


def test_load_data_wrong_hash_keeps_cache_clean(fake_mnist, mirror, monkeypatch, tmp_path):
    bad = dict(mnist.SHA256)
    bad["t10k-labels-idx1-ubyte.gz"] = "f" * 64
    monkeypatch.setattr(mnist, "SHA256", bad)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache)
    actual = _sha(mirror.root / "t10k-labels-idx1-ubyte.gz")
    assert "f" * 64 in str(info.value) and actual in str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" not in _leftovers(cache / "mnist")
    assert not [n for n in _leftovers(cache / "mnist") if n.endswith(".part")]


def test_load_data_offline_without_files(fake_mnist, mirror, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache, download=False)
    assert str(cache / "mnist") in str(info.value) and "download=False" in str(info.value)
    assert mirror.requests == []


def test_load_data_explicit_path_no_fallback(fake_mnist, mirror, tmp_path):
    cache = tmp_path / "cache"
    mnist.load_data(cache_dir=cache)  # the cache is now complete...
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetUnavailableError) as info:  # ...but path= is authoritative
        mnist.load_data(path=empty, cache_dir=cache)
    assert str(empty) in str(info.value) and "train-images-idx3-ubyte.gz" in str(info.value)


def test_load_data_path_with_ungzipped_files(fake_mnist, mirror, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for key, stem in STD_FILES.items():
        write_idx(local / stem, fake_mnist[key])
    _check_arrays(mnist.load_data(path=local, download=False), fake_mnist)
    assert mirror.requests == []


def test_load_data_uses_system_dir(fake_mnist, mirror, monkeypatch, tmp_path):
    system = tmp_path / "usr-share"
    system.mkdir()
    for key, stem in STD_FILES.items():
        write_idx(system / f"{stem}.gz", fake_mnist[key])
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", [str(system)])
    _check_arrays(mnist.load_data(cache_dir=tmp_path / "cache", download=False), fake_mnist)
    assert mirror.requests == []


def test_load_data_repairs_damaged_cache(fake_mnist, mirror, tmp_path):
    cache = tmp_path / "cache"
    mnist.load_data(cache_dir=cache)
    damaged = cache / "mnist" / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        mnist.load_data(cache_dir=cache, download=False)
    _check_arrays(mnist.load_data(cache_dir=cache), fake_mnist)
    assert mirror.requests.count("/train-images-idx3-ubyte.gz") == 2


def test_load_data_rejects_mismatched_files(fake_mnist, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for key, stem in STD_FILES.items():
        write_idx(local / f"{stem}.gz", fake_mnist[key])
    write_idx(local / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="4 images but t10k-labels-idx1-ubyte.gz holds 3"):
        mnist.load_data(path=local)


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_system_dir(tmp_path):
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
        cache_dir=tmp_path / "empty-cache", download=False
    )
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert fashion_mnist.CLASS_NAMES[y_train[0]] == "Ankle boot"
    assert 0 < x_train.mean() < 255


# ----------------------------------------------------------------------------- digits


def test_digits_all():
    x, y = digits.load_all()
    assert x.shape == (1797, 8, 8) and y.shape == (1797,)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert x.min() == 0 and x.max() == 16
    assert sorted(set(y.tolist())) == list(range(10))
    assert y[:10].tolist() == list(range(10))


def test_digits_split_is_deterministic_and_stratified():
    (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.2, seed=0)
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    (x2, y2), (x3, y3) = digits.load_data(test_split=0.2, seed=0)
    np.testing.assert_array_equal(x_train, x2)
    np.testing.assert_array_equal(y_test, y3)
    (_, y_other), _ = digits.load_data(test_split=0.2, seed=1)
    assert not np.array_equal(y_train, y_other)
    _, y_all = digits.load_all()
    share = np.bincount(y_all) * 0.2
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - share) <= 1)
    # Train and test together are exactly the full set.
    x_all, _ = digits.load_all()
    both = np.concatenate([x_train, x_test]).reshape(1797, -1)
    assert sorted(map(bytes, both)) == sorted(map(bytes, x_all.reshape(1797, -1)))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True])
def test_digits_bad_split(bad):
    with pytest.raises(ValueError, match="test_split"):
        digits.load_data(test_split=bad)


# -------------------------------------------------------------------------- synthetic

GENERATORS = [synthetic.blobs, synthetic.xor, synthetic.circles, synthetic.spirals]


@pytest.mark.parametrize("gen", GENERATORS)
def test_synthetic_shapes_seeds_and_balance(gen):
    x, y = gen(n_samples=200, seed=3)
    assert x.shape == (200, 2) and x.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100]
    x2, y2 = gen(n_samples=200, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = gen(n_samples=200, seed=4)
    assert not np.array_equal(x, x3)
    assert np.all(np.isfinite(x))
    x_odd, y_odd = gen(n_samples=7, seed=0)
    assert x_odd.shape == (7, 2) and abs(int(y_odd.sum()) * 2 - 7) == 1


@pytest.mark.parametrize("gen", GENERATORS)
def test_synthetic_validates(gen):
    with pytest.raises(ValueError, match="n_samples must be > 0"):
        gen(n_samples=0)
    with pytest.raises(ValueError, match="n_samples must be an int"):
        gen(n_samples=10.5)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        gen(noise=-1)


def test_synthetic_geometry():
    x, y = synthetic.xor(n_samples=400, noise=0.0)
    assert np.all((x[:, 0] * x[:, 1] < 0) == (y == 1))
    x, y = synthetic.circles(n_samples=100, noise=0.0, factor=0.3)
    r = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.3, atol=1e-6)
    x, y = synthetic.blobs(n_samples=300, noise=0.5, centers=((0, 0), (5, 5), (-5, 5)))
    assert np.bincount(y).tolist() == [100, 100, 100]
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [5, 5], atol=0.2)
    x, y = synthetic.spirals(n_samples=200, noise=0.0)
    assert np.hypot(x[:, 0], x[:, 1]).max() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="factor"):
        synthetic.circles(factor=1.5)
    with pytest.raises(ValueError, match="centers"):
        synthetic.blobs(centers=(1, 2, 3))
    with pytest.raises(ValueError, match="turns"):
        synthetic.spirals(turns=0)


# ------------------------------------------------------------------------------ utils


def test_to_categorical_keras_behaviour():
    out = to_categorical([0, 2, 1])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert to_categorical(np.array([[1], [0]]), num_classes=4).shape == (2, 4)
    assert to_categorical(np.zeros((2, 3), int), num_classes=5).shape == (2, 3, 5)
    assert to_categorical([1.0, 0.0], dtype="int64").dtype == np.int64
    assert to_categorical([], num_classes=3).shape == (0, 3)


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\].*y\[2\] = 5"):
        to_categorical([0, 1, 5], num_classes=3)
    with pytest.raises(ValueError, match=r"y\[1\] = -1 .*negative"):
        to_categorical([0, -1])
    with pytest.raises(ValueError, match=r"y\[1\] = 1\.5"):
        to_categorical([0.0, 1.5])
    with pytest.raises(ValueError, match=r"y\[\(1, 0\)\] = 7"):
        to_categorical([[0, 1], [7, 0]], num_classes=3)
    with pytest.raises(ValueError, match="empty"):
        to_categorical([])
    with pytest.raises(TypeError, match="integer class labels"):
        to_categorical(["a", "b"])


def test_standardizer():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(5, 3, 1000), np.full(1000, 0.1), rng.normal(-2, 0.5, 1000)])
    s = Standardizer()
    z = s.fit_transform(x)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), [1, 0, 1], atol=1e-9)
    assert s.std_[1] == 1.0 and np.all(z[:, 1] == 0)  # constant feature: no division by 0
    np.testing.assert_allclose(s.inverse_transform(z), x)
    z32 = s.transform(x.astype(np.float32))
    assert z32.dtype == np.float32
    assert s.transform(np.arange(6, dtype=np.uint8).reshape(2, 3)).dtype == np.float32
    images = rng.integers(0, 256, (50, 4, 4)).astype(np.uint8)
    assert Standardizer().fit(images).mean_.shape == (4, 4)
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(x)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        s.transform(np.zeros((4, 2)))


def test_train_test_split_basics():
    x = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    x_train, x_test, y_train, y_test = train_test_split(x, y)
    assert x_train.shape == (15, 2) and x_test.shape == (5, 2)
    np.testing.assert_array_equal(x_train[:, 0] // 2, y_train)  # rows stay aligned
    np.testing.assert_array_equal(x_test[:, 0] // 2, y_test)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(20))
    again = train_test_split(x, y)
    np.testing.assert_array_equal(again[3], y_test)
    assert not np.array_equal(train_test_split(x, y, seed=1)[3], y_test)
    a, b = train_test_split(y, test_size=3, shuffle=False)
    assert a.tolist() == list(range(17)) and b.tolist() == [17, 18, 19]
    assert len(train_test_split(y, test_size=0.33)[1]) == 7  # ceil(6.6)


def test_train_test_split_stratify():
    y = np.array([0] * 80 + [1] * 20)
    y_train, y_test = train_test_split(y, test_size=0.25, stratify=y)
    assert np.bincount(y_test).tolist() == [20, 5]
    assert np.bincount(y_train).tolist() == [60, 15]
    with pytest.raises(ValueError, match="class 2 has only 1 sample"):
        train_test_split(np.array([0, 0, 1, 1, 2]), stratify=np.array([0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="shuffle"):
        train_test_split(y, stratify=y, shuffle=False)


def test_train_test_split_errors():
    with pytest.raises(ValueError, match=r"sizes \[10, 9\]"):
        train_test_split(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="at least one array"):
        train_test_split()
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        train_test_split(np.zeros(10), test_size=1.5)
    with pytest.raises(ValueError, match="between 1 and 9"):
        train_test_split(np.zeros(10), test_size=10)
    with pytest.raises(ValueError, match="stratify has 3 labels"):
        train_test_split(np.zeros(10), stratify=[0, 1, 0])


def test_public_names_exist():
    import ember.datasets as ds

    for name in ds.__all__:
        assert hasattr(ds, name), name
