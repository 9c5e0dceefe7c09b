"""Keras run -> .tflite (float32, float16, dynamic, int8) with the spec embedded."""
