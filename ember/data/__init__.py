"""Input pipelines: PyTorch-style ``Dataset``/``DataLoader`` and tf.data-style chaining.

Both styles share one implementation (see :mod:`ember.data.dataset`) and yield NumPy batches,
which ``model.fit`` and hand-written training loops accept.

PyTorch style::

    loader = ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    for xb, yb in loader: ...

tf.data style (Keras guides, with only the import changed)::

    ds = ember.data.Dataset.from_tensor_slices((x, y)).shuffle(1024).batch(64)
    for xb, yb in ds: ...

Example:
    >>> x, y = np.random.rand(100, 3).astype("float32"), np.arange(100) % 2
    >>> loader = ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=32)
    >>> ds = ember.data.Dataset.from_tensor_slices((x, y)).shuffle(100).batch(32)
    >>> len(loader), len(ds)
    (4, 4)
    >>> xb, yb = next(iter(ds))
    >>> xb.shape, xb.dtype, yb.shape
    ((32, 3), dtype('float32'), (32,))
"""

from ember.data.collate import default_collate
from ember.data.dataset import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    TensorSliceDataset,
    random_split,
)
from ember.data.loader import DataLoader

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorSliceDataset",
    "TensorDataset",
    "Subset",
    "DataLoader",
    "default_collate",
    "random_split",
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
]
