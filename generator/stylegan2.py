"""StyleGAN2-style generator and residual discriminator, written here from the papers.

Generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"):
- mapping network: normalised z (and, when conditional, a normalised class embedding)
  through `mapping_layers` equalised-lr linear layers (lr multiplier 0.01) to w;
- synthesis network: a learned 4x4 constant, then per resolution two 3x3 modulated /
  demodulated convolutions (the first after a bilinear 2x upsample), each followed by
  a noise input with a learned strength, a bias and leaky ReLU (gain sqrt 2);
- skip outputs: every resolution's 1x1 modulated "toRGB" (1 channel here) is added to
  the upsampled image of the previous one. No tanh: the image is nominally in [-1, 1].

Modulation is applied as "scale the input channels, convolve with the shared weight,
scale the output channels" (the paper's non-fused form), which is mathematically the
same as modulating the weight per sample but runs as one ordinary convolution over the
whole batch: each sample's result never depends on its batch mates.

Noise inputs are a pure function of a per-sample 32-bit key, the layer and the pixel
(a counter-based integer hash + Box-Muller, computed on the device), so a sampled image
depends only on its seed, never on a global RNG, and costs no host-to-device copy.

Truncation pulls w towards a per-class average `w_avg` (a buffer, so it is part of the
state dict and stored in every checkpoint), computed by `update_w_avg`.

Discriminator: the StyleGAN2 residual design (1x1 fromRGB at full resolution, residual
blocks with average-pool downsampling, minibatch standard deviation, 3x3 conv, linear)
with projection conditioning (Miyato & Koyama 2018) when there are classes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GeneratorConfig
from .networks import stage_widths

SQRT2 = math.sqrt(2.0)
_M32 = 0xFFFFFFFF


# ---------------------------------------------------------------- seeded noise ---
def _mul32(x: torch.Tensor, a: int) -> torch.Tensor:
    """(x * a) mod 2**32 for int64 x in [0, 2**32) without int64 overflow."""
    return (x * (a & 0xFFFF) + (((x * (a >> 16)) & 0xFFFF) << 16)) & _M32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing function ("lowbias32", C. Wellons) on int64 tensors."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _hash32_int(x: int) -> int:
    """hash32 of one Python int (a constant to torch.compile, not a tensor on the device)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def seeded_noise(keys: torch.Tensor, layer: int, height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, H, W) standard-normal noise, a pure function of (key, layer, pixel).

    `keys` is a (B,) int64 tensor of values in [0, 2**32) on the target device.
    """
    base = hash32((keys.view(-1, 1) ^ _hash32_int(layer + 1)) & _M32)
    index = torch.arange(height * width, device=keys.device, dtype=torch.int64).view(1, -1) * 2
    h1 = hash32((base + index) & _M32)
    h2 = hash32((base + index + 1) & _M32)
    u1 = ((h1 >> 8).float() + 0.5) * (1.0 / 16777216.0)  # (0, 1)
    u2 = (h2 >> 8).float() * (1.0 / 16777216.0)
    noise = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return noise.view(-1, 1, height, width).to(dtype)


# ------------------------------------------------------------------ layers ---
class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights ~ N(0,1), scaled at run time)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activate else x


class EqualConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, (self.weight * self.scale).to(x.dtype), bias, padding=self.padding)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# Bilinear 2x upsampling (align_corners=False) followed by a 3x3 convolution equals, away
# from the border, a 3x3 convolution of the low-resolution input (padded by replication,
# as the upsampling clamps) into 4 output phases: phase p of output pixel 2i+p reads low
# pixels i-1..i+1 with kernel M[p] K M[q]^T. _PHASES[p][t][a] is how much high-res tap a
# of the kernel owes to low-res tap t.
_PHASES = (((0.75, 0.25, 0.0), (0.25, 0.75, 0.75), (0.0, 0.0, 0.25)),
           ((0.25, 0.0, 0.0), (0.75, 0.75, 0.25), (0.0, 0.25, 0.75)))


def upsample_conv3x3(x: torch.Tensor, weight: torch.Tensor, phases: torch.Tensor | None = None) -> torch.Tensor:
    """conv2d(_upsample(x), weight, padding=1) without materialising the upsampled input.

    One low-resolution convolution into 4x the channels and a pixel shuffle: a quarter of
    the input reads and no upsampling pass. The high-resolution zero padding differs from
    replication only on the outermost ring of output pixels, which is recomputed exactly
    from two-pixel strips. Same maths as the plain form, different rounding.
    """
    out_c, in_c = weight.shape[:2]
    if phases is None:  # ModulatedConv passes its buffer: no host-to-device copy per call
        phases = torch.tensor(_PHASES, device=weight.device)
    phases = phases.to(weight.dtype)
    kernel = torch.einsum("pta,qsb,oiab->pqoits", phases, phases, weight).reshape(4 * out_c, in_c, 3, 3).to(x.dtype)
    weight = weight.to(x.dtype)
    low = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)  # channel (2p + q) * out_c + o
    b, _, h, w = low.shape
    # Interleave the phases as channels-last memory: each pixel's out_c channels move as one
    # contiguous run (pixel_shuffle's channel order would gather them with a stride of 4).
    y = (low.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2, out_c).permute(0, 1, 3, 2, 4, 5)
         .reshape(b, 2 * h, 2 * w, out_c).permute(0, 3, 1, 2))
    y[:, :, :1] = F.conv2d(_upsample(x[:, :, :2])[:, :, :2], weight, padding=1)[:, :, :1]
    y[:, :, -1:] = F.conv2d(_upsample(x[:, :, -2:])[:, :, 2:], weight, padding=1)[:, :, 1:]
    y[..., :1] = F.conv2d(_upsample(x[..., :2])[..., :2], weight, padding=1)[..., :1]
    y[..., -1:] = F.conv2d(_upsample(x[..., -2:])[..., 2:], weight, padding=1)[..., 1:]
    return y


class ModulatedConv(nn.Module):
    """Style-modulated convolution; demodulated unless it is a toRGB layer."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, kernel: int, *, demodulate: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2
        self.fused = False  # see StyleGAN2Generator.set_fused_modulation
        self.subpixel = False  # see StyleGAN2Generator.set_subpixel_upsampling
        if up:  # not persistent: checkpoints stay as they were
            self.register_buffer("phases", torch.tensor(_PHASES), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """`gain` scales the input (the previous layer's activation gain, folded in here
        to save a pass over the activations); demodulation ignores it, as it should."""
        styles = self.affine(w).float()  # (B, Cin), fp32 whatever the activations' dtype
        weight = self.weight * self.scale
        subpixel = self.up and self.subpixel and not self.fused
        if self.up and not subpixel:
            x = _upsample(x)
        if self.demodulate:
            demod = torch.rsqrt(styles.square() @ weight.float().square().sum(dim=(2, 3)).t() + 1e-8)  # (B, Cout)
        else:
            demod = None
        if self.fused:
            # Per-sample weights, one grouped convolution: fewer passes over the
            # activations, which is what costs most on a CPU.
            b, c_in, h, w_ = x.shape
            weights = weight.unsqueeze(0) * (styles * gain).view(b, 1, -1, 1, 1)
            if demod is not None:
                weights = weights * demod.view(b, -1, 1, 1, 1)
            weights = weights.reshape(-1, c_in, *weight.shape[2:]).to(x.dtype)
            out = F.conv2d(x.reshape(1, b * c_in, h, w_), weights, padding=self.padding, groups=b)
            return out.view(b, -1, h, w_)
        x = x * (styles * gain).to(x.dtype)[:, :, None, None]
        if subpixel:
            x = upsample_conv3x3(x, weight, self.phases)  # phase kernels built in fp32
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if demod is not None:
            x = x * demod.to(x.dtype)[:, :, None, None]
        return x

    def macs(self, height: int, width: int) -> int:
        out_c, in_c, k, _ = self.weight.shape
        return height * width * in_c * out_c * k * k + self.affine.weight.numel() + (in_c * out_c if self.demodulate else 0)


class StyleLayer(nn.Module):
    """Modulated conv + seeded noise + bias + leaky ReLU."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, up: bool, layer_index: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(w_dim, in_channels, out_channels, 3, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.layer_index = layer_index

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_keys: torch.Tensor, gain: float = SQRT2) -> torch.Tensor:
        """Returns leaky_relu(...) WITHOUT its sqrt(2) gain: the next layer applies it."""
        x = self.conv(x, w, gain)
        noise = seeded_noise(noise_keys, self.layer_index, x.shape[2], x.shape[3], x.dtype) * self.noise_strength.to(x.dtype)
        x = x + (noise + self.bias.to(x.dtype)[:, None, None])
        return F.leaky_relu(x, 0.2, inplace=True)


class ToImage(nn.Module):
    def __init__(self, w_dim: int, in_channels: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(w_dim, in_channels, 1, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w, SQRT2).float() + self.bias


# --------------------------------------------------------------- generator ---
class MappingNetwork(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        dim = config.latent_dim
        self.num_classes = config.num_classes
        self.embed = EqualLinear(config.num_classes, dim) if config.num_classes else None
        in_dim = dim * 2 if self.embed is not None else dim
        self.layers = nn.Sequential(*[
            EqualLinear(in_dim if i == 0 else dim, dim, lr_mul=0.01, activate=True) for i in range(config.mapping_layers)
        ])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = _normalize(z.float())
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: labels are required")
            y = self.embed(F.one_hot(labels, self.num_classes).float())
            x = torch.cat([x, _normalize(y)], dim=1)
        return self.layers(x)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class StyleGAN2Generator(nn.Module):
    """(z, label) -> 1-channel image, nominally in [-1, 1], at config.resolution."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        widths = stage_widths(config)
        dim = config.latent_dim
        self.mapping = MappingNetwork(config)
        self.const = nn.Parameter(torch.randn(widths[0], 4, 4))
        self.register_buffer("w_avg", torch.zeros(max(config.num_classes, 1), dim))
        self.channels_last = False  # NHWC activations (can be faster on GPUs); set by the caller
        layer = 0
        self.first = StyleLayer(dim, widths[0], widths[0], up=False, layer_index=layer)
        self.first_image = ToImage(dim, widths[0])
        self.blocks = nn.ModuleList()
        self.to_images = nn.ModuleList()
        for w_in, w_out in zip(widths, widths[1:]):
            self.blocks.append(nn.ModuleList([
                StyleLayer(dim, w_in, w_out, up=True, layer_index=layer + 1),
                StyleLayer(dim, w_out, w_out, up=False, layer_index=layer + 2),
            ]))
            self.to_images.append(ToImage(dim, w_out))
            layer += 2

    def set_fused_modulation(self, fused: bool) -> StyleGAN2Generator:
        """Grouped-convolution modulation (faster on CPU) instead of scaling activations
        (faster on GPU, and the form used in training). Same maths, different rounding."""
        for module in self.modules():
            if isinstance(module, ModulatedConv):
                module.fused = fused
        return self

    def set_subpixel_upsampling(self, subpixel: bool) -> StyleGAN2Generator:
        """Upsample-then-convolve as one low-resolution convolution into 4 phases
        (upsample_conv3x3): fewer passes over the largest activations. Same maths."""
        for module in self.modules():
            if isinstance(module, ModulatedConv):
                module.subpixel = subpixel
        return self

    def forward_form(self) -> str:
        """Which of the equivalent forms the forward pass uses (they round differently)."""
        conv = self.blocks[0][0].conv if len(self.blocks) else self.first.conv
        form = "grouped-modulation" if conv.fused else "activation-modulation"
        return form + ("+subpixel-upsampling" if conv.subpixel and not conv.fused else "")

    def map(self, z: torch.Tensor, labels: torch.Tensor | None = None,
            truncation: torch.Tensor | float | None = None) -> torch.Tensor:
        """z (and labels) -> w, truncated towards the class's average w when truncation < 1."""
        w = self.mapping(z, labels)
        if truncation is not None:
            t = torch.as_tensor(truncation, dtype=w.dtype, device=w.device).reshape(-1, 1)
            centre = self.w_avg[labels] if labels is not None and self.config.num_classes else self.w_avg[:1]
            w = centre + t * (w - centre)
        return w

    def synthesis(self, w: torch.Tensor, noise_keys: torch.Tensor | None = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
        """w -> image (fp32). Activations run in `dtype` (e.g. bf16) when given.

        noise_keys: (B,) int64 in [0, 2**32); None uses key 0 for every sample.
        """
        if noise_keys is None:
            noise_keys = torch.zeros(w.shape[0], dtype=torch.int64, device=w.device)
        x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1)
        if dtype is not None:
            x = x.to(dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.first(x, w, noise_keys, gain=1.0)
        image = self.first_image(x, w)
        for (up, conv), to_image in zip(self.blocks, self.to_images):
            x = conv(up(x, w, noise_keys), w, noise_keys)
            image = _upsample(image) + to_image(x, w)
        return image

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                noise_keys: torch.Tensor | None = None, truncation: torch.Tensor | float | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.synthesis(self.map(z, labels, truncation), noise_keys, dtype)

    @torch.no_grad()
    def update_w_avg(self, samples: int = 4096, seed: int = 0) -> torch.Tensor:
        """Set w_avg[c] to the mean of w over `samples` fixed latents, for every class c."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(samples, self.config.latent_dim, generator=generator).to(self.const.device)
        rows = []
        for c in range(max(self.config.num_classes, 1)):
            labels = torch.full((samples,), c, dtype=torch.int64, device=z.device) if self.config.num_classes else None
            rows.append(self.mapping(z, labels).mean(dim=0))
        self.w_avg.copy_(torch.stack(rows))
        return self.w_avg

    def max_activation_elements(self) -> int:
        """The largest activation of one image (an upsampled block input), in elements."""
        size, largest = 4, 0
        for up, _ in self.blocks:
            size *= 2
            largest = max(largest, up.conv.weight.shape[1] * size * size, up.conv.weight.shape[0] * size * size)
        return max(largest, 1)

    def macs_per_image(self) -> int:
        """Multiply-adds of one image's forward pass (convolutions, affines, mapping);
        elementwise work (noise, bias, activation, upsampling) is not counted."""
        total = sum(layer.weight.numel() for layer in self.mapping.layers)
        if self.mapping.embed is not None:
            total += self.mapping.embed.weight.numel()
        total += self.first.conv.macs(4, 4) + self.first_image.conv.macs(4, 4)
        size = 4
        for (up, conv), to_image in zip(self.blocks, self.to_images):
            size *= 2
            total += up.conv.macs(size, size) + conv.conv.macs(size, size) + to_image.conv.macs(size, size)
        return total


# ----------------------------------------------------------- discriminator ---
class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.leaky_relu(self.conv0(x), 0.2) * SQRT2
        x = F.leaky_relu(self.conv1(F.avg_pool2d(x, 2)), 0.2) * SQRT2
        return (x + skip) / SQRT2


class StyleGAN2Discriminator(nn.Module):
    """Image (+ label) -> real/fake logit."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        widths = stage_widths(config)[::-1]  # full resolution first
        self.from_image = EqualConv2d(1, widths[0], 1)
        self.blocks = nn.Sequential(*[ResidualBlock(a, b) for a, b in zip(widths, widths[1:])])
        last = widths[-1]
        self.conv = EqualConv2d(last + 1, last, 3)
        self.fc = EqualLinear(last * 16, last, activate=True)
        self.head = EqualLinear(last, 1)
        self.embed = EqualLinear(config.num_classes, last) if config.num_classes else None
        self.num_classes = config.num_classes

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.from_image(images), 0.2) * SQRT2
        x = self.blocks(x)
        x = F.leaky_relu(self.conv(_minibatch_std(x)), 0.2) * SQRT2
        h = self.fc(x.flatten(1).float())
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: labels are required")
            logit = logit + (self.embed(F.one_hot(labels, self.num_classes).float()) * h).sum(dim=1) / math.sqrt(h.shape[1])
        return logit


def _minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the mean over channels and pixels of the per-group standard deviation."""
    b, c, h, w = x.shape
    g = group if b % group == 0 else 1
    if g == 1:
        std = torch.zeros(b, 1, h, w, dtype=x.dtype, device=x.device)
    else:
        y = x.float().view(g, b // g, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b // g,)
        std = y.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)
    return torch.cat([x, std], dim=1)
