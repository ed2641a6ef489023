"""Chapter 01's module: figures draw in both languages, helpers compute what they claim (against independent
references), the demos' models behave, and the exercise checks accept solutions and name typical slips."""
import math
import warnings

import matplotlib
import pytest
import torch
import torch.nn.functional as F

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import attention_lib as al  # noqa: E402
from attention_lib import exercises, i18n  # noqa: E402
from attention_lib.chapters import ch01_self_attention as ch  # noqa: E402


@pytest.fixture(params=["en", "zh"])
def lang(request):
    al.setup(lang=request.param)
    yield request.param
    al.setup(lang="en")
    plt.close("all")


def draws_cleanly(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a missing glyph is a warning
        fig = make()
        fig.canvas.draw()
    return fig


def titles(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    return out + [ax.get_title() for ax in fig.axes] + [ax.get_xlabel() for ax in fig.axes]


# ---------------------------------------------------------------- figures

def test_every_figure_draws_in_both_languages(lang):
    g = torch.Generator().manual_seed(0)
    photo = torch.rand(3, 48, 48, generator=g)
    images = torch.rand(2, 3, 24, 24, generator=g)
    boxes = torch.tensor([[2, 3, 10, 12], [8, 8, 20, 20]])
    maps = [torch.rand(2, 36, generator=g) for _ in range(2)]
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    weights = torch.rand(5, 5, generator=g).softmax(-1)
    stats = ch.scaling_statistics([4, 16], samples=50)
    figures = {
        "lookup": lambda: ch.plot_patch_lookup(photo, 12, [(0, 0), (2, 3)]),
        "scaling": lambda: ch.plot_scaling_statistics(stats),
        "heads": lambda: ch.plot_head_split(4, 8, 2),
        "masks": lambda: ch.plot_masks(causal, causal.T, weights, weights),
        "patches": lambda: ch.plot_patch_grid(photo, 12),
        "flops": lambda: ch.plot_flop_terms([16, 256, 4096], 768, marks={"P = 16": 197}),
        "memory": lambda: ch.plot_memory([64, 128, 256], {"fused": [1, 2, 4], "explicit": [1, 4, 16]}),
        "vit": lambda: ch.plot_vit_attention(images, maps, maps[0], 6, boxes=boxes),
        "vit_photo": lambda: ch.plot_vit_attention(images[:1], [m[:1] for m in maps], maps[0][:1], 6),
        "cls_heads": lambda: ch.plot_cls_heads(images[0], [torch.rand(4, 36), torch.rand(4, 36)], 6, boxes[0]),
        "positions": lambda: ch.plot_position_similarity(ch.position_similarity(torch.randn(36, 8)), 6),
        "pairs": lambda: ch.plot_pair_accuracy({"a": torch.rand(3, 15), "b": torch.rand(3, 15)}, 8),
    }
    for name, make in figures.items():
        fig = draws_cleanly(make)
        assert fig._suptitle is not None or any(ax.get_title() for ax in fig.axes), name
        plt.close(fig)
    assert i18n.t("ch01.pairs.title") in titles(draws_cleanly(figures["pairs"]))


def test_vit_figure_shares_one_colour_scale_across_its_maps():
    maps = [torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0.25, 0.25, 0.25, 0.25]])]
    fig = ch.plot_vit_attention(torch.rand(1, 3, 4, 4), maps[:1], maps[1], 2)
    overlays = [ax.get_images()[-1] for ax in fig.axes[1:3]]
    assert all(im.get_clim() == (0, 1.0) for im in overlays)     # the largest share of any map: 1
    plt.close(fig)


# ---------------------------------------------------------------- measurements

def test_scaling_statistics_measure_the_variance_saturation_and_the_gradient_reaching_q():
    s = ch.scaling_statistics([4, 64, 1024], samples=400)
    for d, raw, scaled in zip(s["d_k"], s["var_raw"], s["var_scaled"]):
        assert raw == pytest.approx(d, rel=0.15) and scaled == pytest.approx(1.0, rel=0.15)
    assert s["max_raw"][0] < s["max_raw"][1] < s["max_raw"][2]            # saturates
    assert s["grad_mean_raw"][2] > 2 * s["grad_mean_raw"][0]               # a few queries get large gradients
    assert s["grad_median_raw"][2] < 0.01 * s["grad_median_raw"][0]        # most get almost none
    assert max(s["max_scaled"]) - min(s["max_scaled"]) < 0.05             # the scale keeps it flat


def test_the_gradient_reaching_q_is_autograd_s():
    s = ch.scaling_statistics([8], samples=3, n_keys=5, seed=4)
    g = torch.Generator().manual_seed(4)
    q = torch.randn(3, 1, 8, generator=g)
    k = torch.randn(3, 5, 8, generator=g)
    norms = []
    for b in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: (k[b] @ v / math.sqrt(8)).softmax(-1), q[b, 0])
        norms.append(jac.norm().item())
    assert s["grad_median_scaled"][0] == pytest.approx(sorted(norms)[1], rel=1e-5)
    assert s["grad_mean_scaled"][0] == pytest.approx(sum(norms) / 3, rel=1e-5)


def test_scale_readings_hold_on_the_measurement_and_fail_on_contradicting_numbers():
    stats = ch.scaling_statistics([4, 16, 64, 256, 1024])
    ch.check_scale_readings(stats)
    flat = dict(stats, grad_median_raw=[0.5] * 5)                          # a median that does not collapse
    with pytest.raises(al.readings.ReadingError, match="median collapses"):
        ch.check_scale_readings(flat)
    shallow = dict(stats, grad_median_raw=[0.5, 1.2, 1.4, 0.5, 0.02])        # above a hundredth of d_k = 64's
    with pytest.raises(al.readings.ReadingError, match="hundredth of its value at d_k = 64"):
        ch.check_scale_readings(shallow)
    growing = dict(stats, grad_mean_scaled=[0.2, 0.4, 0.8, 1.6, 3.2])      # the scale would not keep it flat
    with pytest.raises(al.readings.ReadingError, match="with the scale"):
        ch.check_scale_readings(growing)


def test_memory_readings_check_the_slopes_and_the_5ND_floats():
    ns = [64, 128, 256, 512, 1024]
    fused = [5 * n * 64 * 4 for n in ns]
    explicit = [2 * 8 * n * n * 4 + f for n, f in zip(ns, fused)]
    ch.check_memory_readings(ns, {"fused": fused, "explicit": explicit}, dim=64, heads=8)
    with pytest.raises(al.readings.ReadingError, match="slope"):
        ch.check_memory_readings(ns, {"fused": explicit, "explicit": explicit}, dim=64, heads=8)
    with pytest.raises(al.readings.ReadingError, match="5ND"):
        ch.check_memory_readings(ns, {"fused": [2 * f for f in fused], "explicit": explicit}, dim=64, heads=8)


def _naive_rollout(maps, residual=0.5):
    n = maps[0].shape[-1]
    result = torch.eye(n).expand(maps[0].shape[0], n, n)
    for a in maps:
        a = a.mean(1) * (1 - residual) + residual * torch.eye(n)
        a = a / a.sum(-1, keepdim=True)
        result = torch.einsum("bij,bjk->bik", a, result)
    return result


def test_attention_rollout_follows_abnar_and_zuidema():
    g = torch.Generator().manual_seed(1)
    maps = [torch.rand(2, 3, 5, 5, generator=g).softmax(-1) for _ in range(3)]
    rollout = ch.attention_rollout(maps)
    assert torch.allclose(rollout, _naive_rollout(maps), atol=1e-6)
    assert torch.allclose(rollout.sum(-1), torch.ones(2, 5), atol=1e-6)
    identity = [torch.eye(4).expand(1, 2, 4, 4)]
    assert torch.allclose(ch.attention_rollout(identity), torch.eye(4)[None])


def test_box_share_is_one_inside_the_box_and_the_area_share_when_uniform():
    boxes = torch.tensor([[0, 0, 8, 8]])                      # the top-left 2 x 2 patches of a 6 x 6 grid (P = 4)
    inside = torch.zeros(1, 36)
    inside[0, 0] = 1.0
    assert ch.box_share(inside, boxes, 6, 24).item() == pytest.approx(1.0)
    assert ch.box_share(torch.ones(1, 36), boxes, 6, 24).item() == pytest.approx(4 / 36)


def test_anti_diagonal_share_of_a_perfect_reversal_is_one():
    L = 6
    perfect = torch.eye(L).flip(-1).expand(2, 3, L, L)
    assert torch.allclose(ch.anti_diagonal_share(perfect), torch.ones(3))
    assert torch.allclose(ch.anti_diagonal_share(torch.full((1, 2, L, L), 1 / L)), torch.full((2,), 1 / L))


def test_mean_attention_distance_in_pixels():
    grid, P = 3, 4
    n = grid * grid
    self_only = torch.eye(n + 1).expand(1, 2, n + 1, n + 1)
    assert torch.allclose(ch.mean_attention_distance(self_only, grid, P), torch.zeros(2))
    uniform = torch.full((1, 1, n + 1, n + 1), 1 / (n + 1))
    coords = [(r * P, c * P) for r in range(grid) for c in range(grid)]
    expected = sum(math.dist(a, b) for a in coords for b in coords) / n ** 2
    assert ch.mean_attention_distance(uniform, grid, P).item() == pytest.approx(expected, rel=1e-5)


def test_position_similarity_and_its_summary_by_distance():
    grid = 4
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    # embeddings that are smooth over the grid: neighbours similar, far patches not
    pos = torch.stack([torch.cos(rows.flatten() * 0.8), torch.sin(rows.flatten() * 0.8),
                       torch.cos(cols.flatten() * 0.8), torch.sin(cols.flatten() * 0.8)], 1)
    sim = ch.position_similarity(pos)
    assert torch.allclose(sim.diagonal(), torch.ones(grid * grid)) and torch.allclose(sim, sim.T)
    near, far = ch.similarity_by_distance(sim, grid)
    assert near > far


def test_similarity_profile_reads_each_tile_against_the_border_patches():
    grid = 4
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    edge = ((rows == 0) | (rows == grid - 1) | (cols == 0) | (cols == grid - 1)).flatten()
    # border patches share one direction, interior patches are orthogonal to it: border tiles red on the border
    pos = torch.stack([edge.float(), (~edge).float() * torch.arange(16.0)], 1) + 1e-3
    m = ch.similarity_profile(ch.position_similarity(pos), grid)
    assert m["border_tiles"] == pytest.approx(1.0, abs=1e-3) and m["interior_tiles"] == pytest.approx(0.0, abs=1e-2)


def test_patch_tokens_cut_the_image_row_by_row():
    image = torch.randn(3, 8, 12)
    tokens = ch.patch_tokens(image, 4)
    reference = F.unfold(image[None], kernel_size=4, stride=4)[0].T        # (N, C P^2), row-major patches
    assert tokens.shape == (6, 48) and torch.equal(tokens, reference)


def test_patch_embedding_is_cutting_into_patches_and_one_linear():
    embed = al.PatchEmbedding(patch_size=4, in_channels=3, dim=16)
    image = torch.randn(2, 3, 8, 12)
    E = embed.proj.weight.reshape(16, -1)
    tokens = torch.stack([ch.patch_tokens(im, 4) for im in image]) @ E.T + embed.proj.bias
    with torch.no_grad():
        assert torch.allclose(embed(image), tokens, atol=1e-5)


def test_patch_table_counts_tokens_and_the_share_of_the_quadratic_products():
    table = ch.patch_table(224, [16, 4], dim=768)
    assert [row[1] for row in table.rows] == ["196", "3,136"]
    assert table.rows[0][3] == f"{196 / (196 + 1536):.1%}"


def test_fused_forward_counts_2ND_where_the_explicit_path_counts_hN2():
    for n, d, h in [(16, 64, 8), (7, 48, 4), (20, 32, 2)]:
        m = al.MultiHeadSelfAttention(d, num_heads=h).eval()
        x = torch.zeros(1, n, d)
        explicit = al.count_flops(m, x, method="forward_explicit").total
        assert explicit == al.MECHANISMS["self_attention"].expected_flops((1, n, d), dim=d, num_heads=h)
        assert al.count_flops(m, x).total == explicit - h * n * n + 2 * n * d


def test_rounded_gives_plain_floats():
    assert ch.rounded(torch.tensor([[0.12345, 1.0]])) == [0.123, 1.0]


# ---------------------------------------------------------------- the demos' models and data

def test_local_self_attention_is_masked_attention_with_the_same_weights():
    torch.manual_seed(0)
    local = ch.LocalSelfAttention(16, num_heads=2, window=1).eval()
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        q, k, v = local._qkv(x)
        band = (torch.arange(6)[:, None] - torch.arange(6)[None]).abs() <= 1
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(8)
        a = scores.masked_fill(~band, float("-inf")).softmax(-1)
        expected = local.proj((a @ v).transpose(1, 2).reshape(2, 6, 16))
        assert torch.allclose(local(x), expected, atol=1e-6)
        assert torch.allclose(local.attention_map(x), a, atol=1e-6)
        assert (local.attention_map(x)[..., ~band] == 0).all()
        wide = ch.LocalSelfAttention(16, num_heads=2, window=10).eval()
        wide.load_state_dict(local.state_dict())
        full = al.MultiHeadSelfAttention(16, num_heads=2).eval()
        full.load_state_dict(local.state_dict())
        assert torch.allclose(wide(x), full(x), atol=1e-6)           # a window wider than N: global


def test_pair_dataset_labels_and_distances_are_right():
    data = ch.pair_dataset(500, length=12, seed=3)
    marked = data.inputs >= 2
    assert (marked.sum(1) == 2).all()
    positions = [row.nonzero().flatten() for row in marked]
    distance = torch.stack([p[1] - p[0] for p in positions])
    bits = torch.stack([data.inputs[i, p] - 2 for i, p in enumerate(positions)])    # (n, 2)
    assert torch.equal(distance, data.distance)
    assert torch.equal((bits[:, 0] == bits[:, 1]).long(), data.targets)
    assert 0.4 < data.targets.float().mean() < 0.6 and data.distance.min() >= 1 and data.distance.max() <= 11


def test_pair_models_differ_only_in_their_mask():
    torch.manual_seed(0)
    global_model = ch.PairDemo().build()
    torch.manual_seed(0)
    local_model = ch.PairDemo(window=2).build()
    assert al.count_parameters(global_model) == al.count_parameters(local_model)
    for (name, a), (_, b) in zip(global_model.state_dict().items(), local_model.state_dict().items()):
        assert torch.equal(a, b), name                            # the same initial weights
    assert isinstance(local_model.blocks[0].attn, ch.LocalSelfAttention)
    tokens = ch.pair_dataset(3, seed=0).inputs
    assert global_model(tokens).shape == (3, 2) and local_model(tokens[:1]).shape == (1, 2)
    assert ch.PairDemo(window=2).reach == 2 and ch.PairDemo(window=4, depth=2).reach == 8
    assert ch.PairDemo().reach is None and ch.PAIR_DEMOS["local"][0].reach == 8


def test_the_answer_depends_only_on_tokens_within_reach_of_the_first_mark():
    torch.manual_seed(0)
    model = ch.PairDemo(window=2, depth=2).build().eval()      # reach 2 * 2 = 4
    tokens = torch.tensor([[0, 1, 2, 0, 1, 1, 0, 1, 3, 0, 1, 0, 1, 1, 0, 0]])     # marks at 2 and 8
    far = tokens.clone()
    far[0, 7:] = 1 - far[0, 7:] % 2                            # change everything beyond 2 + 4 = 6 ...
    far[0, 8] = 2                                              # ... the second mark's bit included
    near = tokens.clone()
    near[0, 5] = 1 - near[0, 5]                                # a bit within reach
    with torch.no_grad():
        assert torch.allclose(model(tokens), model(far), atol=1e-6)
        assert not torch.allclose(model(tokens), model(near), atol=1e-6)
    torch.manual_seed(0)
    full = ch.PairDemo(depth=2).build().eval()                 # global: the far tokens matter
    with torch.no_grad():
        assert not torch.allclose(full(tokens), full(far), atol=1e-6)


def test_loss_floor_is_ln2_times_the_share_of_distances_beyond_reach():
    assert ch.loss_floor(16, 8) == pytest.approx(math.log(2) * 7 / 15)
    assert ch.loss_floor(16, 15) == 0


def test_accuracy_by_distance_of_an_oracle_is_one():
    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            marked = tokens >= 2
            bits = (tokens - 2)[marked].view(-1, 2)
            return F.one_hot((bits[:, 0] == bits[:, 1]).long(), 2).float()

    data = ch.pair_dataset(300, seed=1)
    assert torch.equal(ch.accuracy_by_distance(Oracle(), data), torch.ones(15))


def _pair_results(local_within=1.0, local_beyond=0.5, local_loss=0.35, global_acc=1.0, train_within=1.0,
                  train_beyond=0.52):
    def acc(within, beyond):
        return torch.tensor([[within] * 8 + [beyond] * 7] * 3)
    return {"global": dict(val=acc(global_acc, global_acc), train=acc(1.0, 1.0), loss=torch.full((3,), 0.001)),
            "local": dict(val=acc(local_within, local_beyond), train=acc(train_within, train_beyond),
                          loss=torch.full((3,), local_loss))}


def test_pair_readings_hold_on_a_clean_cliff_and_fail_on_contradicting_numbers():
    floor = ch.loss_floor(16, 8)
    ch.check_pair_readings(_pair_results(), 8, floor)
    contradictions = {"training pairs within its reach": dict(train_within=0.6),
                      "at chance": dict(local_beyond=0.7),
                      "global self-attention is right": dict(global_acc=0.9),
                      "just above the floor": dict(local_loss=0.6),
                      "up to its reach": dict(local_within=0.55),
                      "slightly more than half": dict(train_beyond=0.49)}
    for match, changes in contradictions.items():
        with pytest.raises(al.readings.ReadingError, match=match):
            ch.check_pair_readings(_pair_results(**changes), 8, floor)


def test_pair_results_and_table_read_the_runs(tmp_path):
    al.train.set_cache_dir(tmp_path)
    try:
        runs = [al.trained_demo(ch.PairDemo(window=8, seed=s, n_train=64, n_val=64, epochs=1), progress=False,
                                device="cpu") for s in ch.PAIR_SEEDS]
    finally:
        al.train.set_cache_dir(None)
    r = ch.pair_results(runs)
    assert r["val"].shape == (3, 15) and r["train"].shape == (3, 15) and r["loss"].shape == (3,)
    assert r["loss"][0].item() == pytest.approx(runs[0].history["loss"][-1])
    table = ch.pair_table({"global": r, "local": r}, 8)
    beyond = ch.beyond_reach(r, 8)
    assert beyond["low"] == r["val"][:, 8:].min().item() and len(beyond["train"]) == 3
    assert len(table) == 6 and "8" in table.headers[3]


def test_class_token_vit_reads_the_class_token():
    torch.manual_seed(0)
    model = ch.ClassTokenViT().eval()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        out = model(x)
        maps = model.attention_maps(x)
        assert out.shape == (1, 4) and len(maps) == 2 and maps[0].shape == (1, 4, 37, 37)
        model.cls_token.add_(torch.randn(1, 1, 32))     # (a constant shift would vanish in LayerNorm)
        assert not torch.allclose(model(x), out)                   # the output comes from the class token
    with pytest.raises(ValueError, match=r"\(B, 3, 24, 24\)"):
        model(torch.rand(1, 3, 32, 32))


def test_demo_configurations():
    assert ch.VIT_DEMO.kind == "ch01_shapes_vit" and isinstance(ch.VIT_DEMO.build(), ch.ClassTokenViT)
    assert [c.seed for c in ch.VIT_DEMOS] == list(ch.VIT_SEEDS) and ch.VIT_DEMO is ch.VIT_DEMOS[0]
    data = ch.VIT_DEMO.replace(n_val=5).data("val")
    assert data.images.shape == (5, 3, 24, 24)
    assert [c.seed for c in ch.PAIR_DEMOS["local"]] == list(ch.PAIR_SEEDS)
    assert all(c.window == ch.PAIR_WINDOW for c in ch.PAIR_DEMOS["local"])
    assert all(c.window is None for c in ch.PAIR_DEMOS["global"])


def test_vit_measurements_of_an_untrained_model():
    torch.manual_seed(0)
    model = ch.ClassTokenViT().eval()
    val = ch.VIT_DEMO.replace(n_val=20).data("val")
    m = ch.vit_measurements(model, val)
    assert 0 <= m["acc"] <= 1 and len(m["cls"]) == 2 and len(m["heads"][0]) == 4
    uniform = ch.box_share(torch.ones(20, 36), val.boxes, 6, 24).mean().item()
    assert m["uniform"] == pytest.approx(uniform)
    assert ch.uniform_distance(6, 4) == pytest.approx(12.3, abs=0.05)    # the review's 12.3 px
    assert len(ch.vit_share_table([m] * 3)) == 3 and len(ch.vit_head_table([m] * 3, 12.3)) == 6


def _vit(cls=(0.7, 0.7), queries=(0.5, 0.5), rollout=0.6, uniform=0.36, spread=0.3, dist=11.8, near=0.3,
         far=0.05, profile=(0.3, 0.1, 0.0, -0.06, 0.11), border=0.3, other=-0.1, peak=1.0, bright2=0.65,
         border_tiles=0.3, interior_tiles=-0.05):
    heads = [[0.5, 0.5 + spread, 0.5, 0.5]] * 2
    return dict(acc=0.8, cls=list(cls), queries=list(queries), rollout=rollout, uniform=uniform, heads=heads,
                dist=[[dist] * 4] * 2, near=near, far=far, profile=list(profile), border=border, other=other,
                border_tiles=border_tiles, interior_tiles=interior_tiles,
                peak=peak, bright=0.57, bright2=bright2)


def test_vit_readings_hold_and_fail_on_contradicting_numbers():
    good = [_vit(cls=(0.64, 0.6)), _vit(cls=(0.6, 0.62)), _vit(cls=(0.85, 0.6))]   # above brightness² (0.65): 2/1
    ch.check_vit_shares(good)
    with pytest.raises(al.readings.ReadingError, match="seed to seed"):
        ch.check_vit_shares([_vit(cls=(0.6, 0.6))] * 2 + [_vit(cls=(0.66, 0.6))])   # three alike seeds
    ch.check_vit_heads([_vit()] * 3, 12.3)
    ch.check_vit_positions([_vit()] * 3, 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="class token"):
        ch.check_vit_shares([good[0], _vit(cls=(0.45, 0.7)), good[2]])
    with pytest.raises(al.readings.ReadingError, match="uniform share"):
        ch.check_vit_shares([good[0], good[1], _vit(cls=(0.85, 0.6), rollout=0.4)])
    with pytest.raises(al.readings.ReadingError, match="ten points"):
        ch.check_vit_heads([_vit(spread=0.05)] * 3, 12.3)
    with pytest.raises(al.readings.ReadingError, match="uniform attention"):
        ch.check_vit_heads([_vit(dist=6.0)] * 3, 12.3)
    with pytest.raises(al.readings.ReadingError, match="position embeddings"):
        ch.check_vit_positions([_vit(near=0.1, far=0.1)] * 3, 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="figure 7"):           # falls steadily, as in ViT
        ch.check_vit_positions([_vit(profile=(0.5, 0.3, 0.2, 0.1, 0.0))] * 3, 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="border against interior"):
        ch.check_vit_positions([_vit(), _vit(border=0.1, other=0.0), _vit()], 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="those of interior patches are not"):   # interior red too
        ch.check_vit_positions([_vit(), _vit(interior_tiles=0.25), _vit()], 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="tiles of the border patches"):         # border tiles pale
        ch.check_vit_positions([_vit(), _vit(), _vit(border_tiles=0.1)], 0.0, 0.01)
    with pytest.raises(al.readings.ReadingError, match="learns nothing"):     # the rollout beats brightness²
        ch.check_vit_shares([good[0], _vit(cls=(0.6, 0.75), rollout=0.8), good[2]])
    with pytest.raises(al.readings.ReadingError, match="learns nothing"):     # the brightest patch often misses
        ch.check_vit_shares([good[0], _vit(cls=(0.6, 0.75), peak=0.6), good[2]])
    with pytest.raises(al.readings.ReadingError, match="learns nothing"):     # a second seed's class token above
        ch.check_vit_shares([_vit(cls=(0.7, 0.6)), good[1], good[2]])
    with pytest.raises(al.readings.ReadingError, match="learns nothing"):     # above in seed 2, but layer 2
        ch.check_vit_shares([good[0], good[1], _vit(cls=(0.6, 0.85))])
    with pytest.raises(al.readings.ReadingError, match="learns nothing"):     # no view above brightness²
        ch.check_vit_shares([_vit(cls=(0.7, 0.6), bright2=0.9), _vit(cls=(0.6, 0.75), bright2=0.9),
                             _vit(cls=(0.85, 0.6), bright2=0.9)])


# ---------------------------------------------------------------- exercises

def hint(key, **fmt):
    return i18n.t("ex.wrong", hint=i18n.t(key, **fmt))


def verdict_is(key, answer, expected_hint):
    """The check says "correct" (``expected_hint`` None) or "not quite" with exactly that hint."""
    result, message = exercises.verdict(key, answer)
    if expected_hint is None:
        return result is True
    return result is False and message == hint(expected_hint)


def rejects(key, answer):
    result, message = exercises.verdict(key, answer)
    return result is False and isinstance(message, str) and message


def test_shape_exercise(lang):
    assert verdict_is("sa.shape", (4, 6, 50, 50), None)
    assert verdict_is("sa.shape", torch.Size([4, 6, 50, 50]), None)
    for answer, key in [((4, 50, 50), "ex.sa.shape.no_heads"), ((6, 50, 50), "ex.sa.shape.no_batch"),
                        ((4, 6, 50, 16), "ex.sa.shape.per_head"), ((4, 50, 96), "ex.sa.shape.output"),
                        ((4, 50, 6, 50), "ex.sa.shape.order"), ((1, 2), "ex.sa.shape.other")]:
        assert verdict_is("sa.shape", answer, key), answer
    for answer in ("shape", 3.5, (4, 6, 50, 50.5)):            # the engine names these type slips
        assert rejects("sa.shape", answer), answer


def test_params_exercise(lang):
    D = 96
    assert verdict_is("sa.params", 3 * D * D + D * D + D, None)
    assert verdict_is("sa.params", float(4 * D * D + D), None)
    for answer, key in [(4 * D * D, "ex.sa.params.no_proj_bias"), (4 * D * D + 4 * D, "ex.sa.params.qkv_bias"),
                        (3 * D * D, "ex.sa.params.no_proj"), (123, "ex.sa.params.other")]:
        assert verdict_is("sa.params", answer, key), answer
    for answer in (True, "36960", float("nan"), 36960.5):
        assert rejects("sa.params", answer), answer


def sdpa_solution(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def _variant(scale=None, dim=-1, fill=float("-inf"), invert=False, after=False, ignore=False, squeeze=False):
    def attention(q, k, v, mask=None):
        if squeeze:
            q, k, v = q.squeeze(), k.squeeze(), v.squeeze()
        s = q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5 if scale is None else scale(q.shape[-1]))
        if mask is not None and not ignore and not after:
            s = s.masked_fill(mask if invert else ~mask, fill)
        a = s.softmax(dim)
        if mask is not None and after:
            a = a * mask
        return a @ v
    return attention


def test_sdpa_exercise_accepts_the_solution_and_names_the_slips(lang):
    assert verdict_is("sa.sdpa", sdpa_solution, None)
    # calling torch's own attention computes the right numbers, but the exercise is to write it: the run-time
    # watch grades it "not quite" and names the call
    assert verdict_is("sa.sdpa", lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                      "ex.forbidden.scaled_dot_product_attention")
    slips = {"ex.sa.sdpa.no_scale": _variant(scale=lambda d: 1.0),
             "ex.sa.sdpa.scale_dk": _variant(scale=lambda d: 1.0 / d),
             "ex.sa.sdpa.dim": _variant(dim=-2),
             "ex.sa.sdpa.mask_ignored": _variant(ignore=True),
             "ex.sa.sdpa.mask_inverted": _variant(invert=True),
             "ex.sa.sdpa.mask_zero": _variant(fill=0.0),
             "ex.sa.sdpa.mask_after": _variant(after=True),
             "ex.sa.sdpa.mask_other": _variant(fill=-1.0),              # blocked, but not by enough
             "ex.sa.sdpa.weights": lambda q, k, v, mask=None: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1),
             "ex.sa.sdpa.batch1": _variant(squeeze=True)}                  # loses the batch axis at B = 1
    for key, answer in slips.items():
        assert verdict_is("sa.sdpa", answer, key), key
    result, message = exercises.verdict("sa.sdpa", lambda q, k, v, mask=None: 1 / 0)
    assert result is False and "ZeroDivisionError" in message
    result, message = exercises.verdict("sa.sdpa", lambda q, k, v: sdpa_solution(q, k, v))   # no mask argument
    assert result is False and "TypeError" in message
    for answer in (42, lambda q, k, v, mask=None: (sdpa_solution(q, k, v, mask), None),
                   lambda q, k, v, mask=None: sdpa_solution(q, k, v, mask).double()):
        assert rejects("sa.sdpa", answer)


def _causal(mask_of):
    def causal_attention(q, k, v):
        n = q.shape[-2]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_of(torch.ones(n, n, dtype=torch.bool)))
    return causal_attention


def _causal_explicit(q, k, v):                       # the mask applied to the scores by hand
    n = q.shape[-2]
    mask = torch.ones(n, n, dtype=torch.bool).tril(-1)          # the diagonal forgotten: row 0 is NaN
    return sdpa_solution(q, k, v, mask)


def test_causal_exercise_accepts_boolean_and_float_masks_and_names_the_slips(lang):
    assert verdict_is("sa.causal", _causal(lambda ones: ones.tril()), None)
    assert verdict_is("sa.causal", _causal(lambda ones: torch.zeros(ones.shape).masked_fill(ones.triu(1),
                                                                                               float("-inf"))), None)
    assert verdict_is("sa.causal", lambda q, k, v: sdpa_solution(q, k, v, torch.ones(
        q.shape[-2], q.shape[-2], dtype=torch.bool).tril()), None)
    slips = {"ex.sa.causal.transposed": _causal(lambda ones: ones.triu()),
             "ex.sa.causal.inverted": _causal(lambda ones: ones.triu(1)),
             "ex.sa.causal.no_diagonal": _causal(lambda ones: ones.tril(-1)),
             "ex.sa.causal.float_ones": _causal(lambda ones: ones.tril().float()),
             "ex.sa.causal.no_mask": lambda q, k, v: F.scaled_dot_product_attention(q, k, v)}
    for key, answer in slips.items():
        assert verdict_is("sa.causal", answer, key), key
    assert verdict_is("sa.causal", _causal_explicit, "ex.sa.causal.no_diagonal")      # NaN rows named too
    result, message = exercises.verdict("sa.causal", _causal(lambda ones: ones.tril().long()))
    assert result is False and "RuntimeError" in message                              # SDPA refuses an int mask
    assert rejects("sa.causal", "tril")


def test_checks_never_raise_on_odd_answers():
    for key in ("sa.shape", "sa.params", "sa.sdpa", "sa.causal"):
        for answer in (None, ..., 0, "text", [1, 2], {"a": 1}, object(), lambda *a: None, float("nan")):
            result, message = exercises.verdict(key, answer)
            assert result in (None, False) and isinstance(message, str)


def test_reversal_readings_hold_and_fail_on_contradicting_numbers():
    ch.check_reversal_readings(1.0, [0.67, 0.783], [0.125, 0.126])
    with pytest.raises(al.readings.ReadingError, match="most of their weight"):
        ch.check_reversal_readings(1.0, [0.4, 0.783], [0.125, 0.126])
    with pytest.raises(al.readings.ReadingError, match="close to 1/8"):
        ch.check_reversal_readings(1.0, [0.67, 0.783], [0.3, 0.126])


def test_vit_training_reads_the_histories_and_its_check_fails_at_a_plateau():
    histories = [dict(loss=[0.9, 0.512, 0.44], acc=[0.6, 0.79, 0.833]),
                 dict(loss=[0.9, 0.619, 0.546], acc=[0.6, 0.75, 0.781])]
    train = ch.vit_training(histories)
    assert train == dict(loss=[0.44, 0.546], before=[0.512, 0.619], acc=[0.833, 0.781])
    ch.check_vit_training(train)
    with pytest.raises(al.readings.ReadingError, match="still improving"):          # flat at the end
        ch.check_vit_training(dict(train, before=[0.45, 0.619]))
    with pytest.raises(al.readings.ReadingError, match="still improving"):          # fits its training set
        ch.check_vit_training(dict(train, acc=[0.99, 0.781]))
