"""Device helpers shared by the fitnesses that run networks: device strings, ``auto``, mixed precision."""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Any, Iterator

import torch

__all__ = ["check_device", "auto_device", "amp_dtype", "cpu_has_native_bf16", "free_memory", "safe_mode", "in_safe_mode"]

_SAFE = contextvars.ContextVar("evonas_safe_mode", default=False)


@contextlib.contextmanager
def safe_mode(enabled: bool = True) -> Iterator[None]:
    """Evaluate with the fewest native fast paths: oneDNN off, full precision, contiguous memory layout.

    The engine retries an evaluation in safe mode when the worker process that ran it died (a crash in
    native code); fitness functions read :func:`in_safe_mode` to drop their own fast paths (the ``train``
    fitness: no autocast, no channels_last). About 1.8x slower on CPU. ``enabled=False`` changes nothing.

    Example::

        with safe_mode():
            metrics = fitness.evaluate(genome, space=space, dataset=dataset, seed=0)
    """
    if not enabled:
        yield
        return
    token, onednn = _SAFE.set(True), torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # a settable flag, typed as its descriptor
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = onednn
        _SAFE.reset(token)


def in_safe_mode() -> bool:
    """Whether the current evaluation runs in :func:`safe_mode`."""
    return _SAFE.get()


def check_device(device: Any) -> str:
    """``device`` if it is ``"auto"`` or a torch device string (``"cpu"``, ``"cuda:0"``); else ``ValueError``."""
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be 'auto' or a torch device string such as 'cpu' or 'cuda:0', got {device!r}")
    if device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be 'auto' or a torch device string, got {device!r}") from None
    return device


def auto_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def amp_dtype(amp: str, device: torch.device, *, safe: bool | None = None) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (``None``: full precision, as always in safe mode; ``safe``:
    whether to answer for safe mode, default whether this evaluation runs in it)."""
    if in_safe_mode() if safe is None else safe:
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp == "off":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


#: oneDNN's instruction sets (``ONEDNN_MAX_CPU_ISA``) below the first with bf16 dot products (AVX512_CORE_BF16)
_ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def cpu_kernels() -> str:
    """The CPU kernels torch runs here, which change results in their last digits: ATen's instruction set
    (``avx512``, ``avx2``, ``default``; ``ATEN_CPU_CAPABILITY`` lowers it) and, where the environment caps it,
    oneDNN's (``avx512/oneDNN AVX2`` under ``ONEDNN_MAX_CPU_ISA=AVX2``)."""
    try:
        capability = str(torch.backends.cpu.get_cpu_capability()).lower()
    except Exception:  # older torch: no such helper
        capability = "unknown"
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        isa = os.environ.get(name, "").strip().upper()
        if isa:
            return f"{capability}/oneDNN {isa}"  # oneDNN reads the first one set
    return capability


def cpu_has_native_bf16() -> bool:
    """Whether the CPU runs bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32.

    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) below ``AVX512_CORE_BF16``, or ``ATEN_CPU_CAPABILITY``
    below ``avx512``, makes torch emulate bf16 on such a CPU too (measured 9x slower on the quickstart under
    ``ONEDNN_MAX_CPU_ISA=AVX2``): then the answer is no.
    """
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        isa = os.environ.get(name, "").strip().upper()
        if isa:
            if isa in _ONEDNN_ISAS_WITHOUT_BF16:
                return False
            break  # oneDNN reads the first one set
    try:
        capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:  # older torch: no such helper; cpuinfo below decides
        capability = ""
    if capability and not (capability.startswith("AVX512") or "AMX" in capability):
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for check_name in checks:
        check = getattr(torch.cpu, check_name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # a private torch helper; absent or failing means "no"
            continue
    return False


def free_memory(device: torch.device) -> None:
    """Collect garbage and, on CUDA, release the cached blocks (after an out-of-memory error)."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
