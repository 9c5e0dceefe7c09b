"""The field's denoisers as benchmark peers: aligned, same length and rate, removing noise."""
import json

import numpy as np
import pytest

from benchmarks import latency, peers, quality
from runtime.errors import DenoiseError
from runtime.example_audio import noisy_example
from runtime.metrics import si_sdr
from runtime.stream import default_model_path

from .conftest import SHARED_DATA, needs_metrics, needs_shared


def loaded_peer(name):
    notes = []
    found = peers.load_peers([name], note=notes.append)
    if not found:
        pytest.skip(notes[0])
    return found[0]


@pytest.mark.parametrize("name", list(peers.PEERS))
@pytest.mark.parametrize("rate", [16000, 8000, 44100])
def test_peer_output_is_aligned_same_length_and_less_noisy(name, rate):
    peer = loaded_peer(name)
    noisy, clean = noisy_example(rate, 2.0, snr_db=5.0, seed=2)
    result = peer.run(noisy, rate)
    out = result.audio
    assert out.shape == noisy.shape and np.all(np.isfinite(out))
    corr = np.correlate(out, clean, "full")
    assert int(np.argmax(corr)) - (len(clean) - 1) == 0  # its own delay removed
    assert si_sdr(clean, out) > si_sdr(clean, noisy) + 3
    assert result.cpu_seconds > 0 and result.seconds_of_audio == pytest.approx(2.0, rel=1e-3)


def test_peer_lists_parse_and_unknown_names_are_an_error():
    assert peers.parse_peers("all") == list(peers.PEERS)
    assert peers.parse_peers("none") == [] and peers.parse_peers(None) == []
    assert peers.parse_peers("gtcrn, dtln,gtcrn") == ["gtcrn", "dtln"]
    with pytest.raises(DenoiseError, match="unknown peer nope"):
        peers.parse_peers("dtln,nope")


def test_a_peer_whose_files_are_missing_is_skipped_with_a_note(tmp_path):
    notes = []
    assert peers.load_peers(["dtln", "gtcrn"], tmp_path, note=notes.append) == []
    assert len(notes) == 2 and all("not found" in n for n in notes)


def test_latency_unknown_peer_is_a_clear_error(capsys):
    assert latency.main([str(default_model_path()), "--peers", "dtln,bogus", "--seconds", "1"]) == 1
    assert "unknown peer bogus" in capsys.readouterr().err


def test_latency_times_ours_and_the_peers_in_one_run(tmp_path, capsys):
    available = [n for n in peers.PEERS if peers.load_peers([n])]
    if "dtln-quant" not in available:
        pytest.skip("DTLN-quant not available here (../shared/peers/dtln)")
    out = tmp_path / "lat.json"
    model = default_model_path()
    assert latency.main([str(model), "--peers", "all", "--seconds", "1", "--rounds", "1",
                         "--json", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    labels = {peers.PEERS[n].label for n in available}
    assert set(rows) == {model.name} | labels
    assert all(r["cpu_ms_per_audio_second"] > 0 for r in rows.values())
    text = capsys.readouterr().out
    assert "vs DTLN-quant" in text and "| DTLN (dynamic int8) | 1 | 16000 | 8 |" in text
    assert "1.00x" in text  # the reference against itself


@needs_metrics
@needs_shared("paired_16k", "voicebank_demand")
def test_quality_scores_the_peers_beside_ours_on_voicebank(tmp_path, capsys):
    """A row per peer in the table, JSON and plot; the authors' models improve PESQ on
    real noisy recordings at 16 kHz."""
    available = [n for n in peers.PEERS if peers.load_peers([n])]
    if not available:
        pytest.skip("no peer can run here")
    data = SHARED_DATA / "paired_16k" / "voicebank_demand"
    out = tmp_path / "q.json"
    model = default_model_path()
    assert quality.main([str(model), "--data", str(data), "--limit", "6", "--score-rate", "16000",
                         "--peers", ",".join(available), "--json", str(out), "--plots", str(tmp_path / "p")]) == 0
    result = json.loads(out.read_text())
    labels = [peers.PEERS[n].label for n in available]
    assert result["peers"] == labels
    summary = result["summary"]
    for label in labels:
        assert summary[label]["all"]["pesq"] > summary["noisy"]["all"]["pesq"], label
        assert result["cpu_ms_per_second"][label] > 0
    assert set(result["per_file"][0]) >= set(labels)
    text = capsys.readouterr().out
    assert all(f"| {label} |" in text for label in labels)
    assert (tmp_path / "p" / "quality_vs_cost.png").stat().st_size > 1000


def test_pareto_front_keeps_only_the_undominated_points():
    from benchmarks.plots import pareto_front

    points = [(10, 0.3), (20, 0.2), (15, 0.4), (50, 0.5), (60, 0.45)]
    assert pareto_front(points) == [(10, 0.3), (15, 0.4), (50, 0.5)]
