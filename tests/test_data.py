"""Tests for ember.data: DataLoader / TensorDataset (PyTorch style) and Dataset pipelines
(tf.data style), which share one implementation of shuffling and batching."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import ember
from ember.data import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    DataLoader,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from ``ember.manual_seed(0)``; the previous state is restored after."""
    state = ember.get_rng_state()
    ember.manual_seed(0)
    yield
    ember.set_rng_state(state)


def _labels(batches, part: int = 1) -> list[int]:
    """The concatenated ``part`` of each batch, as a list (the order samples came in)."""
    return np.concatenate([b[part] for b in batches]).tolist()


def _epochs(iterable, n: int, part: int = 1) -> list[list[int]]:
    return [_labels(iterable, part) for _ in range(n)]


class Squares(Dataset):
    """A map-style dataset read one sample at a time; counts the reads."""

    def __init__(self, n: int = 10) -> None:
        self.n, self.calls = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.calls += 1
        return np.full(3, i, dtype="float32"), i * i


# --------------------------------------------------------------------------------------------
# Shuffling.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["loader", "pipeline"])
def test_shuffle_gives_every_sample_exactly_once_per_epoch(style):
    n = 103
    x, y = np.arange(n * 2, dtype="float32").reshape(n, 2), np.arange(n)
    if style == "loader":
        data = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=True)
    else:
        data = Dataset.from_tensor_slices((x, y)).shuffle(n).batch(10)
    for order in _epochs(data, 3):
        assert sorted(order) == list(range(n))
        assert order != list(range(n))  # actually shuffled
    xb, yb = next(iter(data))
    np.testing.assert_array_equal(xb, x[yb])  # rows stay paired with their labels


@pytest.mark.parametrize("style", ["loader", "pipeline"])
def test_same_seed_same_order_and_consecutive_epochs_differ(style):
    ds = TensorDataset(np.arange(50))
    if style == "loader":
        data = DataLoader(ds, batch_size=8, shuffle=True)
    else:
        data = ds.shuffle(50).batch(8)
    ember.manual_seed(0)
    first = _epochs(data, 2, part=0)
    ember.manual_seed(0)
    again = _epochs(data, 2, part=0)
    ember.manual_seed(1)
    other = _epochs(data, 1, part=0)
    assert first == again
    assert first[0] != first[1]
    assert other[0] != first[0]


def test_the_order_is_drawn_when_a_pass_starts_yielding():
    loader = DataLoader(TensorDataset(np.arange(20)), batch_size=5, shuffle=True)
    ember.manual_seed(0)
    state = ember.get_rng_state()
    iterator = iter(loader)  # made, not yet drawn from: Ember's generator is untouched
    assert ember.get_rng_state() == state
    first = next(iterator)[0].tolist()
    assert ember.get_rng_state() != state
    ember.manual_seed(0)
    assert next(iter(loader))[0].tolist() == first


def test_shuffle_with_seed_is_fixed_by_the_seed_not_by_ember_generator():
    def orders(seed):
        ds = Dataset.from_tensor_slices(np.arange(40)).shuffle(40, seed=seed).batch(40)
        return [next(iter(ds)).tolist() for _ in range(2)]

    ember.manual_seed(0)
    a = orders(3)
    ember.manual_seed(123)
    b = orders(3)
    assert a == b
    assert a[0] != a[1]  # reshuffled each iteration
    assert orders(4) != a


def test_shuffle_without_reshuffle_repeats_the_same_order():
    ds = Dataset.from_tensor_slices(np.arange(30)).shuffle(30, reshuffle_each_iteration=False)
    orders = [[int(v) for v in ds] for _ in range(2)]
    assert orders[0] == orders[1] and orders[0] != list(range(30))
    repeated = np.array(list(ds.repeat(2))).tolist()
    assert repeated[:30] == repeated[30:]


def test_buffered_shuffle_only_mixes_within_the_buffer():
    n, buffer = 1000, 10
    order = np.concatenate(list(Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer).batch(64)))
    assert sorted(order.tolist()) == list(range(n))
    # an element can only come out after it entered the buffer
    assert np.all(order <= np.arange(n) + buffer - 1)
    assert not np.array_equal(order, np.arange(n))
    # a buffer holding the whole (repeated) stream mixes across passes; each sample twice
    both = np.concatenate(
        list(Dataset.from_tensor_slices(np.arange(10)).repeat(2).shuffle(20).batch(20))
    )
    assert sorted(both.tolist()) == sorted(list(range(10)) * 2)
    assert sorted(both[:10].tolist()) != list(range(10)) or sorted(both[10:].tolist()) != list(
        range(10)
    )
    # a buffer of one keeps the order
    same = np.concatenate(list(Dataset.from_tensor_slices(np.arange(n)).shuffle(1).batch(64)))
    np.testing.assert_array_equal(same, np.arange(n))


def test_shuffle_of_values_after_batch_shuffles_whole_batches():
    ds = Dataset.from_tensor_slices(np.arange(12)).batch(3).shuffle(4)
    batches = [b.tolist() for b in ds]
    assert sorted(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    ember.manual_seed(0)
    orders = {tuple(b[0] for b in [bb.tolist() for bb in ds]) for _ in range(10)}
    assert len(orders) > 1


def test_repeat_reshuffles_each_pass_and_batches_span_passes():
    ds = Dataset.from_tensor_slices(np.arange(10)).shuffle(10).repeat(2).batch(4)
    assert len(ds) == 5
    batches = list(ds)
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4]
    order = np.concatenate(batches).tolist()
    assert sorted(order[:10]) == sorted(order[10:]) == list(range(10))
    assert order[:10] != order[10:]


# --------------------------------------------------------------------------------------------
# Batch counts and len().
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, batch_size, drop, sizes",
    [
        (10, 3, False, [3, 3, 3, 1]),
        (10, 3, True, [3, 3, 3]),
        (9, 3, False, [3, 3, 3]),
        (9, 3, True, [3, 3, 3]),
        (2, 5, False, [2]),
        (2, 5, True, []),
    ],
)
@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_and_drop_remainder_counts_and_len(n, batch_size, drop, sizes, shuffle):
    ds = TensorDataset(np.arange(n))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop)
    pipeline = Dataset.from_tensor_slices(np.arange(n))
    if shuffle:
        pipeline = pipeline.shuffle(n)
    pipeline = pipeline.batch(batch_size, drop_remainder=drop)
    assert [len(b[0]) for b in loader] == sizes
    assert [len(b) for b in pipeline] == sizes
    assert len(loader) == len(pipeline) == len(sizes)
    generic = DataLoader(Squares(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop)
    assert [len(b[1]) for b in generic] == sizes and len(generic) == len(sizes)


def test_len_and_cardinality_of_pipelines():
    ds = Dataset.from_tensor_slices(np.arange(10))
    assert len(ds) == 10
    assert len(ds.repeat(3)) == 30
    assert len(ds.take(4)) == 4 and len(list(ds.take(4))) == 4
    assert len(ds.take(40)) == 10 and len(ds.take(-1)) == 10
    assert len(ds.skip(7)) == 3 and np.array(list(ds.skip(7))).tolist() == [7, 8, 9]
    assert len(ds.skip(-1)) == 0 and list(ds.skip(-1)) == []
    assert len(ds.batch(4).repeat(2)) == 6
    assert len(ds.repeat().take(25).batch(10)) == 3
    assert len(ds.map(lambda v: v * 2)) == 10
    assert ds.repeat().cardinality() == INFINITE_CARDINALITY
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())
    assert bool(ds.repeat())  # truthiness never asks for the length
    taken = np.concatenate(list(ds.repeat().take(25).batch(10)))
    np.testing.assert_array_equal(taken, np.arange(25) % 10)


def test_repeat_of_an_empty_dataset_ends():
    empty = Dataset.from_tensor_slices(np.zeros((0, 2)))
    assert len(empty) == 0
    assert list(empty.repeat()) == []
    assert empty.repeat().cardinality() == 0


# --------------------------------------------------------------------------------------------
# Structure, dtypes and shapes.
# --------------------------------------------------------------------------------------------
def test_dict_structure_dtypes_and_shapes_are_preserved():
    n = 7
    data = {
        "image": np.arange(n * 16, dtype="uint8").reshape(n, 4, 4),
        "label": np.arange(n, dtype="int32"),
        "weight": np.linspace(0, 1, n, dtype="float32"),
    }
    batches = list(Dataset.from_tensor_slices(data).batch(3))
    assert [sorted(b) for b in batches] == [["image", "label", "weight"]] * 3
    first = batches[0]
    assert first["image"].shape == (3, 4, 4) and first["image"].dtype == np.uint8
    assert first["label"].dtype == np.int32 and first["weight"].dtype == np.float32
    np.testing.assert_array_equal(first["image"], data["image"][:3])
    assert batches[-1]["label"].tolist() == [6]
    element = next(iter(Dataset.from_tensor_slices(data)))
    assert element["image"].shape == (4, 4) and element["label"] == 0


def test_tuple_with_sample_weights_and_nested_structures():
    x = np.random.rand(5, 2).astype("float32")
    y, w = np.arange(5, dtype="int64"), np.ones(5, dtype="float64")
    xb, yb, wb = next(iter(Dataset.from_tensor_slices((x, y, w)).batch(4)))
    assert (xb.shape, yb.shape, wb.shape) == ((4, 2), (4,), (4,))
    assert (xb.dtype, yb.dtype, wb.dtype) == (np.float32, np.int64, np.float64)
    (a, b), c = next(iter(Dataset.from_tensor_slices(((x, x * 2), {"y": y})).batch(5)))
    np.testing.assert_array_equal(b, x * 2)
    assert list(c) == ["y"] and c["y"].tolist() == list(range(5))


def test_lists_are_data_and_tensors_become_numpy():
    ds = Dataset.from_tensor_slices(([[1.0, 2.0], [3.0, 4.0]], ember.tensor([0, 1])))
    xb, yb = next(iter(ds.batch(2)))
    assert type(xb) is np.ndarray and xb.shape == (2, 2)
    assert type(yb) is np.ndarray and yb.tolist() == [0, 1]
    t = TensorDataset(ember.tensor(np.ones((3, 2), dtype="float32")))
    (batch,) = next(iter(DataLoader(t, batch_size=3)))
    assert type(batch) is np.ndarray and batch.dtype == np.float32


def test_default_collate_structures_and_types():
    Pair = namedtuple("Pair", "x y")
    samples = [Pair(ember.tensor([1.0, 2.0]), {"k": i, "s": f"s{i}"}) for i in range(3)]
    batch = default_collate(samples)
    assert isinstance(batch, Pair)
    assert type(batch.x) is np.ndarray and batch.x.shape == (3, 2)
    assert batch.x.dtype == np.float32
    assert batch.y["k"].tolist() == [0, 1, 2] and batch.y["k"].dtype == np.int64
    assert batch.y["s"] == ["s0", "s1", "s2"]
    lists = default_collate([[1, 2.5], [3, 4.5]])
    assert isinstance(lists, tuple) and lists[1].dtype == np.float64
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(4,\)"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(TypeError, match="sample 1 is a dict"):
        default_collate([(1, 2), {"a": 1}])
    with pytest.raises(ValueError, match="keys"):
        default_collate([{"a": 1}, {"b": 1}])
    with pytest.raises(ValueError, match="no samples"):
        default_collate([])


# --------------------------------------------------------------------------------------------
# Custom datasets, collate_fn, map.
# --------------------------------------------------------------------------------------------
def test_custom_map_style_dataset_works_with_dataloader():
    ds = Squares(10)
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    seen = []
    for xb, yb in loader:
        assert xb.dtype == np.float32 and xb.shape[1:] == (3,)
        np.testing.assert_array_equal(xb[:, 0] ** 2, yb)
        seen.extend(xb[:, 0].astype(int).tolist())
    assert sorted(seen) == list(range(10))
    assert ds.calls == 10  # one read per sample, no more
    assert [int(v[1]) for v in ds] == [i * i for i in range(10)]  # plain iteration


def test_custom_dataset_chains_like_tf_data():
    batches = list(Squares(6).shuffle(6).batch(4).map(lambda x, y: (x.sum(axis=1), y)))
    assert [len(y) for _, y in batches] == [4, 2]
    assert sorted(np.concatenate([y for _, y in batches]).tolist()) == [0, 1, 4, 9, 16, 25]


def test_collate_fn_receives_lists_of_samples():
    received = []

    def collate(samples):
        received.append(len(samples))
        return sum(int(s[1]) for s in samples)

    assert list(DataLoader(Squares(5), batch_size=2, collate_fn=collate)) == [1, 13, 16]
    ds = TensorDataset(np.arange(5), np.arange(5) * 10)
    assert list(DataLoader(ds, batch_size=3, collate_fn=collate)) == [30, 70]
    assert received == [2, 2, 1, 3, 2]


def test_getitems_returning_a_list_of_samples_is_collated():
    class Listy(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, indices):
            return [(float(i), int(i)) for i in indices]

    xb, yb = next(iter(DataLoader(Listy(), batch_size=5)))
    assert xb.dtype == np.float64 and yb.tolist() == [0, 1, 2, 3, 4]


def test_map_before_batch_runs_per_element_and_after_batch_per_batch():
    x, y = np.arange(10, dtype="float32"), np.arange(10)
    calls = {"n": 0}

    def scale(a, b):
        calls["n"] += 1
        return a / 2, b

    before = list(Dataset.from_tensor_slices((x, y)).map(scale).batch(4))
    assert calls["n"] == 10
    calls["n"] = 0
    after = list(Dataset.from_tensor_slices((x, y)).batch(4).map(scale))
    assert calls["n"] == 3
    for (a1, b1), (a2, b2) in zip(before, after):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    dicts = Dataset.from_tensor_slices({"a": x}).batch(5).map(lambda d: d["a"].sum())
    assert [float(v) for v in dicts] == [10.0, 35.0]


def test_transformations_return_new_datasets():
    ds = Dataset.from_tensor_slices(np.arange(6))
    batched = ds.batch(2)
    shuffled = ds.shuffle(6)
    assert batched is not ds and shuffled is not ds
    assert len(ds) == 6 and [int(v) for v in ds] == list(range(6))
    assert len(batched) == 3
    assert ds.prefetch(AUTOTUNE) is ds
    mapped = ds.map(lambda v: v + 1, num_parallel_calls=AUTOTUNE)
    assert np.array(list(mapped)).tolist() == list(range(1, 7))


def test_keras_guide_input_code_runs():
    x_train = np.random.rand(200, 8).astype("float32")
    y_train = np.random.randint(0, 3, size=200)
    train_dataset = Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.shuffle(buffer_size=1024).batch(64).prefetch(AUTOTUNE)
    steps = 0
    for step, (x_batch_train, y_batch_train) in enumerate(train_dataset):
        assert x_batch_train.shape[1:] == (8,) and len(x_batch_train) == len(y_batch_train)
        steps = step + 1
    assert steps == len(train_dataset) == 4


def test_iterable_dataset_and_plain_sequences():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter([(np.float32(i), i) for i in range(7)])

    batches = list(DataLoader(Stream(), batch_size=3))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(TypeError, match="unknown"):
        len(DataLoader(Stream(), batch_size=3))
    with pytest.raises(ValueError, match="shuffle=True"):
        DataLoader(Stream(), batch_size=3, shuffle=True)
    assert Stream().cardinality() == UNKNOWN_CARDINALITY
    assert [b[1].tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [
        [0, 1, 2],
        [3, 4, 5],
    ]
    assert sorted(int(v) for v in Stream().map(lambda a, b: b).shuffle(3)) == list(range(7))
    samples = [(np.ones(2) * i, i) for i in range(5)]
    xb, yb = next(iter(DataLoader(samples, batch_size=5)))
    assert xb.shape == (5, 2) and yb.tolist() == list(range(5))
    (arr,) = [b for b in DataLoader(np.arange(4), batch_size=4)]
    assert arr.tolist() == [0, 1, 2, 3]


def test_hand_written_training_loop_with_a_dataloader():
    ember.manual_seed(0)
    x = np.random.rand(64, 3).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")
    model = ember.models.Sequential([ember.layers.Input(shape=(3,)), ember.layers.Dense(1)])
    opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    losses = []
    for _ in range(30):
        total = 0.0
        for xb, yb in loader:
            loss = ember.losses.mean_squared_error(yb, model(xb)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(xb)
        losses.append(total / len(x))
    assert losses[-1] < 0.1 * losses[0]


# --------------------------------------------------------------------------------------------
# Speed guard: one fancy index per array per batch, no per-sample reads.
# --------------------------------------------------------------------------------------------
class _CountingArray(np.ndarray):
    """An ndarray that counts how often it is indexed."""

    counter = {"n": 0}

    def __getitem__(self, index):
        type(self).counter["n"] += 1
        return np.asarray(self)[index]


def test_tensor_dataset_batches_without_per_sample_reads():
    class Spy(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            type(self).calls += 1
            return super().__getitem__(index)

    n = 100
    x, y = np.random.rand(n, 3), np.arange(n)
    for loader in (
        DataLoader(Spy(x, y), batch_size=8, shuffle=True),
        Spy(x, y).shuffle(n).batch(8),
        Spy(x, y).shuffle(10).repeat(2).batch(8),
    ):
        assert sum(len(b[1]) for b in loader) > 0
    assert Spy.calls == 0

    _CountingArray.counter["n"] = 0
    xs, ys = x.view(_CountingArray), y.view(_CountingArray)
    batches = list(DataLoader(TensorDataset(xs, ys), batch_size=8, shuffle=True))
    assert len(batches) == 13
    assert _CountingArray.counter["n"] == 2 * len(batches)  # one per array per batch
    assert sorted(_labels(batches)) == list(range(n))

    _CountingArray.counter["n"] = 0
    train, _ = random_split(TensorDataset(xs, ys), [0.5, 0.5])
    assert len(list(DataLoader(train, batch_size=10))) == 5
    assert _CountingArray.counter["n"] == 2 * 5  # a Subset forwards to __getitems__ too


# --------------------------------------------------------------------------------------------
# random_split and Subset.
# --------------------------------------------------------------------------------------------
def test_random_split_partitions_and_is_seeded():
    ds = TensorDataset(np.arange(10))
    ember.manual_seed(0)
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    everything = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert everything == list(range(10))
    ember.manual_seed(0)
    again = random_split(ds, [0.5, 0.3, 0.2])
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(parts, again))
    assert [len(p) for p in random_split(ds, [7, 3])] == [7, 3]
    assert [len(p) for p in random_split(TensorDataset(np.arange(11)), [0.5, 0.5])] == [6, 5]
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.4])
    sub = Subset(Squares(10), [9, 2])
    assert [int(y) for _, y in sub] == [81, 4]
    with pytest.raises(IndexError, match="out of range"):
        Subset(Squares(3), [5])


# --------------------------------------------------------------------------------------------
# Errors name the argument.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -3}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"batch_size": "32"}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"batch_size": None}, TypeError, "batch_size"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
        ({"shuffle": 1}, TypeError, "shuffle"),
        ({"drop_last": 1}, TypeError, "drop_last"),
        ({"collate_fn": 5}, TypeError, "collate_fn"),
    ],
)
def test_dataloader_rejects_bad_arguments_by_name(kwargs, error, name):
    with pytest.raises(error, match=name):
        DataLoader(TensorDataset(np.arange(4)), **kwargs)


@pytest.mark.parametrize(
    "make, error, name",
    [
        (lambda ds: ds.batch(0), ValueError, "batch_size"),
        (lambda ds: ds.batch(2, drop_remainder="no"), TypeError, "drop_remainder"),
        (lambda ds: ds.shuffle(0), ValueError, "buffer_size"),
        (lambda ds: ds.shuffle(4, seed=-1), ValueError, "seed"),
        (lambda ds: ds.take(-2), ValueError, "count"),
        (lambda ds: ds.repeat(1.5), TypeError, "count"),
        (lambda ds: ds.map(5), TypeError, "map_func"),
        (lambda ds: ds.prefetch(-5), ValueError, "buffer_size"),
    ],
)
def test_pipeline_rejects_bad_arguments_by_name(make, error, name):
    with pytest.raises(error, match=name):
        make(Dataset.from_tensor_slices(np.arange(4)))


def test_mismatched_lengths_name_each_length():
    with pytest.raises(ValueError, match=r"array 0 has 100, array 1 has 99"):
        TensorDataset(np.zeros((100, 2)), np.zeros(99))
    with pytest.raises(ValueError, match=r"data\['x'\] has 5, data\['y'\] has 4"):
        Dataset.from_tensor_slices({"x": np.zeros(5), "y": np.zeros(4)})
    with pytest.raises(ValueError, match="scalar"):
        Dataset.from_tensor_slices((np.zeros(3), 1.0))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_incomplete_dataset_subclasses_fail_clearly():
    class NoLen(Dataset):
        def __getitem__(self, i):
            return i

    class Nothing(Dataset):
        pass

    class OnlyIter(Dataset):  # iterable-style without subclassing IterableDataset
        def __iter__(self):
            return iter(range(5))

    assert [b.tolist() for b in DataLoader(OnlyIter(), batch_size=3)] == [[0, 1, 2], [3, 4]]
    assert [b.tolist() for b in OnlyIter().batch(4)] == [[0, 1, 2, 3], [4]]
    with pytest.raises(TypeError, match="no __len__"):
        DataLoader(NoLen(), batch_size=2)
    with pytest.raises(TypeError, match="neither"):
        DataLoader(Nothing(), batch_size=2)
    with pytest.raises(TypeError, match="cannot be indexed"):
        Dataset.from_tensor_slices(np.arange(3)).batch(2)[0]
