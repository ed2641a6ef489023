"""The explorers: live widgets react to their knobs, static viewers are self-contained and small."""
import base64
import json
import re
import warnings

import matplotlib
import pytest
import torch

import attention_lib
from attention_lib import MECHANISMS, i18n, widgets

NAMES = [*MECHANISMS, "patch_embedding"]


@pytest.fixture(autouse=True)
def _english_and_quiet():
    i18n.set_language("en")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    i18n.set_language("en")


def _html_of(output) -> str:
    return "".join(o["data"].get("text/html", "") for o in output.outputs)


def _png_of(output) -> bytes:
    return b"".join(base64.b64decode(o["data"]["image/png"]) for o in output.outputs if "image/png" in o["data"])


def _frames(page: str) -> dict:
    payload = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', page, re.S).group(1)
    return json.loads(payload.replace("<\\/", "</"))


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
def test_live_explorer_shows_counts_trace_and_a_picture(name):
    options = {"heads": 2} if name == "self_attention" else {}    # fewer heat maps: a faster test
    box = widgets.explorer(name, static=False, **options)
    assert isinstance(box, widgets.ExplorerWidget)
    assert set(box.controls) == {c.name for c in widgets._spec(name).controls}
    html = _html_of(box.info_output)
    assert "parameters" in html and "FLOPs" in html and "<table" in html
    assert _png_of(box.plot_output).startswith(b"\x89PNG")
    assert box.frame.params > 0 and box.frame.flops > 0
    assert len(box.info_output.outputs) == 1 and len(box.plot_output.outputs) == 1


def test_moving_the_reduction_slider_recounts_se_parameters():
    box = widgets.explorer("squeeze_excitation", static=False)
    # C = 64, r = 16: 64*4 + 4 + 4*64 + 64 = 580 parameters; r = 4: 64*16 + 16 + 16*64 + 64 = 2128.
    assert box.frame.params == 580 and "580" in _html_of(box.info_output)
    box.controls["reduction"].value = 4
    assert box.updates == 2
    assert box.frame.params == 2128
    assert "2,128" in _html_of(box.info_output) and "580" not in _html_of(box.info_output)
    assert len(box.info_output.outputs) == 1 and len(box.plot_output.outputs) == 1   # replaced, not stacked


def test_moving_the_size_slider_changes_the_trace_and_the_flops():
    box = widgets.explorer("squeeze_excitation", static=False)
    before_flops, before_html = box.frame.flops, _html_of(box.info_output)
    assert "(1, 64, 8, 8)" in before_html
    box.controls["height"].value = 16
    assert "(1, 64, 16, 8)" in _html_of(box.info_output)
    assert box.frame.params == 580                 # SE's parameters do not depend on H x W ...
    assert box.frame.flops > before_flops          # ... its pooling and scaling cost does


def test_temperature_changes_the_self_attention_picture_but_not_the_counts():
    box = widgets.explorer("self_attention", static=False, heads=1)
    png, params, flops = _png_of(box.plot_output), box.frame.params, box.frame.flops
    box.controls["temperature"].value = 0.25
    assert _png_of(box.plot_output) != png
    assert (box.frame.params, box.frame.flops) == (params, flops)


def test_same_settings_give_the_same_picture():
    a = widgets.render_frame("cbam", {"spatial_kernel": 3})
    b = widgets.render_frame("cbam", {"spatial_kernel": 3})
    assert a.png == b.png and a.table_html == b.table_html and a.flops == b.flops


def test_rendering_leaves_the_global_random_state_and_thread_count_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    widgets.render_frame("eca", picture=False)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_options_set_the_start_value_or_restrict_the_values():
    box = widgets.explorer("bam", static=False, dilation=2, fusion=["product"])
    assert box.controls["dilation"].value == 2
    assert box.controls["fusion"].value == "product"
    assert [v for _, v in box.controls["fusion"].options] == ["product"]


def test_a_refused_combination_shows_the_error_and_keeps_the_last_frame():
    box = widgets.explorer("multi_head_external_attention", static=False, heads=[2, 8], dim=[32, 36])
    box.controls["dim"].value = 36          # 36 is not divisible by 8 heads
    assert "divisible" in box.error and "divisible" in _html_of(box.info_output)
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


def test_too_large_static_grid_raises_value_error():
    with pytest.raises(ValueError, match="MAX_FRAMES"):
        widgets.static_html("self_attention", tokens=[4, 8, 16, 32, 64], heads=[1, 2, 4, 8])


def test_environment_variable_switches_to_the_static_viewer(monkeypatch):
    from IPython.display import HTML
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    viewer = widgets.explorer("external_attention", tokens=[8], memory_size=[8, 16])
    assert isinstance(viewer, HTML)
    assert 'data-frames="2"' in viewer.data
    monkeypatch.setenv(widgets.STATIC_ENV, "0")
    assert isinstance(widgets.explorer("external_attention"), widgets.ExplorerWidget)


def test_static_viewer_is_self_contained_within_budget_with_every_frame():
    page = widgets.static_html("squeeze_excitation")     # the full default grid
    n = int(re.search(r'class="attention-explorer-static"[^>]*data-frames="(\d+)"', page).group(1))
    assert n == 12                                        # H in {8, 16} x W in {8, 16} x r in {4, 8, 16}
    assert len(page.encode()) < widgets.MAX_HTML_BYTES
    assert "<script src" not in page.lower() and not re.search(r"https?://", page)
    assert "<link" not in page.lower() and "@import" not in page
    data = _frames(page)
    assert len(data["frames"]) == n
    assert all(base64.b64decode(f["png"]).startswith(b"\x89PNG") for f in data["frames"].values())
    # one range or select per knob, whose values index the frames
    assert len(re.findall(r"data-control=", page)) == len(data["controls"])


def test_static_frames_differ_where_the_settings_differ():
    data = _frames(widgets.static_html("squeeze_excitation", height=[8], width=[8], reduction=[4, 16]))
    assert len(data["frames"]) == 2
    a, b = data["frames"].values()
    assert a["png"] != b["png"]
    assert "2,128" in data["counts"][a["c"]] and "580" in data["counts"][b["c"]]


def test_two_viewers_on_one_page_have_distinct_ids():
    ids = [re.search(r'id="(ae-[^"]+)"', widgets.static_html("eca", height=[8], channels=[64], kernel_size=[None]))
           .group(1) for _ in range(2)]
    assert ids[0] != ids[1]


def test_static_viewer_labels_follow_the_language():
    with matplotlib.rc_context():
        attention_lib.setup(lang="zh")            # Chinese labels and a CJK font for the figures
        page = widgets.static_html("squeeze_excitation", height=[8], width=[8, 16])
    assert "缩减率" in page and "参数量" in page and "形状追踪" in page
    assert "reduction r" not in page
