"""Synthetic sources for tests: a bring-your-own ONNX generator and a chest-like CT phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHANTOM_SPACING = (6.0, 6.0, 6.0)


def write_onnx_generator(path, conditional: bool, latent_dim: int = 16, size: int = 8, classes: int = 3):
    """A tiny (z, label) -> image ONNX model, built with the onnx package's helpers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.3, (latent_dim, size * size)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array([-1, 1, size, size], dtype=np.int64), "shape")
    inits, nodes = [weight, shape], []
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", latent_dim])]
    source = "z"
    if conditional:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["B"]))
        inits.append(numpy_helper.from_array(rng.normal(0, 1, (classes, latent_dim)).astype(np.float32), "E"))
        nodes += [helper.make_node("Gather", ["E", "label"], ["e"]), helper.make_node("Add", ["z", "e"], ["ze"])]
        source = "ze"
    nodes += [helper.make_node("MatMul", [source, "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
              helper.make_node("Reshape", ["t", "shape"], ["image"])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 1, size, size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if conditional:
        helper.set_model_props(model, {"num_classes": str(classes)})
    onnx.save(model, str(path))
    return path


def phantom_hu() -> np.ndarray:
    """A 288 x 240 x 288 mm chest-like phantom in HU, RAS axes: an elliptic water body,
    two air-filled lungs either side, and a bone spine behind the midline."""
    x, y, z = np.meshgrid(*(((np.arange(n) - (n - 1) / 2) * 6.0) for n in (48, 40, 48)), indexing="ij")
    hu = np.full(x.shape, -1000.0, np.float32)
    hu[(x / 130) ** 2 + (y / 100) ** 2 <= 1] = 40.0
    for side in (-65, 65):
        hu[((x - side) / 45) ** 2 + (y / 70) ** 2 + ((z - 20) / 90) ** 2 <= 1] = -800.0
    hu[x**2 + (y + 70) ** 2 <= 15**2] = 1000.0
    return hu


def write_phantom_ct(path: Path) -> Path:
    """The phantom as a NIfTI file with 6 mm voxels."""
    import nibabel as nib

    nib.save(nib.Nifti1Image(phantom_hu(), np.diag([*PHANTOM_SPACING, 1.0])), path)
    return path


def twelve_bit_dicom(values: np.ndarray) -> bytes:
    """A 12-bit monochrome DX DICOM file holding ``values`` (uint16 below 4096), as bytes."""
    import io

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "DX", 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.Rows, ds.Columns = values.shape
    ds.PixelData = values.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
