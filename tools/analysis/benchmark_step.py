"""Time one training step of a real pair: student alone, KD, DKD, FiGKD, and
FiGKD with the teacher replayed from a teacher cache.

A step is ``model.train_step(data, optim_wrapper)`` as mmengine's loop runs
it: data preprocessing, teacher forward (no grad), student forward and
backward, the losses, and the optimizer update. The models are built by
MMRazor's registry from ``--config`` (a distillation config; default
``configs/figkd/cub_r50_r18.py``: ResNet-50 -> ResNet-18) with:

* the distiller swapped for ``configs/_base_/distill/{kd,dkd,figkd}.py``, the
  bases of ``configs/{kd,dkd,figkd}/*.py`` (so everything but the
  distillation loss is identical), and FiGKD's wavelet and level set from
  ``--figkd WAVELET:LEVEL ...``;
* ``student``: the pair's student (``model.architecture``) as a plain
  mmpretrain classifier, cross-entropy only (its own loss);
* ``replay``: FiGKD as in ``configs/_base_/distill/figkd.py`` on
  ``CachedTeacherDistill`` replaying the batch's teacher logits, recorded
  once into a temporary teacher cache before timing (no teacher forward);
* no weights loaded (``teacher_ckpt=None``, Pretrained ``init_cfg`` dropped:
  random weights time the same) and ``--num-classes`` classes on both heads,
  so one synthetic batch (random images, random labels as mmpretrain
  ``DataSample`` gt labels) serves every model.

All methods run in one process, interleaved step by step (the order rotates
every round), after ``--warmup`` steps each; the table reports the median
step time and the ratios to KD and to the student alone. Ratios are what
to compare across machines.

    python tools/analysis/benchmark_step.py [--config CONFIG] [--size 224]
        [--batch 8] [--steps 30] [--amp] [--device auto]
        [--figkd haar:1 haar:3 db4:2 sym8:3] [--num-classes 200]
        [--methods student kd dkd figkd replay standardize graph]
"""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, Optional

import torch

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.analysis.comparison import report_meta
from figkd_mmrazor.replay.store import read_manifest
from figkd_mmrazor.wavelets import dwt_max_level

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = 'configs/figkd/cub_r50_r18.py'
DISTILL_BASES = {m: f'configs/_base_/distill/{m}.py'
                 for m in ('kd', 'dkd', 'figkd')}
DEFAULT_FIGKD = ('haar:1', 'haar:3', 'db4:2', 'sym8:3')


def drop_pretrained(cfg):
    """Remove every ``init_cfg`` that loads weights (in place)."""
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        elif isinstance(init, list):
            cfg['init_cfg'] = [i for i in init
                               if not (isinstance(i, dict)
                                       and i.get('type') == 'Pretrained')]
        for value in cfg.values():
            drop_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_pretrained(value)
    return cfg


def _path(rel: str) -> str:
    return rel if osp.isabs(rel) or osp.exists(rel) else osp.join(ROOT, rel)


def load_base(config: str, num_classes: Optional[int], cfg_options=None):
    """The config with weights off and ``num_classes`` on both heads."""
    from mmengine.config import Config
    cfg = Config.fromfile(_path(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'architecture' not in cfg.model:
        raise ValueError(f'{config} is not a distillation config (no '
                         'model.architecture).')
    model = cfg.model
    model.teacher_ckpt = None
    if num_classes is None:
        num_classes = model.architecture.head.num_classes
    model.architecture.head.num_classes = num_classes
    model.teacher.head.num_classes = num_classes
    if cfg.get('data_preprocessor'):
        cfg.data_preprocessor.num_classes = num_classes
    drop_pretrained(model)
    return cfg, num_classes


def parse_figkd(spec: str):
    """'db4:2' -> ('db4', 2); 'haar' -> ('haar', 1)."""
    wavelet, _, level = spec.partition(':')
    return wavelet, int(level or 1)


def method_model_configs(cfg, methods, figkd_specs, num_classes):
    """``{label: (kind, model cfg)}``; kind is 'student' or 'distill'."""
    from mmengine.config import Config
    out, skipped = {}, []
    pre = copy.deepcopy(cfg.get('data_preprocessor'))
    for method in methods:
        if method == 'replay':
            model = copy.deepcopy(cfg.model)
            model.update(type='CachedTeacherDistill', data_preprocessor=pre,
                         distiller=Config.fromfile(
                             _path(DISTILL_BASES['figkd'])).distiller,
                         teacher_cache=dict(dir=None, dtype='float32'))
            out['FiGKD replay'] = ('replay', model)
            continue
        if method in ('standardize', 'graph', 'ordered'):
            d = Config.fromfile(_path(DISTILL_BASES['figkd'])).distiller
            loss = d.distill_losses.loss_figkd
            if method == 'standardize':
                loss.standardize = True
                label = 'FiGKD haar L1 standardized'
            elif method == 'ordered':  # what class_order='teacher' costs
                loss.class_order = torch.randperm(
                    num_classes,
                    generator=torch.Generator().manual_seed(0)).tolist()
                label = 'FiGKD haar L1, class order'
            else:  # a class graph of random similarities: same cost
                rows = torch.randn(num_classes, 16,
                                   generator=torch.Generator().manual_seed(0))
                rows = torch.nn.functional.normalize(rows, dim=1)
                loss.update(type='GraphFiGKDLoss',
                            class_graph=(rows @ rows.T).tolist())
                label = 'FiGKD graph'
            model = copy.deepcopy(cfg.model)
            model.update(distiller=d, data_preprocessor=pre)
            out[label] = ('distill', model)
            continue
        if method == 'student':
            student = copy.deepcopy(cfg.model.architecture)
            student['data_preprocessor'] = pre
            out['student (CE)'] = ('student', student)
            continue
        distiller = Config.fromfile(_path(DISTILL_BASES[method])).distiller
        variants = [(method.upper(), None)]
        if method == 'figkd':
            variants = [(f'FiGKD {w} L{lev}', (w, lev))
                        for w, lev in map(parse_figkd, figkd_specs)]
        for label, variant in variants:
            d = copy.deepcopy(distiller)
            if variant is not None:
                wavelet, level = variant
                deepest = dwt_max_level(num_classes, wavelet)
                if level > deepest:
                    skipped.append(f'{label}: level {level} > {deepest}, the '
                                   f'deepest for {num_classes} classes')
                    continue
                d.distill_losses.loss_figkd.update(wavelet=wavelet,
                                                   level=level)
            model = copy.deepcopy(cfg.model)
            model['distiller'] = d
            model['data_preprocessor'] = pre
            out[label] = ('distill', model)
    return out, skipped


def build_model(kind: str, model_cfg, device):
    from mmengine.registry import init_default_scope
    if kind == 'student':
        from mmpretrain.registry import MODELS
        init_default_scope('mmpretrain')
        model_cfg = copy.deepcopy(dict(model_cfg))
        model_cfg.pop('_scope_', None)
    else:
        from mmrazor.registry import MODELS
        init_default_scope('mmrazor')
    if kind == 'replay':
        model_cfg = copy.deepcopy(model_cfg)
        model_cfg['teacher_cache']['dir'] = tempfile.mkdtemp(
            prefix='teacher_cache_')
    torch.manual_seed(0)  # every model starts from the same weights
    model = MODELS.build(model_cfg).to(device)
    model.train()  # MMRazor algorithms' train() returns None
    return model


class _CPUAutocastOptimWrapper:
    """An OptimWrapper whose forward runs under CPU bfloat16 autocast
    (mmengine's AmpOptimWrapper needs a GPU)."""

    @staticmethod
    def wrap(optim_wrapper):
        base = optim_wrapper.optim_context

        @contextlib.contextmanager
        def optim_context(model):
            with base(model), torch.autocast('cpu', dtype=torch.bfloat16):
                yield

        optim_wrapper.optim_context = optim_context
        return optim_wrapper


def build_optim_wrapper(model, cfg, amp: bool, device):
    from mmengine.optim import build_optim_wrapper as build
    ow_cfg = copy.deepcopy(cfg.get('optim_wrapper') or dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    if amp and device.type == 'cuda':
        ow_cfg['type'] = 'AmpOptimWrapper'
        ow_cfg.setdefault('loss_scale', 'dynamic')
    else:
        ow_cfg['type'] = 'OptimWrapper'
        ow_cfg.pop('loss_scale', None)
    wrapper = build(model, ow_cfg)
    if amp and device.type != 'cuda':
        wrapper = _CPUAutocastOptimWrapper.wrap(wrapper)
    return wrapper


def synthetic_batch(batch: int, size: int, num_classes: int, device,
                    seed: int = 0) -> Dict:
    """Random uint8 images and labels, as a dataloader would give them."""
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                            generator=gen).to(device) for _ in range(batch)]
    labels = torch.randint(0, num_classes, (batch, ), generator=gen)
    # sample_key: epoch 0, sample i, for the teacher cache's replay.
    samples = [DataSample(metainfo=dict(sample_key=(0, i))).set_gt_label(
        int(label)) for i, label in enumerate(labels)]
    return dict(inputs=inputs, data_samples=samples)


def record_for_replay(model, data) -> None:
    """Record ``data``'s teacher logits as epoch 0 of the model's teacher
    cache, through the recording path of a real run, then switch it to
    replay (what ``TeacherCacheHook`` does between two runs)."""
    cache = model.teacher_cache
    cache.fingerprint, cache.num_samples = {}, len(data['inputs'])
    cache.begin_recording(1, cache.dir)
    names = list(model.distiller.teacher_recorders.recorders)
    model.eval()  # the student's BN statistics stay as built
    with torch.no_grad():
        batch = model.data_preprocessor(data, True)
        model.loss(batch['inputs'], batch['data_samples'])
    model.train()
    cache.finish_epoch(0, names)
    cache.finish()
    cache.mode = 'replay'
    cache.manifest = read_manifest(cache.dir)


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def benchmark(config: str = DEFAULT_CONFIG, size: int = 224, batch: int = 8,
              steps: int = 30, warmup: int = 5, amp: bool = False,
              device: str = 'auto', methods=('student', 'kd', 'dkd',
                                             'figkd'),
              figkd=DEFAULT_FIGKD, num_classes: Optional[int] = None,
              cfg_options=None, log=print) -> Dict:
    """Median step time per method; see the module docstring."""
    device = torch.device('cuda' if device == 'auto' and
                          torch.cuda.is_available() else
                          ('cpu' if device == 'auto' else device))
    cfg, num_classes = load_base(config, num_classes, cfg_options)
    model_cfgs, skipped = method_model_configs(cfg, methods, figkd,
                                               num_classes)
    for note in skipped:
        log(f'skipped {note}')
    data = synthetic_batch(batch, size, num_classes, device)
    runs = {}
    for label, (kind, model_cfg) in model_cfgs.items():
        model = build_model(kind, model_cfg, device)
        if kind == 'replay':
            record_for_replay(model, data)
        runs[label] = (model, build_optim_wrapper(model, cfg, amp, device))
    labels = list(runs)
    times = {label: [] for label in labels}
    last_loss = {}
    peak_mem = {}

    def step(label):
        model, wrapper = runs[label]
        _sync(device)
        start = time.perf_counter()
        losses = model.train_step(data, wrapper)
        _sync(device)
        elapsed = time.perf_counter() - start
        loss = float(torch.as_tensor(losses['loss']).detach())
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(f'{label}: non-finite loss {loss}.')
        last_loss[label] = loss
        return elapsed

    for label in labels:
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(warmup):
            step(label)
        if device.type == 'cuda':
            peak_mem[label] = torch.cuda.max_memory_allocated(device) / 2**20
    for i in range(steps):
        shift = i % len(labels)
        for label in labels[shift:] + labels[:shift]:
            times[label].append(step(label))
    for model, _ in runs.values():
        if hasattr(model, 'teacher_cache'):
            shutil.rmtree(model.teacher_cache.dir, ignore_errors=True)
    median = {label: statistics.median(t) for label, t in times.items()}
    ref, alone = median.get('KD'), median.get('student (CE)')
    rows = []
    for label in labels:
        t = sorted(times[label])
        rows.append(dict(
            method=label, median_ms=1e3 * median[label],
            p25_ms=1e3 * t[len(t) // 4], p75_ms=1e3 * t[(3 * len(t)) // 4],
            ratio_to_kd=median[label] / ref if ref else None,
            ratio_to_student=median[label] / alone if alone else None,
            loss=last_loss[label], peak_mem_mib=peak_mem.get(label)))
    return dict(config=config, size=size, batch=batch, steps=steps,
                warmup=warmup, amp=amp, device=str(device),
                device_name=(torch.cuda.get_device_name(device)
                             if device.type == 'cuda' else 'cpu'),
                threads=torch.get_num_threads(), num_classes=num_classes,
                torch=torch.__version__, rows=rows, skipped=skipped)


def format_table(result: Dict) -> str:
    mem = any(r['peak_mem_mib'] is not None for r in result['rows'])
    head = ['method', 'median ms', 'p25-p75 ms', 'x KD', 'x student'] + (
        ['peak MiB'] if mem else [])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in result['rows']:
        ratios = ['-' if r.get(key) is None else f'{r[key]:.3f}'
                  for key in ('ratio_to_kd', 'ratio_to_student')]
        row = [r['method'], f"{r['median_ms']:.2f}",
               f"{r['p25_ms']:.2f}-{r['p75_ms']:.2f}", *ratios]
        if mem:
            row.append(f"{r['peak_mem_mib']:.0f}")
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Time a training step: student alone, KD, DKD, FiGKD.')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='a distillation config (its pair, data '
                        'preprocessor and optimizer are used)')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=30,
                        help='timed steps per method')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--amp', action='store_true',
                        help='autocast: float16 + loss scaling on CUDA, '
                        'bfloat16 on CPU')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--num-classes', type=int, default=None,
                        help='classes of both heads (default: the config)')
    parser.add_argument('--methods', nargs='+',
                        default=['student', 'kd', 'dkd', 'figkd'],
                        choices=['student', 'kd', 'dkd', 'figkd', 'replay',
                                 'standardize', 'graph', 'ordered'])
    parser.add_argument('--figkd', nargs='+', default=list(DEFAULT_FIGKD),
                        metavar='WAVELET:LEVEL')
    parser.add_argument('--json', help='also write the result here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = benchmark(args.config, args.size, args.batch, args.steps,
                       args.warmup, args.amp, args.device, args.methods,
                       args.figkd, args.num_classes, args.cfg_options)
    print(f"{result['config']}: {result['size']} px, batch "
          f"{result['batch']}, {result['num_classes']} classes, "
          f"{'AMP' if result['amp'] else 'fp32'}, {result['device_name']}, "
          f"{result['threads']} thread(s), torch {result['torch']}; median "
          f"of {result['steps']} interleaved steps after {result['warmup']} "
          'warm-up steps each')
    print(format_table(result))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        meta = report_meta(' '.join(['python'] + sys.argv))
        with open(args.json, 'w') as f:
            json.dump(dict(meta, **result), f, indent=2)
    return result


if __name__ == '__main__':
    main()
