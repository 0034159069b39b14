"""UniPic 2.0 on Kubeflow: the library behind every CLI command, KFP component and the KServe predictor."""

__version__ = "0.1.0"
