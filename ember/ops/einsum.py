"""Einstein summation (``keras.ops.einsum``, ``torch.einsum``) with its backward.

The subscripts are first rewritten into an explicit equation without ``...``: each ellipsis
becomes letters of its own (right-aligned, as broadcasting aligns axes) and the implicit output
is spelled out. Forward and backward both use that equation, so they always agree.

The gradient of operand ``i`` is another einsum: the upstream gradient contracted with the
other operands, producing the letters of operand ``i``. Three details complete it:

* a letter of operand ``i`` that appears nowhere else was summed out by the forward: its
  gradient is broadcast back along it;
* an axis of size 1 that was broadcast against a longer one (``'...ij,...jk'`` with batch
  shapes ``(2, 1)`` and ``(5,)``) is summed by the gradient einsum and restored with size 1;
* a letter repeated within operand ``i`` (``'ii->i'``, ``'ii->'``) reads a diagonal: the
  gradient is zero off it, and is written onto the diagonal through a strided view.
"""

from __future__ import annotations

import dataclasses
import string

import numpy as np

from ember.backend import xp
from ember.ops._core import as_tensor
from ember.tensor import Tensor

# NumPy's einsum path search costs ~10 µs; it pays off (BLAS instead of NumPy's own loops,
# 10-20x on a 256x256 product) once there is a contraction of some size, or 3+ operands
# (where the order of the pairwise products matters).
_OPTIMIZE_MIN_ELEMENTS = 4096


@dataclasses.dataclass(frozen=True)
class _Equation:
    """An explicit einsum equation: one letter string per operand, the output's, and the size of
    every letter (the broadcast size, where an operand has 1)."""

    inputs: tuple[str, ...]
    output: str
    sizes: dict

    def text(self) -> str:
        return ",".join(self.inputs) + "->" + self.output


def einsum(subscripts: str, *operands) -> Tensor:
    """Einstein summation over ``operands`` (``keras.ops.einsum``, ``np.einsum`` subscripts).

    ``subscripts`` names each operand's axes with letters, comma-separated, and optionally the
    output's after ``->`` (implicit mode, without ``->``: the letters that appear once, in
    alphabetical order). Letters absent from the output are summed over; ``...`` stands for
    broadcast batch axes; a letter repeated within one operand takes its diagonal. Every
    operand gets its gradient, float32 operands a float32 one.

    Example:
        >>> from ember.ops.einsum import einsum
        >>> a = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> b = ember.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
        >>> einsum("ij,jk->ik", a, b)  # a @ b
        tensor([[3., 2.],
                [7., 4.]], grad_fn=einsum)
        >>> trace = einsum("ii->", a)
        >>> trace
        tensor(5., grad_fn=einsum)
        >>> trace.backward()
        >>> a.grad
        array([[1., 0.],
               [0., 1.]], dtype=float32)
        >>> einsum("...ij,...jk", np.ones((2, 1, 3, 4)), np.ones((5, 4, 6))).shape
        (2, 5, 3, 6)
    """
    if not isinstance(subscripts, str):
        raise TypeError(
            f"einsum: subscripts must be a string such as 'ij,jk->ik', got {subscripts!r} "
            "(NumPy's interleaved operand/sublist form is not supported)"
        )
    if not operands:
        raise ValueError(f"einsum: no operands given for subscripts {subscripts!r}")
    tensors = _as_tensors(operands)
    equation = _parse(subscripts, [t.shape for t in tensors])
    arrays = _same_dtype([t.data for t in tensors])
    out = _contract(equation.inputs, equation.output, arrays)

    def backward(g):
        grads = []
        for i, t in enumerate(tensors):
            if not t.requires_grad:
                grads.append(None)
                continue
            grad = _operand_grad(equation, i, g, arrays, t.shape)
            grads.append(grad.astype(t.dtype, copy=False) if t.dtype.kind == "f" else grad)
        return tuple(grads)

    return Tensor._from_op(np.asarray(out), tuple(tensors), backward, "einsum")


# ------------------------------------------------------------------------------ operands
def _as_tensors(operands) -> list[Tensor]:
    """Non-tensor operands take the dtype of the first float tensor (no float32 up-cast)."""
    like = next(
        (t for t in operands if isinstance(t, Tensor) and t.dtype.kind == "f"),
        next((t for t in operands if isinstance(t, Tensor)), None),
    )
    tensors = []
    for value in operands:
        tensors.append(as_tensor(value, like))
        if like is None:
            like = tensors[-1]
    return tensors


def _same_dtype(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Integer and bool operands are cast to the float operands' dtype: NumPy would otherwise
    promote float32 with int64 to float64."""
    floats = [a.dtype for a in arrays if a.dtype.kind in "fc"]
    if not floats:
        return arrays
    dtype = np.result_type(*floats)
    return [a if a.dtype.kind in "fc" else a.astype(dtype) for a in arrays]


# ------------------------------------------------------------------------------ parsing
def _parse(subscripts: str, shapes: list[tuple]) -> _Equation:
    """The explicit equation of ``subscripts`` for operands of ``shapes``; ValueError naming
    einsum for anything NumPy would refuse."""
    text = "".join(subscripts.split())  # NumPy ignores spaces
    bad = sorted(set(text) - set(string.ascii_letters + ",.->"))
    if bad:
        raise ValueError(
            f"einsum: invalid character(s) {bad} in subscripts {subscripts!r}; use letters, "
            "',', '->' and '...'"
        )
    lhs, arrow, rhs = text.partition("->")
    if set("->") & set(lhs + rhs):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} may contain '-' and '>' only as one '->'"
        )
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s) but "
            f"{len(shapes)} were given"
        )
    spare = [c for c in string.ascii_letters if c not in text]
    widths = [_ellipsis_width(term, shape, k) for k, (term, shape) in enumerate(zip(terms, shapes))]
    n_batch = max([w for w in widths if w is not None], default=0)
    if n_batch > len(spare):
        raise ValueError("einsum: too many axes: NumPy's einsum has 52 letters in all")
    batch = "".join(spare[:n_batch])
    inputs = tuple(
        term if w is None else term.replace("...", batch[n_batch - w :])
        for term, w in zip(terms, widths)
    )
    if arrow:
        output = _explicit_output(rhs, batch, inputs, any(w for w in widths if w))
    else:
        counts = {c: lhs.count(c) for c in set(lhs) - set(".,")}
        output = batch + "".join(sorted(c for c, n in counts.items() if n == 1))
    return _Equation(inputs, output, _letter_sizes(inputs, shapes, batch))


def _ellipsis_width(term: str, shape: tuple, k: int) -> int | None:
    """How many axes the ``...`` of operand ``k`` covers (None: the term has no ellipsis)."""
    letters = term.replace("...", "")
    if "." in letters or term.count("...") > 1:
        raise ValueError(f"einsum: operand {k}'s subscripts {term!r} have a misplaced '.'")
    if "..." not in term:
        if len(letters) != len(shape):
            raise ValueError(
                f"einsum: operand {k} has {len(shape)} dimension(s) (shape {shape}) but its "
                f"subscripts {term!r} name {len(letters)}"
            )
        return None
    if len(letters) > len(shape):
        raise ValueError(
            f"einsum: operand {k} has {len(shape)} dimension(s) (shape {shape}), fewer than "
            f"the {len(letters)} letters of its subscripts {term!r}"
        )
    return len(shape) - len(letters)


def _explicit_output(rhs: str, batch: str, inputs: tuple[str, ...], has_batch: bool) -> str:
    letters = rhs.replace("...", "")
    if "." in letters or rhs.count("...") > 1:
        raise ValueError(f"einsum: output subscripts {rhs!r} have a misplaced '.'")
    if has_batch and "..." not in rhs:
        raise ValueError(
            f"einsum: the operands' '...' covers {len(batch)} axes but the output subscripts "
            f"{rhs!r} have no '...' to keep them (NumPy's rule; sum them explicitly)"
        )
    for c in letters:
        if letters.count(c) > 1:
            raise ValueError(f"einsum: output subscripts {rhs!r} repeat the letter {c!r}")
        if not any(c in term for term in inputs):
            raise ValueError(f"einsum: output letter {c!r} appears in no operand's subscripts")
    return rhs.replace("...", batch)


def _letter_sizes(inputs: tuple[str, ...], shapes: list[tuple], batch: str) -> dict:
    """Each letter's size; sizes of 1 broadcast, other mismatches raise (``batch``: the letters
    standing for ``...``, named as such in the message)."""
    sizes: dict = {}
    seen: dict = {}
    for k, (term, shape) in enumerate(zip(inputs, shapes)):
        for c, n in zip(term, shape):
            if term.count(c) > 1 and len({m for d, m in zip(term, shape) if d == c}) > 1:
                raise ValueError(
                    f"einsum: operand {k} repeats the letter {c!r} over axes of different "
                    f"sizes (shape {shape}); a diagonal needs equal sizes"
                )
            if c in sizes and n != sizes[c] and 1 not in (n, sizes[c]):
                what = f"letter {c!r}" if c not in batch else "a '...' axis"
                raise ValueError(
                    f"einsum: {what} has size {sizes[c]} in operand {seen[c]} but {n} in "
                    f"operand {k} (shapes {list(shapes)}); sizes must match or be 1"
                )
            if c not in sizes or sizes[c] == 1:
                sizes[c], seen[c] = n, k
    return sizes


# ------------------------------------------------------------------------------ contraction
def _contract(inputs, output: str, arrays) -> np.ndarray:
    """``np.einsum`` with the path optimizer where it pays (see _OPTIMIZE_MIN_ELEMENTS)."""
    contracted = len(inputs) == 2 and bool((set(inputs[0]) & set(inputs[1])) - set(output))
    big = max((a.size for a in arrays), default=0) >= _OPTIMIZE_MIN_ELEMENTS
    optimize = len(inputs) >= 3 or (contracted and big)
    return xp.einsum(",".join(inputs) + "->" + output, *arrays, optimize=optimize)


def _operand_grad(eq: _Equation, i: int, g: np.ndarray, arrays, shape: tuple) -> np.ndarray:
    """d(sum(g * einsum(...))) / d(operand i), of operand i's shape."""
    term = eq.inputs[i]
    # The other operands, their broadcast axes (size 1 against a longer letter) dropped: the
    # operand is constant along them, so index 0 stands for every position.
    terms, others = [eq.output], [g]
    for k, (other, array) in enumerate(zip(eq.inputs, arrays)):
        if k == i:
            continue
        keep = [array.shape[a] == eq.sizes[c] for a, c in enumerate(other)]
        terms.append("".join(c for c, kept in zip(other, keep) if kept))
        others.append(array[tuple(slice(None) if kept else 0 for kept in keep)])
    letters = "".join(dict.fromkeys(term))  # unique, in order of appearance
    own = {c: shape[term.index(c)] for c in letters}
    reachable = set("".join(terms))
    # letters the gradient einsum can produce: reached by g or another operand, and not an
    # axis of operand i broadcast from size 1 (those are summed, then restored as size 1)
    produced = "".join(c for c in letters if c in reachable and own[c] == eq.sizes[c])
    grad = _contract(terms, produced, others)
    grad = grad.reshape([own[c] if c in produced else 1 for c in letters])
    grad = xp.broadcast_to(grad, [own[c] for c in letters])  # letters summed in operand i only
    if len(letters) == len(term):
        return grad
    return _onto_diagonal(grad, term, letters, shape)


def _onto_diagonal(grad: np.ndarray, term: str, letters: str, shape: tuple) -> np.ndarray:
    """Zeros of ``shape`` with ``grad`` written where the repeated letters of ``term`` agree."""
    full = xp.zeros(shape, dtype=grad.dtype)
    # A letter's axes move together on the diagonal: its stride is the sum of theirs.
    strides = [sum(full.strides[a] for a, d in enumerate(term) if d == c) for c in letters]
    diagonal = np.lib.stride_tricks.as_strided(
        full, shape=grad.shape, strides=strides, writeable=True
    )
    diagonal[...] = grad
    return full
