"""einsum, tile, split and take beyond the op table (``_op_rows_more.py``): bad input, edge cases,
dtypes and NumPy semantics the table's rows do not reach."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from ember import Tensor
from ember.testing import gradcheck

# by sys.modules: once exported, ember.ops.einsum / ember.ops.shape name functions
einsum = importlib.import_module("ember.ops.einsum").einsum
_shape_ops = importlib.import_module("ember.ops.shape")
take, tile, split = _shape_ops.take, _shape_ops.tile, _shape_ops.split


def _leaf(array, dtype=np.float32) -> Tensor:
    return Tensor(np.asarray(array, dtype=dtype), requires_grad=True)


def _grad_of(fn, x: Tensor, cotangent=None) -> np.ndarray:
    out = fn(x)
    c = np.ones(out.shape, out.dtype) if cotangent is None else cotangent
    (out * Tensor(np.asarray(c, dtype=out.dtype))).sum().backward()
    return x.grad


# ------------------------------------------------------------------------------ take
def test_take_matches_numpy_and_accumulates_repeats():
    x = _leaf(np.arange(12).reshape(3, 4))
    index = np.array([[3, -1], [0, 3]])
    out = take(x, index, axis=1)
    np.testing.assert_array_equal(out.data, np.take(x.data, index, axis=1))
    out.sum().backward()
    # column 3 is read 3 times (3, -1, 3), column 0 once, per row
    np.testing.assert_array_equal(x.grad, [[1, 0, 0, 3]] * 3)
    assert x.grad.dtype == np.float32


def test_take_flat_and_scalar_index():
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(take(x, [3, -4, 3]).data, [4.0, 1.0, 4.0])
    assert take(x, 2).shape == ()  # a scalar index into the flattened tensor
    np.testing.assert_array_equal(_grad_of(lambda t: take(t, [3, -4, 3]), x), [[1, 0], [0, 2]])


def test_take_tensor_indices_get_no_gradient_and_float64_stays():
    x = _leaf([1.0, 2.0, 3.0], dtype=np.float64)
    index = Tensor(np.array([2, 2]))
    out = take(x, index, axis=0)
    assert out.dtype == np.float64 and not index.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 2.0])
    assert index.grad is None


def test_take_empty_indices():
    x = _leaf(np.ones((2, 3)))
    out = take(x, [], axis=1)
    assert out.shape == (2, 0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))


@pytest.mark.parametrize(
    "index, axis, match",
    [
        ([0, 4], 1, r"take: index 4 is out of range for axis 1 of size 4 \(valid: -4\.\.3\)"),
        ([-5], -1, r"take: index -5 is out of range for axis -1 of size 4"),
        ([12], None, r"take: index 12 is out of range for the flattened tensor of size 12"),
        ([0], 2, r"take: axis 2 is out of range for a tensor with 2 dimension"),
    ],
)
def test_take_rejects_out_of_range(index, axis, match):
    with pytest.raises(ValueError, match=match):
        take(np.ones((3, 4), np.float32), index, axis=axis)


def test_take_rejects_non_integer_indices_and_axis_of_a_scalar():
    with pytest.raises(TypeError, match="take: indices must be integers, got dtype float64"):
        take(np.ones(3), [0.0, 1.0])
    with pytest.raises(TypeError, match="take: indices must be integers, got dtype bool"):
        take(np.ones(3), np.array([True, False, True]))
    with pytest.raises(TypeError, match="take: axis must be an int"):
        take(np.ones(3), [0], axis=0.0)
    with pytest.raises(ValueError, match="take: axis=0 given for a 0-d tensor"):
        take(np.float32(1.0), [0], axis=0)


# ------------------------------------------------------------------------------ tile
@pytest.mark.parametrize(
    "shape, repeats", [((2, 3), 2), ((2, 3), (1, 1)), ((3,), (2, 1, 2)), ((2, 1, 3), [3, 2])]
)
def test_tile_matches_numpy_and_gradient_counts_copies(shape, repeats):
    x = _leaf(np.arange(np.prod(shape)).reshape(shape))
    out = tile(x, repeats)
    np.testing.assert_array_equal(out.data, np.tile(x.data, repeats))
    assert out.data is not x.data and x.data.flags.writeable
    copies = out.size // x.size
    np.testing.assert_array_equal(_grad_of(lambda t: tile(t, repeats), x), np.full(shape, copies))


def test_tile_weighted_gradient_sums_each_tile():
    x = _leaf([1.0, 2.0])
    # cotangent of the (2, 4) output: the gradient of x[j] adds the entries at columns j, j + 2
    c = np.array([[1.0, 10.0, 100.0, 1000.0], [2.0, 20.0, 200.0, 2000.0]])
    np.testing.assert_array_equal(_grad_of(lambda t: tile(t, (2, 2)), x, c), [303.0, 3030.0])


def test_tile_zero_repeats_gives_empty_output_and_zero_gradient():
    x = _leaf(np.ones((2, 3)))
    out = tile(x, (0, 2))
    assert out.shape == (0, 6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))


def test_tile_rejects_bad_repeats():
    with pytest.raises(ValueError, match=r"tile: repeats must be non-negative, got \(2, -1\)"):
        tile(np.ones(3), (2, -1))
    with pytest.raises(TypeError, match="tile: repeats must be ints"):
        tile(np.ones(3), 1.5)


# ------------------------------------------------------------------------------ split
@pytest.mark.parametrize(
    "spec, axis",
    [(2, 0), (3, 1), ([1, 2], 1), ([2, -1], -1), ([3, 1, 9], 1), ([], 0), ([0, 0], 0)],
)
def test_split_matches_numpy(spec, axis):
    x = np.arange(24.0, dtype=np.float32).reshape(4, 6)
    pieces = split(x, spec, axis)
    expected = np.split(x, spec, axis)
    assert len(pieces) == len(expected)
    for piece, want in zip(pieces, expected):
        assert piece.shape == want.shape
        np.testing.assert_array_equal(piece.data, want)


def test_split_gradient_of_used_pieces_only_and_overlaps_accumulate():
    x = _leaf(np.ones((2, 6)))
    # np.split semantics: unsorted points give an empty middle piece and a repeated window
    a, b, c, d = split(x, [4, 2, 3], axis=1)
    assert (a.shape, b.shape, c.shape, d.shape) == ((2, 4), (2, 0), (2, 1), (2, 3))
    (1.0 * a.sum() + 10.0 * d.sum()).backward()
    np.testing.assert_array_equal(x.grad, [[1, 1, 1, 11, 10, 10]] * 2)
    assert x.data.flags.writeable  # the pieces are frozen views; x is not


def test_split_gradcheck_float64():
    def fn(x):
        first, second = split(x, [1], axis=0)
        return first * 2.0 + second[:1] * 3.0

    assert gradcheck(fn, np.random.default_rng(0).standard_normal((3, 2))).ok


def test_split_rejects_bad_input():
    with pytest.raises(ValueError, match="split: cannot split an axis of size 5 into 2 equal"):
        split(np.ones((5, 2)), 2)
    with pytest.raises(ValueError, match="split: cannot split an axis of size 5 into 0 equal"):
        split(np.ones((5, 2)), 0)
    with pytest.raises(ValueError, match="split: cannot split a 0-d tensor"):
        split(np.float32(1.0), 1)
    with pytest.raises(ValueError, match="split: axis 2 is out of range"):
        split(np.ones((2, 2)), 2, axis=2)
    with pytest.raises(TypeError, match="split: split points must be ints"):
        split(np.ones((4,)), [1.5])
    with pytest.raises(TypeError, match="split: indices_or_sections must be an int"):
        split(np.ones((4,)), 2.0)


# ------------------------------------------------------------------------------ einsum
_MORE_EQUATIONS = [
    ("iji->j", [(3, 2, 3)]),
    ("ijji->", [(2, 3, 3, 2)]),
    ("ii,i->i", [(1, 1), (3,)]),
    ("i...,i...->...", [(3, 2, 1), (3, 1, 4)]),
    ("a...b,b...->...a", [(2, 3, 4, 5), (5, 4)]),
    ("ij,ij,ij->ij", [(2, 3), (1, 3), (2, 1)]),
    ("ij,jk,kl,lm->mi", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("Ba,aC", [(2, 3), (3, 4)]),
    ("i,->i", [(3,), ()]),
    (" ij , jk -> ki ", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("subscripts, shapes", _MORE_EQUATIONS)
def test_einsum_matches_numpy_and_finite_differences(subscripts, shapes):
    rng = np.random.default_rng(len(subscripts))
    arrays = [rng.standard_normal(s) for s in shapes]
    out = einsum(subscripts, *[Tensor(a) for a in arrays])
    expected = np.einsum(subscripts, *arrays)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *xs: einsum(subscripts, *xs), *arrays).ok


def test_einsum_diagonal_gradients_by_hand():
    a = _leaf([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(
        _grad_of(lambda t: einsum("ii->i", t), a, [5.0, 7.0]), [[5.0, 0.0], [0.0, 7.0]]
    )
    b = _leaf(np.ones((3, 3)))
    np.testing.assert_array_equal(_grad_of(lambda t: einsum("ii", t), b, 2.0), 2 * np.eye(3))


def test_einsum_broadcast_operand_gradient_is_summed_back():
    a = _leaf(np.ones((1, 2)))  # its first axis broadcasts against b's 3
    b = _leaf(np.arange(6.0).reshape(3, 2))
    out = einsum("...j,...j->...", a, b)
    np.testing.assert_array_equal(out.data, [1.0, 5.0, 9.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [[6.0, 9.0]])  # column sums of b
    np.testing.assert_array_equal(b.grad, np.ones((3, 2)))


def test_einsum_dtypes_and_constant_operands():
    x = _leaf(np.ones((2, 3)))
    out = einsum("ij,j,j->i", x, np.arange(3.0), Tensor(np.array([1, 2, 3])))
    # a float64 array and an int tensor do not up-cast the float32 computation
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, [8.0, 8.0])
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[0.0, 2.0, 6.0]] * 2)
    ints = einsum("ij->j", Tensor(np.array([[1, 2], [3, 4]])))
    assert ints.dtype.kind == "i" and not ints.requires_grad


def test_einsum_only_differentiable_operands_get_gradients():
    a, b = _leaf(np.ones((2, 2))), Tensor(np.ones((2, 2), np.float32))
    einsum("ij,jk->ik", a, b).sum().backward()
    assert b.grad is None
    np.testing.assert_array_equal(a.grad, np.full((2, 2), 2.0))


def test_einsum_optimized_path_matches_matmul():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 80)).astype(np.float32)  # big enough for the optimized path
    b = rng.standard_normal((80, 70)).astype(np.float32)
    ta = _leaf(a)
    out = einsum("ij,jk->ik", ta, Tensor(b))
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-5, atol=1e-4)
    c = rng.standard_normal((64, 70)).astype(np.float32)
    (out * Tensor(c)).sum().backward()
    np.testing.assert_allclose(ta.grad, c @ b.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "subscripts, shapes, match",
    [
        ("ij,jk->ik", [(2, 3)], r"einsum: subscripts 'ij,jk->ik' name 2 operand\(s\) but 1 were"),
        ("ij,jk->ik", [(2, 3), (4, 5)], "einsum: letter 'j' has size 3 in operand 0 but 4 in"),
        ("...i,...i", [(2, 4), (3, 4)], "einsum: a '...' axis has size 2 in operand 0 but 3"),
        ("ij->i", [(2, 3, 4)], r"einsum: operand 0 has 3 dimension\(s\) .* name 2"),
        ("...ijk", [(2, 3)], "einsum: operand 0 has 2 dimension.*fewer than the 3 letters"),
        ("ij->k", [(2, 3)], "einsum: output letter 'k' appears in no operand"),
        ("ij->ii", [(2, 3)], "einsum: output subscripts 'ii' repeat the letter 'i'"),
        ("ii->i", [(2, 3)], "einsum: operand 0 repeats the letter 'i' over axes of different"),
        ("...ij->ij", [(4, 2, 3)], r"einsum: the operands' '\.\.\.' covers 1 axes"),
        ("i1->i", [(2, 3)], r"einsum: invalid character\(s\) \['1'\]"),
        ("i->j->k", [(2,)], "einsum: subscripts 'i->j->k' may contain"),
        ("i.j", [(2, 3)], "einsum: operand 0's subscripts 'i.j' have a misplaced"),
    ],
)
def test_einsum_rejects_bad_subscripts(subscripts, shapes, match):
    with pytest.raises(ValueError, match=match):
        einsum(subscripts, *[np.ones(s, np.float32) for s in shapes])


def test_einsum_rejects_non_string_and_no_operands():
    with pytest.raises(TypeError, match="einsum: subscripts must be a string"):
        einsum(np.ones(3), [0], np.ones(3), [0])
    with pytest.raises(ValueError, match="einsum: no operands given"):
        einsum("ij")
