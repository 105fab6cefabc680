"""One surrogate definition feeds every backward path; an unknown name raises on every path."""

import math
import os
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from lightning_snn.functional import lif_numba
from lightning_snn.functional.lif import LIFConfig, lif_reference
from lightning_snn.functional.lif_scan import _backward_loop, lif_fused
from lightning_snn.functional.surrogates import SURROGATES, Surrogate, SurrogateDefinition

needs_numba = pytest.mark.skipif(not lif_numba.available(), reason="numba is not installed")

# The module docstring's equations, written independently of the registry.
FORMULAS = {
    "atan": lambda u, a: (a / 2) / (1 + (math.pi / 2 * a * u) ** 2),
    "fast_sigmoid": lambda u, a: 1 / (a * u.abs() + 1) ** 2,
    "box": lambda u, a: (u.abs() < a / 2).to(u.dtype) / a,
}


def _grid(dtype):
    """u on a fixed grid, with the box edges ±α/2 (α = 1, 0.7) and 0 on it."""
    extra = torch.tensor([0.0, 0.5, -0.5, 0.35, -0.35], dtype=dtype)
    return torch.cat([torch.linspace(-1.5, 1.5, 61, dtype=dtype), extra])


def _autograd(surrogate, u):
    u = u.clone().requires_grad_()
    surrogate(u).sum().backward()
    return u.grad


def _single_step_cfg(surrogate):
    """One step, no input decay, no reset path, θ = 0: H = X and dL/dX = dL/dS · g(H - θ) = g(X)."""
    return LIFConfig("soft", 0.0, False, True, surrogate)


def _torch_backward(surrogate, u):
    """The fused PyTorch backward loop (what CUDA runs): grad_x and -θ sums are both g(u)."""
    h = u.view(1, 1, -1)
    zero = torch.zeros_like(u)
    spikes, beta = (h >= 0).to(u.dtype), torch.tensor(0.5, dtype=u.dtype)
    gx, _, acc_thr = _backward_loop(
        h, spikes, torch.ones_like(h), beta, zero, None, _single_step_cfg(surrogate), False, True
    )
    assert torch.equal(-acc_thr[0], gx.flatten())
    return gx.flatten()


def _compiled_backward(surrogate, u):
    """The Numba backward kernel, called directly (no fallback can stand in for it)."""
    h = u.view(1, 1, -1)
    zero = torch.zeros_like(u)
    gx, _, acc_thr = lif_numba.backward(
        h, torch.ones_like(h), None, torch.tensor(0.5, dtype=u.dtype), zero, _single_step_cfg(surrogate), False, True
    )
    assert torch.equal(-acc_thr[0], gx.flatten())
    return gx.flatten()


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("alpha", [None, 0.7])
@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_three_paths_give_the_same_derivative(name, alpha, dtype):
    """Autograd backward of ``Surrogate``, the fused PyTorch backward and the compiled backward agree to a
    few ulps (they evaluate one definition), and match the docstring's equation."""
    surrogate = Surrogate(name, alpha)
    u = _grid(dtype)
    paths = {
        "autograd": _autograd(surrogate, u),
        "derivative": surrogate.derivative(u),
        "fused torch": _torch_backward(surrogate, u),
        "compiled": _compiled_backward(surrogate, u),
    }
    eps = torch.finfo(dtype).eps
    formula = FORMULAS[name](u, surrogate.alpha)  # in u's dtype, so the box edges round alike
    for path, g in paths.items():
        assert g.dtype == dtype, path
        torch.testing.assert_close(g, paths["autograd"], rtol=4 * eps, atol=0.0, msg=path)
        torch.testing.assert_close(g, formula, rtol=8 * eps, atol=8 * eps, msg=path)


def _triangle(u, c1, c2, one):
    """A test-only surrogate: g(u) = c1 max(0, 1 - c2 |u|), in plain arithmetic."""
    return c1 * (one - c2 * abs(u)) * (c2 * abs(u) < one)


@needs_numba
def test_a_new_registry_entry_feeds_every_path(monkeypatch):
    """Adding a surrogate is one registry entry: the autograd, fused PyTorch and compiled backwards use it."""
    entry = SurrogateDefinition(_triangle, lambda a: (a, a), 1.0)
    monkeypatch.setitem(SURROGATES, "triangle", entry)
    surrogate = Surrogate("triangle", 2.0)
    u = _grid(torch.float64)
    expected = 2.0 * (1 - 2.0 * u.abs()).clamp(min=0)
    for g in (_autograd(surrogate, u), _torch_backward(surrogate, u), _compiled_backward(surrogate, u)):
        torch.testing.assert_close(g, expected, rtol=1e-15, atol=1e-15)


def _renamed(name="relu"):
    """A ``Surrogate`` whose name was changed past its validation (frozen dataclasses can be bypassed)."""
    surrogate = Surrogate("atan")
    object.__setattr__(surrogate, "name", name)
    return surrogate


def _inputs():
    x = (torch.rand(6, 2, 4, dtype=torch.float64) * 2).requires_grad_()
    return x, torch.tensor(0.6, dtype=torch.float64, requires_grad=True), torch.tensor(1.0, dtype=torch.float64)


def _assert_unknown(match="relu"):
    return pytest.raises(ValueError, match=rf"Unknown surrogate '{match}'.*'atan', 'box', 'fast_sigmoid'")


@needs_numba
def test_unknown_surrogate_raises_in_the_compiled_backward():
    """The compiled path looks the name up in the registry: no silent fallback to another surrogate."""
    h = torch.linspace(-1, 1, 8, dtype=torch.float64).view(1, 1, -1)
    args = (h, torch.ones_like(h), None, torch.tensor(0.5, dtype=torch.float64), torch.zeros(8, dtype=torch.float64))
    with _assert_unknown():
        lif_numba.backward(*args, LIFConfig(surrogate=_renamed()), True, True)
    duck = type("DuckSurrogate", (), {"name": "triangle", "alpha": 1.0})()  # not a Surrogate: never validated
    with _assert_unknown("triangle"):
        lif_numba.backward(*args, LIFConfig(surrogate=duck), False, False)


@pytest.mark.parametrize("path", ["numba", "torch"])
def test_unknown_surrogate_raises_through_lif_fused(path, monkeypatch):
    """lif_fused raises before its forward pass, and its backward raises if the name went bad after it."""
    if path == "numba" and not lif_numba.available():
        pytest.skip("numba is not installed")
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "1" if path == "numba" else "0")
    x, beta, thr = _inputs()
    with _assert_unknown():
        lif_fused(x, beta, thr, LIFConfig(surrogate=_renamed()))
    surrogate = Surrogate("atan")
    spikes = lif_fused(x, beta, thr, LIFConfig(surrogate=surrogate))
    object.__setattr__(surrogate, "name", "relu")
    with _assert_unknown():
        spikes.sum().backward()


def test_unknown_surrogate_raises_on_the_autograd_path():
    surrogate = _renamed()
    x, beta, thr = _inputs()
    with _assert_unknown():
        lif_reference(x, beta, thr, LIFConfig(surrogate=surrogate))
    with _assert_unknown():
        surrogate.derivative(torch.zeros(3))
    with _assert_unknown():
        surrogate.constants()


@needs_numba
@pytest.mark.slow
def test_compiled_backward_is_cached_on_disk(tmp_path):
    """A fresh process loads the backward kernel from Numba's on-disk cache instead of compiling it."""
    script = textwrap.dedent(
        """
        import torch
        from lightning_snn.functional import lif_numba
        from lightning_snn.functional.lif import LIFConfig
        from lightning_snn.functional.surrogates import Surrogate, definition

        cfg = LIFConfig("soft", 0.0, True, False, Surrogate("fast_sigmoid", 3.0))
        h = torch.rand(4, 2, 3)
        lif_numba.backward(h, torch.ones_like(h), h, torch.tensor(0.5), torch.tensor(1.0), cfg, True, True)
        kernel = lif_numba._backward_kernel(True, False, False, True, True, definition("fast_sigmoid").derivative)
        print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
        """
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "LIGHTNING_SNN_NUMBA": "1"}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    assert [r.stdout.split()[-2:] for r in runs] == [["0", "1"], ["1", "0"]]


@needs_numba
def test_cache_key_follows_the_definition_code():
    """The kernel closes over a copy of the definition, which Numba's cache key pickles by value: the same
    definition gives the same key in every process, an edited one a new key (no stale kernel)."""
    from numba.core.serialize import dumps

    atan = SURROGATES["atan"].derivative
    edited = types.FunctionType(_triangle.__code__, atan.__globals__, atan.__name__)
    edited.__qualname__ = atan.__qualname__
    key = dumps((lif_numba._jitable_copy(atan),))
    assert key == dumps((lif_numba._jitable_copy(atan),))
    assert key != dumps((lif_numba._jitable_copy(edited),))
