"""FusionMedCLIP: the torch model (``torch_model``) and the anomalib module (``lightning_model``)."""
