"""Print trainable vs total parameters of FusionMedCLIP with the SPEC defaults (random weights, nothing is run).

python benchmarks/trainable_parameters.py [--backbone ViT-L-14] [--feature-layers 14 18 24]
"""

from __future__ import annotations

import argparse
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="ViT-L-14")
    parser.add_argument("--feature-layers", type=int, nargs="+", default=[14, 18, 24])
    args = parser.parse_args()

    from fusionmedclip_anomalib.models.fusionmedclip.parameter_report import parameter_report
    from fusionmedclip_anomalib.models.fusionmedclip.torch_model import FusionMedCLIPModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FusionMedCLIPModel.from_backbone(args.backbone, None, feature_layers=tuple(args.feature_layers))
    report = parameter_report(model)
    print(f"FusionMedCLIP on {args.backbone}, feature layers {tuple(args.feature_layers)}")
    for name, value in report.items():
        print(f"  {name:<18} {value:>14,.2f}" if name == "trainable_percent" else f"  {name:<18} {value:>14,}")


if __name__ == "__main__":
    main()
