"""The whole homework in under a minute: ``python -m hw3_gan.demo``.

With MLDS_DATA set it trains on the real faces (capped to a few steps); otherwise it writes the
synthetic sample data set first. Then it generates for a testing file in the course format and
scores the samples, and prints where every output is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import run_cli
from common.runs import data_root, fresh_run_dir
from hw3_gan import generate, train
from hw3_gan.classifier import save_classifier, train_classifier
from hw3_gan.data import holdout_mask, load_faces
from hw3_gan.evaluate import evaluate, format_report, read_samples
from hw3_gan.sample_data import DEMO_EYES, DEMO_HAIR, judge_colours, write_sample_data
from hw3_gan.tags import read_testing_text

CONFIG = Path(__file__).resolve().parent / "configs" / "tiny.yaml"


def _main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    root = data_root()
    if root is not None:
        data, text = root / "hw3" / "extra_data.zip", root / "hw3" / "sample_testing_text.txt"
        caps = ["train.max_steps=30"]  # a few steps: the real data is here to show the pipeline, not to learn
    else:
        data = write_sample_data(out / "data", n=400)
        text = out / "data" / "sample_testing_text.txt"
        caps = []
    run_dir = fresh_run_dir(out / "run")
    argv = ["--config", str(CONFIG), "--run-dir", str(run_dir), "--set", f"data.path={data}", *caps]
    if train.main(argv) != 0:
        return 2
    samples = out / "samples"
    if generate.main([str(text), "--out", str(samples), "--checkpoint", str(run_dir / "best.pt")]) != 0:
        return 2
    requests = read_testing_text(text)
    images = read_samples(samples, requests)
    print(f"data:        {data}")
    print(f"checkpoint:  {run_dir / 'best.pt'} (per-epoch grids in {run_dir / 'grids'})")
    print(f"samples:     {samples}/sample_<id>_<k>.jpg and {samples / 'grid.png'}")
    if root is None:
        # The synthetic faces show their tags as colour regions, so the samples can be judged exactly.
        hair, eye = judge_colours(images, DEMO_HAIR, DEMO_EYES)
        want_h = np.repeat([r.hair if r.hair is not None else -1 for r in requests], 5)
        want_e = np.repeat([r.eye if r.eye is not None else -1 for r in requests], 5)
        print(
            f"colour check on the synthetic task: hair {np.mean((hair == want_h)[want_h >= 0]):.2f}, "
            f"eyes {np.mean((eye == want_e)[want_e >= 0]):.2f} of samples show the asked colour"
        )
        faces = load_faces(data)  # the images the GAN did not see train a small evaluation classifier
        held = holdout_mask(faces.ids, 20.0)
        net = train_classifier(faces.subset(held), epochs=30, batch=16, width=8, quiet=True)
        save_classifier(net, out / "classifier.pt", {"holdout_percent": 20.0})
        print(format_report(evaluate(images, requests, net, faces.subset(~held))))
        print(f"classifier:  {out / 'classifier.pt'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw3_gan.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="demo/hw3_gan", help="where the demo writes everything")
    return run_cli(_main, p, argv)


if __name__ == "__main__":
    sys.exit(main())
