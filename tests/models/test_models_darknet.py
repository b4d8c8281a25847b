"""Darknet cfg parsing, weights loading and parity of the torch network with OpenCV's Darknet reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from smartcity.models.darknet import (
    ConvBlock,
    DarknetCfgError,
    DarknetModel,
    DarknetWeightsError,
    MaxPool,
    build_darknet,
    load_cfg,
    load_weights,
    parse_cfg,
)
from smartcity.models.ops import letterbox

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"


def _model(text: str) -> DarknetModel:
    return DarknetModel(parse_cfg(text, "test.cfg"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[convolutional]\nfilters=4\n", "first section must be [net]"),
        (NET, "no layers after [net]"),
        ("width=3\n" + NET, "test.cfg:1: `width=3` before the first [section]"),
        (NET + "[convolutional]\nfilters 4\n", "test.cfg:6: expected `key=value`"),
        (NET + "[convolutional]\nfilters=four\n", "layer 0 [convolutional] (line 5), key 'filters': expected an integer, got 'four'"),
        (NET + "[convolutional]\nsize=3\n", "layer 0 [convolutional] (line 5), key 'filters': missing"),
        (NET + "[convolutional]\nfilters=4\nactivation=swish\n", "key 'activation': unsupported 'swish'"),
        (NET + "[convolutional]\nfilters=4\n[route]\nlayers=-1,3\n", "layer 1 [route] (line 7), key 'layers': 3 does not name an earlier layer"),
        (NET + "[convolutional]\nfilters=4\n[route]\nlayers=-1,x\n", "key 'layers': expected comma-separated integers"),
        (NET + "[convolutional]\nfilters=4\n[dropout]\n", "layer 1 [dropout] (line 7): unsupported section type [dropout]"),
        (NET + "[convolutional]\nfilters=20\n[yolo]\nmask=0,1\nanchors=1,2,3,4\nclasses=80\n", "expected 2 * (5 + 80) = 170"),
        (NET + "[convolutional]\nfilters=12\n[yolo]\nmask=0,4\nanchors=1,2,3,4\nclasses=1\n", "key 'mask': [4] outside the 2 anchors"),
        (NET + "[convolutional]\nfilters=12\n[yolo]\nanchors=1,2,3\nclasses=1\n", "key 'anchors': expected pairs"),
        (NET + "[convolutional]\nfilters=4\n", "the cfg has no [yolo] layer"),
        (NET + "[maxpool]\nsize=0\n", "layer 0 [maxpool] (line 5): size/stride must be >= 1"),
    ],
)
def test_cfg_errors_name_the_line_section_and_key(text: str, expected: str) -> None:
    with pytest.raises(DarknetCfgError) as info:
        _model(text)
    assert expected in str(info.value)


def test_missing_cfg_file_is_a_cfg_error(tmp_path: Path) -> None:
    with pytest.raises(DarknetCfgError, match="cannot read cfg"):
        load_cfg(tmp_path / "absent.cfg")


def test_default_cfg_structure(model_dir: Path) -> None:
    cfg = load_cfg(model_dir / "yolov3-tiny.cfg")
    assert cfg.input_size == (416, 416)
    assert [s.type for s in cfg.layers].count("convolutional") == 13
    assert len(cfg.layers) == 24
    model = DarknetModel(cfg)
    assert model.num_classes == 80
    assert model.sources[20] == [19, 8]  # `layers = -1, 8`


def test_weights_header_and_exact_size(model_dir: Path) -> None:
    model = DarknetModel(load_cfg(model_dir / "yolov3-tiny.cfg"))
    header = load_weights(model, model_dir / "yolov3-tiny.weights")
    assert (header.major, header.minor, header.revision) == (0, 2, 0)
    assert header.seen == 32_013_312
    n_params = sum(p.numel() for p in model.parameters())
    n_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    # Header of 20 bytes, then every float the cfg asks for; conv biases under batch norm are not stored.
    bn_conv_biases = sum(m.conv.out_channels for m in model.layers if isinstance(m, ConvBlock) and m.batch_norm)
    assert 20 + 4 * (n_params + n_stats - bn_conv_biases) == 35_434_956


def test_weights_that_do_not_fit_the_cfg(model_dir: Path, tmp_path: Path) -> None:
    data = (model_dir / "yolov3-tiny.weights").read_bytes()
    model = DarknetModel(load_cfg(model_dir / "yolov3-tiny.cfg"))
    short = tmp_path / "short.weights"
    short.write_bytes(data[:-4000])
    with pytest.raises(DarknetWeightsError, match=r"while reading layer 22 kernel"):
        load_weights(model, short)
    long = tmp_path / "long.weights"
    long.write_bytes(data + b"\0" * 8)
    with pytest.raises(DarknetWeightsError, match="2 floats left over"):
        load_weights(model, long)


def test_stride_one_maxpool_ignores_the_padded_edge() -> None:
    sec = parse_cfg(NET + "[maxpool]\nsize=2\nstride=1\n").layers[0]
    x = torch.tensor([[[[1.0, -5.0, 3.0], [-4.0, -2.0, -8.0], [-7.0, -6.0, -9.0]]]])
    out = MaxPool(sec)(x)
    # Darknet pads right/bottom by one cell that never wins, so the last row/column keep their own maxima.
    expected = torch.tensor([[[[1.0, 3.0, 3.0], [-2.0, -2.0, -8.0], [-6.0, -6.0, -9.0]]]])
    assert torch.equal(out, expected)


def test_route_groups_and_shortcut() -> None:
    text = (
        NET
        + "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        + "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
        + "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        + "[shortcut]\nfrom=-3\n"
        + "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n"
        + "[yolo]\nmask=0\nanchors=8,8\nclasses=1\n"
    )
    model = _model(text).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        c0 = model.layers[0](x)
        c2 = model.layers[2](c0[:, 2:4])  # the second half of the channels
        out = model(x)
    assert out.shape == (2, 64 * 64, 6)
    raw = model.layers[4](c2 + c0)
    expected_obj = torch.sigmoid(raw[:, 4]).reshape(2, -1)  # rows in (y, x) order, one anchor
    assert torch.allclose(out[..., 4], expected_obj, atol=1e-6)


def test_raw_outputs_match_opencv_darknet_reader(model_dir: Path, street_frames: list[np.ndarray]) -> None:
    import cv2  # test-only: OpenCV's Darknet importer is the reference implementation

    batch, _ = letterbox(street_frames[:1], (416, 416), fill=127)
    model = build_darknet(model_dir / "yolov3-tiny.cfg", model_dir / "yolov3-tiny.weights")
    with torch.inference_mode():
        ours = model(batch)[0].numpy()
    net = cv2.dnn.readNetFromDarknet(str(model_dir / "yolov3-tiny.cfg"), str(model_dir / "yolov3-tiny.weights"))
    net.setInput(batch.numpy())
    ref = np.concatenate(net.forward(net.getUnconnectedOutLayersNames()), 0)
    assert ref.shape == ours.shape == (13 * 13 * 3 + 26 * 26 * 3, 85)
    # OpenCV reports boxes relative to the input size and class scores as objectness * probability,
    # zeroed at or under its 0.2 threshold.
    assert np.abs(ref[:, :4] - ours[:, :4] / 416.0).max() < 1e-3
    assert np.abs(ref[:, 4] - ours[:, 4]).max() < 1e-3
    scores = ours[:, 4:5] * ours[:, 5:]
    away = np.abs(scores - 0.2) > 1e-3
    thresholded = np.where(scores > 0.2, scores, 0.0)
    assert np.abs(ref[:, 5:] - thresholded)[away].max() < 1e-3
    assert (ref[:, 5:] > 0.5).sum() >= 3  # the frame has confident objects, so the comparison means something


def test_folded_batch_norm_matches_the_unfolded_network(model_dir: Path, street_frames: list[np.ndarray]) -> None:
    batch, _ = letterbox(street_frames, (320, 320))
    cfg, weights = model_dir / "yolov3-tiny.cfg", model_dir / "yolov3-tiny.weights"
    with torch.inference_mode():
        fused = build_darknet(cfg, weights)(batch)
        plain = build_darknet(cfg, weights, fuse=False)(batch)
    assert fused.shape == (2, 10 * 10 * 3 + 20 * 20 * 3, 85)
    assert torch.allclose(fused, plain, atol=1e-3, rtol=1e-4)
