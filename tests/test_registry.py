"""The registry holds every fact about a mechanism once, and its cost formulas are exact."""
import pytest
import torch

import attention_lib as al
from attention_lib import MECHANISMS
from attention_lib.registry import FAMILIES, SYMBOLS, by_chapter
from attention_lib.toolkit.instruments import count_flops, count_parameters

NAMES = list(MECHANISMS)

# Several configurations per layout, beyond the registry's example: other widths, reductions, heads, kernels.
CONFIGS = {
    "tokens": [dict(sizes=dict(num_tokens=16, dim=64), kw=dict(dim=64)),
               dict(sizes=dict(num_tokens=10, dim=32), kw=dict(dim=32)),
               dict(sizes=dict(num_tokens=7, dim=48), kw=dict(dim=48))],
    "feature_map": [dict(sizes=dict(channels=64, height=8, width=8), kw=dict(channels=64)),
                    dict(sizes=dict(channels=32, height=5, width=7), kw=dict(channels=32)),
                    dict(sizes=dict(channels=48, height=3, width=11), kw=dict(channels=48))],
}
EXTRA = {     # constructor arguments that change a formula's symbols
    "self_attention": [dict(num_heads=4)],
    "external_attention": [dict(memory_size=16)],
    "multi_head_external_attention": [dict(num_heads=4, memory_size=16, coef=2)],
    "squeeze_excitation": [dict(reduction=4), dict(reduction=8)],
    "selective_kernel": [dict(kernel_sizes=(3, 5, 7), groups=4), dict(reduction=2, min_dim=8)],
    "cbam": [dict(spatial_kernel=3)],
    "bam": [dict(reduction=4)],
    "eca": [dict(kernel_size=5)],
}


def _cases():
    for name in NAMES:
        entry = MECHANISMS[name]
        for config in CONFIGS[entry.layout]:
            for extra in [{}] + EXTRA[name]:
                kw = {**entry.example_kwargs, **config["kw"], **extra}
                yield pytest.param(name, kw, config["sizes"], id=f"{name}-{kw}-{config['sizes']}")


@pytest.mark.parametrize("name,kwargs,sizes", list(_cases()))
def test_parameter_and_flop_formulas_equal_the_counters(name, kwargs, sizes):
    entry = MECHANISMS[name]
    module = entry.cls(**kwargs).eval()
    x = entry.example_input(2, **sizes)
    assert count_parameters(module) == entry.expected_params(**kwargs)
    method = "forward_explicit" if hasattr(module, "forward_explicit") else "forward"
    assert count_flops(module, x, method=method).total == entry.expected_flops(x.shape, **kwargs)


def test_formula_symbols_are_all_defined_for_the_pages():
    import re
    for entry in MECHANISMS.values():
        shape = tuple(entry.example_input(1).shape)
        symbols = entry.symbols(shape, **entry.example_kwargs)
        assert set(symbols) <= set(SYMBOLS), (entry.name, set(symbols) - set(SYMBOLS))
        for formula in (entry.params, entry.flops):
            letters = set(re.findall(r"d_z|k_s|[A-Za-z]", formula.latex))
            assert letters <= set(symbols), (entry.name, formula.latex, letters - set(symbols))
    assert all(set(meaning) == {"en", "zh"} for meaning in SYMBOLS.values())


def test_every_entry_names_its_chapter_family_and_names_in_both_languages():
    for entry in MECHANISMS.values():
        assert 1 <= entry.chapter <= 7 and entry.family in FAMILIES
        for texts in (entry.names, entry.short, entry.reweights):
            assert set(texts) == {"en", "zh"} and all(texts.values())
        assert entry.official_code.startswith("https://github.com/")
    assert [m.chapter for m in by_chapter()] == sorted(m.chapter for m in MECHANISMS.values())
    assert MECHANISMS["squeeze_excitation"].display_name("zh") == "挤压-激励（SE）"
    assert MECHANISMS["eca"].display_name("en", short=True) == "ECA"


def test_display_name_follows_the_chosen_language():
    al.i18n.set_language("zh")
    try:
        assert MECHANISMS["self_attention"].display_name() == "多头自注意力"
    finally:
        al.i18n.set_language("en")
    assert MECHANISMS["self_attention"].display_name() == "Multi-head self-attention"


def test_small_configurations_build_and_run():
    for entry in MECHANISMS.values():
        m = entry.cls(**entry.small_kwargs).eval()
        sizes = dict(dim=entry.small_kwargs["dim"]) if entry.layout == "tokens" else \
            dict(channels=entry.small_kwargs["channels"])
        x = entry.example_input(2, **sizes)
        assert m(x).shape == x.shape


def test_batch_one_training_flag_matches_batchnorm_on_the_descriptor():
    for entry in MECHANISMS.values():
        has_bn1d = any(isinstance(m, torch.nn.BatchNorm1d) for m in entry.build().modules())
        assert entry.batch_one_training == (not has_bn1d), entry.name


def test_selective_kernel_formulas_refuse_branches_they_do_not_describe():
    entry = MECHANISMS["selective_kernel"]
    for kwargs in (dict(dilated=False), dict(kernel_sizes=(1, 3, 5))):
        with pytest.raises(ValueError, match="3x3 convolution per branch"):
            entry.expected_params(channels=64, **kwargs)
    assert entry.expected_params(channels=64, dilated=False, kernel_sizes=(3, 3)) == count_parameters(
        al.SelectiveKernel(64, dilated=False, kernel_sizes=(3, 3)))
