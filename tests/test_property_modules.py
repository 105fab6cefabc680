"""Property-based test (issue 12): every public module, driven with random sizes, shapes, dtypes and
values, either returns a correct output (shape, floating dtype) or raises a ``ValueError`` /
``TypeError`` that names the module and the expected form, never a raw error from inside torch or numpy.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import IntegerDelayLinear
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models import ConvSNN, DelaySNN, FeedForwardSNN, PSpikeSSM, TemporalConvSNN
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF
from lightning_snn.neurons.spike_sampler import SpikeSampler

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.bool, torch.complex64]
#: Words of an error message that states the expected form.
EXPECTED_FORM = re.compile(r"expects|must be|needs|expected")


def _size(draw, allow_bad: bool):
    """A layer size: mostly a small valid integer, sometimes 0, negative, a float or a string."""
    if allow_bad and draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([0, -1, 2.5, 3.0, "3", None]))
    return draw(st.integers(1, 4))


# name -> (build(draw) -> (module, n_features, output_features or None for "(B, K)" logits))
def _lif(draw, bad):
    n = _size(draw, bad)
    return LearnableLIF(n, per_neuron=draw(st.booleans())), n, n


def _readout(draw, bad):
    n = _size(draw, bad)
    return LeakyReadout(n, learn_tau=draw(st.booleans())), n, n


def _sampler(draw, bad):
    n = _size(draw, bad)
    seed = draw(st.one_of(st.none(), st.integers(-5, 2**65))) if bad else draw(st.integers(0, 2**64 - 1))
    return SpikeSampler(n, seed=seed, eval_mode=draw(st.sampled_from(["threshold", "expectation", "sample"]))), n, n


def _delayed(draw, bad):
    i, o = _size(draw, bad), _size(draw, bad)
    return DelayedLinear(i, o, draw(st.integers(1, 4)), sigma=draw(st.one_of(st.none(), st.floats(0, 3)))), i, o


def _integer_delay(draw, bad):
    i, o, d = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return IntegerDelayLinear(torch.randn(o, i), torch.randint(0, d, (o, i)), d), i, o


def _conv(draw, bad):
    i, o = _size(draw, bad), _size(draw, bad)
    return CausalConv1d(i, o, _size(draw, bad), _size(draw, bad)), i, o


def _s4d(draw, bad):
    h = _size(draw, bad)
    return S4DLayer(h, d_state=2 * draw(st.integers(1, 3)), mode=draw(st.sampled_from(["fft", "recurrence"]))), h, h


def _mixer(draw, bad):
    h = _size(draw, bad)
    bidirectional = draw(st.booleans())
    return SpikeMixer(h, bidirectional=bidirectional), (2 * h if bidirectional else h), h


def _feedforward(draw, bad):
    i, o = _size(draw, bad), draw(st.integers(1, 3))
    readout = draw(st.sampled_from(["membrane", "spikes"]))
    return FeedForwardSNN(i, [draw(st.integers(1, 4))], o, readout=readout), i, o


def _delay_snn(draw, bad):
    i, o = _size(draw, bad), draw(st.integers(1, 3))
    return DelaySNN(i, [draw(st.integers(1, 4))], o, max_delay=draw(st.integers(1, 4))), i, o


def _temporal_conv(draw, bad):
    i, o = _size(draw, bad), draw(st.integers(1, 3))
    return TemporalConvSNN(i, [draw(st.integers(1, 4)), draw(st.integers(1, 4))], o), i, o


def _pspikessm(draw, bad):
    i, o = _size(draw, bad), draw(st.integers(1, 3))
    pool = draw(st.sampled_from(["mean", "last", "none"]))
    net = PSpikeSSM(i, o, d_model=draw(st.integers(1, 4)), d_state=2, n_layers=1, pool=pool, seed=0)
    return net, i, (o if pool == "none" else None)


MODULES = {
    "LearnableLIF": _lif,
    "LeakyReadout": _readout,
    "SpikeSampler": _sampler,
    "DelayedLinear": _delayed,
    "IntegerDelayLinear": _integer_delay,
    "CausalConv1d": _conv,
    "S4DLayer": _s4d,
    "SpikeMixer": _mixer,
    "FeedForwardSNN": _feedforward,
    "DelaySNN": _delay_snn,
    "TemporalConvSNN": _temporal_conv,
    "PSpikeSSM": _pspikessm,
}


@st.composite
def hostile_input(draw, n_features: int):
    """A tensor (sometimes a numpy array or a list) of random rank, shape, dtype and values."""
    rank = draw(st.sampled_from([3, 3, 3, 3, 1, 2, 4]))
    shape = [draw(st.integers(0, 4)) for _ in range(rank)]
    if rank == 3:
        shape[0] = draw(st.sampled_from([0, 1, 2, 5, 9]))
        shape[-1] = n_features if draw(st.integers(0, 4)) else draw(st.integers(0, 6))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.sampled_from(["spikes", "normal", "huge", "nan", "inf"]))
    x = torch.randn(shape) if values != "spikes" else torch.rand(shape).round()
    if values == "huge":
        x = x * 1e30
    elif values in ("nan", "inf") and x.numel():
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = float(values) * draw(st.sampled_from([1, -1]))
    x = x.to(dtype)
    container = draw(st.sampled_from(["tensor"] * 8 + ["numpy", "list"]))
    if container == "numpy" and dtype not in (torch.bfloat16,):
        return x.numpy()
    if container == "list":
        return x.tolist()
    return x


def _check_clear(err: Exception, name: str) -> None:
    message = str(err)
    assert isinstance(err, (ValueError, TypeError)), f"raw {type(err).__name__} from {name}: {message}"
    assert name in message or name.replace("Layer", "") in message, f"{name} not named in: {message}"
    assert EXPECTED_FORM.search(message), f"no expected form in: {message}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_gives_a_correct_output_or_a_clear_error(name):
    build = MODULES[name]

    @SETTINGS
    @given(data=st.data())
    def run(data):
        torch.manual_seed(0)
        try:
            module, n_in, n_out = build(data.draw, True)
        except (ValueError, TypeError) as err:
            _check_clear(err, name)
            return
        except Exception as err:  # noqa: BLE001 - the property: nothing else may escape
            pytest.fail(f"{name} constructor raised a raw {type(err).__name__}: {err}")
        module.train(data.draw(st.booleans()))
        x = data.draw(hostile_input(n_in))
        try:
            with warnings.catch_warnings(), torch.no_grad() if data.draw(st.booleans()) else _null():
                warnings.simplefilter("ignore")
                out = module(x)
        except (ValueError, TypeError) as err:
            _check_clear(err, name)
            return
        except Exception as err:  # noqa: BLE001
            pytest.fail(f"{name} raised a raw {type(err).__name__} for {_describe(x)}: {err}")
        steps, batch = x.shape[:2]
        expected = (batch, n_out if n_out is not None else module.n_outputs)
        expected = (steps, *expected) if n_out is not None else expected
        assert tuple(out.shape) == expected, f"{name}: output {tuple(out.shape)} for {_describe(x)}"
        assert out.is_floating_point() and out.dtype in (x.dtype, torch.float32), (name, out.dtype, x.dtype)

    run()


def test_conv_snn_gives_a_correct_output_or_a_clear_error():
    net = ConvSNN((1, 4, 4), 2, n_conv=1, channels=2, fc_hidden=3, votes=2)

    @SETTINGS
    @given(data=st.data())
    def run(data):
        shape = data.draw(
            st.one_of(
                st.tuples(st.integers(0, 3), st.integers(0, 3), st.just(1), st.just(4), st.just(4)),
                st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([16, 15])),
                st.lists(st.integers(0, 4), min_size=1, max_size=6).map(tuple),
            )
        )
        dtype = data.draw(st.sampled_from(DTYPES))
        x = torch.rand(shape).to(dtype)
        if data.draw(st.integers(0, 5)) == 0 and dtype != torch.bfloat16:
            x = x.numpy()
        net.train(data.draw(st.booleans()))
        try:
            with torch.no_grad():
                out = net(x)
        except (ValueError, TypeError) as err:
            _check_clear(err, "ConvSNN")
            return
        except Exception as err:  # noqa: BLE001
            pytest.fail(f"ConvSNN raised a raw {type(err).__name__} for {_describe(x)}: {err}")
        assert tuple(out.shape) == (shape[0], shape[1], 2) and out.dtype == torch.float32

    run()


def test_clamp_fuse_gives_a_correct_output_or_a_clear_error():
    @SETTINGS
    @given(data=st.data())
    def run(data):
        try:
            fuse = ClampFuse(_size(data.draw, True), norm=data.draw(st.sampled_from(["layer", "batch", "none"])))
        except (ValueError, TypeError) as err:
            _check_clear(err, "ClampFuse")
            return
        fuse.train(data.draw(st.booleans()))
        z = data.draw(hostile_input(fuse.d_model))
        residual = z if data.draw(st.booleans()) else data.draw(hostile_input(fuse.d_model))
        try:
            out = fuse(z, residual)
        except (ValueError, TypeError) as err:
            _check_clear(err, "ClampFuse")
            return
        except Exception as err:  # noqa: BLE001
            pytest.fail(f"ClampFuse raised a raw {type(err).__name__} for {_describe(z)}, {_describe(residual)}: {err}")
        assert out.shape == z.shape and out.is_floating_point()

    run()


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor {tuple(x.shape)} {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"ndarray {x.shape} {x.dtype}"
    return type(x).__name__


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
