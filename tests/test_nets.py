"""Encoders and the score U-Net: shapes, odd resolutions, and how t and z enter."""

import pytest
import torch

from methods.nets.encoders import create_encoder
from methods.nets.score_unet import ScoreUNet


@pytest.mark.parametrize("name,width,pooled", [("cnn", 8, 32), ("wrn28_2", 16, 128), ("resnet18", 8, 64)])
def test_encoder_pooled_code_and_projection(name, width, pooled):
    x, level = torch.randn(4, 3, 32, 32), torch.randn(4)
    enc = create_encoder(name, 3, pooled, width).eval()
    assert enc.feature_dim == pooled
    assert isinstance(enc.project, torch.nn.Identity)  # the pooled code is the representation
    z = enc(x, level)
    assert z.shape == (4, pooled) and (z >= 0).all()  # after the final BN-ReLU
    assert create_encoder(name, 3, 10, width)(x, level).shape == (4, 10)


def test_wrn28_2_has_28_layers_of_depth():
    enc = create_encoder("wrn28_2", 3, 128, 16)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 25  # the stem and two 3x3 convs in each of 12 blocks: depth 28 = 6 * 4 + 4
    assert len(enc.blocks) == 12


def test_resnet18_has_two_blocks_per_stage_and_a_512_d_code():
    enc = create_encoder("resnet18", 3, 512, 64)
    assert len(enc.blocks) == 8 and enc.stage_widths == (64, 128, 256, 512) and enc.feature_dim == 512
    assert 10e6 < sum(p.numel() for p in enc.parameters()) < 13e6  # ResNet-18's 11 M, without its fc


def test_time_enters_every_block_as_a_bias():
    enc = create_encoder("cnn", 1, 16, 8).eval()
    assert all(b.time_bias is not None for b in enc.blocks)
    x = torch.randn(2, 1, 8, 8)
    assert not torch.allclose(enc(x, torch.zeros(2)), enc(x, torch.ones(2)))


def test_static_encoder_ignores_time():
    enc = create_encoder("cnn", 1, 16, 8, time_conditioned=False).eval()
    assert enc.time_embed is None and all(b.time_bias is None for b in enc.blocks)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(enc(x, torch.zeros(2)), enc(x, torch.ones(2)))


@pytest.mark.parametrize("size,mults", [(8, (1, 2)), (28, (1, 2, 2)), (21, (1, 2, 2)), (32, (1, 2, 2, 2))])
def test_score_unet_keeps_shape_at_any_resolution(size, mults):
    net = ScoreUNet(3, 16, width=8, mults=mults, blocks_per_level=1, attn_resolutions=(size // 2,),
                    image_size=size)
    x = torch.randn(2, 3, size, size)
    out = net(x, torch.randn(2), torch.randn(2, 16), torch.ones(2))
    assert out.shape == x.shape


def test_score_unet_is_conditioned_on_the_code():
    torch.manual_seed(0)
    net = ScoreUNet(1, 4, width=8, mults=(1, 2), image_size=8, dropout=0.0).eval()
    x, level, std = torch.randn(2, 1, 8, 8), torch.zeros(2), torch.ones(2)
    a = net(x, level, torch.zeros(2, 4), std)
    b = net(x, level, torch.ones(2, 4), std)
    assert not torch.allclose(a, b)
    # Output is divided by the marginal std.
    torch.testing.assert_close(net(x, level, torch.zeros(2, 4), 2 * std), a / 2)


def test_unknown_encoder_is_rejected():
    with pytest.raises(ValueError, match="valid: cnn, wrn28_2, resnet18"):
        create_encoder("resnet50", 3, 8, 8)


def test_a_probabilistic_encoder_always_ends_in_its_own_linear_layer():
    # 2 * latent_dim == the pooled width: the case where the projection used to be the identity.
    assert isinstance(create_encoder("cnn", 1, 32, 8).project, torch.nn.Identity)
    enc = create_encoder("cnn", 1, 32, 8, always_project=True)
    assert isinstance(enc.project, torch.nn.Linear) and enc.project.in_features == enc.project.out_features == 32


@pytest.mark.parametrize("size,mults,r", [(8, (1, 2), 4), (28, (1, 2, 2), 7), (32, (1, 2, 2, 2), 4)])
def test_the_z_map_joins_the_bottleneck_at_the_lowest_resolution(size, mults, r):
    net = ScoreUNet(1, 4, width=8, mults=mults, image_size=size)
    plain = ScoreUNet(1, 4, width=8, mults=mults, image_size=size, z_map=False)
    assert plain.z_map is None
    assert (net.z_map.channels, net.z_map.resolution) == (16, r)  # (2 * width, r, r)
    dense = [m for m in net.z_map.dense if isinstance(m, torch.nn.Linear)]
    assert len(dense) == 3 and dense[0].in_features == 128  # from the joint (noise, code) embedding
    bottleneck = plain.mid[0].conv1.in_channels
    assert net.mid[0].conv1.in_channels == bottleneck + 16  # the middle blocks run wider
    joint = torch.randn(2, 128)
    assert net.z_map(joint).shape == (2, 16, r, r)


def test_the_z_map_is_used_in_the_forward_pass():
    torch.manual_seed(0)
    net = ScoreUNet(1, 4, width=8, mults=(1, 2), image_size=8, dropout=0.0).eval()
    x, level, z, std = torch.randn(2, 1, 8, 8), torch.zeros(2), torch.randn(2, 4), torch.ones(2)
    before = net(x, level, z, std)
    with torch.no_grad():
        last = net.z_map.dense[4]
        last.weight.zero_(), last.bias.zero_()
    assert not torch.allclose(before, net(x, level, z, std))
