"""Tiny versions of the real configs: same code paths, seconds on a CPU."""
import os
import socket
import subprocess
import sys
from pathlib import Path

from mmengine.config import Config

from figkd_mmrazor.demo import make_demo_cub
from figkd_mmrazor.glyphs import GlyphSpec, make_glyphs

ROOT = Path(__file__).resolve().parents[1]
TINY_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackInputs'),
]


# Random crop and flip: what keyed augmentation must make reproducible.
AUGMENTED = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]


def tiny_cub(root, num_classes=4, **params) -> Path:
    """A small CUB-layout dataset from the demo generator."""
    return make_demo_cub(root, families=2,
                         species_per_family=num_classes // 2,
                         train_per_class=4, test_per_class=2, size=32,
                         progress=False, **params)


# A 10-class glyph benchmark (the A family), 4 / 1 / 2 train / validation /
# test images a class: the demo recipes' own kind of data.
TINY_GLYPHS = GlyphSpec(families=1, train_per_class=4, val_per_class=1,
                        test_per_class=2)


def tiny_glyphs(root) -> Path:
    return make_glyphs(root, TINY_GLYPHS, progress=False, workers=1)


def tiny_config(config, data_root, out_path, num_classes=4, epochs=2,
                batch_size=4) -> Path:
    """Shrink ``config`` (a path under configs/) to the tiny dataset.

    Weights named by URL are turned off: tests have no internet.
    """
    cfg = Config.fromfile(ROOT / config)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.update(batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
        loader.dataset.update(data_root=str(data_root),
                              pipeline=TINY_PIPELINE)
        # A classes file (the glyph configs') names another dataset's
        # classes; the tiny data keeps its loader's built-in names.
        if isinstance(loader.dataset.get('classes'), str):
            del loader.dataset['classes']
    cfg.data_preprocessor.num_classes = num_classes
    model = cfg.model
    if 'architecture' in model:  # a distillation config
        model.teacher_ckpt = None
        model.teacher.head.num_classes = num_classes
        student = model.architecture
    else:
        student = model
    student.head.num_classes = num_classes
    student.backbone.init_cfg = None
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.dump(str(out_path))
    return Path(out_path)


def save_random_teacher(cfg, path, seed) -> Path:
    """The teacher of distillation config ``cfg``, initialised from torch
    seed ``seed``, saved as a checkpoint at ``path``."""
    import torch
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(cfg.model.teacher)
    teacher.init_weights()
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return Path(path)


def free_port() -> int:
    # Port 0 would reach the workers as MASTER_PORT=0: they never meet.
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_tool(*args, nproc=None, check=True, timeout=600):
    """Run tools/<script> as a user would, from the repository root."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    if nproc:
        cmd = [sys.executable, '-m', 'torch.distributed.run',
               f'--nproc_per_node={nproc}', f'--master_port={free_port()}',
               *args]
    else:
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, cmd))} failed:\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')
    return proc
