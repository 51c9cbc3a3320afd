"""Images/s of the tag classifiers that pick among draws (``generate --picker``): the network as trained
(BatchNorm, NCHW weights) against ``hw3_gan.classifier.fused`` (BatchNorm folded into the convolutions,
pooling before ReLU, NHWC weights), with a matrix-multiply ceiling measured in the same run.

    python benchmarks/hw3_draw_speed.py --threads 2
    python benchmarks/hw3_draw_speed.py --checkpoint RUN/best.pt --testing-text $MLDS_DATA/hw3/testing_tags.txt

Both read the same uint8 images, as the drawing gives them (``to_tensor``), in batches of
``--batch`` (the default drawing's 5 images x 8 draws of one testing line). The rounds alternate
the two so that a change in the machine's load falls on both; the median is reported. The weights
are random (speed does not depend on them) unless ``--checkpoint`` names a run that carries the
classifiers (``data.retag``). With ``--testing-text`` too, it also times drawing that file's lines as
``generate`` draws them by default, in the same process, with either network as the picker's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common_bench import machine_line, matmul_ceiling  # noqa: E402
from common.checkpoint import load_checkpoint  # noqa: E402
from hw3_gan.classifier import AttributeNet, fused, net_from_state  # noqa: E402
from hw3_gan.data import to_tensor  # noqa: E402
from hw3_gan.generate import TagSampler, drawing  # noqa: E402
from hw3_gan.tags import read_testing_text  # noqa: E402


@torch.no_grad()
def timed(net: AttributeNet, batches: list[torch.Tensor]) -> tuple[float, torch.Tensor]:
    """Seconds to read every batch (features and both heads), and the hair logits."""
    start = time.perf_counter()
    hair = [net(x)[0] for x in batches]
    return time.perf_counter() - start, torch.cat(hair)


def drawing_seconds(state: dict, testing_text: str, rounds: int) -> dict[str, float]:
    """Median seconds to draw every line of ``testing_text`` (no files written), by picker network."""
    requests = read_testing_text(testing_text)
    candidates, accept = drawing(state, None, 1, None)
    sampler = TagSampler(state, torch.device("cpu"), testing_text, candidates, 1, accept)
    trained = [net_from_state(state["models"][k]) for k in ("colour0", "colour1")]
    pickers = {"fused": sampler.colour, "as trained": trained}
    seconds: dict[str, list[float]] = {name: [] for name in pickers}
    for r in range(rounds + 1):  # round 0 warms up
        for name in list(pickers)[:: 1 if r % 2 == 0 else -1]:
            sampler.colour, g = pickers[name], torch.Generator().manual_seed(0)
            start = time.perf_counter()
            for req in requests:
                sampler.sample(*sampler.fill(req, g), g)
            if r:
                seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in seconds.items()}


def trained_net(checkpoint: str | None) -> AttributeNet:
    if checkpoint:
        models = load_checkpoint(Path(checkpoint), "hw3_gan")["models"]
        if "colour0" not in models:
            sys.exit(f"{checkpoint}: no tag classifiers (a run trained with data.retag carries them)")
        return net_from_state(models["colour0"])
    torch.manual_seed(0)
    net = AttributeNet()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2)
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--images", type=int, default=1000, help="images per timing (25 lines x 5 x 8 draws)")
    p.add_argument("--batch", type=int, default=40, help="images per forward pass")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    p.add_argument("--checkpoint", help="a run trained with data.retag: time its first tag classifier")
    p.add_argument("--testing-text", help="with --checkpoint: also time drawing this testing file's lines")
    args = p.parse_args(argv)
    if args.testing_text and not args.checkpoint:
        p.error("--testing-text needs --checkpoint")
    torch.set_num_threads(args.threads)
    print(machine_line())
    nets = {"as trained": trained_net(args.checkpoint)}
    nets["fused"] = fused(nets["as trained"])
    rng = np.random.default_rng(0)
    shape = (args.batch, 64, 64, 3)
    batches = [to_tensor(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(args.images // args.batch)]
    with FlopCounterMode(display=False) as counter:
        nets["as trained"](batches[0][:1])
    flops = counter.get_total_flops()
    for net in nets.values():  # warm-up: the first calls build the convolution kernels
        timed(net, batches[:2])
    seconds: dict[str, list[float]] = {name: [] for name in nets}
    for r in range(args.rounds):
        for name in list(nets)[:: 1 if r % 2 == 0 else -1]:
            seconds[name].append(timed(nets[name], batches)[0])
    ceiling = matmul_ceiling()
    n = len(batches) * args.batch
    _, a = timed(nets["as trained"], batches[:3])
    _, b = timed(nets["fused"], batches[:3])
    print(f"{flops / 1e6:.1f} MFLOP per image (torch's FLOP counter); matmul ceiling {ceiling / 1e9:.1f} GFLOP/s")
    for name, times in seconds.items():
        t = statistics.median(times)
        print(
            f"{name:>10}: {n / t:7.1f} images/s ({t:.3f} s for {n}), "
            f"{flops * n / t / 1e9:.1f} GFLOP/s = {flops * n / t / ceiling:.2f} of the ceiling"
        )
    ratio = statistics.median(seconds["as trained"]) / statistics.median(seconds["fused"])
    print(f"fused / as trained: {ratio:.2f}x the images/s; largest logit difference {(a - b).abs().max():.1e}")
    if args.testing_text:
        t = drawing_seconds(load_checkpoint(Path(args.checkpoint), "hw3_gan"), args.testing_text, args.rounds)
        print(
            f"drawing {args.testing_text} by default: {t['as trained']:.2f} s with the classifiers as trained, "
            f"{t['fused']:.2f} s fused ({t['as trained'] / t['fused']:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
