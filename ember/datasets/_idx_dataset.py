"""Shared loader for MNIST-style datasets: four IDX files found locally or downloaded.

Search order, first hit wins:

1. ``path=`` if given (and nothing else: a wrong ``path`` should fail loudly, not be
   papered over by a cached copy);
2. the cache, ``<cache_dir>/<subdir>``;
3. system directories such as ``/usr/share/datasets/<subdir>`` (Debian's ``dataset-*``
   packages put the files there);
4. a download from the mirrors into the cache, verified by SHA-256.

Local files are not hash-checked (distributions re-compress them, which changes the
hash but not the data); :func:`~ember.datasets._idx.read_idx` still validates their
structure, and the arrays are checked for the expected shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._download import DatasetUnavailableError, ember_cache_dir, get_file
from ._idx import read_idx

# Split part -> standard file stem (the download name is the stem + ".gz").
FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class IdxDatasetSpec:
    """Where a dataset of the four standard IDX files lives and how to check it."""

    name: str
    subdir: str
    mirrors: Sequence[str]
    sha256: Mapping[str, str]
    system_dirs: Sequence[str | os.PathLike] = ()
    image_shape: tuple[int, ...] = (28, 28)
    num_classes: int = 10


def _candidates(stem: str) -> list[str]:
    """Names a file is found under: the .gz, the un-gzipped name, and the dotted variant
    (``train-images.idx3-ubyte``) that some unpackers and mirrors produce."""
    dotted = stem.replace("-idx", ".idx")
    return [f"{stem}.gz", stem, f"{dotted}.gz", dotted]


def _find_all(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Return the files found in ``directory`` per split part, and the missing stems."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, stem in FILES.items():
        for name in _candidates(stem):
            if (directory / name).is_file():
                found[key] = directory / name
                break
        else:
            missing.append(stem)
    return found, missing


def _load_arrays(spec: IdxDatasetSpec, files: Mapping[str, Path]) -> Arrays:
    arrays = {key: read_idx(files[key]) for key in FILES}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xf, yf = files[f"x_{split}"], files[f"y_{split}"]
        if (
            x.dtype != np.uint8
            or x.ndim != 1 + len(spec.image_shape)
            or (x.shape[1:] != spec.image_shape)
        ):
            raise ValueError(
                f"{xf}: expected {spec.name} images as uint8 of shape "
                f"(N, {', '.join(map(str, spec.image_shape))}), found {x.dtype} of shape "
                f"{x.shape}; check that the right file is under this name"
            )
        if y.dtype != np.uint8 or y.ndim != 1:
            raise ValueError(
                f"{yf}: expected {spec.name} labels as uint8 of shape (N,), found {y.dtype} "
                f"of shape {y.shape}; check that the right file is under this name"
            )
        if len(x) != len(y):
            raise ValueError(
                f"{spec.name} {split} split: {xf.name} holds {len(x)} images but {yf.name} "
                f"holds {len(y)} labels; the files come from different datasets or one is "
                "damaged — replace both"
            )
        if y.size and int(y.max()) >= spec.num_classes:
            raise ValueError(
                f"{yf}: labels must be below {spec.num_classes}, found {int(y.max())}; "
                f"the file is not a {spec.name} label file"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _manual_fix(spec: IdxDatasetSpec, cache: Path) -> str:
    listing = "\n".join(
        f"  {stem}.gz  (SHA-256 {spec.sha256.get(stem + '.gz', '?')})" for stem in FILES.values()
    )
    mirrors = ", ".join(spec.mirrors) or "(none configured)"
    return (
        f"To fix it, get these files (mirrors: {mirrors}):\n{listing}\n"
        f"and put them in {cache}, or put them in any directory and call "
        f"load_data(path='that/directory'). Un-gzipped copies under the same names without "
        ".gz work too."
    )


def load_idx_dataset(
    spec: IdxDatasetSpec,
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Arrays:
    """Find, fetch if needed, and load the four IDX files of ``spec`` (see module docs)."""
    cache = (Path(cache_dir).expanduser() if cache_dir is not None else ember_cache_dir()) / (
        spec.subdir
    )

    if path is not None:
        directory = Path(path).expanduser()
        found, missing = _find_all(directory)
        if missing:
            raise DatasetUnavailableError(
                f"{spec.name}: {directory} is missing {', '.join(s + '.gz' for s in missing)} "
                f"(un-gzipped names were accepted too). {_manual_fix(spec, directory)} "
                "Or leave out path= to use the cache and download automatically."
            )
        return _load_arrays(spec, found)

    cached, cache_missing = _find_all(cache)
    cache_damaged = False
    if not cache_missing:
        try:
            return _load_arrays(spec, cached)
        except ValueError:
            if not download:
                raise
            # A damaged cached file fails its hash in get_file and is fetched again below.
            cache_damaged = True

    for system_dir in spec.system_dirs:
        found, missing = _find_all(Path(system_dir))
        if not missing:
            return _load_arrays(spec, found)

    looked = [str(cache), *map(str, spec.system_dirs)]
    if not download:
        raise DatasetUnavailableError(
            f"{spec.name} files not found (looked in {', '.join(looked)}) and download=False. "
            f"{_manual_fix(spec, cache)} Or call load_data(download=True)."
        )

    files: dict[str, Path] = {}
    failures: list[str] = []
    for key, stem in FILES.items():
        if key in cached and not cache_damaged:
            files[key] = cached[key]
            continue
        fname = f"{stem}.gz"
        try:
            files[key] = get_file(fname, list(spec.mirrors), spec.sha256[fname], cache)
        except DatasetUnavailableError as err:
            failures.append(f"{fname}:\n" + "\n".join(err.failures))
    if failures:
        raise DatasetUnavailableError(
            f"{spec.name} is not available: not found in {', '.join(looked)}, and the download "
            "failed:\n" + "\n".join(failures) + "\n" + _manual_fix(spec, cache)
        )
    return _load_arrays(spec, files)
