"""peak_memory sees the quadratic score matrix of explicit attention and the linear memory of the fused path."""
import torch

import attention_lib as al
from attention_lib.toolkit.memory import peak_memory


def test_peak_of_a_single_allocation_is_its_size(device):
    x = torch.zeros(1000, device=device)
    assert peak_memory(lambda t: t + 1, x) == 4000
    assert peak_memory(lambda t: t.view(10, 100), x) == 0            # a view allocates nothing


def test_freed_intermediates_do_not_add_up():
    x = torch.zeros(1000)
    def chain(t):
        for _ in range(10):
            t = t + 1                                                 # each step frees the previous result
        return t
    assert 8000 <= peak_memory(chain, x) <= 12000


def test_explicit_attention_is_quadratic_and_fused_attention_linear_in_tokens(device):
    m = al.MultiHeadSelfAttention(32, num_heads=4).eval().to(device)
    small, large = torch.randn(2, 128, 32, device=device), torch.randn(2, 512, 32, device=device)
    scores_large = 2 * 4 * 512 * 512 * 4                                  # B h N N float32
    explicit = peak_memory(m.forward_explicit, large)
    assert explicit >= 2 * scores_large                                    # scores and softmax both live
    ratio_explicit = explicit / peak_memory(m.forward_explicit, small)
    ratio_fused = peak_memory(m, large) / peak_memory(m, small)
    assert ratio_explicit > 12 and ratio_fused < 5                          # 4x tokens: ~16x vs ~4x
