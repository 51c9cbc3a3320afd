"""How well the evaluation classifier names each hair/eye pair in real images, beside how often it
names the asked pair in generated images (from ``evaluate --all-pairs --json`` files).

    python benchmarks/hw3_pair_judge.py --classifier benchmarks/out/hw3_cpu60/classifier.pt \
        benchmarks/out/RUN/eval/plain_s0.json [more.json ...]

Real images: every image of the pair in the GAN's training split (the classifier never saw them).
Prints the pairs where generated images are named worst, both accuracies, the eye colours the
classifier gives the real images, and the correlation of the two accuracies over all pairs.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common_bench import machine_line  # noqa: E402
from common.device import set_threads  # noqa: E402
from common.errors import UserError, run_cli  # noqa: E402
from hw3_gan.classifier import load_classifier, predict  # noqa: E402
from hw3_gan.evaluate import real_reference  # noqa: E402
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS  # noqa: E402


def generated_accuracy(paths: list[str]) -> dict[tuple[str, str], float]:
    """Each pair's joint accuracy, averaged over the given all-pairs JSON files."""
    acc = collections.defaultdict(list)
    for path in paths:
        try:
            rows = json.loads(Path(path).read_text())["pairs"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}: not an evaluate --all-pairs --json file ({err!r})") from None
        for row in rows:
            acc[(row["hair"], row["eye"])].append(row["joint_accuracy"])
    return {pair: float(np.mean(v)) for pair, v in acc.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", nargs="+", help="evaluate --all-pairs --json files of one or more models")
    p.add_argument("--classifier", required=True, help="the evaluation classifier the JSON files were scored with")
    p.add_argument("--data", default="", help="the course images ('' means $MLDS_DATA/hw3/extra_data.zip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--show", type=int, default=12, help="how many of the worst pairs to print")
    return run_cli(_main, p, argv)


def _main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    print(machine_line())
    generated = generated_accuracy(args.json)
    net, info = load_classifier(args.classifier)
    real = real_reference(args.data, info.get("holdout_percent", 20.0))
    rows = []
    for (hair, eye), gen in generated.items():
        h, e = HAIR_COLOURS.index(hair), EYE_COLOURS.index(eye)
        idx = np.flatnonzero((real.hair == h) & (real.eye == e))
        _, ph, pe = predict(net, real.images[idx])
        named = collections.Counter(EYE_COLOURS[x] for x in pe).most_common(2)
        rows.append((hair, eye, len(idx), float(((ph == h) & (pe == e)).mean()), gen, named))
    rows.sort(key=lambda r: r[4])
    print(f"{len(args.json)} JSON files, {len(rows)} pairs; the worst {args.show} by generated joint accuracy:")
    print("hair eye real_images real_joint generated_joint real_eyes_named_as")
    for hair, eye, n, real_acc, gen, named in rows[: args.show]:
        print(f"{hair} {eye} {n} {real_acc:.3f} {gen:.3f} {', '.join(f'{c} {k}' for c, k in named)}")
    real_acc, gen = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    print(
        f"joint accuracy, mean over the pairs: real {real_acc.mean():.3f}, generated {gen.mean():.3f}; "
        f"correlation over pairs {np.corrcoef(real_acc, gen)[0, 1]:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
