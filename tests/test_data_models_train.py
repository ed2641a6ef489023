"""Synthetic data, tiny models, fit() and cached demos, and proof that trained attention maps mean something.

Measured on the reference machine (2 CPU cores), default demo configurations:
- shapes_cnn with CBAM: validation accuracy 0.98 (chance 0.25); share of CBAM's spatial map inside the
  target's box 0.26 trained vs 0.15 random-initialised (= the box's share of the map's area).
- reversal TinyTransformer: validation accuracy 1.00; mean attention weight on the anti-diagonal key
  0.73 trained vs 0.125 (= 1/L) random-initialised.
"""
import os
import time

import pytest
import torch
from torch import nn

from attention_lib import MECHANISMS, train
from attention_lib.toolkit import data
from attention_lib.toolkit.data import (SHAPE_CLASSES, box_masks, reversal_dataset, sample_photo, shapes_dataset)
from attention_lib.toolkit.models import FEATURE_MAP_MECHANISMS, TinyCNN, TinyTransformer, TinyViT

TINY = dict(n_train=96, n_val=32, epochs=1, batch_size=32)   # a demo config that trains in a fraction of a second
CPU = dict(device="cpu", progress=False, num_threads=1)       # one thread: fastest for tiny models on a busy machine


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty demo cache for one test."""
    monkeypatch.setenv("ATTENTION_LIB_CACHE", str(tmp_path))
    train.set_cache_dir(None)
    return tmp_path


@pytest.fixture(scope="module")
def cbam_demo(tmp_path_factory):
    train.set_cache_dir(tmp_path_factory.mktemp("cbam_cache"))
    try:
        return train.trained_demo("shapes_cnn", attention="cbam", **CPU)
    finally:
        train.set_cache_dir(None)


@pytest.fixture(scope="module")
def reversal_demo(tmp_path_factory):
    train.set_cache_dir(tmp_path_factory.mktemp("reversal_cache"))
    try:
        return train.trained_demo("reversal", **CPU)
    finally:
        train.set_cache_dir(None)


# ------------------------------------------------------------------------------------------------ data

def test_shapes_dataset_is_deterministic_and_seed_dependent():
    a, b, c = shapes_dataset(16, seed=3), shapes_dataset(16, seed=3), shapes_dataset(16, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.images, c.images)


def test_shapes_dataset_shapes_ranges_and_balanced_labels():
    d = shapes_dataset(400, size=32)
    assert d.images.shape == (400, 3, 32, 32) and d.images.dtype == torch.float32
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    counts = torch.bincount(d.labels, minlength=len(SHAPE_CLASSES))
    assert counts.min() >= 70, counts                     # 100 expected per class
    w, h = d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1]
    assert (w >= 7).all() and (w <= 13).all() and (h >= 7).all() and (h <= 13).all()
    assert (d.boxes[:, :2] >= 0).all() and (d.boxes[:, 2:] <= 32).all()


def test_shapes_box_holds_the_bright_target():
    # The target is drawn last in a colour whose brightest channel is >= 0.85; the background is < 0.5.
    d = shapes_dataset(64, noise=0.0, num_distractors=0)
    inside = box_masks(d.boxes, 32, 32, 32)                        # (n, 32, 32)
    bright = d.images.amax(1) > 0.6                                # (n, 32, 32)
    assert torch.equal(bright, bright & inside)                    # nothing bright outside the box
    fill = (bright & inside).sum((1, 2)) / inside.sum((1, 2))
    assert fill.min() > 0.45                                       # the shape fills its box (triangle ~ half)


def test_box_masks_on_a_coarser_map():
    boxes = torch.tensor([[4, 8, 12, 16]])                         # x 4..11, y 8..15 on 32 px
    m = box_masks(boxes, 8, 8, 32)                                 # cells of 4 px
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:4, 1:3] = True
    assert torch.equal(m[0], expected)


def test_reversal_targets_are_the_reversed_inputs():
    d = reversal_dataset(10, length=6, vocab=5, seed=1)
    assert d.inputs.shape == (10, 6) and d.inputs.max() < 5
    assert torch.equal(d.targets[:, 0], d.inputs[:, 5]) and torch.equal(d.targets.flip(1), d.inputs)
    assert torch.equal(reversal_dataset(10, 6, 5, seed=1).inputs, d.inputs)


def test_sample_photo_is_a_real_rgb_photograph_in_unit_range():
    photo = sample_photo()
    assert photo.shape == (3, 600, 512) and photo.dtype == torch.float32
    assert 0.0 <= photo.min() and photo.max() <= 1.0 and photo.std() > 0.1
    assert sample_photo(size=64).shape == (3, 64, 64)
    assert sample_photo("grace_hopper", size=(48, 40)).shape == (3, 48, 40)
    with pytest.raises(ValueError, match="grace_hopper"):
        sample_photo("no_such_photo")


def test_data_rejects_bad_sizes():
    with pytest.raises(ValueError, match="size"):
        shapes_dataset(4, size=8)
    with pytest.raises(ValueError, match="length"):
        reversal_dataset(4, length=1)


# ---------------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("name", [None, *FEATURE_MAP_MECHANISMS])
def test_tiny_cnn_runs_every_feature_map_mechanism_at_batch_one_and_non_square(name, device):
    model = TinyCNN(name, num_classes=4, width=8).eval().to(device)
    assert model(torch.rand(1, 3, 32, 24, device=device)).shape == (1, 4)
    if name is not None:
        assert isinstance(model.attention, MECHANISMS[name].cls)
        assert any(p is q for p in model.attention.parameters() for q in model.parameters())


def test_tiny_cnn_rejects_token_mechanisms_unknown_names_and_bad_input():
    with pytest.raises(ValueError, match="tokens"):
        TinyCNN("self_attention")
    with pytest.raises(ValueError, match="unknown attention"):
        TinyCNN("no_such_mechanism")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        TinyCNN("cbam")(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="baseline"):
        TinyCNN(None).attention_map(torch.rand(1, 3, 32, 32))


def test_tiny_cnn_spatial_map_is_one_weight_per_position():
    x = torch.rand(2, 3, 32, 32)
    assert TinyCNN("cbam").eval().spatial_map(x).shape == (2, 8, 8)
    assert TinyCNN("bam").eval().spatial_map(x).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="cbam"):
        TinyCNN("squeeze_excitation").spatial_map(x)


@pytest.mark.parametrize("attention", ["self_attention", "external_attention", "multi_head_external_attention"])
def test_tiny_transformer_logits_and_attention_maps(attention):
    model = TinyTransformer(vocab=10, max_len=8, dim=16, depth=2, num_heads=2, attention=attention).eval()
    tokens = torch.randint(10, (3, 8))
    assert model(tokens).shape == (3, 8, 10)
    maps = model.attention_maps(tokens)
    assert len(maps) == 2
    assert torch.allclose(maps[0].sum(-1), torch.ones(()), atol=1e-5)   # each row is a distribution
    if attention == "self_attention":
        assert maps[0].shape == (3, 2, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(torch.rand(3, 8))


def test_tiny_vit_classifies_images_and_returns_patch_maps():
    model = TinyViT(image_size=32, patch_size=8, dim=16, depth=2, num_heads=2).eval()
    x = torch.rand(1, 3, 32, 32)
    assert model(x).shape == (1, 4)
    assert [m.shape for m in model.attention_maps(x)] == [(1, 2, 16, 16)] * 2
    with pytest.raises(ValueError, match="32, 32"):
        model(torch.rand(1, 3, 16, 16))


# ------------------------------------------------------------------------------------------------- fit

def test_fit_trains_and_evaluates_on_the_given_device(device):
    data = shapes_dataset(32, seed=2)
    model = TinyCNN("cbam", width=4)
    history = train.fit(model, data, epochs=1, batch_size=16, device=device, progress=False, num_threads=1)
    assert next(model.parameters()).device.type == device.type and len(history["loss"]) == 1
    assert 0.0 <= train.evaluate(model, data)["acc"] <= 1.0

def test_fit_is_deterministic_for_a_seed_and_returns_per_epoch_history():
    data = shapes_dataset(64, seed=1)

    def run(seed):
        torch.manual_seed(0)
        model = TinyCNN("squeeze_excitation", width=4)
        return train.fit(model, data, epochs=2, batch_size=16, seed=seed, **CPU)

    h1, h2, h3 = run(0), run(0), run(1)
    assert h1["epoch"] == [1, 2] and len(h1["seconds"]) == 2
    assert h1["loss"] == h2["loss"] and h1["acc"] == h2["acc"]
    assert h1["loss"] != h3["loss"]                 # another seed shuffles differently


def test_fit_leaves_the_global_rng_and_thread_count_alone_and_writes_nothing(capfd):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = TinyCNN(None, width=4)
    torch.manual_seed(123)
    train.fit(model, shapes_dataset(32), epochs=1, batch_size=16,
              device="cpu", progress=True, num_threads=1)   # outside a notebook the bar is disabled
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_box_means_are_each_maps_mean_inside_and_outside_the_box():
    maps = torch.zeros(2, 4, 4)
    maps[0, :2, :2] = 1.0                          # image 0: its box is the top-left quarter
    maps[1] = -1.0
    boxes = torch.tensor([[0, 0, 16, 16], [16, 16, 32, 32]])
    inside, outside = data.box_means(maps, boxes, 32)
    assert inside.tolist() == [1.0, -1.0] and outside.tolist() == [0.0, -1.0]
    assert torch.allclose(data.box_means(3 * maps + 1, boxes, 32)[0], 3 * inside + 1)
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        data.box_means(maps[0], boxes, 32)


def test_centre_and_brightness_maps_need_no_learning():
    centre = data.centre_maps(3, 8, 8)
    assert centre.sum((1, 2)).tolist() == [1.0] * 3 and centre[0, 4, 4] == 1.0
    images = torch.zeros(1, 3, 32, 32)
    images[0, 2, 4:8, 28:32] = 0.9                 # a bright blue patch in the top-right cell
    bright = data.brightness_maps(images, 8, 8)
    assert bright.shape == (1, 8, 8) and bright[0].flatten().argmax().item() == 1 * 8 + 7


def test_fit_trains_when_called_under_no_grad():
    # a chapter helper that computes maps under no_grad may train its demo first, on a cold cache
    torch.manual_seed(0)
    model = TinyCNN(None, width=4)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        train.fit(model, shapes_dataset(32), epochs=1, batch_size=16, **CPU)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fit_and_evaluate_reject_data_without_targets():
    with pytest.raises(ValueError, match="inputs, targets"):
        train.fit(TinyCNN(None), torch.rand(4, 3, 32, 32), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(TinyCNN(None), shapes_dataset(4), epochs=0)


# ----------------------------------------------------------------------------------------------- cache

def test_trained_demo_second_call_loads_from_cache_without_training(cache, monkeypatch):
    first = train.trained_demo("shapes_cnn", attention="eca", **CPU, **TINY)
    assert not first.from_cache and first.path.parent == cache and first.path.exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached demo must not train again")

    monkeypatch.setattr(train, "fit", no_training)
    start = time.perf_counter()
    second = train.trained_demo("shapes_cnn", attention="eca", **CPU, **TINY)
    assert second.from_cache and second.path == first.path
    assert second.history == first.history
    x = first.val_data.images[:8]
    assert torch.equal(first.model(x), second.model(x))
    assert time.perf_counter() - start < 2.0


def test_trained_demo_changed_config_or_version_retrains(cache, monkeypatch):
    base = train.trained_demo("reversal", **CPU, **TINY)
    other = train.trained_demo("reversal", **CPU, **{**TINY, "lr": 1e-3})
    assert not other.from_cache and other.path != base.path
    monkeypatch.setattr("attention_lib.__version__", "0.0.0-test")
    again = train.trained_demo("reversal", **CPU, **TINY)
    assert not again.from_cache and again.path != base.path
    assert len(list(cache.glob("reversal-*.pt"))) == 3


def test_trained_demo_is_deterministic_and_saved_for_weights_only_loading(cache):
    a = train.trained_demo("shapes_cnn", attention="bam", **CPU, **TINY)
    b = train.trained_demo("shapes_cnn", attention="bam", retrain=True, **CPU, **TINY)
    assert a.history["loss"] == b.history["loss"] and a.history["val_acc"] == b.history["val_acc"]
    saved = torch.load(a.path, weights_only=True)
    assert saved["config"]["attention"] == "bam" and "attention.spatial.0.weight" in saved["state_dict"]


_TRAIN_IN_A_FRESH_PROCESS = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))          # whatever the reader's process was set to
from attention_lib import train
demo = train.trained_demo("shapes_cnn", attention="cbam", device="cpu", progress=False,
                          n_train=256, n_val=64, epochs=2, batch_size=32)
h = hashlib.sha256()
for name, value in sorted(demo.model.state_dict().items()):
    h.update(name.encode()); h.update(value.contiguous().numpy().tobytes())
print(h.hexdigest(), repr(demo.history["loss"]), repr(demo.history["val_acc"]))
"""


def test_two_clean_builds_train_bitwise_identical_demos(tmp_path):
    """What "builds reproduce" needs: two fresh processes with empty caches and different thread settings train
    the same demo to the same weights and history (trained_demo trains on one CPU thread whatever was set)."""
    import os
    import subprocess
    import sys

    outputs = []
    for i, threads in enumerate((2, 1)):
        env = {**os.environ, "ATTENTION_LIB_CACHE": str(tmp_path / f"cache{i}")}
        run = subprocess.run([sys.executable, "-c", _TRAIN_IN_A_FRESH_PROCESS, str(threads)], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.strip())
    assert outputs[0] == outputs[1]
    assert len(list((tmp_path / "cache0").glob("shapes_cnn-*.pt"))) == 1    # it did train, in a cache of its own


def test_trained_demo_rejects_unknown_demos_and_settings(cache):
    with pytest.raises(ValueError, match="unknown demo"):
        train.trained_demo("no_such_demo")
    with pytest.raises(ValueError, match="no setting"):
        train.trained_demo("reversal", widht=3)


# ------------------------------------------------------------------------- trained maps mean something

def test_trained_cnn_beats_chance_by_a_wide_margin(cbam_demo):
    # Measured: validation accuracy 0.98 after 6 epochs on 2000 images; chance is 0.25.
    assert cbam_demo.history["val_acc"][-1] > 0.80
    assert train.evaluate(cbam_demo.model, cbam_demo.val_data)["acc"] > 0.80


def _mass_in_box(model, data, n=256):
    images = data.images[:n]
    with torch.no_grad():
        spatial = model.spatial_map(images)                                   # (n, 8, 8)
    inside = box_masks(data.boxes[:n], spatial.shape[1], spatial.shape[2], images.shape[-1])
    return ((spatial * inside).sum((1, 2)) / spatial.sum((1, 2))).mean().item(), inside.float().mean().item()


def test_trained_cbam_spatial_attention_concentrates_inside_the_target_box(cbam_demo):
    torch.manual_seed(0)
    random_model = TinyCNN("cbam", num_classes=4, width=cbam_demo.config["width"]).eval()
    trained, area = _mass_in_box(cbam_demo.model, cbam_demo.val_data)
    random, _ = _mass_in_box(random_model, cbam_demo.val_data)
    # Measured: trained 0.26, random 0.15, box area share 0.15.
    assert abs(random - area) < 0.03               # a random map is spread like the area
    assert trained > 1.4 * random and trained - random > 0.06, (trained, random, area)


def test_trained_reversal_attention_follows_the_anti_diagonal(reversal_demo):
    tokens = reversal_demo.val_data.inputs[:256]
    L = tokens.shape[1]
    rows, expected_keys = torch.arange(L), torch.arange(L).flip(0)          # query i must read key L-1-i
    trained = reversal_demo.model.attention_maps(tokens)[0][..., rows, expected_keys].mean().item()
    torch.manual_seed(0)
    random_model = TinyTransformer(vocab=reversal_demo.config["vocab"], max_len=L, dim=reversal_demo.config["dim"],
                                   num_heads=reversal_demo.config["num_heads"]).eval()
    random = random_model.attention_maps(tokens)[0][..., rows, expected_keys].mean().item()
    # Measured: accuracy 1.00; weight on the expected key 0.73 trained vs 0.125 = 1/L random.
    assert reversal_demo.history["val_acc"][-1] > 0.95
    assert trained > 0.5 and abs(random - 1 / L) < 0.05, (trained, random)


# ------------------------------------------------------------------------------ the context task (chapters 3, 7)

def test_context_dataset_is_deterministic_and_labels_follow_the_question():
    from attention_lib.toolkit.data import COLOURS, ORIENTATIONS, context_dataset
    a, b = context_dataset(64, seed=5), context_dataset(64, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.images, context_dataset(64, seed=6).images)
    assert a.images.shape == (64, 3, 32, 32) and 0.0 <= a.images.min() and a.images.max() <= 1.0
    band = a.context == 1
    assert torch.equal(a.labels[band], a.colour[band]) and torch.equal(a.labels[~band], a.orientation[~band])
    assert (a.colour != a.orientation).all()                       # conflict: the two answers always differ
    assert len(ORIENTATIONS) == len(COLOURS) == 4
    mixed = context_dataset(400, seed=0, conflict=False)
    assert (mixed.colour == mixed.orientation).any()
    assert 150 < int(context_dataset(400, seed=0).context.sum()) < 250


def test_context_band_is_drawn_only_with_the_question_and_no_cell_of_tiny_cnn_sees_band_and_bar():
    from attention_lib.toolkit.data import context_dataset
    d = context_dataset(600, seed=2, noise=0.0)
    x = d.images
    bar = (x.amax(1) - x.amin(1)) > 0.3                            # saturated pixels: the bar (the band is grey)
    static = x.amin(1) > 0.85                                      # the light pixels of the band
    assert not static[d.context == 0].any() and static[d.context == 1].flatten(1).any(1).all()
    # TinyCNN's last feature map: cell q sees input rows (and columns) 4q - 7 .. 4q + 9.
    window = torch.zeros(8, 32, dtype=torch.bool)
    for q in range(8):
        window[q, max(0, 4 * q - 7):4 * q + 10] = True
    cells = (window[:, None, :, None] & window[None, :, None, :]).reshape(64, 32, 32)
    sees_bar = (cells[None] & bar[:, None]).flatten(2).any(2)         # (n, 64)
    sees_band = (cells[None] & static[:, None]).flatten(2).any(2)
    assert sees_bar.any(1).all() and sees_band[d.context == 1].any(1).all()
    assert not (sees_bar & sees_band).any()


def test_context_dataset_rejects_impossible_geometry():
    from attention_lib.toolkit.data import context_dataset
    with pytest.raises(ValueError, match="clear"):
        context_dataset(4, clear=24)
    with pytest.raises(ValueError, match="n"):
        context_dataset(0)


def test_context_share_is_one_for_the_question_alone_and_zero_without_it():
    from attention_lib.toolkit.data import context_share
    context = torch.tensor([0, 1] * 10)
    only_question = torch.stack([context.float(), 2 * context.float()], 1)          # (20, 2)
    assert context_share(only_question, context) == pytest.approx(1.0)
    unrelated = torch.tensor([[1.0], [3.0], [3.0], [1.0]] * 5)                     # same mean in both groups
    assert context_share(unrelated, torch.tensor([0, 0, 1, 1] * 5)) == pytest.approx(0.0)
    assert context_share(torch.ones(20, 3), context) == 0.0
    with pytest.raises(ValueError, match=r"\(n, C\)"):
        context_share(torch.ones(20), context)


def test_context_cnn_demo_builds_the_configured_network():
    cfg = train.ContextCNN(attention="squeeze_excitation", n_train=8, n_val=4)
    model = cfg.build()
    assert isinstance(model.attention, MECHANISMS["squeeze_excitation"].cls) and model.attention.fc1.out_features == 16
    assert train.ContextCNN(attention="squeeze_excitation", reduction=16).build().attention.fc1.out_features == 1
    assert len(cfg.data("train").images) == 8 and len(cfg.data("val").images) == 4
    assert train.DEMOS["context_cnn"] is train.ContextCNN
def test_box_scores_peak_mass_and_area_by_hand():
    from attention_lib.toolkit.data import box_scores
    boxes = torch.tensor([[4, 8, 12, 16], [0, 0, 4, 4]])               # cells (2..3, 1..2) and (0, 0) on 8 x 8
    maps = torch.zeros(2, 8, 8)
    maps[0, 2, 1], maps[0, 7, 7] = 3.0, 1.0                            # peak inside, a quarter of the mass outside
    maps[1, 5, 5] = 1.0                                                # peak outside, all mass outside
    s = box_scores(maps, boxes, 32)
    assert s.peak_in_box == 0.5 and s.mass_in_box == pytest.approx((0.75 + 0.0) / 2)
    assert s.box_area == pytest.approx((4 + 1) / 128)
    flat = box_scores(torch.ones(2, 8, 8), boxes, 32)
    assert flat.mass_in_box == pytest.approx(flat.box_area)            # a flat map scores the box's area
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        box_scores(torch.ones(8, 8), boxes, 32)


def test_shapes_dataset_hands_out_copies_of_recent_draws():
    a = shapes_dataset(20, seed=5)
    a.images.zero_()                                                    # the caller's copy only
    b = shapes_dataset(20, seed=5)
    assert b.images.abs().sum() > 0 and not torch.equal(a.images, b.images)
    assert all(torch.equal(x, y) for x, y in zip(b, shapes_dataset(20, seed=5)))


def test_fit_validates_every_nth_epoch_and_after_the_last():
    data = shapes_dataset(64, seed=1)
    val = shapes_dataset(32, seed=2)
    torch.manual_seed(0)
    model = TinyCNN(None, width=4)
    history = train.fit(model, data, epochs=5, batch_size=32, val_data=val, val_every=2, progress=False,
                        device="cpu")
    assert len(history["loss"]) == 5 and len(history["val_acc"]) == 3          # epochs 2, 4 and 5
    assert history["val_acc"][-1] == train.evaluate(model, val)["acc"]
    with pytest.raises(ValueError, match="val_every"):
        train.fit(model, data, epochs=1, val_every=0, progress=False, device="cpu")


# ----------------------------------------------------------------------------- TinyTokenNet, ShapesTokens

@pytest.mark.parametrize("attention", [None, "self_attention", "external_attention",
                                       "multi_head_external_attention"])
def test_tiny_token_net_runs_each_token_mixer_and_none_at_batch_one(attention):
    from attention_lib.toolkit.models import TinyTokenNet

    model = TinyTokenNet(attention, dim=16, num_heads=2, memory_size=8).eval()
    x = torch.rand(1, 3, 32, 32)
    assert model(x).shape == (1, 4) and model.tokens(x).shape == (1, 64, 16)
    expected = {None: None, "self_attention": (1, 2, 64, 64), "external_attention": (1, 64, 8),
                "multi_head_external_attention": (1, 8, 64, 8)}[attention]     # coef 4 x 2 heads
    if expected is None:
        with pytest.raises(ValueError, match="baseline"):
            model.attention_map(x)
    else:
        maps = model.attention_map(x)
        assert maps.shape == expected and torch.allclose(maps.sum(-1), torch.ones(()), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        model(torch.rand(1, 3, 16, 16))


def test_tiny_token_net_differs_from_its_baseline_only_by_the_mixer():
    from attention_lib.toolkit.instruments import count_parameters
    from attention_lib.toolkit.models import TinyTokenNet

    for attention in ("external_attention", "self_attention"):
        model, base = TinyTokenNet(attention), TinyTokenNet(None)
        assert count_parameters(model) - count_parameters(base) == count_parameters(model.block.attn) > 0
    mixer = MECHANISMS["external_attention"].cls(32, memory_size=4)
    custom = TinyTokenNet(mixer)                        # any (B, N, D) -> (B, N, D) module
    assert custom.block.attn is mixer and custom.attention_map(torch.rand(2, 3, 32, 32)).shape == (2, 64, 4)


def test_shapes_tokens_demo_shares_its_images_across_seeds_and_trains(cache):
    a, b = train.ShapesTokens(seed=0, **TINY), train.ShapesTokens(seed=1, **TINY)
    assert a.data("train") is b.data("train")           # made once per process
    torch.testing.assert_close(a.data("train").images, shapes_dataset(TINY["n_train"], seed=0).images)
    assert not torch.equal(a.data("val").images[:8], a.data("train").images[:8])
    with pytest.raises(ValueError, match="split"):
        a.data("test")
    demo = train.trained_demo(a, **CPU)
    assert demo.model(demo.val_data.images[:2]).shape == (2, 4) and len(demo.history["val_acc"]) == 1
    assert train.trained_demo("shapes_tokens", seed=0, **TINY, **CPU).from_cache


@pytest.fixture
def jupyter_display(monkeypatch):
    """As in a Jupyter kernel: what train shows in its own displays, as ("display" | "update", html) in order."""
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))

    def display(obj, display_id=False):
        shown.append(("display", obj.data))
        return Handle()

    monkeypatch.setattr(train, "_in_jupyter_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_a_demo_in_training_shows_a_line_in_jupyter_and_removes_it_after(cache, jupyter_display, capsys):
    """Issue 23: cells that trained for 40-50 s showed nothing but [*]; the line goes to a display of its own."""
    shown = jupyter_display
    train.trained_demo("shapes_cnn", attention="squeeze_excitation", **CPU, **TINY)
    assert [kind for kind, _ in shown] == ["display", "update"]
    assert "shapes_cnn" in shown[0][1] and "cache" in shown[0][1] and shown[1][1] == ""
    assert capsys.readouterr() == ("", "")
    shown.clear()
    train.trained_demo("shapes_cnn", attention="squeeze_excitation", **CPU, **TINY)     # cached: nothing shown
    assert shown == []


def test_demos_training_side_by_side_show_one_line_in_jupyter_and_remove_it_after(tmp_path, monkeypatch,
                                                                                  jupyter_display):
    """Issue 23: while trained_demos' worker processes train, the cell shows one line (the workers, fresh
    interpreters, show nothing), emptied once they are done; demos loaded from the cache show nothing."""
    import concurrent.futures

    shown, in_kernel = jupyter_display, [True]

    class InProcess:                          # a pool that runs each job here, as a process that is no kernel
        def __init__(self, workers, mp_context=None):
            self.workers = workers

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            in_kernel[0] = False
            try:
                fn(*args)
            finally:
                in_kernel[0] = True
            done = concurrent.futures.Future()
            done.set_result(None)
            return done

    monkeypatch.setattr(train, "_in_jupyter_kernel", lambda: in_kernel[0])
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", InProcess)
    configs = [train.demo_config("reversal", seed=s, **TINY) for s in (0, 1, 2)]
    train.set_cache_dir(tmp_path)
    try:
        demos = train.trained_demos(configs, device="cpu", progress=False, workers=2)
        assert all(d.from_cache for d in demos)
        assert [kind for kind, _ in shown] == ["display", "update"] and shown[1][1] == ""
        assert "3 demos" in shown[0][1] and "reversal seeds 0, 1, 2" in shown[0][1] and "2 processes" in shown[0][1]
        assert "cache" in shown[0][1]
        shown.clear()
        train.trained_demos(configs, device="cpu", progress=False, workers=2)          # all cached: nothing shown
        assert shown == []
    finally:
        train.set_cache_dir(None)


def test_box_scores_read_as_a_sentence_in_the_chapters_language():
    """Issue 23: a cell ending in box_scores(...) showed BoxScores(peak_in_box=0.9760000109672546, ...) in zh/05."""
    from attention_lib.toolkit import data, i18n

    scores = data.BoxScores(0.9760000109672546, 0.24735496938228607, 0.15071874856948853)
    assert repr(scores) == "peak in the box 97.6%, mass in the box 24.7% (the box covers 15.1% of the map)"
    i18n.set_language("zh")
    try:
        assert "97.6%" in repr(scores) and "目标框" in repr(scores) and "peak" not in repr(scores)
    finally:
        i18n.set_language("en")
    assert scores.peak_in_box == 0.9760000109672546            # the numbers themselves are untouched


def test_tiny_cnn_stages_after_the_block_and_the_mlp_head_are_optional_and_leave_the_default_untouched():
    plain = TinyCNN("squeeze_excitation", width=4)
    assert plain.after is None and len(plain.head) == 3 and "after" not in repr(plain)   # the demo cache key
    model = TinyCNN("squeeze_excitation", width=4, after=2, head_hidden=6).eval()
    assert len(model.after) == 2 and model.after[0][0].kernel_size == (1, 1)              # 1x1: windows unchanged
    assert [m.out_features for m in model.head if isinstance(m, nn.Linear)] == [6, 4]
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        f = model.attention(model.features(x))
        torch.testing.assert_close(model(x), model.head(model.after(f)))
        torch.testing.assert_close(model.read_out(f), model(x))
    with pytest.raises(ValueError, match="after"):
        TinyCNN(None, after=-1)
    cfg = train.ContextCNN(head_hidden=32)
    assert cfg.build().after is not None and train.ContextCNN(after=0).build().after is None


def test_untrained_model_is_the_starting_point_of_trained_demo(tmp_path):
    train.set_cache_dir(tmp_path)
    try:
        cfg = train.ContextCNN(attention="squeeze_excitation", n_train=8, n_val=4, epochs=1, seed=3)
        a, b = train.untrained_model(cfg), train.untrained_model(cfg)
        assert not a.training and all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                                       b.state_dict().values()))
        state = torch.get_rng_state()
        train.untrained_model(cfg.replace(seed=4))
        assert torch.equal(state, torch.get_rng_state())                  # the global RNG is left as it was
        trained = train.trained_demo(cfg, progress=False, device="cpu").model
        assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), trained.state_dict().values()))
    finally:
        train.set_cache_dir(None)


def test_seed_accuracies_reads_each_demo_on_its_own_validation_images():
    from types import SimpleNamespace

    class Constant(nn.Module):                                    # always answers class 0
        def forward(self, x):
            return torch.zeros(len(x), 4).index_fill_(1, torch.tensor([0]), 1.0)

    labels = [torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1])]
    demos = [SimpleNamespace(model=Constant(), val_data=(torch.zeros(4, 3), y)) for y in labels]
    accs = train.seed_accuracies({"constant": demos})
    assert accs["constant"].values == (0.5, 0.25) and accs["constant"].n == 2


# ---------------------------------------------------------------- the cue task (chapters 0, 5, 6)

def test_cue_dataset_draws_a_red_target_among_equally_bright_shapes_that_do_not_touch():
    from attention_lib.toolkit import data as d
    cue = d.cue_dataset(64, seed=3)
    assert cue.images.shape == (64, 3, 32, 32) and cue.distractor_boxes.shape == (64, 2, 4)
    assert torch.equal(cue.images, d.cue_dataset(64, seed=3).images)                 # same arguments, same images
    assert not torch.equal(cue.images, d.cue_dataset(64, seed=4).images)
    for i in range(64):
        boxes = [cue.boxes[i]] + list(cue.distractor_boxes[i])
        centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in (bx.tolist() for bx in boxes)]
        halves = [max(b[2] - b[0], b[3] - b[1]) / 2 for b in (bx.tolist() for bx in boxes)]
        for a in range(3):                                   # the shapes keep apart: centres farther than the radii
            for b in range(a + 1, 3):
                gap = ((centres[a][0] - centres[b][0]) ** 2 + (centres[a][1] - centres[b][1]) ** 2) ** 0.5
                assert gap >= halves[a] + halves[b]
        x0, y0, x1, y1 = cue.boxes[i].tolist()
        target = cue.images[i, :, y0:y1, x0:x1].flatten(1)                          # (3, pixels)
        peak = target.amax(1)                                                        # the shape's colour
        assert peak[0] > 0.75 and peak[1] < 0.55 and peak[2] < 0.55                  # red
        for x0, y0, x1, y1 in cue.distractor_boxes[i].tolist():
            other = cue.images[i, :, y0:y1, x0:x1].flatten(1).amax(1)
            assert other[0] < 0.55 and max(other[1], other[2]) > 0.75                # green or blue,
            assert abs(other.max() - peak.max()) < 0.25                              # as bright as the target
    assert set(cue.labels.tolist()) <= set(range(len(d.SHAPE_CLASSES)))


def test_cue_colours_share_their_maximum_and_mean():
    from attention_lib.toolkit.data import CUE_COLOURS
    assert torch.allclose(CUE_COLOURS.amax(1), torch.ones(3)) and torch.allclose(CUE_COLOURS.mean(1), CUE_COLOURS.mean())


def test_peak_on_distractor_counts_peaks_on_a_distractor_and_not_on_the_target():
    from attention_lib.toolkit import data as d
    cue = d.cue_dataset(3, seed=0)
    maps = torch.zeros(3, 8, 8)
    for i, (x0, y0, x1, y1) in enumerate(cue.distractor_boxes[:, 0].tolist()):
        maps[i, (y0 + y1) // 8, (x0 + x1) // 8] = 1.0                               # the first distractor's centre
    x0, y0, x1, y1 = cue.boxes[2].tolist()
    maps[2] = 0.0
    maps[2, (y0 + y1) // 8, (x0 + x1) // 8] = 1.0                                    # image 2: on the target
    assert d.peak_on_distractor(maps, cue, 32) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        d.peak_on_distractor(maps[:2], cue, 32)


def test_redness_maps_see_red_and_nothing_else():
    from attention_lib.toolkit.data import redness_maps
    images = torch.full((1, 3, 16, 16), 0.5)
    images[0, :, :8, :8] = torch.tensor([1.0, 0.2, 0.2])[:, None, None]             # red top-left
    images[0, :, 8:, 8:] = torch.tensor([0.2, 1.0, 0.2])[:, None, None]             # green bottom-right
    red = redness_maps(images, 2, 2)
    assert red[0, 0, 0] == pytest.approx(0.8) and red[0, 1, 1] == 0 and red[0, 0, 1] == 0


def test_cue_cnn_demo_builds_the_tiny_cnn_on_the_cue_images():
    cfg = train.CueCNN(attention="cbam", n_val=4)
    assert isinstance(cfg.build(), TinyCNN) and cfg.build().attention_name == "cbam"
    val = cfg.data("val")
    assert val.images.shape == (4, 3, 32, 32) and train.DEMOS["cue_cnn"] is train.CueCNN
    assert not torch.equal(cfg.data("train").images[:4], val.images)                 # held-out images


def test_one_thread_runs_on_one_thread_and_restores_the_setting():
    from attention_lib.toolkit.train import one_thread
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1

    @one_thread()
    def inside():
        return torch.get_num_threads()

    assert inside() == 1 and torch.get_num_threads() == before


# ------------------------------------------------------------------------- the cache follows the code; many demos

_CHAPTER_DEMO = '''
from dataclasses import dataclass
from typing import ClassVar
from attention_lib.toolkit import train

@dataclass(frozen=True)
class Tiny(train.DemoConfig):
    kind: ClassVar[str] = "tiny_chapter_demo"

def make_data():
    return {version}
'''


def test_code_digest_changes_with_a_chapter_modules_source_and_not_otherwise(tmp_path, monkeypatch):
    """A chapter demo's data code lives beside its config: editing the module must train the demo anew (a cached
    model would otherwise print what the old code trained), while the toolkit's demos do not depend on it."""
    import importlib

    module = tmp_path / "chapter_demo_probe.py"
    module.write_text(_CHAPTER_DEMO.format(version=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("chapter_demo_probe")
    before, toolkit_before = train.code_digest(probe.Tiny()), train.code_digest(train.ShapesCNN())
    assert train.code_digest(probe.Tiny()) == before                       # stable while nothing changes
    module.write_text(_CHAPTER_DEMO.format(version=2))                     # the data code changes, not the config
    os.utime(module, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert train.code_digest(probe.Tiny()) != before
    assert train.code_digest(train.ShapesCNN()) == toolkit_before
    key = train.demo_key("tiny_chapter_demo", {}, "arch", before)
    assert key != train.demo_key("tiny_chapter_demo", {}, "arch", train.code_digest(probe.Tiny()))


def test_trained_demos_in_worker_processes_are_bitwise_those_trained_one_by_one(tmp_path, monkeypatch):
    """trained_demos trains uncached demos in spawned processes: same weights and history as trained_demo alone,
    each configuration once, results in the order asked."""
    configs = [train.demo_config("reversal", seed=s, **TINY) for s in (1, 0, 1)]
    train.set_cache_dir(tmp_path / "parallel")
    try:
        together = train.trained_demos(configs, device="cpu", progress=False, workers=2)
        assert all(d.from_cache for d in together)           # the workers trained them; this process only loaded
        assert len(list((tmp_path / "parallel").glob("reversal-*.pt"))) == 2
        train.set_cache_dir(tmp_path / "alone")
        alone = [train.trained_demo(c, **CPU) for c in configs]
    finally:
        train.set_cache_dir(None)
    assert [d.config.seed for d in together] == [1, 0, 1]
    for a, b in zip(together, alone):
        assert {k: v for k, v in a.history.items() if k != "seconds"} == \
            {k: v for k, v in b.history.items() if k != "seconds"}               # wall times differ, nothing else
        for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
            assert torch.equal(x, y), name
    with pytest.raises(ValueError, match="workers"):
        train.trained_demos(configs, workers=0)
    monkeypatch.setenv("ATTENTION_LIB_WORKERS", "three")
    with pytest.raises(ValueError, match="ATTENTION_LIB_WORKERS"):
        train.default_workers()
    monkeypatch.setenv("ATTENTION_LIB_WORKERS", "3")
    assert train.default_workers() == 3
