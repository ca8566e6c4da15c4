"""ONNX export under the name users look for: ``ember.onnx.export(model, "m.onnx")`` (the same
as ``model.export("m.onnx")``). The implementation is :mod:`ember.onnx_export`.

Example:
    >>> import ember.onnx
    >>> "Dense" in ember.onnx.exportable_layers()
    True
"""

from ember.onnx_export import OnnxExportError, export, exportable_layers

__all__ = ["OnnxExportError", "export", "exportable_layers"]
