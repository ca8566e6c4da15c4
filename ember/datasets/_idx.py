"""Reader and writer for the IDX format used by MNIST, Fashion-MNIST and their relatives.

An IDX file is a tiny header followed by one flat array:

* 2 zero bytes (the "magic" prefix),
* 1 byte type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
  0x0E float64),
* 1 byte number of dimensions ``ndim``,
* ``ndim`` big-endian unsigned 32-bit sizes,
* the data, row-major, multi-byte types big-endian.

Files are often distributed gzip-compressed; :func:`read_idx` recognises gzip by its magic
bytes (``1f 8b``) rather than trusting the file name, so a renamed file still loads.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["read_idx", "write_idx", "IDX_DTYPES"]

# Type code -> big-endian on-disk dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Native kind/size -> type code, for writing.
_CODE_FOR: dict[tuple[str, int], int] = {(dt.kind, dt.itemsize): c for c, dt in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
_SUPPORTED = "uint8, int8, int16, int32, float32, float64"

PathOrFile = str | os.PathLike | BinaryIO


def _describe(source: object) -> str:
    """Name a path or file object for error messages."""
    if isinstance(source, str | os.PathLike):
        return str(Path(source))
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str | os.PathLike) else repr(source)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read exactly ``n`` bytes unless the stream ends first (short reads are legal)."""
    chunks = []
    remaining = n
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _fill(stream: BinaryIO, buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the stream ends; return bytes read."""
    filled = 0
    total = len(buffer)
    while filled < total:
        n = stream.readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def _parse(stream: BinaryIO, name: str) -> np.ndarray:
    header = _read_exact(stream, 4)
    if len(header) < 4:
        raise ValueError(
            f"{name}: expected a 4-byte IDX header, found {len(header)} bytes — the file is "
            "empty or truncated; delete it and download again"
        )
    if header[0] != 0 or header[1] != 0:
        raise ValueError(
            f"{name}: not an IDX file — expected the first two bytes to be 00 00, found "
            f"{header[:2].hex(' ')}; check that this is an IDX file (for example "
            "'train-images-idx3-ubyte' or its .gz) and not an HTML error page or another format"
        )
    code, ndim = header[2], header[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(
            f"{name}: unknown IDX type code 0x{code:02X}; expected one of {known} "
            f"({_SUPPORTED}) — the file is corrupted or not an IDX file"
        )
    dims_raw = _read_exact(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise ValueError(
            f"{name}: header declares {ndim} dimensions ({4 * ndim} bytes of sizes) but only "
            f"{len(dims_raw)} bytes follow — the file is truncated; delete it and download again"
        )
    shape = struct.unpack(f">{ndim}I", dims_raw)
    disk_dtype = IDX_DTYPES[code]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    expected = count * disk_dtype.itemsize

    data = np.empty(count, dtype=disk_dtype)
    found = _fill(stream, memoryview(data).cast("B"))
    if found == expected:
        # Count trailing bytes too: extra data means the header lies about the shape.
        extra = len(stream.read(1 << 16))
        if extra:
            while chunk := stream.read(1 << 20):
                extra += len(chunk)
            found += extra
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise ValueError(
            f"{name}: expected {expected} bytes of data for a {disk_dtype.name} array of shape "
            f"{shape}, found {found} — the file is {what} or corrupted; delete it and download "
            "again"
        )
    data = data.reshape(shape)
    if not disk_dtype.isnative:
        # Callers expect native byte order; swapping in place avoids a second copy.
        data.byteswap(inplace=True)
        data = data.view(disk_dtype.newbyteorder("="))
    return data


def read_idx(path_or_fileobj: PathOrFile) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Args:
        path_or_fileobj: A path, or a binary file object opened for reading.

    Returns:
        A writable array in native byte order with the dtype and shape stored in the file.

    Raises:
        ValueError: If the file is not IDX, has an unknown type code, or its payload length
            does not match the shape in its header (truncated or corrupted download).

    Example:
        >>> x = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> x.shape, x.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    name = _describe(path_or_fileobj)
    if isinstance(path_or_fileobj, str | os.PathLike):
        with open(path_or_fileobj, "rb") as f:
            return _read_stream(f, name)
    return _read_stream(path_or_fileobj, name)


def _read_stream(f: BinaryIO, name: str) -> np.ndarray:
    if f.seekable():
        start = f.tell()
        magic = _read_exact(f, 2)
        f.seek(start)
    else:
        # Pipes and sockets cannot rewind, so buffer them to peek at the magic bytes.
        f = io.BytesIO(f.read())
        magic = f.getvalue()[:2]
    if magic != _GZIP_MAGIC:
        return _parse(f, name)
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as gz:
            return _parse(gz, name)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"{name}: the gzip stream is truncated or corrupted ({err}); delete the file and "
            "download it again"
        ) from err


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed if ``compress`` or the name ends in .gz.

    Args:
        path: Destination file.
        array: Array of dtype uint8, int8, int16, int32, float32 or float64, any shape.
        compress: ``True``/``False`` to force gzip on or off; ``None`` decides by the
            ``.gz`` suffix of ``path``.

    Returns:
        The path written.

    Raises:
        ValueError: If the dtype has no IDX type code or a dimension does not fit 32 bits.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from ember.datasets import read_idx, write_idx
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "labels-idx1-ubyte.gz")
        >>> _ = write_idx(p, np.arange(10, dtype=np.uint8))
        >>> read_idx(p).tolist()
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        >>> tmp.cleanup()
    """
    arr = np.asarray(array)
    code = _CODE_FOR.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"cannot write dtype {arr.dtype} as IDX: the format only stores {_SUPPORTED}; "
            "convert first, e.g. array.astype(np.int32)"
        )
    if arr.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got an array with {arr.ndim}")
    too_big = [d for d in arr.shape if d > 0xFFFFFFFF]
    if too_big:
        raise ValueError(f"IDX sizes are 32-bit; dimension {too_big[0]} of {arr.shape} is too big")
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    with open(path, "wb") as raw:
        if compress:
            # mtime=0 and no stored name make the output byte-for-byte reproducible.
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            raw.write(header)
            raw.write(payload)
    return path
