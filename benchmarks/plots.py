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
    """PESQ gain over the noisy input against CPU milliseconds per second of audio, one
    point per system (ours, the Wiener baseline and the peers, timed in the same run), with
    the Pareto front drawn: the systems no other beats on both quality and cost."""
    plt = _pyplot()
    base = result["summary"]["noisy"]["all"]["pesq"]
    points = [(name, cost, result["summary"][name]["all"]["pesq"] - base)
              for name, cost in result.get("cpu_ms_per_second", {}).items() if cost > 0]
    peers = set(result.get("peers", []))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, cost, gain in points:
        kind = "peer" if name in peers else "baseline" if name == "wiener" else "ours"
        style = {"peer": dict(marker="s", color="tab:orange"), "baseline": dict(marker="x", color="grey"),
                 "ours": dict(marker="o", color="tab:blue")}[kind]
        ax.scatter(cost, gain, s=45, **style)
        ax.annotate(name, (cost, gain), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = pareto_front([(c, g) for _, c, g in points])
    if len(front) > 1:
        ax.plot(*zip(*front), color="tab:green", lw=1, ls="--", label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("CPU ms per second of audio (one thread, this run)")
    ax.set_ylabel("PESQ gain over noisy")
    ax.set_title("ours (circles), peers (squares), Wiener (cross)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pareto_front(points):
    """The (cost, gain) points that no other point beats on both: cheaper-or-equal and
    better-or-equal, sorted by cost."""
    front, best = [], -np.inf
    for cost, gain in sorted(points, key=lambda p: (p[0], -p[1])):
        if gain > best:
            front.append((cost, gain))
            best = gain
    return front
