"""The explorers: live widgets react to their knobs from caches, draw with the map viewer, and the static
explorers are self-contained and small."""
import re
import warnings

import ipywidgets
import matplotlib
import pytest
import torch

import attention_lib
from attention_lib import MECHANISMS
from attention_lib.toolkit import i18n, instruments, viewer, widgets

NAMES = [*MECHANISMS, "patch_embedding"]


@pytest.fixture(autouse=True)
def _english_quiet_and_cold():
    i18n.set_language("en")
    for cache in (widgets._MODULES, widgets._COUNTS, widgets._PICTURES):
        cache.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    i18n.set_language("en")


def _viewer_html(box) -> str:
    return "".join(o["data"].get("text/html", "") for o in box.plot_output.outputs)


def _payload(box) -> dict:
    return viewer.read_html(_viewer_html(box))[0]        # a stack (CBAM) gives its parts: the first


def _frames(page: str) -> dict:
    import json
    data = re.search(r'<script type="application/json" class="ae-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(data.replace("<\\/", "</"))


def test_names_cover_every_mechanism_and_patch_embedding():
    assert widgets.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_static_grid_fits_the_frame_limit_and_contains_the_defaults(name):
    spec = widgets._spec(name)
    n = 1
    for c in spec.controls:
        assert c.default in c.options and c.default in c.static and set(c.static) <= set(c.options), c.name
        n *= len(c.static)
    assert 2 <= n <= widgets.MAX_FRAMES


@pytest.mark.parametrize("name", NAMES)
def test_live_explorer_shows_counts_trace_and_a_viewer(name):
    box = widgets.explorer(name, static=False)
    assert isinstance(box, widgets.ExplorerWidget)
    assert set(box.controls) == {c.name for c in widgets._spec(name).controls}
    info = box.info.value
    assert "parameters" in info and "FLOPs" in info and "<table" in info
    assert box.frame.params > 0 and box.frame.flops > 0
    assert len(box.plot_output.outputs) == 1
    assert 'class="attention-viewer"' in _viewer_html(box)
    assert _payload(box)["kind"] in ("query_map", "slot_map", "spatial_gallery", "channel_gallery", "patch_tokens")
    assert f'data-state-key="{box.key}"' in _viewer_html(box)     # the reader's query survives a redraw


def test_moving_the_reduction_slider_recounts_se_parameters():
    box = widgets.explorer("squeeze_excitation", static=False)
    # C = 64, r = 16: 64*4 + 4 + 4*64 + 64 = 580 parameters; r = 4: 64*16 + 16 + 16*64 + 64 = 2128.
    assert box.frame.params == 580 and "580" in box.info.value
    box.controls["reduction"].value = 4
    assert box.updates == 2
    assert box.frame.params == 2128
    assert "2,128" in box.info.value and "580" not in box.info.value
    assert len(box.plot_output.outputs) == 1                      # replaced, not stacked


def test_moving_the_size_slider_changes_the_trace_and_the_flops():
    box = widgets.explorer("squeeze_excitation", static=False)
    before_flops = box.frame.flops
    assert "(1, 64, 8, 8)" in box.info.value
    box.controls["height"].value = 16
    assert "(1, 64, 16, 8)" in box.info.value
    assert box.frame.params == 580                 # SE's parameters do not depend on H x W ...
    assert box.frame.flops > before_flops          # ... its pooling and scaling cost does


def test_the_explorer_viewer_shows_the_modules_own_attention_map():
    box = widgets.explorer("squeeze_excitation", static=False, reduction=4)
    module, x = widgets._build(widgets._spec("squeeze_excitation"), box.settings, box.seed)
    with torch.no_grad():
        gates = module.attention_map(x)[:, :, 0, 0]                    # (G, C)
    embedded = viewer.decode(_payload(box))                            # (G, 1, C)
    assert embedded.shape == (widgets.GALLERY, 1, 64)
    step = (gates.amax(1) - gates.amin(1))[:, None] / 255
    assert ((embedded[:, 0] - gates).abs() <= step / 2 + 1e-6).all()


def test_temperature_changes_the_picture_without_rebuilding_or_recounting(monkeypatch):
    calls = []
    real = instruments.count_flops
    monkeypatch.setattr(instruments, "count_flops", lambda *a, **k: calls.append(1) or real(*a, **k))
    box = widgets.explorer("self_attention", static=False, heads=1)
    module, counts, weights = widgets._MODULES[next(iter(widgets._MODULES))][0], box.frame.counts, _payload(box)["w"]
    box.controls["temperature"].value = 0.25
    assert _payload(box)["w"] != weights                              # sharper rows ...
    assert box.frame.counts is counts and len(calls) == 1             # ... same module, counted once
    assert widgets._MODULES[next(iter(widgets._MODULES))][0] is module


def test_flops_are_counted_once_per_setting(monkeypatch):
    calls = []
    real = instruments.count_flops
    monkeypatch.setattr(instruments, "count_flops", lambda *a, **k: calls.append(1) or real(*a, **k))
    box = widgets.explorer("eca", static=False)
    for value in (16, 32, 8, 16, 32, 8):
        box.controls["height"].value = value
    assert box.updates == 7 and len(calls) == 3                       # settings 8, 16, 32: three counts


def test_a_heavy_setting_draws_fewer_example_inputs():
    light = widgets.render_frame("selective_kernel", {"channels": 16, "height": 4, "width": 4})
    heavy = widgets.render_frame("selective_kernel", {"channels": 64, "height": 16, "width": 16,
                                                      "kernel_sizes": (1, 3, 5, 7), "dilated": False})
    assert light.picture.data["G"] == widgets.GALLERY
    assert heavy.counts.flops > widgets.PICTURE_FLOPS / widgets.GALLERY
    assert heavy.picture.data["G"] * heavy.counts.flops <= max(widgets.PICTURE_FLOPS, heavy.counts.flops)


def test_same_settings_give_the_same_picture_from_a_cold_start():
    a = widgets.render_frame("cbam", {"spatial_kernel": 3})
    for cache in (widgets._MODULES, widgets._COUNTS, widgets._PICTURES):
        cache.clear()
    b = widgets.render_frame("cbam", {"spatial_kernel": 3})
    assert a.picture is not b.picture
    assert a.picture.payload() == b.picture.payload() and a.table_html == b.table_html and a.flops == b.flops


def test_rendering_leaves_the_global_random_state_and_thread_count_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    widgets.render_frame("eca")
    widgets.render_frame("selective_kernel", {"channels": 64, "height": 16, "width": 16})
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_options_set_the_start_value_or_restrict_the_values():
    box = widgets.explorer("bam", static=False, dilation=2, fusion=["product"])
    assert box.controls["dilation"].value == 2
    assert box.controls["fusion"].value == "product"
    assert [v for _, v in box.controls["fusion"].options] == ["product"]
    box = widgets.explorer("selective_kernel", static=False, kernel_sizes=[3, 5, 7])
    assert box.controls["kernel_sizes"].value == (3, 5, 7)


def test_set_moves_several_knobs_with_one_redraw():
    box = widgets.explorer("squeeze_excitation", static=False)
    box.set(height=16, width=4, reduction=8)
    assert box.updates == 2 and box.frame.settings["height"] == 16 and box.frame.settings["reduction"] == 8
    with pytest.raises(ValueError, match="unknown knob"):
        box.set(heads=2)


def test_a_refused_combination_shows_the_error_and_keeps_the_last_frame():
    box = widgets.explorer("multi_head_external_attention", static=False, heads=[2, 8], dim=[32, 36])
    box.controls["dim"].value = 36          # 36 is not divisible by 8 heads
    assert "divisible" in box.error and "divisible" in box.info.value
    assert box.frame.settings["dim"] == 32
    box.controls["heads"].value = 2         # 36 / 2 is fine again
    assert box.error is None and box.frame.settings == {**box.frame.settings, "dim": 36, "heads": 2}


def test_unknown_name_raises_value_error_listing_the_valid_names():
    with pytest.raises(ValueError) as err:
        widgets.explorer("squeeze_and_excitation")
    for name in NAMES:
        assert name in str(err.value)


def test_unknown_option_or_value_raises_value_error():
    with pytest.raises(ValueError, match="heads"):
        widgets.explorer("squeeze_excitation", heads=4)
    with pytest.raises(ValueError, match=r"\[2, 4, 8, 16\]"):
        widgets.explorer("squeeze_excitation", static=False, reduction=3)


def test_a_plot_must_return_a_viewer_or_a_figure():
    with pytest.raises(ValueError, match="viewer"):
        widgets._picture("a picture", "title")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    assert widgets._picture(fig, "title").kind == "figure"           # still shown, as a PNG


def test_too_large_static_grid_raises_value_error():
    with pytest.raises(ValueError, match="MAX_FRAMES"):
        widgets.static_html("self_attention", tokens=[4, 8, 16, 32, 64], heads=[1, 2, 4, 8])


def test_environment_variable_switches_to_the_static_explorer(monkeypatch):
    from IPython.display import HTML
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    shown = widgets.explorer("external_attention", tokens=[8], memory_size=[8, 16])
    assert isinstance(shown, HTML)
    assert 'data-frames="2"' in shown.data
    monkeypatch.setenv(widgets.STATIC_ENV, "0")
    assert isinstance(widgets.explorer("external_attention"), widgets.ExplorerWidget)


@pytest.mark.parametrize("name", NAMES)
def test_static_explorer_is_self_contained_within_budget_with_every_frame(name):
    page = widgets.static_html(name)                     # the full default grid
    n = int(re.search(r'class="attention-explorer-static"[^>]*data-frames="(\d+)"', page).group(1))
    assert len(page.encode()) < widgets.MAX_HTML_BYTES
    assert "<script src" not in page.lower() and not re.search(r"https?://", page)
    assert "<link" not in page.lower() and "@import" not in page
    data = _frames(page)
    assert len(data["frames"]) == n
    assert all(f["p"]["kind"] in ("query_map", "slot_map", "spatial_gallery", "channel_gallery", "patch_tokens",
                                  "stack") for f in data["frames"].values())
    assert len(viewer.read_html(page)) >= n                            # every frame's viewer data reads back
    assert len(re.findall(r"data-control=", page)) == len(data["controls"])
    assert page.count('class="attention-viewer"') == 1                 # one viewer, redrawn frame by frame


def test_static_frames_differ_where_the_settings_differ_and_share_their_pictures():
    data = _frames(widgets.static_html("squeeze_excitation", height=[8], width=[8], reduction=[4, 16]))
    assert len(data["frames"]) == 2
    a, b = data["frames"].values()
    assert a["p"]["w"] != b["p"]["w"]
    assert "2,128" in data["counts"][a["c"]] and "580" in data["counts"][b["c"]]
    assert a["p"]["img"] == b["p"]["img"] == {"ref": 0} and len(data["images"]) == 1


def test_two_explorers_on_one_page_have_distinct_ids():
    ids = [re.search(r'id="(ae-[^"]+)"', widgets.static_html("eca", height=[8], channels=[64], kernel_size=[None]))
           .group(1) for _ in range(2)]
    assert ids[0] != ids[1]


def test_static_explorer_labels_follow_the_language():
    with matplotlib.rc_context():
        attention_lib.setup(lang="zh")            # Chinese labels and a CJK font for the figures
        page = widgets.static_html("squeeze_excitation", height=[8], width=[8, 16])
    assert "缩减率" in page and "参数量" in page and "形状追踪" in page and "通道" in page
    assert "reduction r" not in page and "Channel weights" not in page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_live_slider_keeps_a_track_long_enough_to_drag_and_no_drop_down_shows_blank(lang):
    """Issue 23: the τ slider's track was 54 px; ECA's k drop-down was blank at its default, ψ(C) (the value None)."""
    import attention_lib
    from attention_lib.toolkit import i18n

    attention_lib.chapters.load_all()
    i18n.set_language(lang)
    try:
        for name in sorted(widgets._EXPLORERS):
            box = widgets.explorer(name, static=False)
            for control in widgets._spec(name).controls:
                widget = box.controls[control.name]
                if isinstance(widget, ipywidgets.SelectionSlider):
                    width = float(widget.layout.width.rstrip("em"))
                    assert width - widgets.label_em(widget.description) >= widgets.SLIDER_TRACK_EM, (name, control.name)
                else:
                    assert widget.index is not None and widget.label, f"{name}: {control.name} shows a blank box"
            assert box.settings == {c.name: c.default for c in widgets._spec(name).controls}
    finally:
        i18n.set_language("en")
