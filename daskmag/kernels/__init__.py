"""Pure array kernels: NumPy on the CPU, CuPy on the GPU, no Dask inside.

============================  ===============================================
module                        job
============================  ===============================================
:mod:`.backend`               array namespaces, the spots the standard lacks
:mod:`.angle`                 atan2 and the phase step, vectorised for NumPy
:mod:`.colourspace`           RGB <-> YIQ (NTSC), as MIT's rgb2ntsc
:mod:`.pyramid`               complex steerable pyramid (frequency domain)
:mod:`.temporal`              temporal band-pass filters of a signal's increments
:mod:`.phase`                 phase-based motion magnification of one block
:mod:`.riesz`                 the same with a Riesz pyramid (fast approximation)
:mod:`.linear`                linear colour magnification of one block
:mod:`.spatial`               resizing, a region's blend weights
============================  ===============================================

Each kernel takes whatever array it is given and picks the matching
namespace, as dask-image does: the array API standard's
(:func:`.backend.namespace`; tested on ``array_api_strict`` arrays), with
the spots the standard lacks in :mod:`.backend`.  :mod:`.annotate` and
:mod:`.spatial` build small host-side NumPy arrays.  The graph builders in
:mod:`daskmag.graph` map the kernels over Dask arrays.
"""
