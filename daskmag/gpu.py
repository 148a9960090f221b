"""GPUs: usable devices, a dask-cuda cluster, kernel placement, device-shaped blocks.

``daskmag magnify --accel cuda`` runs the same graph as on the CPU; only the
kernel tasks change place:

* **Devices.** :func:`usable_devices` asks CUDA for devices it can use
  (``import cupy`` succeeds on machines without a GPU, so the module alone
  proves nothing).  :func:`cuda_client` starts a local
  ``dask_cuda.LocalCUDACluster``, one worker process per GPU (``--gpus N``
  or a device list), or connects to ``--scheduler``, whose GPU workers are
  started with ``dask cuda worker SCHEDULER --resources GPU=1``.
* **Placement.** Kernel tasks carry the Dask resource ``GPU=1``
  (:data:`KERNEL_RESOURCES`; :func:`kernel_annotation` in the graph
  builders), so they run only on GPU workers, one at a time per GPU, while
  decoding and encoding run on any thread (CPU workers, or a GPU worker's
  other threads) alongside.  The writers turn the frames into one delayed
  task per block, which drops layer annotations; :func:`kernel_placement`
  gives the scheduler the same resources key by key.
* **Worker setup in one place.** :class:`GPUWorkerSetup`, a worker plugin:
  one memory pool (CuPy's own, or RMM where the worker was started with an
  RMM pool and CuPy allocating from it: never both), CuPy's FFT plan cache
  sized for the pyramid's band shapes (:func:`fft_plan_count`), and the
  kernels' working sizes for a device (:data:`DEVICE_KERNEL_BYTES`).
* **Transfers.** :class:`DeviceKernel` wraps a NumPy kernel: the block goes
  to the device through a reused pinned host buffer, the kernel runs on the
  CuPy array, the result comes back the same way.  Blocks stay NumPy in the
  graph, so readers and writers are unchanged.
* **A plan shaped for the device.** :func:`device_execution` fills in whole
  frames (no tiles) and hundreds of frames per block, sized from the
  device's free memory (and the host's), for :func:`daskmag.plan.plan_job`.

Status: this path has not yet run on a GPU (no GPU was lent to the session
that wrote it), so :func:`check_opt_in` refuses ``--accel cuda`` unless the
user sets ``DASKMAG_UNVERIFIED_GPU=1``; ``benchmarks/gpu_check.sh`` is the
one command that verifies it (see ``docs/gpu.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import threading
from collections import defaultdict

from distributed.diagnostics.plugin import WorkerPlugin

from .errors import UserError, warn

#: Set to True once ``benchmarks/gpu_check.sh`` has passed on a real GPU.
GPU_VERIFIED = False
#: Environment variable that opts in to the GPU path while it is unverified.
UNVERIFIED_ENV = "DASKMAG_UNVERIFIED_GPU"
#: The Dask resource that GPU workers carry and kernel tasks need.
RESOURCE = "GPU"
KERNEL_RESOURCES = {RESOURCE: 1}

#: Device bytes per pixel per frame of a kernel block, planned with room to
#: spare: RGB in and out (6), the phase increments of all bands (~3.3
#: coefficients per pixel, float16 or float32: 7 or 13), were the core
#: frames' complex coefficients kept between passes (complex64: 26); the
#: per-batch temporaries and cuFFT work areas come out of the unplanned
#: share of the memory (:data:`DEVICE_MEMORY_FRACTION`).
GPU_BYTES_PER_PIXEL_FRAME = 48
#: Share of a device's free memory a block may plan for.
DEVICE_MEMORY_FRACTION = 0.6
#: Frames per block on a device: at most (the host holds a window of blocks
#: in flight, decoded and encoded) and, by default, at least.
GPU_MAX_BLOCK_FRAMES = 512
GPU_MIN_BLOCK_FRAMES = 64
#: Host bytes per pixel per frame of a block in flight: RGB in and out.
HOST_BYTES_PER_PIXEL_FRAME = 6
#: Share of the host's memory the blocks in flight may take.
HOST_MEMORY_FRACTION = 0.5
#: Tile tried when whole frames do not fit a device (8K and above).
DEVICE_TILE = 2048
#: Working sizes of the kernels on a device, set in GPU worker processes
#: only (:class:`GPUWorkerSetup`): the CPU values keep a thread's working
#: set in its caches, a GPU wants few, large launches.  Names absent from the
#: module are skipped (and reported).
DEVICE_KERNEL_BYTES = {
    "daskmag.kernels.phase": {"BATCH_BYTES": 2**30, "STRIP_BYTES": 2**30},
}

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- devices


def _cupy():
    """``cupy`` if it imports, else None (it imports without a GPU too)."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install
        return None
    return cupy


def device_problem() -> str | None:
    """Why this process cannot use a CUDA device, or None if it can.

    A device is usable when CuPy imports, CUDA counts at least one device,
    and one can be asked for its free memory (which creates a context).
    """
    cupy = _cupy()
    if cupy is None:
        return "CuPy is not installed (pip install 'daskmag[cuda]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        return f"CUDA finds no device ({_one_line(exc)})"
    if count < 1:
        return "CUDA finds no device"
    try:
        with cupy.cuda.Device(0):
            cupy.cuda.runtime.memGetInfo()
    except Exception as exc:
        return f"the CUDA device cannot be used ({_one_line(exc)})"
    return None


def _one_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def usable_devices() -> list[int]:
    """Device numbers of the CUDA devices this process can use ([] without one)."""
    if device_problem() is not None:
        return []
    return list(range(_cupy().cuda.runtime.getDeviceCount()))


def select_devices(gpus, available: list[int]) -> list[int]:
    """The devices ``--gpus`` asks for among ``available``.

    Parameters
    ----------
    gpus : int, tuple of int or None
        A count (the first N), device numbers, or None (all).
    available : list of int

    Raises
    ------
    UserError
        More GPUs, or a device number, than there are.
    """
    if gpus is None:
        return list(available)
    if isinstance(gpus, int):
        if gpus > len(available):
            raise UserError(f"--gpus {gpus} asks for more GPUs than the {len(available)} usable here")
        return list(available[:gpus])
    missing = [d for d in gpus if d not in available]
    if missing:
        raise UserError(f"--gpus: no usable GPU numbered {','.join(map(str, missing))} "
                        f"(usable: {','.join(map(str, available)) or 'none'})")
    return list(gpus)


def check_opt_in() -> None:
    """Refuse the GPU path while it is unverified, unless the user opted in.

    With ``DASKMAG_UNVERIFIED_GPU=1`` it prints one warning line instead.

    Raises
    ------
    UserError
        Not verified and not opted in.
    """
    if GPU_VERIFIED:
        return
    if os.environ.get(UNVERIFIED_ENV, "").strip() not in ("1", "yes", "true"):
        raise UserError(f"--accel cuda is not available yet: its GPU path has not been verified on a GPU; "
                        f"set {UNVERIFIED_ENV}=1 to run it unverified, or use --accel cpu")
    warn(f"--accel cuda runs an unverified GPU path ({UNVERIFIED_ENV}=1): "
         f"check its output against --accel cpu")


def check_local_devices(gpus=None) -> list[int]:
    """The local devices ``--accel cuda`` will use, before any work.

    Raises
    ------
    UserError
        No usable device, dask-cuda missing, or ``gpus`` asking for more.
    """
    problem = device_problem()
    if problem is not None:
        raise UserError(f"--accel cuda needs a usable CUDA GPU: {problem}")
    try:
        import dask_cuda  # noqa: F401
    except Exception as exc:
        raise UserError(f"--accel cuda needs dask-cuda (pip install 'daskmag[cuda]'): {_one_line(exc)}") from None
    return select_devices(gpus, usable_devices())


# --------------------------------------------------------------------------- cluster


def gpu_threads(n_devices: int) -> int:
    """Threads of each local GPU worker: one runs the kernels (``GPU=1``), the
    others decode and encode alongside; the host's cores shared between GPUs."""
    from .cluster import default_workers

    return max(2, default_workers() // max(1, n_devices))


@contextlib.contextmanager
def cuda_client(gpus=None, scheduler: str | None = None, *, quiet: bool = False, timeout: str = "10s"):
    """A ``distributed.Client`` whose kernel tasks run on GPUs.

    Without ``scheduler``: a ``dask_cuda.LocalCUDACluster`` on the devices
    ``gpus`` selects (:func:`select_devices`), one worker process per GPU,
    each with the resource ``GPU=1`` and :func:`gpu_threads` threads.  With
    ``scheduler``: a client of it, which must have at least one worker with
    the resource ``GPU`` (``dask cuda worker ADDRESS --resources GPU=1``).
    Every worker gets :class:`daskmag.cluster.WorkerSetup`; GPU workers get
    :class:`GPUWorkerSetup` from :func:`setup_gpu_workers`.

    Raises
    ------
    UserError
        No usable device here, no GPU worker behind ``scheduler``, an
        unreachable scheduler.
    """
    from distributed import Client

    from .cluster import WORKER_ENVIRON, WorkerSetup, _QuietUserErrors

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    else:
        devices = check_local_devices(gpus)
        import dask
        from dask_cuda import LocalCUDACluster

        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.update(WORKER_ENVIRON)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=devices,
                threads_per_worker=gpu_threads(len(devices)),
                resources=dict(KERNEL_RESOURCES),
                silence_logs=logging.ERROR,
                dashboard_address=":8787",
            )
        client = Client(cluster)
    quiet_user_errors = _QuietUserErrors()
    logging.getLogger("distributed.worker").addFilter(quiet_user_errors)
    try:
        if scheduler and not gpu_workers(client):
            raise UserError(f"the Dask scheduler at {scheduler} has no GPU worker: start them with "
                            f"`dask cuda worker {scheduler} --resources {RESOURCE}=1`")
        client.register_plugin(WorkerSetup())
        if not quiet:
            print(f"dashboard: {client.dashboard_link}", file=sys.stderr)
        yield client
    finally:
        logging.getLogger("distributed.worker").removeFilter(quiet_user_errors)
        client.close()
        if cluster is not None:
            cluster.close()


def gpu_workers(client) -> list[str]:
    """Addresses of the workers that carry the ``GPU`` resource."""
    workers = client.scheduler_info(n_workers=-1)["workers"] if _takes_n_workers(client) \
        else client.scheduler_info()["workers"]
    return sorted(address for address, info in workers.items()
                  if info.get("resources", {}).get(RESOURCE, 0) >= 1)


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def device_memory(client) -> tuple[int, int]:
    """``(GPU workers, free bytes of the fullest device)`` behind ``client``, before any work.

    Raises
    ------
    UserError
        No GPU worker, or one that cannot use its device.
    """
    workers = gpu_workers(client)
    if not workers:
        raise UserError(f"the cluster has no GPU worker (resource {RESOURCE}); start them with "
                        f"`dask cuda worker SCHEDULER --resources {RESOURCE}=1`")
    states = client.run(worker_device_state, workers=workers)
    for address, state in states.items():
        if state.get("problem"):
            raise UserError(f"the GPU worker {address} cannot use its GPU: {state['problem']}")
    return len(workers), min(int(state["free"]) for state in states.values())


def setup_gpu_workers(client, fft_plans: int = 64) -> dict:
    """Register :class:`GPUWorkerSetup` on the cluster; return each GPU worker's :func:`worker_device_state`."""
    workers = gpu_workers(client)
    client.register_plugin(GPUWorkerSetup(fft_plans=fft_plans))
    return client.run(worker_device_state, workers=workers) if workers else {}


# --------------------------------------------------------------------------- worker setup

#: What :class:`GPUWorkerSetup` and :class:`DeviceKernel` did in this process.
DEVICE_STATE: dict = {"kernel_calls": 0, "peak_pool_bytes": 0}
_state_lock = threading.Lock()


class GPUWorkerSetup(WorkerPlugin):
    """Set up a GPU worker for daskmag's kernels, in one place.

    * one memory pool: CuPy's default pool, unless CuPy already allocates
      from RMM (a worker started with ``--rmm-pool-size``), which is kept;
    * CuPy's FFT plan cache holds ``fft_plans`` plans (the pyramid's band
      shapes, forward and inverse, full and last batches: :func:`fft_plan_count`),
      per kernel thread (the cache is per thread: :class:`DeviceKernel` sizes it);
    * the kernels' working sizes for a device (:data:`DEVICE_KERNEL_BYTES`),
      in this worker process only.

    A worker without a usable device records why and is otherwise left alone.
    """

    name = "daskmag-gpu-setup"
    idempotent = False  # a new job may bring another pyramid: re-run setup

    def __init__(self, fft_plans: int = 64):
        self.fft_plans = int(fft_plans)

    def setup(self, worker):
        problem = device_problem()
        DEVICE_STATE["problem"] = problem
        if problem is not None:
            return
        import cupy

        allocator = cupy.cuda.get_allocator()
        owner = getattr(allocator, "__module__", "") or getattr(getattr(allocator, "__self__", None),
                                                                "__module__", "")
        if "rmm" in str(owner):
            DEVICE_STATE["pool"] = "rmm"  # the worker's RMM pool serves CuPy: do not add a second pool
        else:
            cupy.cuda.set_allocator(cupy.get_default_memory_pool().malloc)
            DEVICE_STATE["pool"] = "cupy"
        cupy.cuda.set_pinned_memory_allocator(cupy.get_default_pinned_memory_pool().malloc)
        DEVICE_STATE["fft_plans"] = self.fft_plans
        DEVICE_STATE["fft_memsize"] = int(cupy.cuda.runtime.memGetInfo()[1] // 8)
        DEVICE_STATE["tuning"] = apply_kernel_tuning()


def apply_kernel_tuning(tuning: dict = DEVICE_KERNEL_BYTES) -> dict:
    """Set the kernels' working sizes for a device in this process; return what was set."""
    import importlib

    applied = {}
    for module_name, values in tuning.items():
        module = importlib.import_module(module_name)
        for name, value in values.items():
            if hasattr(module, name):
                setattr(module, name, value)
                applied[f"{module_name}.{name}"] = value
            else:
                applied[f"{module_name}.{name}"] = None  # renamed in the kernel: reported, not set
    return applied


def worker_device_state() -> dict:
    """This process's device state (for ``client.run``): free and total memory, pool, counters."""
    state = {key: value for key, value in DEVICE_STATE.items()}
    cupy = _cupy()
    if cupy is not None and state.get("problem") is None:
        try:
            state["free"], state["total"] = (int(v) for v in cupy.cuda.runtime.memGetInfo())
            state["name"] = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
        except Exception as exc:  # noqa: BLE001 - reported
            state["problem"] = _one_line(exc)
    return state


# --------------------------------------------------------------------------- transfers


_buffers = threading.local()  # per thread: the cuFFT plan cache's size (the cache is per thread)
#: The process's pinned staging buffers, one per direction, grown as needed
#: and reused; one transfer at a time uses them (a GPU worker runs one kernel
#: at a time, ``GPU=1``), so a worker's many threads do not each pin a block.
_staging: dict = {}
_staging_lock = threading.Lock()


def _pinned(key: str, nbytes: int):
    """The pinned host buffer ``key`` of at least ``nbytes`` (hold ``_staging_lock``)."""
    import cupyx

    buffer = _staging.get(key)
    if buffer is None or buffer.nbytes < nbytes:
        _staging[key] = None  # back to CuPy's pinned pool before the larger one is taken
        buffer = _staging[key] = cupyx.empty_pinned((max(nbytes, 1),), dtype="uint8")
    return buffer


def to_device(cupy, array):
    """A CuPy copy of the NumPy ``array``, staged through the process's reused pinned buffer."""
    import numpy as np

    array = np.ascontiguousarray(array)
    out = cupy.empty(array.shape, dtype=array.dtype)
    with _staging_lock:
        staging = _pinned("upload", array.nbytes)[: array.nbytes].view(array.dtype).reshape(array.shape)
        np.copyto(staging, array)
        out.set(staging)
        cupy.cuda.get_current_stream().synchronize()  # the buffer is reused by the next transfer
    return out


def to_host(cupy, array):
    """A NumPy copy of the CuPy ``array``, through the process's reused pinned buffer."""
    import numpy as np

    array = cupy.ascontiguousarray(array)
    with _staging_lock:
        staging = _pinned("download", array.nbytes)[: array.nbytes].view(array.dtype).reshape(array.shape)
        array.get(out=staging)
        cupy.cuda.get_current_stream().synchronize()
        return np.array(staging, copy=True)


class DeviceKernel:
    """A block kernel that runs on this worker's GPU: NumPy blocks in and out.

    The NumPy arrays among the positional arguments go to the device
    (:func:`to_device`), ``kernel`` runs on them (the kernels pick CuPy from
    their input, :func:`daskmag.kernels.backend.array_module`) and its result
    comes back (:func:`to_host`).  Keywords pass through unchanged.

    Raises
    ------
    UserError
        The task runs on a worker without a usable device (a GPU worker
        must carry the resource ``GPU``; see :func:`cuda_client`).
    """

    def __init__(self, kernel):
        from dask.utils import has_keyword

        self.kernel = kernel
        self.block_info = has_keyword(kernel, "block_info")
        self.__name__ = getattr(kernel, "__name__", "kernel")

    def __dask_tokenize__(self):  # deterministic graph keys: an interrupted run resumes
        from dask.base import tokenize

        return ("daskmag.gpu.DeviceKernel", tokenize(self.kernel))

    def __call__(self, *blocks, block_info=None, **kwargs):
        import numpy as np

        cupy = _cupy()
        problem = DEVICE_STATE.get("problem", "unset")
        if problem == "unset":
            problem = DEVICE_STATE["problem"] = device_problem()
        if problem is not None or cupy is None:
            raise UserError(f"a GPU kernel task ran on a worker without a usable GPU ({problem}); "
                            f"start GPU workers with `dask cuda worker ... --resources {RESOURCE}=1`")
        _size_plan_cache(cupy)
        args = [to_device(cupy, b) if isinstance(b, np.ndarray) else b for b in blocks]
        if self.block_info:
            kwargs["block_info"] = block_info
        out = to_host(cupy, self.kernel(*args, **kwargs))
        pool = cupy.get_default_memory_pool()
        with _state_lock:
            DEVICE_STATE["kernel_calls"] += 1
            DEVICE_STATE["peak_pool_bytes"] = max(DEVICE_STATE["peak_pool_bytes"], int(pool.total_bytes()))
        return out


def _size_plan_cache(cupy):
    """Size this thread's cuFFT plan cache as :class:`GPUWorkerSetup` asked (once per thread)."""
    wanted = (DEVICE_STATE.get("fft_plans"), DEVICE_STATE.get("fft_memsize"))
    if wanted[0] is None or getattr(_buffers, "plan_cache", None) == wanted:
        return
    cache = cupy.fft.config.get_plan_cache()
    cache.set_size(wanted[0])
    if wanted[1]:
        cache.set_memsize(wanted[1])
    _buffers.plan_cache = wanted


def on_device(kernel, device: str = "cpu"):
    """``kernel`` itself on the CPU, :class:`DeviceKernel` of it for ``device="cuda"``."""
    return DeviceKernel(kernel) if device == "cuda" else kernel


# --------------------------------------------------------------------------- placement


def kernel_annotation(resources: dict | None):
    """Context for the graph builders' kernel layers: ``dask.annotate(resources=...)`` or nothing."""
    import dask

    return dask.annotate(resources=dict(resources)) if resources else contextlib.nullcontext()


def kernel_keys(collection) -> set:
    """Output keys of the layers of ``collection`` annotated with resources (the kernel tasks)."""
    keys = set()
    for layer in collection.__dask_graph__().layers.values():
        if (layer.annotations or {}).get("resources"):
            keys.update(layer.get_output_keys())
    return keys


@contextlib.contextmanager
def kernel_placement(collection, resources: dict | None = None):
    """Keep the kernel tasks of ``collection`` on GPU workers through the writers.

    The writers make one delayed task per block from an optimised graph,
    which keeps neither layers nor their annotations; this gives the
    scheduler the resources key by key instead (a global annotation whose
    value is a function of the key; only stdlib objects travel to the
    scheduler) and stops the optimiser from fusing tasks, which would give
    a kernel task another key (the graph then keeps its small getitem and
    overlap tasks; a GPU run has few, large blocks).  Use it around
    :func:`daskmag.io.write_video`.
    """
    import dask

    keys = kernel_keys(collection)
    if not keys:
        yield
        return
    resources = dict(resources or KERNEL_RESOURCES)
    table = defaultdict(dict, {key: resources for key in keys})
    # no fusing: a fused task gets a new key (e.g. colour-reduce-getitem-overlap-...) outside the table
    unfused = {"optimization.annotations.fuse": False, "optimization.fuse.active": False}
    with dask.config.set(unfused), dask.annotate(resources=table.__getitem__):
        yield


# --------------------------------------------------------------------------- plan


def fft_plan_count(shape: tuple[int, int], spec=None) -> int:
    """cuFFT plans a kernel block uses: its distinct transform shapes, forward
    and inverse, for a full and a last (shorter) batch of frames, plus room."""
    from .kernels.pyramid import PyramidSpec, pyramid_filters

    spec = spec or PyramidSpec()
    if spec.kind == "riesz":
        return 64
    filters = pyramid_filters(tuple(shape), spec)
    shapes = {band.shape for band in filters.bands} | {filters.lowpass.shape, tuple(shape)}
    return 2 * 2 * len(shapes) + 8


def host_memory() -> int:
    """This machine's memory, in bytes."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - psutil comes with distributed; be safe
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """What :func:`device_time_chunk` decided for one device.

    Attributes
    ----------
    time_chunk : int
        A block's own frames.
    tile : int
        0 for whole frames, else the tile size in pixels.
    block_frames : int
        Frames a kernel call holds, halos included.
    device_bytes : int
        Planned device memory of one kernel call.
    """

    time_chunk: int
    tile: int
    block_frames: int
    device_bytes: int


def device_time_chunk(n_frames: int, height: int, width: int, halo: int, device_free: int, *,
                      n_devices: int = 1, host_bytes: int | None = None, blocks_in_flight: int = 8,
                      time_chunk: int | None = None, tile: int | None = None,
                      bytes_per_pixel_frame: int = GPU_BYTES_PER_PIXEL_FRAME,
                      fraction: float = DEVICE_MEMORY_FRACTION, max_frames: int = GPU_MAX_BLOCK_FRAMES,
                      min_frames: int = GPU_MIN_BLOCK_FRAMES) -> DevicePlan:
    """Frames per block and tiling for a GPU: whole frames, hundreds of frames.

    A block (its frames and both halos) must fit ``fraction`` of the
    device's free memory at ``bytes_per_pixel_frame``; the blocks in flight
    (decoded, waiting, encoded) must fit :data:`HOST_MEMORY_FRACTION` of the
    host's; a short clip is split so that every device gets a block.  Frames
    are whole unless not even ``min_frames`` of them (and the halos) fit a
    device, then tiles of :data:`DEVICE_TILE` (or smaller) are used.

    Parameters
    ----------
    n_frames, height, width : int
        The clip as the kernels see it.
    halo : int
        The temporal filter's reach, frames each side.
    device_free : int
        Free memory of the smallest device, bytes.
    n_devices : int
    host_bytes : int, optional
        The host's memory (default: this machine's).
    blocks_in_flight : int
        Blocks the writer keeps submitted at once.
    time_chunk, tile : int, optional
        The user's choice, kept.

    Returns
    -------
    DevicePlan
    """
    host_bytes = host_memory() if host_bytes is None else host_bytes
    budget = int(device_free * fraction)

    def fits(pixels: int) -> int:
        return budget // max(1, bytes_per_pixel_frame * pixels) - 2 * halo

    def tile_pixels(size: int) -> int:  # a tile with its margins (daskmag.plan.TILE_MARGIN each side)
        return height * width if not size else (min(size, height) + 128) * (min(size, width) + 128)

    if tile is None:
        tile = 0
        need = min(min_frames, n_frames)
        side = DEVICE_TILE
        while fits(tile_pixels(tile)) < need and side >= 256:
            tile, side = side, side // 2
    pixels = tile_pixels(tile)
    if time_chunk is None:
        host_cap = int(host_bytes * HOST_MEMORY_FRACTION) // max(
            1, blocks_in_flight * HOST_BYTES_PER_PIXEL_FRAME * height * width) - 2 * halo
        chunk = min(fits(pixels), host_cap, max_frames)
        chunk = max(chunk, halo, 8)
        chunk = min(chunk, max(1, math.ceil(n_frames / max(1, n_devices))))
        time_chunk = max(int(chunk), 1)
    block = min(n_frames, time_chunk + 2 * halo)
    return DevicePlan(int(time_chunk), int(tile), int(block), int(block * pixels * bytes_per_pixel_frame))


def device_execution(execution, settings, band, n_frames: int, height: int, width: int,
                     device_free: int | None, *, n_devices: int = 1, blocks_in_flight: int = 8):
    """``execution`` with the time chunk and tile of a GPU plan filled in (those the user gave are kept).

    The hook of :func:`daskmag.plan.plan_job` for ``device="cuda"``.  Without
    the device's free memory (before the cluster is up) a 16 GiB device is
    assumed, which only the pre-flight checks see.
    """
    from .settings import ColourSettings

    if isinstance(settings, ColourSettings):
        temporal = settings.temporal_filter(band)
        halo = max(temporal.halo_before, temporal.halo_after)
    else:
        temporal, reference = settings.temporal_filters(band)
        filters = [temporal] + ([reference] if reference is not None else [])
        halo = max(max(f.halo_before, f.halo_after) for f in filters)
    plan = device_time_chunk(n_frames, height, width, halo, device_free or 16 * 2**30, n_devices=n_devices,
                             blocks_in_flight=blocks_in_flight, time_chunk=execution.time_chunk,
                             tile=execution.tile if not isinstance(settings, ColourSettings) else 0)
    return dataclasses.replace(execution, time_chunk=plan.time_chunk, tile=plan.tile)


__all__ = [
    "DEVICE_KERNEL_BYTES", "DevicePlan", "DeviceKernel", "GPUWorkerSetup", "GPU_VERIFIED", "KERNEL_RESOURCES",
    "RESOURCE", "UNVERIFIED_ENV", "check_local_devices", "check_opt_in", "cuda_client", "device_execution",
    "device_memory", "device_problem", "device_time_chunk", "fft_plan_count", "gpu_workers", "kernel_annotation",
    "kernel_keys", "kernel_placement", "on_device", "select_devices", "setup_gpu_workers", "usable_devices",
    "worker_device_state",
]
