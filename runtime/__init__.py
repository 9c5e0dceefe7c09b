"""On-device speech denoising runtime: numpy + LiteRT only, never TensorFlow.

    from runtime import StreamDenoiser, denoise, denoise_file
"""
from .errors import AudioError, DenoiseError, ModelError, SpecError
from .file_stream import denoise_file
from .offline import denoise
from .spec import PRESETS, SPEC_VERSION, FeatureSpec, preset
from .stream import StreamDenoiser

__all__ = ["AudioError", "DenoiseError", "ModelError", "SpecError", "FeatureSpec", "PRESETS",
           "SPEC_VERSION", "preset", "StreamDenoiser", "denoise", "denoise_file"]
