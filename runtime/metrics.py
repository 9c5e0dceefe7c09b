"""Speech quality metrics: PESQ (narrow-band at 8 kHz, wide-band at 16 kHz), STOI, SI-SDR.

PESQ and STOI come from the `pesq` and `pystoi` packages (the [dev] extra); SI-SDR is
computed here.
"""
from __future__ import annotations

import numpy as np


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019)."""
    ref = np.asarray(reference, np.float64) - np.mean(reference)
    est = np.asarray(estimate, np.float64) - np.mean(estimate)
    alpha = np.dot(est, ref) / max(np.dot(ref, ref), 1e-20)
    target = alpha * ref
    return float(10 * np.log10(max(np.dot(target, target), 1e-20)
                               / max(np.dot(est - target, est - target), 1e-20)))


def pesq_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    """PESQ MOS-LQO: narrow-band at 8 kHz, wide-band at 16 kHz. NaN if PESQ cannot score it."""
    from pesq import pesq

    mode = "nb" if rate == 8000 else "wb"
    try:
        return float(pesq(rate, np.asarray(reference, np.float64), np.asarray(estimate, np.float64), mode))
    except Exception:  # pesq raises on silent or too-short input
        return float("nan")


def stoi_score(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    from pystoi import stoi

    return float(stoi(np.asarray(reference, np.float64), np.asarray(estimate, np.float64), rate))


def all_metrics(reference: np.ndarray, estimate: np.ndarray, rate: int) -> dict:
    return {"pesq": pesq_score(reference, estimate, rate),
            "stoi": stoi_score(reference, estimate, rate),
            "si_sdr": si_sdr(reference, estimate)}


def snr_band_label(lo: float, hi: float) -> str:
    """'<2.5 dB', '2.5-7.5 dB', '>=12.5 dB' for an SNR band [lo, hi)."""
    if np.isinf(lo):
        return f"<{hi:g} dB"
    if np.isinf(hi):
        return f">={lo:g} dB"
    return f"{lo:g}-{hi:g} dB"
