"""Seed study of the demo: mean and std of test top-1 per method, ablations.

Trains the demo study's students (``configs/demo/{student,kd,dkd,figkd}.py``)
for several seeds (``randomness.seed`` via ``--cfg-options``), each from the
demo teacher, and reports the mean and standard deviation of the test top-1
per method. With ``--ablations`` it also runs, for the same seeds:

* FiGKD over the wavelet (haar, db2, sym4; level 1), the level (1, 2, 3;
  haar), the target (reconstruct, coefficients) and the band weights
  ``low_weight`` in {0, 0.5, 1} x ``high_weights`` in {0, 0.5, 1, 2}
  (without the all-zero pair; (1, 1) is KD's loss exactly, a sanity check);
  the FiGKD default (haar, level 1, reconstruct, 0/1) is the same run in
  every group, made once;
* a class-order study on a copy of the demo data whose classes are relabelled
  by a fixed random permutation (``--perm-seed``), which breaks up the
  families: FiGKD there without a class order, with the order that
  ``tools/analysis/class_order.py`` derives from that data's teacher, and
  with the oracle order (the permutation itself, which restores the families),
  plus KD on the shuffled data as a control (KD ignores the class order).
  The shuffled data's teacher is the demo teacher with its classifier rows
  permuted the same way: the same function up to the relabelling, so only
  the class order differs (``--shuffled-teacher train`` trains one instead).

Every run is a stage of ``tools/demo_study.py`` (its ``run_stage``:
``tools/train.py`` with ``--cfg-options``, seed as ``randomness.seed``) in
``WORK_DIR/runs/<run id>``; its result file ``demo_stage.json`` is written
when it finished. A run whose result file exists (with the same settings) is
skipped, so an interrupted study continues where it stopped (an interrupted
run trains again from the start). ``WORK_DIR/results.md``
(every run made, failed ones included, and mean +- std per variant) and
``WORK_DIR/results.json`` are rewritten after every run.

    python tools/analysis/seed_study.py [--seeds 0 1 2]
        [--methods student kd dkd figkd] [--ablations]
        [--work-dir work_dirs/seed_study] [--epochs N]
        [--dry-run] [--tiny]

``--dry-run`` prints the plan (and writes the report of planned runs) without
generating data or training. ``--tiny`` runs the whole pipeline on a tiny
demo dataset (16 classes, 96 training images, 1 epoch, its own teacher) in
minutes: a smoke test of the study, not a result.

The data (``data/demo_cub``, generated if missing) and the teacher are the
demo's: the teacher stage of ``tools/demo_study.py`` in
``work_dirs/demo/teacher``, reused when its ``demo_stage.json`` is for the
same dataset, else trained the same way (``configs/demo/teacher.py``, seed 0);
``--teacher-ckpt`` picks another. ``--groups`` limits the ablation groups,
``--ablation-seeds`` their seeds, ``--variants`` keeps only the named
ablation variants (to give a few candidates more seeds; the report then
covers the methods and those), ``--threads`` sets ``OMP_NUM_THREADS`` of
the training processes.
"""
import argparse
import dataclasses
import json
import math
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

METHODS = ('student', 'kd', 'dkd', 'figkd')
DEMO_CONFIGS = {m: f'configs/demo/{m}.py'
                for m in METHODS + ('teacher', )}
DEFAULT_DATA = 'data/demo_cub'
FIGKD_DEFAULTS = dict(wavelet='haar', level=1, target='reconstruct',
                      low_weight=0.0, high_weights=1.0)
ABLATION_GROUPS = ('wavelet', 'level', 'target', 'weights', 'class_order')
TINY_SPEC = dict(families=4, species_per_family=4, train_per_class=6,
                 test_per_class=3, size=32, seed=0)


# ------------------------------------------------------------- variants
@dataclasses.dataclass(frozen=True)
class Variant:
    """One training recipe; a run is a variant and a seed."""
    name: str
    method: str
    loss: Tuple[Tuple[str, object], ...] = ()  # FiGKDLoss overrides
    data: str = 'original'  # or 'shuffled'
    order: Optional[str] = None  # None, 'derived' or 'oracle'
    note: str = ''

    @property
    def loss_params(self) -> Dict:
        params = dict(FIGKD_DEFAULTS) if self.method == 'figkd' else {}
        params.update(self.loss)
        return params

    def describe(self) -> str:
        parts = []
        if self.method == 'figkd':
            p = self.loss_params
            parts.append(f"FiGKD {p['wavelet']} L{p['level']} {p['target']} "
                         f"low={p['low_weight']:g} "
                         f"high={p['high_weights']:g}")
        else:
            parts.append({'student': 'student alone (CE)', 'kd': 'KD',
                          'dkd': 'DKD'}[self.method])
        if self.data == 'shuffled':
            parts.append('shuffled classes')
            parts.append({None: 'no class order',
                          'derived': 'class order from the teacher',
                          'oracle': 'oracle class order'}[self.order]
                         if self.method == 'figkd' else '')
        if self.note:
            parts.append(self.note)
        return ', '.join(p for p in parts if p)


def _num(x) -> str:
    return f'{x:g}'


def build_variants(methods: Sequence[str] = METHODS, ablations: bool = False,
                   groups: Sequence[str] = ABLATION_GROUPS
                   ) -> Tuple[List[Variant], Dict[str, List[str]]]:
    """The variants to run, and the report's groups (variant names).

    A recipe that several groups share (the FiGKD default) is one variant.
    """
    variants: Dict[str, Variant] = {}
    report: Dict[str, List[str]] = {}
    by_key: Dict[tuple, str] = {}

    def add(group, variant):
        key = (variant.method, tuple(sorted(variant.loss_params.items())),
               variant.data, variant.order)
        name = by_key.setdefault(key, variant.name)
        variants.setdefault(name, variant)
        report.setdefault(group, []).append(name)

    for method in methods:
        add('methods', Variant(method, method))
    if not ablations:
        return list(variants.values()), report
    base = Variant('figkd', 'figkd')
    if 'wavelet' in groups:
        for w in ('haar', 'db2', 'sym4'):
            add('wavelet', Variant(f'figkd_wavelet-{w}', 'figkd',
                                   (('wavelet', w), )))
    if 'level' in groups:
        for lev in (1, 2, 3):
            add('level', Variant(f'figkd_level-{lev}', 'figkd',
                                 (('level', lev), )))
    if 'target' in groups:
        for t in ('reconstruct', 'coefficients'):
            add('target', Variant(f'figkd_target-{t}', 'figkd',
                                  (('target', t), )))
    if 'weights' in groups:
        for low in (0.0, 0.5, 1.0):
            for high in (0.0, 0.5, 1.0, 2.0):
                if low == 0 and high == 0:
                    continue  # nothing would be distilled
                note = 'the KD loss exactly' if (low, high) == (1, 1) else ''
                add('weights', Variant(
                    f'figkd_low-{_num(low)}_high-{_num(high)}', 'figkd',
                    (('low_weight', low), ('high_weights', high)), note=note))
    if 'class_order' in groups:
        add('class_order', base)
        add('class_order', Variant('shuffled_figkd', 'figkd',
                                   data='shuffled'))
        add('class_order', Variant('shuffled_figkd_order-derived', 'figkd',
                                   data='shuffled', order='derived'))
        add('class_order', Variant('shuffled_figkd_order-oracle', 'figkd',
                                   data='shuffled', order='oracle'))
        if 'kd' in methods:
            add('class_order', Variant('kd', 'kd'))
            add('class_order', Variant('shuffled_kd', 'kd', data='shuffled',
                                       note='control: KD ignores the order'))
    return list(variants.values()), report


def demo_epochs() -> int:
    """The students' epochs in the demo schedule (its configs)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, DEMO_CONFIGS['student']))
    return cfg.train_cfg.max_epochs


def run_id(variant: Variant, seed: int) -> str:
    return f'{variant.name}__seed{seed}'


def check_variant(variant: Variant, num_classes: int) -> Optional[str]:
    """Why the variant cannot run with ``num_classes`` classes, or None."""
    if variant.method != 'figkd':
        return None
    import figkd_mmrazor  # noqa: F401
    from figkd_mmrazor.wavelets import dwt_max_level
    p = variant.loss_params
    deepest = dwt_max_level(num_classes, p['wavelet'])
    if p['level'] > deepest:
        return (f"level {p['level']} is deeper than {deepest}, the deepest "
                f"for {num_classes} classes with {p['wavelet']}")
    return None


# ------------------------------------------------------------ report
def summarize(results: Sequence[Dict]) -> Dict[str, Dict]:
    """Mean, std (sample, ddof=1), min, max and n of top-1 per variant,
    over the runs that finished."""
    values: Dict[str, List[float]] = {}
    for r in results:
        if r.get('status') == 'done' and r.get('top1') is not None:
            values.setdefault(r['variant'], []).append(float(r['top1']))
    out = {}
    for name, v in values.items():
        out[name] = dict(n=len(v), mean=statistics.fmean(v),
                         std=statistics.stdev(v) if len(v) > 1 else
                         float('nan'), min=min(v), max=max(v))
    return out


def reference_of(variant: str) -> str:
    """The KD run a variant is compared with: the same data's KD."""
    return 'shuffled_kd' if variant.startswith('shuffled_') else 'kd'


def paired_differences(results: Sequence[Dict]) -> Dict[str, Dict]:
    """Top-1 minus its KD reference's top-1, seed by seed.

    A seed fixes the student's initialisation and the data order, so the
    per-seed difference cancels much of the seed noise that the spread of
    either method alone contains. Returns n, mean and sample std of the
    differences per variant (over seeds where both runs finished).
    """
    top1 = {(r['variant'], r['seed']): float(r['top1']) for r in results
            if r.get('status') == 'done' and r.get('top1') is not None}
    diffs: Dict[str, List[float]] = {}
    for (variant, seed), value in top1.items():
        ref = top1.get((reference_of(variant), seed))
        if ref is not None and variant != reference_of(variant):
            diffs.setdefault(variant, []).append(value - ref)
    return {name: dict(n=len(d), mean=statistics.fmean(d),
                       std=statistics.stdev(d) if len(d) > 1
                       else float('nan'))
            for name, d in diffs.items()}


def _fmt(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return '-'
    return f'{x:.{digits}f}'


def _fmt_paired(d: Dict) -> str:
    """A :func:`paired_differences` entry as ``+1.23 +- 4.56``."""
    return f"{d['mean']:+.2f} +- {_fmt(d['std'])}"


def format_report(results: Sequence[Dict],
                  groups: Optional[Dict[str, List[str]]] = None,
                  descriptions: Optional[Dict[str, str]] = None,
                  meta: Optional[Dict] = None) -> str:
    """Markdown: mean +- std per variant in each group, then every run.

    ``results`` are run records: ``run_id``, ``variant``, ``seed``,
    ``status`` ('done', 'failed', 'skipped', 'planned'), ``top1`` (and
    optionally ``teacher_top1``, ``elapsed_s``, ``error``).
    """
    descriptions = descriptions or {}
    summary = summarize(results)
    paired = paired_differences(results)
    if groups is None:
        groups = {'all': list(dict.fromkeys(r['variant'] for r in results))}
    lines = ['# Seed study', '']
    if meta:
        for key, value in meta.items():
            lines.append(f'- {key}: {value}')
        lines.append('')
    lines.append('Test top-1 (%) of the student, mean +- sample std over the '
                 'seeds that finished. "vs KD" is the top-1 minus the KD '
                 'run\'s of the same seed (of the same data for shuffled '
                 'classes): mean +- std over those seeds, and n. Every run '
                 'made is listed below.')
    for group, names in groups.items():
        lines += ['', f'## {group}', '',
                  '| variant | recipe | n | mean | std | min | max | '
                  'vs KD (paired) |', '|---|---|---|---|---|---|---|---|']
        for name in names:
            s = summary.get(name)
            if s is None:
                lines.append(f'| {name} | {descriptions.get(name, "")} | 0 '
                             '| - | - | - | - | - |')
                continue
            d = paired.get(name)
            vs_kd = f"{_fmt_paired(d)} (n={d['n']})" if d else '-'
            lines.append(
                f"| {name} | {descriptions.get(name, '')} | {s['n']} | "
                f"{_fmt(s['mean'])} | {_fmt(s['std'])} | {_fmt(s['min'])} "
                f"| {_fmt(s['max'])} | {vs_kd} |")
    lines += ['', '## Every run', '',
              '| run | variant | seed | status | top-1 | teacher top-1 | '
              'time (s) | note |', '|---|---|---|---|---|---|---|---|']
    for r in sorted(results, key=lambda r: (r['variant'], r['seed'])):
        note = (r.get('error') or r.get('note') or '').replace(
            '|', '/').replace('\n', ' ')[:120]
        lines.append(
            f"| {r['run_id']} | {r['variant']} | {r['seed']} | "
            f"{r.get('status', '')} | {_fmt(r.get('top1'))} | "
            f"{_fmt(r.get('teacher_top1'))} | "
            f"{_fmt(r.get('elapsed_s'), 0)} | {note} |")
    return '\n'.join(lines) + '\n'


def write_report(results: Sequence[Dict], out_dir: str,
                 groups: Optional[Dict[str, List[str]]] = None,
                 descriptions: Optional[Dict[str, str]] = None,
                 meta: Optional[Dict] = None) -> Tuple[str, str]:
    """Write ``results.md`` and ``results.json`` to ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    md = osp.join(out_dir, 'results.md')
    js = osp.join(out_dir, 'results.json')
    with open(md, 'w') as f:
        f.write(format_report(results, groups, descriptions, meta))
    with open(js, 'w') as f:
        json.dump(dict(meta=meta or {}, groups=groups or {},
                       summary=summarize(results),
                       vs_kd=paired_differences(results),
                       runs=list(results)),
                  f, indent=1)
    return md, js


# --------------------------------------------------- data and teachers
def demo_study():
    """``tools/demo_study.py`` as a module: its stage runner, cfg-options
    builders, metric and checkpoint readers are reused here."""
    tools = osp.join(ROOT, 'tools')
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import demo_study as module
    return module


def read_class_names(root: str) -> List[str]:
    with open(osp.join(root, 'classes.txt')) as f:
        rows = [line.split(maxsplit=1) for line in f if line.strip()]
    return [name.strip() for _, name in sorted(rows, key=lambda r: int(r[0]))]


def permutation(num_classes: int, seed: int) -> List[int]:
    import numpy as np
    return [int(i) for i in np.random.default_rng(seed).permutation(
        num_classes)]


def make_shuffled_dataset(src: str, dst: str, perm: Sequence[int]) -> str:
    """A copy of a CUB-layout dataset with class ``c`` relabelled
    ``perm[c]`` (the images are linked, not copied)."""
    perm = [int(p) for p in perm]
    marker = osp.join(dst, 'permutation.json')
    if osp.isfile(marker):
        with open(marker) as f:
            found = json.load(f)
        if found.get('permutation') != perm:
            raise FileExistsError(f'{dst} holds another permutation; delete '
                                  'it or choose another --work-dir.')
        return dst
    os.makedirs(dst, exist_ok=True)
    images = osp.join(dst, 'images')
    if not osp.lexists(images):
        os.symlink(osp.abspath(osp.join(src, 'images')), images)
    for name in ('images.txt', 'train_test_split.txt'):
        with open(osp.join(src, name)) as f, open(osp.join(dst, name),
                                                  'w') as g:
            g.write(f.read())
    with open(osp.join(src, 'image_class_labels.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    with open(osp.join(dst, 'image_class_labels.txt'), 'w') as g:
        g.writelines(f'{i} {perm[int(c) - 1] + 1}\n' for i, c in rows)
    names = read_class_names(src)
    new_names = [None] * len(names)
    for c, name in enumerate(names):
        new_names[perm[c]] = name
    with open(osp.join(dst, 'classes.txt'), 'w') as g:
        g.writelines(f'{k + 1} {n}\n' for k, n in enumerate(new_names))
    fam_file = osp.join(src, 'class_families.txt')
    if osp.isfile(fam_file):
        with open(fam_file) as f:
            fams = dict(line.split() for line in f if line.strip())
        new_fams = [None] * len(names)
        for c in range(len(names)):
            new_fams[perm[c]] = fams[str(c + 1)]
        with open(osp.join(dst, 'class_families.txt'), 'w') as g:
            g.writelines(f'{k + 1} {v}\n' for k, v in enumerate(new_fams))
    with open(marker, 'w') as f:  # last: marks a complete copy
        json.dump(dict(permutation=perm, source=osp.abspath(src),
                       rule='new label = permutation[old label] (0-based)'),
                  f, indent=1)
    return dst


def permute_teacher(src_ckpt: str, dst_ckpt: str, perm: Sequence[int]
                    ) -> str:
    """The teacher with its classifier rows moved to the new labels: the
    same function of the image, up to the relabelling."""
    import torch
    from class_order import classifier_weight
    if osp.isfile(dst_ckpt):
        return dst_ckpt
    ckpt = torch.load(src_ckpt, map_location='cpu', weights_only=False)
    state = dict(ckpt.get('state_dict', ckpt))
    key, _ = classifier_weight(state, ('', ))
    inverse = torch.argsort(torch.as_tensor(list(perm)))
    for k in (key, key[:-len('weight')] + 'bias'):
        if k in state:
            state[k] = state[k][inverse].clone()
    os.makedirs(osp.dirname(osp.abspath(dst_ckpt)), exist_ok=True)
    tmp = dst_ckpt + '.tmp'
    torch.save(dict(state_dict=state,
                    meta=dict(permuted_from=osp.abspath(src_ckpt),
                              permutation=list(perm))), tmp)
    os.replace(tmp, dst_ckpt)
    return dst_ckpt


# Under MMRazor's default scope a dataset or metric type without a scope is
# looked up in MMRazor's registries, which lack mmpretrain's CUB and
# Accuracy; naming the scope is harmless where a config already does.
DISTILL_SCOPE_OPTIONS = [
    f'{key}._scope_=mmpretrain' for key in (
        'train_dataloader.dataset', 'val_dataloader.dataset',
        'test_dataloader.dataset', 'val_evaluator', 'test_evaluator')]


def _opt_value(value) -> str:
    return f'{value:g}' if isinstance(value, float) and value != int(
        value) else (f'{value:.1f}' if isinstance(value, float) else
                     str(value))


class Study:
    """One study: paths, data, teachers, class orders, and its runs.

    Every training is a stage of ``tools/demo_study.py`` (``run_stage``):
    ``tools/train.py`` in its own process with ``--cfg-options``, the record
    ``demo_stage.json`` (the result file) written when it finished, reused
    when the same settings are asked again.
    """

    def __init__(self, args):
        self.ds = demo_study()
        self.args = args
        self.work = osp.abspath(args.work_dir)
        self.tiny = args.tiny
        self.epochs = args.epochs
        if self.tiny and self.epochs is None:
            self.epochs = 1
        if args.data_root:
            self.data_root = osp.abspath(args.data_root)
        elif self.tiny:
            self.data_root = osp.join(self.work, 'data', 'demo_tiny')
        else:
            self.data_root = osp.join(ROOT, DEFAULT_DATA)
        # The demo's own teacher run, which demo_study.py also reuses.
        self.teacher_root = (osp.join(self.work) if self.tiny else
                             osp.join(ROOT, self.ds.DEFAULT_WORK_DIR))
        self.shuffled_dir = osp.join(self.work, 'shuffled')
        self.spec = None
        self.names = None
        self.teacher = None
        self.shuffled = None  # root, names, teacher, permutation, orders
        self.index = 0
        self.total = 0

    # -- cfg-options
    def data_options(self, root: str, names: Sequence[str], distill: bool
                     ) -> List[str]:
        options = self.ds.dataset_options(self.ds.display(root), names,
                                          self.ds.config_classes(), distill)
        if distill:
            options += DISTILL_SCOPE_OPTIONS
        if self.tiny:
            options.append('train_dataloader.batch_size=16')
        return options

    def options(self, variant: Variant, seed: int) -> List[str]:
        distill = variant.method != 'student'
        if variant.data == 'shuffled':
            root, names = self.shuffled['root'], self.shuffled['names']
            teacher = self.shuffled['teacher']
        else:
            root, names, teacher = self.data_root, self.names, self.teacher
        options = [f'randomness.seed={seed}']
        options += self.data_options(root, names, distill)
        if self.epochs is not None:
            options += self.ds.epoch_options(self.epochs)
        if distill:
            options.append(f'model.teacher_ckpt={self.ds.display(teacher)}')
        if variant.method == 'figkd':
            key = 'model.distiller.distill_losses.loss_figkd'
            for name, value in sorted(variant.loss_params.items()):
                options.append(f'{key}.{name}={_opt_value(value)}')
            if variant.order is not None:
                path = self.shuffled['orders'][variant.order]
                options.append(f'{key}.class_order={self.ds.display(path)}')
        return options

    # -- preparation
    def prepare(self, variants: Sequence[Variant]) -> None:
        from figkd_mmrazor.demo import DemoSpec, make_demo_cub
        if osp.isfile(osp.join(self.data_root, 'demo_spec.json')):
            self.spec = DemoSpec.from_dir(self.data_root)
        else:
            self.spec = DemoSpec(**TINY_SPEC) if self.tiny else DemoSpec()
        make_demo_cub(self.data_root, self.spec,
                         progress=sys.stderr.isatty())
        self.names = read_class_names(self.data_root)
        self.teacher = self.ensure_teacher()
        if any(v.data == 'shuffled' for v in variants):
            self.prepare_shuffled()

    def train_teacher(self, root: str, names: Sequence[str], stage_root: str,
                      settings_extra: Dict) -> str:
        """The demo teacher stage (as demo_study.py runs it, seed 0)."""
        epochs = self.args.teacher_epochs
        if epochs is None and self.tiny:
            epochs = 3
        options = [f'randomness.seed={self.args.teacher_seed}']
        options += self.data_options(root, names, False)
        if epochs is not None:
            options += self.ds.epoch_options(epochs)
        config = DEMO_CONFIGS['teacher']
        settings = json.loads(json.dumps(dict(config=config, options=options,
                                              **settings_extra)))
        try:
            record = self.ds.run_stage(0, 0, 'teacher', config, 'Teacher',
                                       stage_root, options, settings, True)
        except SystemExit as e:
            raise RuntimeError(f'the teacher failed to train: {e}') from None
        return record['checkpoint']

    def ensure_teacher(self) -> str:
        if self.args.teacher_ckpt:
            if not osp.isfile(self.args.teacher_ckpt):
                raise FileNotFoundError(
                    f'--teacher-ckpt {self.args.teacher_ckpt} does not exist')
            return osp.abspath(self.args.teacher_ckpt)
        spec = json.loads(self.spec.to_json())
        record_path = osp.join(self.teacher_root, 'teacher',
                               self.ds.STAGE_FILE)
        if osp.isfile(record_path):
            with open(record_path) as f:
                record = json.load(f)
            if (record.get('settings', {}).get('spec') == spec
                    and osp.isfile(record.get('checkpoint', ''))):
                print(f'teacher: {record["checkpoint"]} (top-1 '
                      f'{record["top1"]:.2f}%)', flush=True)
                return record['checkpoint']
            if record.get('settings', {}).get('spec') != spec:
                raise RuntimeError(
                    f'{record_path} is a teacher of another dataset; pass '
                    '--teacher-ckpt or another --data-root / --work-dir.')
        return self.train_teacher(self.data_root, self.names,
                                  self.teacher_root, dict(spec=spec))

    def prepare_shuffled(self) -> None:
        import class_order
        perm = permutation(len(self.names), self.args.perm_seed)
        root = make_shuffled_dataset(self.data_root,
                                     osp.join(self.shuffled_dir, 'data'),
                                     perm)
        names = read_class_names(root)
        if self.args.shuffled_teacher == 'permute':
            teacher = permute_teacher(
                self.teacher, osp.join(self.shuffled_dir, 'teacher.pth'),
                perm)
        else:
            teacher = self.train_teacher(
                root, names, self.shuffled_dir,
                dict(spec=json.loads(self.spec.to_json()), permutation=perm))
        # class_order.py reads the teacher's architecture (and, for
        # --order-method confusion, the test split) from a config.
        from mmengine.config import Config, DictAction
        cfg = Config.fromfile(osp.join(ROOT, DEMO_CONFIGS['teacher']))
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(
            ['--o', *self.data_options(root, names, False)]).o)
        cfg_path = osp.join(self.shuffled_dir, 'teacher_config.py')
        cfg.dump(cfg_path)
        derived = osp.join(self.shuffled_dir,
                           f'class_order_{self.args.order_method}.json')
        if not osp.isfile(derived):
            class_order.main([cfg_path, teacher, '--out', derived,
                              '--method', self.args.order_method,
                              '--device', 'cpu'])
        oracle = osp.join(self.shuffled_dir, 'class_order_oracle.json')
        if not osp.isfile(oracle):
            class_order.write_order(
                oracle, perm, 'oracle', 'permutation.json',
                note='restores the class order of the unshuffled data')
        self.shuffled = dict(root=root, names=names, teacher=teacher,
                             permutation=perm,
                             orders=dict(derived=derived, oracle=oracle))

    # -- one run
    def result_path(self, rid: str) -> str:
        return osp.join(self.work, 'runs', rid, self.ds.STAGE_FILE)

    def settings(self, variant: Variant, seed: int) -> Tuple[List[str],
                                                             Dict]:
        """The run's cfg-options, and the settings its result file records
        (a finished run is reused only when they are the same)."""
        options = self.options(variant, seed)
        # As read back from the result file (tuples become lists).
        settings = json.loads(json.dumps(dict(
            config=DEMO_CONFIGS[variant.method], options=options,
            variant=dataclasses.asdict(variant))))
        return options, settings

    def run(self, variant: Variant, seed: int) -> Dict:
        rid = run_id(variant, seed)
        self.index += 1
        record = dict(run_id=rid, variant=variant.name, seed=seed,
                      method=variant.method, recipe=variant.describe())
        reason = check_variant(variant, len(self.names))
        if reason:
            print(f'[{self.index}/{self.total}] {rid}: skipped ({reason})')
            return dict(record, status='skipped', top1=None, error=reason)
        options, settings = self.settings(variant, seed)
        try:
            stage = self.ds.run_stage(
                self.index, self.total, rid, DEMO_CONFIGS[variant.method],
                rid, osp.join(self.work, 'runs'), options, settings, True)
        except SystemExit as e:  # demo_study's way to report a failed run
            return dict(record, status='failed', top1=None, error=str(e),
                        options=options)
        return dict(record, status='done', top1=stage['top1'],
                    teacher_top1=stage.get('teacher_top1'),
                    elapsed_s=stage.get('wall_s'), options=options)


def plan_runs(variants: Sequence[Variant], groups: Dict[str, List[str]],
              seeds: Sequence[int], ablation_seeds: Optional[Sequence[int]]
              ) -> List[Tuple[Variant, int]]:
    """(variant, seed) pairs: the methods for ``seeds``, the other variants
    for ``ablation_seeds`` (default: ``seeds``)."""
    main = set(groups.get('methods', []))
    runs = []
    for variant in variants:
        for seed in (seeds if variant.name in main or ablation_seeds is None
                     else ablation_seeds):
            runs.append((variant, seed))
    return runs


def select_variants(variants: Sequence[Variant], groups: Dict[str, List[str]],
                    names: Optional[Sequence[str]]
                    ) -> Tuple[List[Variant], Dict[str, List[str]]]:
    """Only the ablation variants ``names`` (the methods always stay), for
    more seeds of a few candidates."""
    if not names:
        return list(variants), groups
    known = [v.name for v in variants]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f'--variants: unknown {unknown}; the variants of '
                         f'these --methods/--groups are {known}.')
    keep = set(names) | set(groups.get('methods', []))
    variants = [v for v in variants if v.name in keep]
    groups = {g: [n for n in members if n in keep]
              for g, members in groups.items()}
    return variants, {g: m for g, m in groups.items() if m}


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Seed study of the demo: mean and std of test top-1.')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--ablations', action='store_true',
                        help='also the FiGKD ablations and the class-order '
                        'study')
    parser.add_argument('--groups', nargs='+', default=list(ABLATION_GROUPS),
                        choices=ABLATION_GROUPS,
                        help='which ablation groups (with --ablations)')
    parser.add_argument('--ablation-seeds', type=int, nargs='+',
                        default=None,
                        help='seeds of the ablation runs (default: --seeds)')
    parser.add_argument('--variants', nargs='+', default=None,
                        metavar='NAME',
                        help='only these ablation variants (names as in the '
                        'report, e.g. figkd_low-1_high-0.5), with the '
                        'methods: more seeds for a few candidates')
    parser.add_argument('--work-dir', default='work_dirs/seed_study')
    parser.add_argument('--epochs', type=int, default=None,
                        help='student epochs (default: the demo schedule)')
    parser.add_argument('--teacher-ckpt', default=None)
    parser.add_argument('--teacher-epochs', type=int, default=None,
                        help='epochs of a teacher trained by the study')
    parser.add_argument('--teacher-seed', type=int, default=0,
                        help='seed of a teacher trained by the study (0: '
                        'the demo\'s, so demo_study.py reuses it)')
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--perm-seed', type=int, default=0,
                        help='seed of the class permutation (class order)')
    parser.add_argument('--shuffled-teacher', default='permute',
                        choices=['permute', 'train'])
    parser.add_argument('--order-method', default='weights',
                        choices=['weights', 'confusion'])
    parser.add_argument('--threads', type=int, default=None,
                        help='OMP_NUM_THREADS of the training processes')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan; train nothing')
    parser.add_argument('--tiny', action='store_true',
                        help='tiny data, 1 epoch: a smoke test')
    return parser.parse_args(argv)


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    import figkd_mmrazor  # noqa: F401  (before anything imports mmrazor)
    if args.threads:  # inherited by every training process
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    variants, groups = build_variants(args.methods, args.ablations,
                                      args.groups)
    variants, groups = select_variants(variants, groups, args.variants)
    plan = plan_runs(variants, groups, args.seeds, args.ablation_seeds)
    study = Study(args)
    descriptions = {v.name: v.describe() for v in variants}
    meta = dict(seeds=args.seeds, ablation_seeds=args.ablation_seeds or
                args.seeds, epochs=study.epochs or demo_epochs(),
                data_root=study.ds.display(study.data_root), tiny=args.tiny,
                perm_seed=args.perm_seed,
                shuffled_teacher=args.shuffled_teacher,
                order_method=args.order_method)
    if args.dry_run:
        results = []
        for variant, seed in plan:
            rid = run_id(variant, seed)
            record = dict(run_id=rid, variant=variant.name, seed=seed,
                          status='planned', top1=None,
                          recipe=variant.describe())
            path = study.result_path(rid)
            if osp.isfile(path):  # reused if its settings still match
                with open(path) as f:
                    stage = json.load(f)
                record.update(status='exists', top1=stage.get('top1'),
                              teacher_top1=stage.get('teacher_top1'),
                              elapsed_s=stage.get('wall_s'))
            results.append(record)
        todo = sum(r['status'] == 'planned' for r in results)
        for r in results:
            print(f"{r['status']:8s} {r['run_id']:40s} "
                  f"{descriptions[r['variant']]}")
        print(f'{len(results)} runs, {todo} to train, in {study.work}')
        md, _ = write_report(results, osp.join(study.work, 'dry_run'),
                             groups, descriptions, dict(meta, dry_run=True))
        print(f'wrote {md}')
        return results
    study.prepare(variants)
    meta.update(teacher=study.ds.display(study.teacher),
                num_classes=len(study.names))
    if study.shuffled:
        meta.update(
            shuffled_teacher_ckpt=study.ds.display(study.shuffled['teacher']),
            class_orders={k: study.ds.display(v)
                          for k, v in study.shuffled['orders'].items()})
    results = []
    study.total = len(plan)
    for variant, seed in plan:
        results.append(study.run(variant, seed))
        write_report(results, study.work, groups, descriptions, meta)
    md, js = write_report(results, study.work, groups, descriptions, meta)
    summary = summarize(results)
    paired = paired_differences(results)
    for group, names in groups.items():
        print(f'{group}:')
        for name in names:
            s = summary.get(name)
            d = paired.get(name)
            print(f'  {name:32s} ' + (
                f"{s['mean']:6.2f} +- {_fmt(s['std'])} (n={s['n']})"
                if s else 'no finished run') + (
                f'   vs KD {_fmt_paired(d)}' if d else ''))
    failed = [r['run_id'] for r in results if r['status'] == 'failed']
    print(f'wrote {md} and {js}' + (f'; failed: {failed}' if failed else ''))
    if failed:
        sys.exit(1)
    return results


if __name__ == '__main__':
    main()
