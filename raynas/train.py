"""Training a derived architecture from scratch (first version of ``raynas train``).

Protocol defaults (used where the config leaves a value unset):

| setting | DARTS spaces (Liu et al. 2019, CIFAR-10) | NAS-Bench-201 (Dong & Yang 2020) |
|---|---|---|
| epochs | 600 | 200 |
| batch size | 96 | 256 |
| optimizer | SGD lr 0.025, momentum 0.9, wd 3e-4, cosine | SGD Nesterov lr 0.1, momentum 0.9, wd 5e-4, cosine |
| network | C=36, 20 cells, auxiliary head 0.4, drop-path 0.2 (ramped) | C=16, N=5 |
| grad clip | 5 | 5 |

The network trains on the whole search split (both halves) and is tested on the held-out test split.
Genotypes whose cells have no path from input to output are refused.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from raynas.config import TrainConfig, apply_overrides, train_config_from_dict
from raynas.errors import GenotypeError

DARTS_PROTOCOL = {"epochs": 600, "batch_size": 96, "lr": 0.025, "nesterov": False, "weight_decay": 3e-4,
                  "auxiliary": True, "drop_path_prob": 0.2}
NB201_PROTOCOL = {"epochs": 200, "batch_size": 256, "lr": 0.1, "nesterov": True, "weight_decay": 5e-4,
                  "auxiliary": False, "drop_path_prob": 0.0}


def train_config_from_cli(*, genotype: str, space: str, dataset: str, epochs: int | None = None,
                      overrides: Sequence[str] = ()) -> TrainConfig:
    """A validated :class:`TrainConfig` from the CLI's arguments and ``--set`` overrides."""
    data: dict[str, Any] = {"space": space, "genotype": genotype, "data": {"name": dataset}}
    if epochs is not None:
        data["epochs"] = epochs
    return train_config_from_dict(apply_overrides(data, overrides))


def resolve_protocol(cfg: TrainConfig) -> TrainConfig:
    """Fill every unset (None) setting of ``cfg`` with its space's protocol default."""
    from raynas.spaces import get_space

    space = get_space(cfg.space)
    protocol = DARTS_PROTOCOL if "normal" in space.cell_types else NB201_PROTOCOL
    filled = {key: value for key, value in {**protocol, **space.default_network_args()}.items()
              if getattr(cfg, key) is None}
    return replace(cfg, **filled)


def train_from_scratch(cfg: TrainConfig, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.genotype`` from scratch; return test accuracy, parameter count and timings."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from raynas.data import EpochLoader, load_data
    from raynas.networks import count_parameters
    from raynas.search import pick_device, seed_everything
    from raynas.spaces import get_space

    cfg = resolve_protocol(cfg)
    space = get_space(cfg.space)
    genotype = space.parse_genotype(cfg.genotype)
    if not space.is_connected(genotype):
        raise GenotypeError(f"genotype {genotype} has a cell with no path from its input to its output "
                            "(every path goes through 'none'); it cannot learn. Pick another genotype "
                            "(raynas arch show reports \"connected\": false for such cells)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    data = load_data(cfg.data, augment=True)
    model = space.build_network(genotype, channels=cfg.channels, layers=cfg.layers, num_classes=data.num_classes,
                                in_channels=data.in_channels, auxiliary=bool(cfg.auxiliary),
                                drop_path_prob=cfg.drop_path_prob).to(device)
    params = count_parameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, nesterov=bool(cfg.nesterov))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.lr_min)
    train_loader = EpochLoader(data.full_train(), cfg.batch_size, shuffle=True, seed=cfg.seed)
    test_loader = EpochLoader(data.test, cfg.batch_size, shuffle=False, seed=0)
    echo(f"training {genotype} ({params:,} params) on {cfg.data.name} for {cfg.epochs} epochs")
    start = time.perf_counter()
    test_loss = test_acc = float("nan")
    for epoch in range(cfg.epochs):
        epoch_start = time.perf_counter()
        model.drop_path_prob = cfg.drop_path_prob * epoch / cfg.epochs
        model.train()
        loss_sum = correct = seen = 0.0
        for x, y in train_loader.epoch(epoch):
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            logits, aux_logits = model.forward_with_aux(x)
            loss = F.cross_entropy(logits, y)
            if aux_logits is not None:
                loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux_logits, y)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
        scheduler.step()
        test_loss, test_acc = evaluate(model, test_loader, device)
        echo(f"epoch {epoch + 1:>3}/{cfg.epochs}  train_loss {loss_sum / seen:.4f}  train_acc {correct / seen:.4f}"
             f"  test_loss {test_loss:.4f}  test_acc {test_acc:.4f}  ({time.perf_counter() - epoch_start:.1f}s)")
    return {"genotype": str(genotype), "space": cfg.space, "dataset": cfg.data.name, "params": params,
            "epochs": cfg.epochs, "test_loss": test_loss, "test_acc": test_acc,
            "wall_time_s": time.perf_counter() - start}


def evaluate(model: Any, loader: Any, device: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) over ``loader``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    loss_sum = correct = seen = 0.0
    with torch.no_grad():
        for x, y in loader.epoch(0):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
    return loss_sum / max(seen, 1), correct / max(seen, 1)
