"""Plots people would rather look at than read: spectrograms and quality versus cost."""
from __future__ import annotations

import numpy as np

from runtime import dsp


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spectrograms(path, clean, outputs: dict, spec, title=""):
    """One row per signal: clean, noisy, baseline and each model, in dB, same colour scale."""
    plt = _pyplot()
    signals = {"clean": clean, **outputs}
    fig, axes = plt.subplots(len(signals), 1, figsize=(9, 1.8 * len(signals)), sharex=True)
    for ax, (name, audio) in zip(np.atleast_1d(axes), signals.items()):
        mag = 20 * np.log10(np.abs(dsp.stft(audio, spec)) + 1e-6).T
        extent = [0, len(audio) / spec.sample_rate, 0, spec.sample_rate / 2000]
        ax.imshow(mag, origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=20, cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quality_vs_cost(path, result):
    """PESQ gain over the noisy input against multiply-accumulates per second of audio."""
    plt = _pyplot()
    base = result["summary"]["noisy"]["all"]["pesq"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, macs_per_second in result["cost"].items():
        if not macs_per_second:
            continue
        gain = result["summary"][name]["all"]["pesq"] - base
        per_s = macs_per_second / 1e6
        ax.scatter(per_s, gain, s=40)
        ax.annotate(name, (per_s, gain), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.axhline(result["summary"]["wiener"]["all"]["pesq"] - base, color="grey", ls="--", label="Wiener baseline")
    ax.set_xscale("log")
    ax.set_xlabel("M multiply-accumulates per second of audio")
    ax.set_ylabel("PESQ gain over noisy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
