"""Format readers behind `mlaudit.inputs.checkpoint`: tolerant zip, torch, safetensors, ONNX, numpy.

Each reader works from bytes and headers only; nothing here unpickles untrusted data.
"""
