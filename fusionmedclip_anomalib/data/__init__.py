"""Medical datamodules, the built-in Phantom dataset, k-shot support sets and dataset preparation.

Names are imported lazily: ``fusionmedclip_anomalib.data.prepare_cli`` (the ``fusionmedclip prepare`` command)
must start without importing torch or anomalib.

Example:
    >>> from fusionmedclip_anomalib.data import Phantom  # doctest: +SKIP
    >>> dm = Phantom(modality="brain", k_shot=4, seed=0)
    >>> dm.setup(); len(dm.train_data)
    4
"""

from importlib import import_module

_LAZY = {
    "MedicalFolder": "fusionmedclip_anomalib.data.medical_folder",
    "DatasetLayoutError": "fusionmedclip_anomalib.data.medical_folder",
    "BrainMRI": "fusionmedclip_anomalib.data.public_datasets",
    "BUSI": "fusionmedclip_anomalib.data.public_datasets",
    "CheXpert": "fusionmedclip_anomalib.data.public_datasets",
    "Phantom": "fusionmedclip_anomalib.data.phantom",
    "MedicalDataset": "fusionmedclip_anomalib.data.dataset",
    "read_image": "fusionmedclip_anomalib.data.image_io",
    "read_mask": "fusionmedclip_anomalib.data.image_io",
    "ImageReadError": "fusionmedclip_anomalib.data.image_io",
    "SupportSetError": "fusionmedclip_anomalib.data.manifest",
    "load_manifest": "fusionmedclip_anomalib.data.manifest",
    "render_phantom": "fusionmedclip_anomalib.data.phantom_render",
    "ROCO": "fusionmedclip_anomalib.data.roco",
}

__all__ = [
    "BUSI",
    "ROCO",
    "BrainMRI",
    "CheXpert",
    "DatasetLayoutError",
    "ImageReadError",
    "MedicalDataset",
    "MedicalFolder",
    "Phantom",
    "SupportSetError",
    "load_manifest",
    "read_image",
    "read_mask",
    "render_phantom",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
