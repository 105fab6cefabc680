"""Contract tests of the upstream behaviour lightning_snn.data relies on beyond public APIs.

Each test is named after its seam, so that an upstream release that changes the behaviour fails a test
that says which of our overrides to revisit:

- tonic: a dataset's ``__init__`` calls the private ``_check_exists()`` and ``download()`` when it is false
  (overridden by ``lightning_snn.data.event_frames.LocalFiles``);
- Lightning: ``UnrepeatedDistributedSampler`` lives in ``lightning.pytorch.overrides`` (not public API);
  ``lightning_snn.data.loaders`` now has its own, on torch's public ``DistributedSampler``, which must
  keep partitioning exactly as Lightning's did (that Lightning keeps a loader's own ``DistributedSampler``
  under DDP is its documented ``use_distributed_sampler`` behaviour, run end to end by tests/test_ddp.py);
- multiprocessing: ``multiprocessing.util.Finalize`` (undocumented) closes each DataLoader worker's
  HDF5 handle in ``lightning_snn.data.shd.HeidelbergFile.handle``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
from pathlib import Path

import pytest
import tonic

from lightning_snn.data import event_frames
from lightning_snn.data.loaders import UnrepeatedDistributedSampler

TONIC_DATASETS = [
    (tonic.datasets.NMNIST, {"train": True}, event_frames.NMNIST),
    (tonic.datasets.NMNIST, {"train": False}, event_frames.NMNIST),
    (tonic.datasets.DVSGesture, {"train": True}, event_frames.DVSGesture),
    (tonic.datasets.CIFAR10DVS, {}, event_frames.CIFAR10DVS),
]


class DownloadCalled(Exception):
    pass


def probe_class(tonic_class: type, present: bool, calls: list) -> type:
    """A subclass named like ``tonic_class`` (tonic puts files under ``save_to/<class name>``) that records
    what tonic's ``__init__`` calls and the attributes ``LocalFiles`` reads at that moment."""

    def _check_exists(self) -> bool:
        calls.append(("_check_exists", self.location_on_system, self.folder_name, self.filename, self.url))
        return present

    def download(self) -> None:
        calls.append(("download",))
        raise DownloadCalled

    return type(tonic_class.__name__, (tonic_class,), {"_check_exists": _check_exists, "download": download})


@pytest.mark.parametrize("tonic_class, kwargs, ours", TONIC_DATASETS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("present", [True, False], ids=["present", "absent"])
def test_seam_tonic_check_exists_is_called_by_dataset_init(tmp_path, tonic_class, kwargs, ours, present):
    assert "_check_exists" in vars(tonic.Dataset)  # the hook we override is tonic's own
    assert issubclass(ours, event_frames.LocalFiles) and ours.__name__ == tonic_class.__name__
    assert ours.__mro__.index(event_frames.LocalFiles) < ours.__mro__.index(tonic_class)  # ours wins
    calls: list = []
    probe = probe_class(tonic_class, present, calls)
    if present:
        dataset = probe(str(tmp_path), **kwargs)
        assert calls[1:] == [] and dataset.data == [] and dataset.targets == []
    else:
        with pytest.raises(DownloadCalled):
            probe(str(tmp_path), **kwargs)
        assert calls[1:] == [("download",)]
    # _check_exists is called once, first, with the attributes LocalFiles reads already set
    name, location, folder, filename, url = calls[0]
    assert name == "_check_exists" and location == str(tmp_path / tonic_class.__name__)
    assert isinstance(folder, str) and isinstance(filename, str) and filename and isinstance(url, str) and url


def test_seam_tonic_reads_recordings_from_the_folder_local_files_checks(tmp_path):
    """With ``_check_exists()`` true, tonic lists the recordings under ``location_on_system/folder_name``
    (``data``: their paths, ``targets``: their labels) — what ``EventFramesDataModule.frames`` reads."""
    recording = Path(tmp_path, "NMNIST", "Train", "3", "00000.bin")
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"")
    dataset = event_frames.NMNIST(str(tmp_path), train=True)  # LocalFiles: one .bin is enough
    assert Path(dataset.location_on_system, dataset.folder_name) == tmp_path / "NMNIST" / "Train"
    assert [Path(p) for p in dataset.data] == [recording] and list(dataset.targets) == [3]
    assert event_frames.NMNIST.sensor_size == (34, 34, 2)


@pytest.mark.parametrize("n, world", [(1, 1), (5, 2), (8, 4), (37, 3), (37, 4), (2, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_seam_lightning_unrepeated_distributed_sampler(n, world, shuffle):
    """Our sampler replaced Lightning's private one; it partitions the indices exactly as that one did."""
    overrides = pytest.importorskip("lightning.pytorch.overrides.distributed")
    reference = getattr(overrides, "UnrepeatedDistributedSampler", None)
    if reference is None:
        pytest.skip("Lightning no longer has UnrepeatedDistributedSampler; ours stands alone")
    for rank in range(world):
        # seed=0: Lightning shuffles with seed = epoch, ours with seed + epoch (torch's convention)
        theirs = reference(range(n), num_replicas=world, rank=rank, shuffle=shuffle)
        ours = UnrepeatedDistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle)
        for sampler in (theirs, ours):
            sampler.set_epoch(1)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def _register_finalizer(marker: str) -> None:
    class Handle:
        pass

    handle = Handle()
    multiprocessing.util.Finalize(handle, Path(marker).write_text, args=("closed",), exitpriority=10)
    globals()["_keep_alive"] = handle  # alive until the process exits, like an open HDF5 handle


def test_seam_multiprocessing_finalize_runs_when_a_worker_process_exits(tmp_path):
    """``HeidelbergFile.handle`` registers ``Finalize(..., exitpriority=10)`` in each DataLoader worker;
    multiprocessing must run it when the worker process ends."""
    marker = tmp_path / "closed.txt"
    process = multiprocessing.get_context().Process(target=_register_finalizer, args=(str(marker),))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0 and marker.read_text() == "closed"
