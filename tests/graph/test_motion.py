"""The lazy Dask layer: graph shape, overlap, chunk invariance, argument checks."""

import dask
import dask.array as da
import numpy as np
import pytest

from conftest import BAND, FPS
from daskmag.errors import UserError
from daskmag.io import open_video
from daskmag.graph.motion import magnify_motion, pyramid_bands
from daskmag.kernels.phase import magnify_block
from daskmag.plan import plan_time_chunks
from daskmag.settings import Band, MotionSettings


def check_band(alpha, low, high, fps, taps=None):
    MotionSettings(alpha=alpha, taps=taps)
    Band(low, high, fps).at_rate(fps)
from daskmag.kernels.colourspace import luma
from daskmag.kernels.temporal import design_bandpass


def test_result_is_lazy_and_one_task_per_block(clip_file):
    video = open_video(clip_file, chunk_frames=40)
    out = magnify_motion(video, 10, *BAND, time_chunk=40, staged=False)
    assert isinstance(out, da.Array)
    assert out.shape == (120, 128, 128, 3) and out.dtype == np.uint8
    assert out.chunks[0] == (40, 40, 40)
    magnify_layers = [layer for name, layer in out.dask.layers.items() if name.startswith("magnify-motion")]
    assert len(magnify_layers) == 1 and len(magnify_layers[0]) == 3  # one fused task per block


def test_time_chunk_size_does_not_change_the_output(texture_clip):
    outputs = [
        magnify_motion(da.from_array(texture_clip), 10, *BAND, FPS, time_chunk=chunk).compute(scheduler="sync")
        for chunk in (None, 30, 47)
    ]
    for other in outputs[1:]:
        assert np.abs(other.astype(int) - outputs[0]).max() <= 1


def test_one_and_two_worker_processes_give_the_same_output(clip_file):
    from distributed import Client, LocalCluster

    results = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            out = magnify_motion(open_video(clip_file), 10, *BAND, time_chunk=40)
            results.append(client.compute(out).result())
    assert np.abs(results[0].astype(int) - results[1]).max() <= 1


def test_halo_is_half_the_taps(texture_clip, monkeypatch):
    """Each block's kernel gets taps // 2 frames of each neighbour (predicted at the clip's ends)."""
    import daskmag.graph.motion as graph

    halo = len(design_bandpass(*BAND, FPS)) // 2
    calls = []

    def recording(block, temporal, alpha, spec, start, stop, **kwargs):
        calls.append((block.shape[0], start, stop, kwargs["pad_before"], kwargs["pad_after"]))
        return magnify_block(block, temporal, alpha, spec, start, stop, **kwargs)

    monkeypatch.setattr(graph, "magnify_block", recording)
    out = magnify_motion(texture_clip, 10, *BAND, FPS, time_chunk=40, staged=False).compute(scheduler="sync")
    assert out.shape == texture_clip.shape
    assert sorted(calls) == sorted([(40 + halo, 0, 40, halo, 0), (40 + 2 * halo, halo, halo + 40, 0, 0),
                                    (40 + halo, halo, halo + 40, 0, halo)])


@pytest.mark.parametrize(
    "alpha,low,high,fps,taps,message",
    [
        (float("nan"), 3, 7, 60, None, "alpha"),
        (float("inf"), 3, 7, 60, None, "alpha"),
        (10, 7, 3, 60, None, "below"),
        (10, 5, 5, 60, None, "below"),
        (10, 0, 7, 60, None, "above 0"),
        (10, -1, 7, 60, None, "above 0"),
        (10, 72, 92, 29.97, None, "Nyquist.*band below 14.985 Hz"),
        (10, 3, 7, 60, 2, "3 taps"),
    ],
)
def test_bad_settings(alpha, low, high, fps, taps, message):
    with pytest.raises(UserError, match=message):
        check_band(alpha, low, high, fps, taps)


def test_bad_arrays():
    with pytest.raises(UserError, match="RGB"):
        magnify_motion(np.zeros((10, 32, 32), np.uint8), 10, *BAND, FPS)
    with pytest.raises(UserError, match="uint8"):
        magnify_motion(np.zeros((10, 32, 32, 3), np.float32), 10, *BAND, FPS)
    with pytest.raises(UserError, match="too small"):
        magnify_motion(np.zeros((10, 8, 8, 3), np.uint8), 10, *BAND, FPS)
    with pytest.raises(UserError, match=r"8 frames at 60 fps .* one period .*\(7 Hz"):
        magnify_motion(np.zeros((8, 32, 32, 3), np.uint8), 10, *BAND, FPS)


def test_pyramid_bands_are_lazy_and_agree_with_pyrtools(texture_clip):
    pt = pytest.importorskip("pyrtools")
    frames = da.from_array(texture_clip[:20], chunks=(8, -1, -1, -1))
    bands = pyramid_bands(frames)
    assert len(bands) == 4 * 5
    frame = luma(texture_clip[5]).astype(np.float64)
    reference = pt.pyramids.SteerablePyramidFreq(frame, order=3, is_complex=True).pyr_coeffs
    for band, array in bands:
        assert isinstance(array, da.Array) and array.dtype == np.complex64
        assert array.chunks[0] == (8, 8, 4)
        ref = reference[(band.level, band.orientation)]
        assert array.shape[1:] == ref.shape  # pyrtools' layout: level k sampled every 2**k pixels
        mine = array[5].compute(scheduler="sync") * (frame.size / ref.size) * (-1j) ** 3
        assert np.abs(mine - ref).max() < 1e-3 * np.abs(ref).max()


def test_tiled_pyramid_bands_are_chunked_by_tiles_and_match_whole_frames():
    from daskmag.synthetic import translating_clip

    clip = translating_clip(4, 256, 384, FPS, ((0.1, 5.0),), seed=5)
    whole = pyramid_bands(clip)
    tiled = pyramid_bands(clip, tile=128, tile_margin=64)
    assert len(tiled) == len(whole)
    for (band, a), (_, b) in zip(whole, tiled):
        step = 2**band.level
        assert b.chunks[1:] == ((128 // step,) * 2, (128 // step,) * 3)
        if band.level <= 2:  # filters that fit in the 64-pixel margin (coarser ones reach past it)
            a, b = a.compute(scheduler="sync"), b.compute(scheduler="sync")
            assert np.abs(a - b).max() < 0.025 * np.abs(a).max()


def test_different_settings_make_different_tasks(texture_clip):
    """Keys hash the settings: two magnifications in one graph never share results."""
    frames = da.from_array(texture_clip, chunks=(60, -1, -1, -1))
    strong = magnify_motion(frames, 10, *BAND, FPS)
    none = magnify_motion(frames, 0, *BAND, FPS)
    assert strong.name != none.name
    a, b = dask.compute(strong, none, scheduler="sync")
    assert np.array_equal(b, texture_clip) and not np.array_equal(a, texture_clip)


def test_tiled_and_whole_frame_outputs_agree():
    from daskmag.synthetic import translating_clip

    clip = translating_clip(60, 256, 384, FPS, ((0.1, 5.0),), seed=5)
    whole = magnify_motion(clip, 10, *BAND, FPS).compute(scheduler="threads")
    tiled = magnify_motion(clip, 10, *BAND, FPS, tile=128, tile_margin=64)
    assert tiled.chunks[1:3] == ((128, 128), (128, 128, 128))
    difference = np.abs(tiled.compute(scheduler="threads").astype(int) - whole)
    assert np.percentile(difference, 99.9) <= 1
    assert np.abs(whole.astype(int) - clip).max() > 10  # it did magnify


def test_tiles_bound_the_block_size():
    from daskmag.plan import auto_tile

    assert auto_tile(1080, 1920) == 512 and auto_tile(192, 432) is None and auto_tile(1080, 1920, 0) is None
    frames = da.zeros((600, 1080, 1920, 3), dtype=np.uint8, chunks=(10, -1, -1, -1))
    out = magnify_motion(frames, 10, *BAND, FPS, tile=512)
    assert max(out.chunks[1]) <= 512 + 64 and max(out.chunks[2]) <= 512 + 64
    assert len(out.chunks[0]) > 1


def test_riesz_pyramid_through_the_graph(texture_clip, grating_clip):
    """--pyramid riesz: the fast kernel behind the same graph, chunking-independent, gains as measured on the kernel."""
    from conftest import IN_BAND, OUT_OF_BAND
    from daskmag.kernels.pyramid import PyramidSpec
    from daskmag.measure import motion_gain

    riesz = PyramidSpec("riesz")
    one = magnify_motion(texture_clip, 10, *BAND, FPS, pyramid=riesz).compute(scheduler="threads")
    blocks = magnify_motion(da.from_array(texture_clip, chunks=(30, -1, -1, -1)), 10, *BAND, FPS, pyramid=riesz,
                            time_chunk=30)
    assert len(blocks.chunks[0]) > 1
    many = blocks.compute(scheduler="threads")
    assert np.abs(one.astype(int) - many).max() <= 1
    assert np.array_equal(magnify_motion(texture_clip, 0, *BAND, FPS, pyramid=riesz).compute(), texture_clip)
    gains = motion_gain(grating_clip, magnify_motion(grating_clip, 10, *BAND, FPS, pyramid=riesz).compute(),
                        [IN_BAND, OUT_OF_BAND], FPS, trim=5)
    assert abs(gains[0] - 11) < 0.03 * 11 and abs(gains[1] - 1) < 0.03
    texture_gain = motion_gain(texture_clip, one, [IN_BAND], FPS, trim=5)[0]
    assert 0.7 * 11 < texture_gain < 11 * 1.03  # the finest octave is not magnified: see kernels/riesz.py
    with pytest.raises(UserError, match="no"):
        pyramid_bands(texture_clip, riesz)


def count_calls(monkeypatch, module, name, measure):
    """Wrap ``module.name`` so that each call appends ``measure(*args, **kwargs)`` to the returned list."""
    calls, real = [], getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(measure(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def _whole_clip_reference(clip, alpha=10, **settings):
    """The fused kernel on the whole clip in one block: nothing shared between blocks."""
    return magnify_motion(clip, alpha, *BAND, FPS, staged=False, **settings).compute(scheduler="sync")


def test_staged_graph_analyses_each_frame_once(texture_clip, monkeypatch):
    """The default multi-block graph: every frame goes through the pyramid's analysis
    once (plus the frame before each chunk boundary, for the step across it), where
    the fused kernel analyses each block's halo frames again; the output agrees
    within 1 grey level."""
    import daskmag.kernels.phase as phase

    analysed = count_calls(monkeypatch, phase, "band_increments",
                           lambda rgb, *args, before=None, **kwargs: rgb.shape[0] + (before is not None))
    out = magnify_motion(texture_clip, 10, *BAND, FPS, time_chunk=16)
    assert any(name.startswith("analyse-chunk") for name in out.dask.layers)
    assert out.chunks[0] == (16,) * 7 + (8,)
    result = out.compute(scheduler="threads")
    assert sum(analysed) == len(texture_clip) + 7 and len(analysed) == 8
    monkeypatch.undo()
    reference = _whole_clip_reference(texture_clip)
    assert np.abs(result.astype(int) - reference).max() <= 1
    assert np.abs(result.astype(int) - texture_clip).max() > 10  # it did magnify


@pytest.mark.parametrize("groups,keep", [((2, 2, 2, 2), False), ((3, 3, 2), True), ((8,), True)])
def test_staged_groups_reach_their_halos_across_chunks(texture_clip, groups, keep):
    """Stage 2 groups of chunks shorter than the filter's halo (27 frames here) take the
    halo from as many neighbouring chunks as it spans: any grouping gives the same frames."""
    from daskmag.graph.motion import _magnify_staged
    from daskmag.kernels.phase import coefficient_count
    from daskmag.kernels.pyramid import PyramidSpec
    from daskmag.plan import StagedPlan

    settings = MotionSettings(alpha=10)
    temporal, reference = settings.temporal_filters(Band(*BAND, FPS))
    assert temporal.halo_before > 16
    staged = StagedPlan((16,) * 7 + (8,), groups, temporal.halo_before, temporal.halo_after,
                        coefficient_count((128, 128), PyramidSpec()), 64 + 2 * temporal.halo_before, "float32", keep,
                        min_strips=3)
    out = _magnify_staged(da.from_array(texture_clip, chunks=(16, -1, -1, -1)), staged, PyramidSpec(), temporal,
                          reference, settings).compute(scheduler="threads")
    assert np.abs(out.astype(int) - _whole_clip_reference(texture_clip)).max() <= 1


def test_staged_graph_with_sigma_and_attenuation_matches_the_fused_kernel():
    from daskmag.synthetic import translating_clip

    clip = translating_clip(90, 64, 96, FPS, ((0.1, 5.0), (0.1, 15.0)), seed=2)
    settings = dict(sigma=2.0, attenuate_other=True)
    staged = magnify_motion(clip, 10, *BAND, FPS, time_chunk=30, **settings)
    assert any(name.startswith("analyse-chunk") for name in staged.dask.layers)
    difference = np.abs(staged.compute(scheduler="threads").astype(int) - _whole_clip_reference(clip, **settings))
    assert difference.max() <= 1


def test_alpha_zero_through_the_staged_graph_returns_every_frame_unchanged():
    """Frames by content: each frame carries its number; alpha 0 returns them all, in order."""
    rng = np.random.default_rng(4)
    clip = np.repeat(rng.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8), 100, axis=0)
    clip[:, 0, :8, 0] = np.arange(100)[:, None]  # the frame number, stamped
    out = magnify_motion(clip, 0, *BAND, FPS, time_chunk=12)
    assert any(name.startswith("analyse-chunk") for name in out.dask.layers)
    result = out.compute(scheduler="threads")
    assert np.array_equal(result[:, 0, 0, 0], np.arange(100))
    assert np.array_equal(result, clip)


def test_writing_a_staged_graph_analyses_each_chunk_once(tmp_path, monkeypatch):
    """Blocks are written a window at a time; a filter group reaches into its neighbours'
    chunks, and the writer holds those shared stage-1 results until the last block that
    uses them is submitted, so none is released and recomputed (without the window: 68
    analyses of 40 chunks here; with the window alone: up to 46)."""
    from distributed import Client, LocalCluster

    import daskmag.kernels.phase as phase
    from daskmag.io import write_video
    from daskmag.synthetic import translating_clip

    from daskmag.io import write_array

    calls = count_calls(monkeypatch, phase, "analyse_chunk", lambda rgb, *args, **kwargs: rgb.shape[0])
    clip = translating_clip(400, 48, 64, FPS, ((0.1, 5.0),), seed=1)
    # from a file, as the command reads: a NumPy array embedded in the graph is
    # occasionally computed again by a later submission that carries it too
    write_array(clip, tmp_path / "in.mkv", FPS)
    out = magnify_motion(open_video(tmp_path / "in.mkv", chunk_frames=10), 10, *BAND, FPS, time_chunk=10)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        write_video(out, tmp_path / "out.mkv", FPS, client=client)
    assert len(out.chunks[0]) == 40
    assert len(calls) == 40, f"{len(calls)} chunk analyses for 40 chunks"
    assert np.array_equal(open_video(tmp_path / "out.mkv").frames.compute(), out.compute(scheduler="threads"))


@pytest.mark.parametrize("time_chunk", [None, 40])
def test_a_file_is_decoded_once_and_each_chunk_analysed_once(tmp_path, monkeypatch, time_chunk):
    """Through the command's path, on a real encoded file with 12-frame groups of pictures:
    reads start on key frames and serve one chunk each, and nothing is read or analysed
    twice (before: 1.9x the frames read and 9 of 42 chunks analysed twice at 128x128)."""
    from distributed import Client, LocalCluster

    import daskmag.io.ffmpeg as ffmpeg
    import daskmag.kernels.phase as phase
    from daskmag.io import write_array
    from daskmag.run import magnify_file
    from daskmag.synthetic import translating_clip

    clip = translating_clip(600, 64, 64, FPS, ((0.1, 5.0),), seed=3)
    clip[:, 0, :4, 0] = (np.arange(600) % 256)[:, None]  # the frame number, stamped
    source = tmp_path / "in.mkv"
    write_array(clip, source, FPS)
    from daskmag.io.base import reader_for

    assert reader_for(source).key_frames()[:3] == [0, 12, 24]
    reads = count_calls(monkeypatch, ffmpeg, "read_frames", lambda path, start, stop, *args, **kwargs: stop - start)
    analyses = count_calls(monkeypatch, phase, "analyse_chunk", lambda rgb, *args, **kwargs: rgb.shape[0])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        magnify_file(source, tmp_path / "out.mkv", alpha=0, low=BAND[0], high=BAND[1], time_chunk=time_chunk,
                     client=client, progress=False, quiet=True)
    assert sum(reads) == 600, f"{sum(reads)} frames read for 600"
    assert sum(analyses) == 600 and sorted(analyses) == sorted(reads)  # a read per chunk
    if time_chunk:  # several filter groups: reads of whole 12-frame groups of pictures, as chunks
        assert len(analyses) >= 15 and set(reads) == {36} | {600 % 36}
    out = open_video(tmp_path / "out.mkv").frames.compute()
    assert np.array_equal(out[:, 0, 0, 0], np.arange(600) % 256)  # every frame once, in order
