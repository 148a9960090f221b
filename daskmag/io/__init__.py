"""Sources and outputs behind one interface each.

==========================  ==================================================
module                      job
==========================  ==================================================
:mod:`.base`                the :class:`Reader` interface, :class:`VideoInfo`, the registry
:mod:`.source`              :func:`open_video`, :func:`probe`
:mod:`.ffmpeg`              video files through FFmpeg (PyAV): probe, seek, decode
:mod:`.zarr_store`          Zarr stores in and out
:mod:`.output`              the :class:`Writer` interface; parallel, resumable :func:`write_video`
:mod:`.encode`              H.264 and FFV1 outputs: parts and their join
:mod:`.images`              image sequences and TIFF stacks (tifffile; PNG through FFmpeg)
:mod:`.photron`             Photron ``.mraw`` + ``.cih``/``.cihx`` (pyMRAW)
:mod:`.phantom`             Phantom ``.cine`` (pycine-lite)
:mod:`.tiff`                TIFF-sequence output
==========================  ==================================================
"""

from .base import READERS, Reader, Video, VideoInfo, file_stamp, reader_for, register_reader
from .ffmpeg import CODEC_THREADS, FFmpegReader, read_frames
from .zarr_store import STORE_SUFFIX, ZarrReader, ZarrWriter
from .output import (Writer, check_output, ingest, output_suffixes, partial_path, parts_folder,
                     register_writer, write_video, writer_for)
from .encode import ENCODERS, EncodedWriter, VideoWriter, join_parts, write_array
from .source import open_video, probe
from . import images, phantom, photron, tiff  # noqa: F401,E402  (they register themselves)

__all__ = [
    "CODEC_THREADS", "ENCODERS", "EncodedWriter", "FFmpegReader", "READERS", "Reader", "STORE_SUFFIX", "Video",
    "VideoInfo", "VideoWriter", "Writer", "ZarrReader", "ZarrWriter", "check_output", "file_stamp", "ingest",
    "join_parts", "open_video", "output_suffixes", "partial_path", "parts_folder", "probe", "read_frames",
    "reader_for", "register_reader", "register_writer", "write_array", "write_video", "writer_for",
]
