"""Derive a class order that puts similar classes next to each other.

Writes the JSON that ``FiGKDLoss(class_order=PATH)`` reads::

    python tools/analysis/class_order.py CONFIG CKPT --out order.json
        [--method weights|confusion] [--model teacher|student]
        [--split test] [--confusion soft|hard] [--linkage average]

``--method weights`` (default) needs no data: the cosine similarity of the
rows of the classifier's last linear layer. ``--method confusion`` runs the
model over ``--split``. CKPT is the teacher's checkpoint or a distillation
checkpoint. The maths is :mod:`figkd_mmrazor.analysis.class_order`.
"""
import argparse

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.analysis import class_order as co
from figkd_mmrazor.analysis import classifier_logits as cl
from figkd_mmrazor.checkpoints import (TEACHER_PREFIX, classifier_weight,
                                      load_checkpoint, state_dict_of)
from figkd_mmrazor.replay.fingerprint import teacher_sha256 as file_sha256
from mmengine.config import Config, DictAction


def parse_args():
    parser = argparse.ArgumentParser(
        description='Class order from a trained classifier, for FiGKDLoss.')
    parser.add_argument('config', help='distillation or classifier config')
    parser.add_argument('checkpoint',
                        help='teacher (or distillation) checkpoint')
    parser.add_argument('--out', required=True, help='JSON file to write')
    parser.add_argument('--method', default='weights',
                        choices=['weights', 'confusion'])
    parser.add_argument('--model', default='teacher',
                        choices=['teacher', 'student'],
                        help='which model of a distillation checkpoint')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'],
                        help='split for --method confusion (train: the '
                        "training pipeline's random views of epoch 0, keyed "
                        'by data seed 0, so the order repeats)')
    parser.add_argument('--confusion', default='soft',
                        choices=['soft', 'hard'])
    parser.add_argument('--linkage', default='average',
                        choices=['average', 'complete', 'single',
                                 'weighted'])
    parser.add_argument('--no-center', action='store_true',
                        help='keep the mean classifier row (weights)')
    parser.add_argument('--max-batches', type=int, default=None)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    extra = dict(config=args.config, model=args.model, linkage=args.linkage)
    checkpoint = load_checkpoint(args.checkpoint)
    if args.method == 'weights':
        state = cl.classifier_state(checkpoint, args.model)
        sim = co.cosine_similarity_matrix(
            classifier_weight(state).double().numpy(),
            center=not args.no_center)
        extra.update(centered=not args.no_center)
    else:
        model = cl.load_classifier(cfg, args.checkpoint, args.model)
        logits, labels = cl.collect_logits(
            {'m': model}, cl.build_loader(cfg, args.split),
            cl.build_data_preprocessor(cfg), cl.resolve_device(args.device),
            args.max_batches)
        sim = co.confusion_similarity(co.confusion_matrix(
            logits['m'].numpy(), labels.numpy(), kind=args.confusion))
        extra.update(split=args.split, confusion=args.confusion,
                     num_samples=int(labels.numel()))
    order = co.order_from_similarity(sim, args.linkage)
    n = sim.shape[0]
    before, after = (co.neighbour_similarity(sim, range(n)),
                     co.neighbour_similarity(sim, order))
    extra.update(num_classes=n, neighbour_similarity=dict(
        dataset_order=before, class_order=after))
    print(f'{n} classes, method {args.method}: mean similarity of adjacent '
          f'classes (cyclic) {before:.4f} in the dataset order, {after:.4f} '
          'in the derived order')
    families = co.read_class_families(
        cfg[f'{args.split}_dataloader'].dataset.get('data_root', ''))
    if families is not None and len(families) == n:
        extra['family_adjacency'] = fam = dict(
            dataset_order=co.group_adjacency(range(n), families),
            class_order=co.group_adjacency(order, families))
        print('adjacent pairs in the same family (class_families.txt): '
              f"{fam['dataset_order']:.3f} in the dataset order, "
              f"{fam['class_order']:.3f} in the derived order")
    if args.model == 'teacher' and not any(
            k.startswith(TEACHER_PREFIX) for k in state_dict_of(checkpoint)):
        # The teacher's own file: a run with another teacher refuses the
        # order as stale (figkd_mmrazor.class_axis).
        extra.update(teacher_sha256=file_sha256(args.checkpoint))
    co.write_class_order(args.out, order, args.method, args.checkpoint,
                         **extra)
    print(f'wrote {args.out}: class_order={order}')


if __name__ == '__main__':
    main()
