"""predict's decoding options and attention heat maps."""

import torch
from PIL import Image

from hw2_video_caption import predict
from hw2_video_caption.data import load_features, read_captions, read_ids, split_ids
from hw2_video_caption.decode import decode_captions
from hw2_video_caption.heatmap import image_size


def _predict(sample_dir, trained, out, *extra):
    return predict.main([str(sample_dir), str(out), *extra, "--checkpoint", str(trained / "best.pt")])


def test_plain_options_give_the_top_beam(sample_dir, trained, tmp_path):
    out = tmp_path / "plain.txt"
    assert _predict(sample_dir, trained, out, "--rerank", "none", "--neighbours", "0", "--beam", "3") == 0
    model, vocab, extra = predict.load_model(trained / "best.pt", torch.device("cpu"))
    feat_dir, ids = split_ids(sample_dir, "testing")
    caps = decode_captions(
        model, load_features(feat_dir, ids, cache=False), vocab, torch.device("cpu"), beam=3, max_len=extra["max_len"]
    )
    assert read_captions(out) == dict(zip(ids, caps))


def test_attention_pictures_one_per_video(sample_dir, trained, tmp_path):
    ids = read_ids(sample_dir / "testing_id.txt")[:3]
    out, folder = tmp_path / "out.txt", tmp_path / "attention"
    assert _predict(sample_dir, trained, out, "--ids", ",".join(ids), "--attention", str(folder)) == 0
    model, _, _ = predict.load_model(trained / "best.pt", torch.device("cpu"))
    steps = 80 // model.cfg.frame_stride
    for vid, caption in read_captions(out).items():
        with Image.open(folder / f"{vid}.png") as img:
            assert img.format == "PNG" and img.size == image_size(steps, len(caption.split()) + 1)  # + <eos>
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{v}.png" for v in ids)


def test_attention_folder_must_not_be_a_file(sample_dir, trained, tmp_path, capsys):
    blocker, out = tmp_path / "file", tmp_path / "out.txt"
    blocker.write_text("x")
    assert _predict(sample_dir, trained, out, "--attention", str(blocker)) == 2
    assert "not a folder" in capsys.readouterr().err and not out.exists() and blocker.read_text() == "x"


def test_a_negative_pool_is_refused_before_anything_is_written(sample_dir, trained, tmp_path, capsys):
    out = tmp_path / "out.txt"
    assert _predict(sample_dir, trained, out, "--pool", "-1") == 2
    assert "--pool" in capsys.readouterr().err and not out.exists()


def test_the_top_beam_reads_no_training_captions(tmp_path, capsys):
    # predict's default prior (0.45) plays no part without MBR, so nothing is looked for or noted
    top = predict.Decoding(rerank="none", prior=0.45, pool=10)
    assert not top.uses_prior and predict.training_side(tmp_path, top) == (None, None, None)
    assert capsys.readouterr().err == ""
    assert predict.Decoding(rerank="bleu1", pool=10).uses_prior
    predict.training_side(tmp_path, predict.Decoding(rerank="bleu1", prior=0.45))  # no training_label.json here
    assert "training_label.json" in capsys.readouterr().err
