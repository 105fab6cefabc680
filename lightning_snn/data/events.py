r"""Pure NumPy functions (and two frozen transforms) that turn event recordings into dense frames.

**Spike trains** (SHD / SSC: times in seconds, unit indices). Unit :math:`u \in [0, U)` is pooled into
channel :math:`c = \lfloor u\,C / U \rfloor` (sum-pooling of adjacent units, 700 → 140 as in the DCLS
delay papers) and time :math:`t` into step

.. math::
    k = \lfloor t\,T / D \rfloor \ \ (\text{``n_steps``: } T \text{ bins over } D), \qquad
    k = \lfloor t / \Delta t \rfloor \ \ (\text{``dt``: the "raw" variable-length variant}),

where :math:`D` is a fixed ``duration`` or, when ``duration=None``, the sample's own last spike time
(that spike lands in the last bin). Frame :math:`F[k, c]` counts the events, so ``F.sum()`` equals the
number of events inside the window; events at :math:`t \ge D` (fixed duration) are dropped.

**Camera events** (N-MNIST, DVS Gesture, CIFAR10-DVS): :class:`EventFrames` runs tonic's
``Downsample(spatial_factor)``, then counts events into ``T`` frames ``(T, P, H, W)``:

- ``split_by="time"`` (default): ``T`` equal time bins from the first to the last event — tonic's
  ``ToFrame(n_time_bins=T)`` but keeping the last event, which tonic drops (:func:`accumulate_frames`);
- ``split_by="number"``: ``T`` slices of equal event *counts*, in recording order, the last one taking the
  remainder — SpikingJelly's ``integrate_events_by_fixed_frames_number(split_by='number')``, which PLIF's
  logged runs use (:func:`accumulate_frames_by_count`).

**Bad input, the choices made.** Negative timestamps raise ``ValueError``. Unsorted timestamps are
accepted: binning by time does not depend on event order, so an unsorted recording gives exactly the
frames of its sorted copy (no sort is needed, and none is done); ``split_by="number"`` slices the events
in the order they are stored, as SpikingJelly does. Coordinates outside the sensor raise
``ValueError``. An empty recording gives all-zero frames (``T`` steps; one step in ``dt`` mode).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def check_timestamps(times: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if any timestamp is negative or not finite."""
    if times.size and (not np.isfinite(times).all() or times.min() < 0):
        bad = times[~np.isfinite(times) | (times < 0)][0]
        raise ValueError(
            f"{where}: timestamps must be finite and >= 0, found {bad!r}. "
            "Fix or drop the recording (shift times so the first event is at t >= 0)."
        )


def pool_units(units: np.ndarray, n_units: int, n_channels: int, where: str = "events") -> np.ndarray:
    """Channel index ``floor(u * n_channels / n_units)`` of every unit (sum-pooling adjacent units)."""
    if not 1 <= n_channels <= n_units:
        raise ValueError(f"n_channels must be in [1, {n_units}], got {n_channels}.")
    units = np.asarray(units)
    if units.dtype.kind not in "iub":
        if units.dtype.kind != "f":
            raise ValueError(f"{where}: unit indices have dtype {units.dtype}; expected integers in [0, {n_units}).")
        bad = ~np.isfinite(units) | (units != np.round(units))
        if bad.any():
            raise ValueError(
                f"{where}: unit index {units[bad][0]} is not a whole number; expected integer unit indices in "
                f"[0, {n_units}). Units are never truncated: fix the recording (write units as integers)."
            )
    units = units.astype(np.int64)
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise ValueError(
            f"{where}: unit indices must be in [0, {n_units}), found range [{units.min()}, {units.max()}]."
        )
    return units * n_channels // n_units


def time_bins(
    times: np.ndarray, n_steps: int | None, duration: float | None, dt: float | None
) -> tuple[np.ndarray, int]:
    """Step index of every event and the number of steps (see the module docstring)."""
    if (n_steps is None) == (dt is None):
        raise ValueError(f"Give exactly one of n_steps (fixed T) or dt (raw variant); got n_steps={n_steps}, dt={dt}.")
    times = np.asarray(times, dtype=np.float64)
    if dt is not None:
        if not dt > 0:
            raise ValueError(f"dt must be > 0 seconds, got {dt}.")
        steps = max(1, math.floor(times.max() / dt) + 1) if times.size else 1
        if duration is not None:
            steps = max(1, math.ceil(duration / dt))
        return np.floor(times / dt).astype(np.int64), steps
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    span = duration if duration is not None else (times.max() if times.size else 0.0)
    if span <= 0:  # empty recording or all events at t = 0
        return np.zeros(times.shape, dtype=np.int64), n_steps
    k = np.floor(times * n_steps / span).astype(np.int64)
    if duration is None:
        k = np.minimum(k, n_steps - 1)  # the last spike defines the span and closes the last bin
    return k, n_steps


def bin_spike_train(
    times: np.ndarray,
    units: np.ndarray,
    n_units: int,
    n_channels: int,
    n_steps: int | None = None,
    duration: float | None = None,
    dt: float | None = None,
    where: str = "events",
) -> np.ndarray:
    """Counts ``(T, n_channels)`` (float32) of a spike train; see the module docstring."""
    times = np.asarray(times, dtype=np.float64)
    if np.shape(units) != times.shape or times.ndim != 1:
        raise ValueError(
            f"{where}: {times.shape} timestamps but {np.shape(units)} unit indices; expected two 1-d arrays of "
            "equal length (one time and one unit per spike; in SHD/SSC spikes/times[i] and spikes/units[i]). "
            "The recording is corrupt: fix or replace the file."
        )
    check_timestamps(times, where)
    channels = pool_units(units, n_units, n_channels, where)
    steps, n = time_bins(times, n_steps, duration, dt)
    keep = steps < n
    if duration is not None:  # dt mode rounds the window up to ceil(D/dt) bins: still drop t >= D
        keep &= times < duration
    flat = steps[keep] * n_channels + channels[keep]
    return np.bincount(flat, minlength=n * n_channels).reshape(n, n_channels).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpikeTrainBinning:
    """Transform ``(times [s], units) → (T, n_channels)`` counts; the fields form the cache key."""

    n_units: int = 700
    n_channels: int = 140
    n_steps: int | None = 100
    duration: float | None = None
    dt: float | None = None

    def __post_init__(self) -> None:
        pool_units(np.zeros(0), self.n_units, self.n_channels)
        time_bins(np.zeros(0), self.n_steps, self.duration, self.dt)
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be > 0 seconds or None (the sample's own), got {self.duration}.")

    def __call__(self, times: np.ndarray, units: np.ndarray, where: str = "events") -> np.ndarray:
        return bin_spike_train(times, units, self.n_units, self.n_channels, self.n_steps, self.duration, self.dt, where)


#: How :class:`EventFrames` cuts a recording into frames.
SPLIT_BY = ("time", "number")


@dataclasses.dataclass(frozen=True)
class EventFrames:
    """Camera events → ``(T, P, H, W)`` float32 counts: tonic ``Downsample``, then :func:`accumulate_frames`
    (``split_by="time"``) or :func:`accumulate_frames_by_count` (``split_by="number"``).

    ``sensor_size`` is tonic's ``(W, H, P)`` of the raw sensor; frames are ``spatial_factor`` times smaller.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int = 10
    spatial_factor: float = 1.0
    split_by: str = "time"

    def __post_init__(self) -> None:
        if self.n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {self.n_time_bins}.")
        if self.split_by not in SPLIT_BY:
            raise ValueError(
                f"split_by must be one of {SPLIT_BY} (equal time bins, or equal event counts as PLIF's runs), "
                f"got {self.split_by!r}."
            )
        if not 0 < self.spatial_factor <= 1:
            raise ValueError(f"spatial_factor must be in (0, 1], got {self.spatial_factor}.")
        object.__setattr__(self, "sensor_size", tuple(int(s) for s in self.sensor_size))

    @property
    def frame_size(self) -> tuple[int, int, int]:
        """Downsampled ``(W, H, P)``."""
        w, h, p = self.sensor_size
        return math.ceil(w * self.spatial_factor), math.ceil(h * self.spatial_factor), p

    def output_shape(self) -> tuple[int, int, int, int]:
        w, h, p = self.frame_size
        return self.n_time_bins, p, h, w

    def __call__(self, events: np.ndarray, where: str = "events") -> np.ndarray:
        from tonic.transforms import Downsample

        if len(events) == 0:
            return np.zeros(self.output_shape(), dtype=np.float32)
        check_timestamps(events["t"].astype(np.float64), where)
        w, h, p = self.sensor_size
        for key, size in (("x", w), ("y", h), ("p", p)):
            if events[key].min() < 0 or events[key].max() >= max(size, 2 if key == "p" else size):
                raise ValueError(
                    f"{where}: event {key} must be in [0, {size}) for sensor size {self.sensor_size}, found range "
                    f"[{events[key].min()}, {events[key].max()}]. Is this a recording of this dataset?"
                )
        if self.spatial_factor != 1:
            events = Downsample(spatial_factor=self.spatial_factor)(events)
        if self.split_by == "number":
            return accumulate_frames_by_count(events, self.frame_size, self.n_time_bins)
        return accumulate_frames(events, self.frame_size, self.n_time_bins)


def accumulate_frames(events: np.ndarray, frame_size: tuple[int, int, int], n_time_bins: int) -> np.ndarray:
    r"""``(T, P, H, W)`` event counts, ``T`` equal bins from the first to the last event (included).

    Bin :math:`k = \min(\lfloor (t - t_0) T / (t_{last} - t_0) \rfloor, T - 1)`. tonic's
    ``ToFrame(n_time_bins)`` floors the bin width to whole time units and so drops the last event (and
    every event when the span is shorter than ``T`` units); here every event is counted.
    """
    w, h, p = frame_size
    t = events["t"].astype(np.float64)
    span = t.max() - t.min()
    k = np.zeros(len(t), dtype=np.int64) if span == 0 else np.floor((t - t.min()) * n_time_bins / span).astype(np.int64)
    k = np.minimum(k, n_time_bins - 1)
    frames = np.zeros((n_time_bins, p, h, w), dtype=np.float32)
    pol = events["p"].astype(np.int64) if p > 1 else np.zeros(len(t), dtype=np.int64)
    np.add.at(frames, (k, pol, events["y"].astype(np.int64), events["x"].astype(np.int64)), 1)
    return frames


def count_slices(n_events: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Event index ranges ``[j_l, j_r)`` of the ``n_frames`` slices of equal counts.

    :math:`j_l = i \lfloor N/T \rfloor`, :math:`j_r = j_l + \lfloor N/T \rfloor`, and the last slice
    ends at :math:`N` (it takes the remainder): SpikingJelly's ``cal_fixed_frames_number_segment_index``
    with ``split_by='number'`` (``spikingjelly/datasets/utils.py``; the same in the 2020
    ``integrate_events_to_frames`` PLIF used). With fewer events than frames, all fall in the last slice.
    """
    step = n_events // n_frames
    left = np.arange(n_frames, dtype=np.int64) * step
    right = left + step
    right[-1] = n_events
    return left, right


def accumulate_frames_by_count(events: np.ndarray, frame_size: tuple[int, int, int], n_frames: int) -> np.ndarray:
    """``(T, P, H, W)`` event counts over ``T`` slices of equal event counts in recording order
    (:func:`count_slices`); polarity 0 goes to channel 0 and any other to channel 1, as in SpikingJelly."""
    w, h, p = frame_size
    frames = np.zeros((n_frames, p, h, w), dtype=np.float32)
    left, right = count_slices(len(events), n_frames)
    k = np.repeat(np.arange(n_frames), right - left)
    pol = (events["p"] != 0).astype(np.int64) if p > 1 else np.zeros(len(events), dtype=np.int64)
    np.add.at(frames, (k, pol, events["y"].astype(np.int64), events["x"].astype(np.int64)), 1)
    return frames
