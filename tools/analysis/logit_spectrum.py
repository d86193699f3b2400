"""Wavelet spectrum of teacher (and student) logits along the class axis.

Runs the teacher (and the student) of a distillation config, or a plain
mmpretrain classifier, over a split and reports per band the energy of the
logits and the teacher-student agreement (the maths and its definitions:
:mod:`figkd_mmrazor.analysis.logit_spectrum`). Prints a table and writes
``spectrum.json`` and ``spectrum.png`` to ``--out``::

    python tools/analysis/logit_spectrum.py CONFIG CKPT
        [--student-ckpt CKPT] [--student-config CONFIG] [--split test]
        [--wavelet haar --level 3 --mode periodization] [--center]
        [--class-order order.json] [--max-batches N] [--out DIR]

CKPT is the teacher's checkpoint or a distillation checkpoint, which then
also gives the student unless ``--student-ckpt`` is passed. For a plain
classifier config, ``--student-ckpt`` compares a second checkpoint of the
same (or ``--student-config``'s) architecture against CKPT.
"""
import argparse
import json
import os
import os.path as osp

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.analysis import classifier_logits as cl
from figkd_mmrazor.analysis import logit_spectrum as spectrum
from figkd_mmrazor.checkpoints import (STUDENT_PREFIX, load_checkpoint,
                                       state_dict_of)
from figkd_mmrazor.losses.figkd_loss import load_class_order
from mmengine.config import Config, DictAction


def parse_args():
    parser = argparse.ArgumentParser(
        description='Wavelet band energies of teacher/student logits.')
    parser.add_argument('config', help='distillation or classifier config')
    parser.add_argument('checkpoint',
                        help='teacher (or distillation) checkpoint')
    parser.add_argument('--student-ckpt', help='student checkpoint (default: '
                        'the student of a distillation checkpoint)')
    parser.add_argument('--student-config', help='config of the student '
                        'model, if not the pair of CONFIG')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'],
                        help="train: the training pipeline's random views "
                        'of epoch 0, keyed by data seed 0 (repeatable)')
    parser.add_argument('--wavelet', default='haar')
    parser.add_argument('--level', type=int, default=3)
    parser.add_argument('--mode', default='periodization')
    parser.add_argument('--center', action='store_true',
                        help="subtract each sample's mean logit first")
    parser.add_argument('--class-order', help='JSON class order (as for '
                        'FiGKDLoss) applied before the transform')
    parser.add_argument('--max-batches', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--out', default=None, help='output directory '
                        '(default work_dirs/logit_spectrum/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    models = {'teacher': cl.load_classifier(cfg, args.checkpoint)}
    student_cfg = (cl.model_config(Config.fromfile(args.student_config))
                   if args.student_config else None)
    if args.student_ckpt:
        models['student'] = cl.load_classifier(
            cfg, args.student_ckpt, 'student', student_cfg)
    elif any(k.startswith(STUDENT_PREFIX) for k in
             state_dict_of(load_checkpoint(args.checkpoint))):
        models['student'] = cl.load_classifier(cfg, args.checkpoint,
                                               'student', student_cfg)
    logits, labels = cl.collect_logits(
        models, cl.build_loader(cfg, args.split, args.batch_size,
                                args.num_workers),
        cl.build_data_preprocessor(cfg), cl.resolve_device(args.device),
        args.max_batches)
    report = spectrum.spectrum_report(
        logits['teacher'], logits.get('student'), args.wavelet, args.level,
        args.mode, args.center, load_class_order(args.class_order))
    report.update(
        config=args.config, checkpoint=args.checkpoint,
        student_checkpoint=args.student_ckpt, split=args.split,
        class_order=args.class_order,
        top1={name: float((x.argmax(1) == labels).float().mean())
              for name, x in logits.items()})
    out = args.out or osp.join('work_dirs', 'logit_spectrum',
                               osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    print(f"{report['num_samples']} samples of the {args.split} split, "
          f"{report['num_classes']} classes; top-1 " + ', '.join(
              f'{k} {100 * v:.2f}%' for k, v in report['top1'].items()))
    print(spectrum.format_spectrum_table(report))
    with open(osp.join(out, 'spectrum.json'), 'w') as f:
        json.dump(report, f, indent=2)
    spectrum.plot_spectrum(report, osp.join(out, 'spectrum.png'))
    print(f'wrote {osp.join(out, "spectrum.json")} and '
          f'{osp.join(out, "spectrum.png")}')


if __name__ == '__main__':
    main()
