"""int8 static quantization of the exported network (onnxruntime's QDQ format, per-channel weights).

The maps themselves stay float: the output convolution of each head (the convolutions with one output channel,
and the block stage's with four, one per pixel of a 2x2 block, which a DepthToSpace then places) and everything
after them (upsampling, scales, the full-resolution residual's sum) are left out,
because 8 bits over the coarse depth's range (about 190 crop px) would step it by 0.75 px. So is the coarse head
(FLOAT_MODULES): quantized, it moved the coarse depth more than any other part did (docs/speed.md). Activation
ranges are calibrated on aligned crops (renders and real portraits) by their extremes. Those float output
convolutions are then split into their taps (split_taps), which onnxruntime runs faster.

The quantized file records the SHA-256 of the weights it was made from (metadata `facerecon_weights_sha256`), so a
stale file is refused rather than run (`check_int8`, read through onnxruntime, so that running it never imports
the onnx package, slow to import: docs/speed.md).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .backends import weights_digest

DIGEST_KEY = "facerecon_weights_sha256"
CALIBRATION_BATCH = 8
FLOAT_MODULES = ("coarse_head",)  # FaceReconNet's attributes whose nodes stay float


def module_of(node) -> str:
    """The FaceReconNet attribute a node of the exported graph belongs to, from the exporter's `namespace` metadata
    (': facerecon.model.network.FaceReconNet/coarse_head: ...'); "" for the network's own operations."""
    for prop in node.metadata_props:
        if prop.key == "namespace":
            match = re.match(r"[^/]*/([a-z_]+)(?:\.[\w.]*)?: facerecon\.", prop.value)
            return match.group(1) if match else ""
    return ""


def float_nodes(model, modules: tuple[str, ...] = FLOAT_MODULES) -> set[str]:
    """Names of the nodes that stay float: those of `modules`, each head's output Conv (one output channel, or one
    that a DepthToSpace reads: heads.BlockStage's) and all downstream of one."""
    keep = {n.name for n in model.graph.node if module_of(n) in modules}
    if modules and not keep:
        raise RuntimeError(f"no node of the exported graph is marked as part of {modules}: the exporter's metadata "
                           "changed, so the quantizer cannot tell which nodes to keep float")
    weights = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    placed = {n.input[0] for n in model.graph.node if n.op_type == "DepthToSpace"}
    stack = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in weights
             and (weights[n.input[1]].dims[0] == 1 or n.output[0] in placed)]
    outputs: set[str] = set()
    while stack:
        node = stack.pop()
        if node.name not in outputs:
            outputs.add(node.name)
            stack.extend(c for out in node.output for c in consumers.get(out, []))
    return keep | outputs


def split_taps(model) -> int:
    """In place: each 3x3 Conv with one output channel (a head's output, float) becomes a 1x1 Conv to its 9 taps
    and a fixed 3x3 Conv that adds the taps' maps shifted into place: the same sums, to float rounding. onnxruntime
    ran the one-channel convolution as an im2col of C x 9 rows per pixel (80 at the detail head's 128x128) and a
    matrix-vector product; the 1x1 to 9 channels is one matrix product and leaves 9 rows to the sum
    (docs/speed.md). Returns how many were split."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    split = 0
    for node in list(graph.node):
        if node.op_type != "Conv" or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if w.shape[0] != 1 or w.shape[2:] != (3, 3) or attrs.get("group", 1) != 1:
            continue
        taps = np.ascontiguousarray(w[0].reshape(w.shape[1], 9).T[:, :, None, None])  # tap k = (k // 3, k % 3)
        place = np.zeros((1, 9, 3, 3), w.dtype)
        place[0, np.arange(9), np.arange(9) // 3, np.arange(9) % 3] = 1
        name = node.name
        graph.initializer.extend([numpy_helper.from_array(taps, f"{name}_taps_weight"),
                                  numpy_helper.from_array(place, f"{name}_place_weight")])
        at = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(at, helper.make_node("Conv", [node.input[0], f"{name}_taps_weight"], [f"{name}_taps"],
                                               name=f"{name}_taps", kernel_shape=[1, 1]))
        graph.node.insert(at + 1, helper.make_node("Conv", [f"{name}_taps", f"{name}_place_weight", *node.input[2:]],
                                                   list(node.output), name=f"{name}_place", **attrs))
        graph.initializer.remove(weights[node.input[1]])
        split += 1
    return split


def quantize_int8(float_onnx: Path, out: Path, crops: np.ndarray, weights_file: Path) -> Path:
    """float_onnx (facerecon.model.backends.export_onnx) -> out, int8; crops: N x S x S x 3 uint8 aligned crops for
    calibration. Written atomically."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..predictor import to_batch

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(to_batch(crops[i:i + CALIBRATION_BATCH])
                                for i in range(0, len(crops), CALIBRATION_BATCH))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"rgb": batch}

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))  # shape inference and graph folding, as onnxruntime advises
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(quantized), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=sorted(float_nodes(onnx.load(str(prepared)))))
        model = onnx.load(str(quantized))
        split_taps(model)
        onnx.helper.set_model_props(model, {DIGEST_KEY: weights_digest(weights_file)})
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".tmp")
        onnx.save(model, str(tmp_out))
        tmp_out.replace(out)
    return out


def check_int8(metadata: dict[str, str], int8_onnx: Path, weights_file: Path) -> None:
    """ModelFileError unless the int8 model's metadata (OnnxBackend.metadata) says it was made from weights_file."""
    if metadata.get(DIGEST_KEY) != weights_digest(weights_file):
        raise ModelFileError(f"{int8_onnx} was not made from {weights_file} (quantize it again with "
                             "`facerecon quantize`)")
