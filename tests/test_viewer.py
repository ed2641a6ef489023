"""The map viewers: the weights they embed are the modules' attention maps, the HTML is self-contained and small,
bad input is refused with the expected shape, and in a real browser every pointable element changes the map."""
import re
import warnings
from pathlib import Path

import pytest
import torch

import attention_lib as al
from attention_lib.toolkit import i18n, viewer


@pytest.fixture(autouse=True)
def _english_and_quiet():
    i18n.set_language("en")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    i18n.set_language("en")


def _embedded(v: viewer.Viewer) -> torch.Tensor:
    """The weights of the one viewer in ``v``'s HTML, read back as a page would."""
    payloads = viewer.read_html(v.html())
    assert len(payloads) == 1 and payloads[0]["kind"] == v.kind
    return viewer.decode(payloads[0])


def _assert_rows_equal(embedded: torch.Tensor, expected: torch.Tensor, row_dims: int = 1):
    """Equal to within half an 8-bit step of each row's own range (the quantisation the page uses);
    a row is the last ``row_dims`` axes (a spatial map is one row)."""
    expected = expected.detach().float().cpu().reshape(embedded.shape)
    n = embedded.shape[-row_dims:].numel()
    rows, ref = embedded.reshape(-1, n), expected.reshape(-1, n)
    step = (ref.amax(1) - ref.amin(1))[:, None] / 255
    assert (rows - ref).abs().le(step / 2 + 1e-6).all(), (rows - ref).abs().max()


def _photo(size=32):
    return al.data.sample_photo(size=size)


# ---------------------------------------------------------------- weights embedded = attention_map

def test_query_map_embeds_self_attention_rows_per_head(device):
    module = al.MultiHeadSelfAttention(32, num_heads=4).to(device).eval()
    x = torch.randn(1, 17, 32, device=device)                         # a class token + 4 x 4 patches
    with torch.no_grad():
        attn = module.attention_map(x)[0]                              # (4, 17, 17)
    v = viewer.query_map(attn, image=_photo(), grid=(4, 4), extra_tokens=1)
    embedded = _embedded(v)
    assert embedded.shape == (1, 4, 17, 17)
    _assert_rows_equal(embedded, attn)
    assert torch.allclose(embedded.sum(-1), torch.ones(1, 4, 17), atol=17 / 255)   # rows still sum to ~1
    assert not torch.allclose(embedded, embedded.transpose(-1, -2), atol=1e-2)  # rows, not columns


def test_query_map_gallery_keeps_each_image_and_head_in_place():
    module = al.MultiHeadSelfAttention(16, num_heads=2).eval()
    x = torch.randn(3, 10, 16)
    with torch.no_grad():
        attn = module.attention_map(x)                                 # (3, 2, 10, 10)
    images = torch.rand(3, 3, 24, 24)
    embedded = _embedded(viewer.query_map(attn, image=images, grid=(3, 3), extra_tokens=1))
    _assert_rows_equal(embedded, attn)


def test_query_map_of_a_sequence_with_token_labels():
    attn = torch.randn(6, 6).softmax(-1)
    v = viewer.query_map(attn, tokens=list("abcdef"))
    _assert_rows_equal(_embedded(v), attn[None, None])
    assert viewer.read_html(v.html())[0]["tokens"] == list("abcdef")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_any_float_dtype_is_accepted(dtype):
    attn = torch.randn(2, 5, 5).softmax(-1)
    _assert_rows_equal(_embedded(viewer.query_map(attn.to(dtype))), attn.to(dtype).float()[None])


def test_slot_map_embeds_external_attention_token_rows(device):
    module = al.ExternalAttention(16, memory_size=12).to(device).eval()
    x = torch.randn(1, 9, 16, device=device)
    with torch.no_grad():
        attn = module.attention_map(x)[0]                              # (9, 12)
    embedded = _embedded(viewer.slot_map(attn, image=_photo(), grid=(3, 3)))
    assert embedded.shape == (1, 1, 9, 12)
    _assert_rows_equal(embedded, attn)


def test_slot_map_embeds_every_head_of_multi_head_external_attention():
    module = al.MultiHeadExternalAttention(32, num_heads=4, memory_size=8).eval()
    with torch.no_grad():
        attn = module.attention_map(torch.randn(1, 7, 32))[0]          # (heads, N, S)
    embedded = _embedded(viewer.slot_map(attn, tokens=[f"t{i}" for i in range(7)]))
    assert embedded.shape == (1, *attn.shape)
    _assert_rows_equal(embedded, attn)


def test_spatial_gallery_embeds_cbam_spatial_maps_and_boxes():
    module = al.CBAM(16, reduction=4).eval()
    x = torch.randn(3, 16, 8, 6)
    with torch.no_grad():
        spatial = module.attention_map(x).spatial                      # (3, 1, 8, 6)
    v = viewer.spatial_gallery(torch.rand(3, 3, 32, 24), spatial, boxes=torch.tensor([[1, 2, 10, 12]] * 3))
    embedded = _embedded(v)
    assert embedded.shape == (3, 8, 6)                                  # non-square maps stay non-square
    _assert_rows_equal(embedded, spatial[:, 0], row_dims=2)
    assert viewer.read_html(v.html())[0]["boxes"][0] == [1, 2, 10, 12]


def test_spatial_gallery_embeds_bam_maps_averaged_over_channels():
    module = al.BAM(16, reduction=4).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        maps = module.attention_map(x).mean(1)                         # (2, 8, 8)
    _assert_rows_equal(_embedded(viewer.spatial_gallery(torch.rand(2, 3, 8, 8), maps)), maps, row_dims=2)


@pytest.mark.parametrize("name", ["squeeze_excitation", "eca"])
def test_channel_gallery_embeds_channel_gates(name, device):
    module = al.MECHANISMS[name].cls(32).to(device).eval()
    x = torch.randn(4, 32, 6, 6, device=device)
    with torch.no_grad():
        gates = module.attention_map(x)                                # (4, 32, 1, 1) as returned
    embedded = _embedded(viewer.channel_gallery(torch.rand(4, 3, 6, 6), gates))
    assert embedded.shape == (4, 1, 32)
    _assert_rows_equal(embedded, gates[:, None, :, 0, 0])


def test_channel_gallery_embeds_selective_kernel_branch_weights():
    module = al.SelectiveKernel(16, kernel_sizes=(3, 5, 7), reduction=4).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        weights = module.attention_map(x)[..., 0, 0]                   # (2, 3, 16)
    v = viewer.channel_gallery(None, weights, branch_labels=["3×3", "5×5", "7×7"])
    _assert_rows_equal(_embedded(v), weights)
    assert viewer.read_html(v.html())[0]["branches"] == ["3×3", "5×5", "7×7"]


def test_patch_tokens_embed_the_patch_embedding_output():
    module = al.PatchEmbedding(8, in_channels=3, dim=12).eval()
    photo = _photo(32)
    with torch.no_grad():
        tokens = module(photo[None])[0]                                # (16, 12)
    _assert_rows_equal(_embedded(viewer.patch_tokens(photo, tokens, grid=(4, 4))), tokens)


def test_a_constant_row_survives_quantisation():
    embedded = _embedded(viewer.query_map(torch.full((1, 4, 4), 0.25)))
    assert torch.equal(embedded, torch.full((1, 1, 4, 4), 0.25))


# ---------------------------------------------------------------- the HTML

def _all_kinds() -> list[viewer.Viewer]:
    photo = _photo(40)
    return [viewer.query_map(torch.randn(2, 17, 17).softmax(-1), image=photo, grid=(4, 4), extra_tokens=1),
            viewer.query_map(torch.randn(5, 5).softmax(-1), tokens=list("abcde")),
            viewer.slot_map(torch.randn(16, 8).softmax(0), image=photo, grid=(4, 4)),
            viewer.slot_map(torch.randn(2, 6, 8).softmax(1), tokens=list("uvwxyz")),
            viewer.spatial_gallery(torch.stack([photo, photo.flip(2)]), torch.rand(2, 5, 5)),
            viewer.channel_gallery(torch.stack([photo, photo.flip(2)]), torch.rand(2, 24)),
            viewer.channel_gallery(None, torch.rand(3, 2, 16).softmax(1), branch_labels=["3×3", "5×5"]),
            viewer.patch_tokens(photo, torch.randn(16, 8), grid=(4, 4))]


def test_viewers_are_self_contained_and_load_nothing():
    for v in _all_kinds():
        page = v.html()
        assert "<script src" not in page.lower() and "<link" not in page.lower() and "@import" not in page
        assert not re.search(r"https?://", page), v.kind
        assert page.count("<script") == 2               # its data and its engine, both inline


def test_each_display_gets_its_own_id_and_the_viewer_keeps_its_state_key():
    v = viewer.query_map(torch.randn(3, 3).softmax(-1), state_key="k1")
    ids = [re.search(r'id="(av-[^"]+)"', v.html()).group(1) for _ in range(2)]
    assert ids[0] != ids[1] and 'data-state-key="k1"' in v.html()


def test_pictures_are_embedded_small():
    big = torch.rand(3, 512, 384)
    v = viewer.spatial_gallery(big[None], torch.rand(1, 7, 7))
    img = viewer.read_html(v.html())[0]["img"]
    assert (img["h"], img["w"]) == (viewer.MAX_IMAGE_SIDE, 72) and (img["H"], img["W"]) == (512, 384)
    assert v.nbytes - len(viewer._engine()) < 10_000    # besides the engine: the map and one small JPEG


def test_text_follows_the_language():
    i18n.set_language("zh")
    page = viewer.channel_gallery(None, torch.rand(2, 8)).html()
    assert "通道" in page and "Channel weights" not in page


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,match", [
    (lambda: viewer.query_map(torch.rand(4, 5, 6)), r"square weights \(heads, N, N\), got \(1, 4, 5, 6\)"),
    (lambda: viewer.query_map(torch.rand(5)), r"\(heads, N, N\), \(N, N\) or \(G, heads, N, N\), got \(5\)"),
    (lambda: viewer.query_map(torch.rand(17, 17), image=torch.rand(3, 8, 8), grid=(4, 4)),
     r"grid \(4, 4\) has 16 patches, but the weights have 17"),
    (lambda: viewer.query_map(torch.rand(17, 17), grid=(4, 4), extra_tokens=1), "image and grid go together"),
    (lambda: viewer.query_map(torch.rand(3, 3), tokens=["a"]), "expected 3 token labels"),
    (lambda: viewer.query_map(torch.rand(3, 3), extra_tokens=3), r"extra_tokens must be an integer in \[0, N\)"),
    (lambda: viewer.query_map(torch.full((2, 2), float("nan"))), "finite"),
    (lambda: viewer.slot_map(torch.rand(2, 3, 4, 5, 6)), r"\(N, S\), \(heads, N, S\) or \(G, heads, N, S\)"),
    (lambda: viewer.spatial_gallery(torch.rand(2, 3, 8, 8), torch.rand(8, 8)), r"maps must have shape \(G, h, w\)"),
    (lambda: viewer.spatial_gallery(torch.rand(3, 3, 8, 8), torch.rand(2, 4, 4)),
     r"expected 2 picture\(s\) of shape \(3, H, W\)"),
    (lambda: viewer.spatial_gallery(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4), boxes=torch.rand(1, 2)),
     r"boxes must have shape \(1, 4\)"),
    (lambda: viewer.channel_gallery(None, torch.rand(5)), r"gates must have shape \(G, C\) or \(G, K, C\)"),
    (lambda: viewer.channel_gallery(None, torch.rand(2, 3, 4), branch_labels=["a"]), "3 branches but 1"),
    (lambda: viewer.channel_gallery(None, torch.rand(2, 4), labels=["a"]), "expected 2 labels"),
    (lambda: viewer.query_map("weights"), "expected a tensor"),
])
def test_bad_input_raises_value_error_naming_the_expected_shape(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- in a browser

def _browser_page(tmp_path: Path) -> Path:
    page = tmp_path / "viewers.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                    + "".join(v.html() for v in _all_kinds()) + "</body></html>", encoding="utf-8")
    return page


def test_every_viewer_in_a_browser_changes_its_map_when_pointed_at_and_from_the_keyboard(tmp_path):
    from .browser import chromium, drive_viewers, drive_viewers_by_keyboard
    page_file = _browser_page(tmp_path)
    with chromium(require=False) as browser:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        outside, errors = [], []
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
                      else (outside.append(r.request.url), r.abort()))
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        driven = drive_viewers(page, "viewers.html")
        page.reload()
        by_keys = drive_viewers_by_keyboard(page, "viewers.html")
    assert driven == by_keys == len(_all_kinds())
    assert not outside and not errors, (outside, errors)
