import json

import pytest

from runtime.errors import SpecError
from runtime.spec import SPEC_VERSION, FeatureSpec, preset


def test_presets_match_the_paper_and_the_seed():
    p = preset("paper8k")
    assert (p.sample_rate, p.n_fft, p.hop, p.context_frames, p.n_bins) == (8000, 256, 64, 8, 129)
    s = preset("seed16k")
    assert (s.sample_rate, s.n_fft, s.hop, s.context_frames) == (16000, 256, 64, 8)
    assert p.latency_samples == 192


def test_spec_round_trips_through_json_with_statistics():
    spec = preset("paper8k", feature_mean=[0.1 * i for i in range(129)],
                  feature_std=[1 + 0.01 * i for i in range(129)], model_kind="crnn",
                  state_shapes={"h": [1, 8]})
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec
    # float16 storage keeps the statistics to ~3 significant digits
    assert abs(again.feature_mean[100] - 10.0) < 0.01


def test_newer_spec_version_is_refused():
    data = json.loads(preset("paper8k").to_json())
    data["version"] = SPEC_VERSION + 1
    with pytest.raises(SpecError, match="newer"):
        FeatureSpec.from_json(json.dumps(data))


def test_lookahead_adds_a_hop_of_latency_per_frame_and_round_trips():
    spec = preset("wide16k", model_kind="crnn", context_frames=1, lookahead_frames=1)
    assert spec.latency_samples == 512 - 128 + 128 and spec.analysis_delay_samples == 384
    assert FeatureSpec.from_json(spec.to_json()).lookahead_frames == 1
    assert preset("wide16k").latency_samples == 384  # 24 ms without


@pytest.mark.parametrize("bad", ['{"n_fft": 256, "hop": 100}', '{"window": "kaiser"}', "[1]",
                                 "not json", '{"surprise": 1}', '{"feature_mean": [1, 2]}',
                                 '{"lookahead_frames": -1}', '{"lookahead_frames": 2}',
                                 '{"lookahead_frames": 1.5}', '{"lookahead_frames": true}'])
def test_malformed_specs_are_refused(bad):
    with pytest.raises(SpecError):
        FeatureSpec.from_json(bad)


def test_run_time_settings_round_trip_default_and_are_checked():
    from runtime.spec import RUN_TIME_DEFAULTS

    spec = preset("wide16k", run_time={"postfilter": "none", "min_gain_db": None})
    again = FeatureSpec.from_json(spec.to_json())
    assert again.run_time == {"postfilter": "none", "min_gain_db": None}
    assert again.setting("postfilter") == "none" and again.setting("min_gain_db") is None
    assert again.setting("postfilter_floor_db") == RUN_TIME_DEFAULTS["postfilter_floor_db"]
    # a version-1 spec (every file exported before run_time) loads with the defaults
    old = json.loads(preset("paper8k").to_json())
    old.pop("run_time")
    old["version"] = 1
    loaded = FeatureSpec.from_json(json.dumps(old))
    assert {k: loaded.setting(k) for k in RUN_TIME_DEFAULTS} == RUN_TIME_DEFAULTS
    with pytest.raises(SpecError, match="unknown run-time setting"):
        loaded.setting("loudness")


@pytest.mark.parametrize("bad", [{"postfilter": "spectral"}, {"min_gain_db": 3}, {"surprise": 1},
                                 {"postfilter_sub_windows": 2.5}, {"postfilter_exponent": "half"},
                                 {"postfilter_window_s": 0}])
def test_bad_run_time_settings_are_refused(bad):
    with pytest.raises(SpecError, match="run_time"):
        preset("paper8k", run_time=bad)
