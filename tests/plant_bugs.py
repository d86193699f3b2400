"""Plant each bug of docs/testing.md in a copy; show the suite catches it.

Not part of the CI run (it runs the relevant tests once per bug, minutes in
all). Run it before a release, or after changing a test that guards a bug:

    .venv/bin/python tests/plant_bugs.py            # every bug
    .venv/bin/python tests/plant_bugs.py --list     # the catalogue
    .venv/bin/python tests/plant_bugs.py recorder-detaches-logits \
        loss-reduction-none-permuted

The tracked and untracked-not-ignored files are copied into a temporary
folder (one per job). First the tests of every selection run there
unplanted, in one pytest run, and must pass, so a later failure is the bug's
doing. Then for each bug one exact text replacement is made (the replaced
text must occur exactly once, so a stale entry fails loudly instead of
planting nothing), the tests named for that bug run with ``python -m
pytest`` (the copy first on PYTHONPATH, for subprocesses too), and the file
is restored. A bug is *caught* when those tests fail. Exit status 0 only
when every planted bug is caught. ``--jobs N`` tests N bugs at once (N
copies); docs/testing.md lists the bugs with the test that catches each and
the last result.
"""
import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (file, text to replace, replacement, tests that must fail)
# Keep in step with docs/testing.md: each row there names its bug here.
BUGS = {}


def bug(name, path, old, new, *tests):
    BUGS[name] = (path, old, new, tests)


# ------------------------------------------------------------ transform
W, TW = 'figkd_mmrazor/wavelets.py', 'tests/test_wavelets.py::'
bug('wavelet-analysis-filter-not-flipped', W,
    'analysis = torch.tensor([dec_lo[::-1], dec_hi[::-1]]',
    'analysis = torch.tensor([dec_lo, dec_hi]',
    TW + 'test_matches_pywt_all_modes_levels_lengths[db2]')
bug('wavelet-symmetric-extension-off-by-one', W,
    'return [(p if p < n else period - 1 - p, 1.0)]',
    'return [(p if p < n else max(period - 2 - p, 0), 1.0)]',
    TW + 'test_matches_pywt_all_modes_levels_lengths[db2]')
bug('wavelet-periodization-odd-length-not-padded', W,
    'return [(min(pos % (n + n % 2), n - 1), 1.0)]',
    'return [(pos % n, 1.0)]',
    TW + 'test_matches_pywt_all_modes_levels_lengths[db2]')
bug('waverec-odd-length-trims-the-wrong-end', W,
    'approx = approx[..., :-1]  # PyWavelets',
    'approx = approx[..., 1:]  # PyWavelets',
    TW + 'test_matches_pywt_all_modes_levels_lengths[db2]')
bug('band-weights-finest-first', W,
    '    weights = [low_weight, *high_weights]\n',
    '    weights = [low_weight, *high_weights[::-1]]\n',
    TW + 'test_band_weighting_and_its_operator_match_pywt')

# ----------------------------------------------------------------- loss
L, TL = 'figkd_mmrazor/losses/figkd_loss.py', 'tests/test_figkd_loss.py::'
bug('loss-standardize-forgets-the-scale', L,
    '            logits = (logits - mean) / (std + STANDARDIZE_EPS)',
    '            logits = logits - mean',
    TL + 'test_standardize_with_all_bands_is_kd_on_z_scored_logits[1.0]')
GL, TG = ('figkd_mmrazor/losses/graph_figkd_loss.py',
          'tests/test_graph_figkd_loss.py::')
bug('graph-low-band-takes-the-roughest-frequencies', GL,
    '    band[:low_bands] = low_weight',
    '    band[n - low_bands:] = low_weight',
    TG + 'test_operator_matches_scipy_and_removes_the_smooth_part[5]')
bug('graph-negative-similarities-kept', GL,
    '    weights = np.where(off, weights - min(weights[off].min(), 0.0), '
    '0.0)',
    '    weights = np.where(off, weights, 0.0)',
    TG + 'test_operator_matches_scipy_and_removes_the_smooth_part[5]')
bug('spectral-order-from-the-constant-eigenvector',
    'figkd_mmrazor/analysis/class_order.py',
    '    fiedler = np.round(vectors[:, 1], 12)',
    '    fiedler = np.round(vectors[:, 0], 12)',
    'tests/test_analysis.py::'
    'test_spectral_order_recovers_a_shuffled_robinson_order[0]')
CA, TCA = 'figkd_mmrazor/class_axis.py', 'tests/test_class_axis.py::'
bug('class-axis-teacher-change-not-checked', CA,
    "    if found != spec['teacher_sha256']:",
    '    if False:',
    TCA + 'test_teacher_changed_after_the_config_was_resolved_is_refused')
bug('class-axis-order-file-provenance-ignored', CA,
    '    if sha and teacher and teacher_sha256(teacher) != sha:',
    '    if False:',
    TCA + 'test_order_file_of_another_teacher_is_stale')
bug('class-axis-checkpoint-order-not-compared', L,
    "            refuse_other_axis('class_order'))",
    "            lambda *_: None)",
    TCA + 'test_a_state_dict_with_another_axis_is_refused',
    TCA + 'test_resume_keeps_the_order_and_a_changed_teacher_is_refused')
bug('class-axis-order-not-in-checkpoints', L,
    "            None if order is None else torch.tensor(order, "
    "dtype=torch.long))",
    "            None if order is None else torch.tensor(order, "
    "dtype=torch.long),\n            persistent=False)",
    TCA + 'test_teacher_order_and_graph_are_the_teachers',
    TCA + 'test_two_processes_train_with_the_teacher_order')
bug('class-axis-similarity-keeps-the-mean-row', CA,
    '                                    center=True).round(12)',
    '                                    center=False).round(12)',
    TCA + 'test_teacher_order_and_graph_are_the_teachers')
bug('loss-operator-transposed', L,
    'return logits @ operator', 'return logits @ operator.T',
    TL + 'test_weighted_bands_match_pywt')
bug('loss-operator-one-weight-off', L,
    'self.high_weights, self.target).to(device, torch.float32)',
    'self.high_weights[:-1] + [2 * self.high_weights[-1]], '
    'self.target).to(device, torch.float32)',
    TL + 'test_weighted_bands_match_pywt')
# Forward unchanged, backward through the transposed operator: the
# nearest relative of the old Haar fast path's wrong backward.
bug('loss-operator-backward-transposed', L,
    'return logits @ operator',
    'return logits @ operator + ((logits - logits.detach()) @ '
    '(operator.T - operator) if operator.shape[0] == operator.shape[1] '
    'else 0)',
    TL + 'test_gradient_matches_autograd_through_the_reference')
bug('loss-student-gradient-stopped', L,
    'self.bands_signal(preds_S), self.bands_signal(preds_T))',
    'self.bands_signal(preds_S.detach()), self.bands_signal(preds_T))',
    TL + 'test_gradient_matches_autograd_through_the_reference')
# Sums to the same loss; only reduction='none' shows it (the old
# any_order=True bug).
bug('loss-reduction-none-permuted', L,
    '        return loss\n\n    def bands_signal',
    '        return loss.flip(-1) if loss.dim() else loss\n\n'
    '    def bands_signal',
    TL + 'test_reduction_none_values_match_the_reference')
bug('loss-student-non-finite-unchecked', L,
    "    bad = [side for side, logits in (('student', preds_S),\n"
    "                                     ('teacher', preds_T))",
    "    bad = [side for side, logits in (('teacher', preds_T), )",
    TL + 'test_non_finite_logits_name_the_side')
bug('loss-teacher-not-detached', L,
    '        if self.teacher_detach:\n',
    '        if False:\n',
    TL + 'test_teacher_detach')
bug('loss-kl-without-tau-squared', L,
    'return self.tau**2 * F.kl_div(', 'return self.tau * F.kl_div(',
    TL + 'test_kd_identity_holds_for_every_reduction')
bug('loss-mse-batchmean-divides-by-elements', L,
    "reduction='sum') / signal_S.shape[0]",
    "reduction='sum') / signal_S.numel()",
    TL + 'test_mse_distance')
bug('loss-class-order-ignored', L,
    'logits = logits.index_select(1, self.class_order)',
    'logits = logits',
    TL + 'test_class_order_permutes_before_transform')
bug('loss-half-precision-kept', L,
    '        logits = logits.float()\n        if self.standardize:',
    '        if self.standardize:',
    TL + 'test_half_precision_logits_compute_in_float32')

# From helper "loss"'s own plantings.
bug('loss-high-weights-reversed-at-build', L,
    '                             for i, w in enumerate(high_weights)]',
    '                             for i, w in enumerate(high_weights)][::-1]',
    TL + 'test_weighted_bands_match_pywt')
bug('loss-operator-gradient-is-the-identity', L,
    'return logits @ operator',
    'return (logits @ operator).detach() + logits - logits.detach()',
    TL + 'test_gradient_matches_autograd_through_the_reference')
bug('loss-operator-cached-for-any-class-count', L,
    '        key = (num_classes, device)', '        key = device',
    TL + 'test_operator_is_built_once_per_class_count')
bug('loss-operator-rebuilt-every-call', L,
    '        self._operators[key] = operator\n', '',
    TL + 'test_operator_is_built_once_per_class_count')
bug('loss-product-under-autocast', L,
    '        with torch.autocast(preds_S.device.type, enabled=False):',
    '        if True:',
    TL + 'test_half_precision_logits_compute_in_float32')
bug('wavelet-transform-via-the-cpu', W,
    '    return F.conv1d(padded.unsqueeze(1), analysis, stride=2)',
    '    return F.conv1d(padded.unsqueeze(1).cpu(), analysis.cpu(), stride=2)',
    TW + 'test_device_and_dtype_preserving_on_the_meta_device')
bug('wavelet-filters-stay-float64', W,
    '    return (analysis.unsqueeze(1).to(device=device, dtype=dtype),',
    '    return (analysis.unsqueeze(1).to(device=device),',
    TW + 'test_matches_pywt_all_modes_levels_lengths[db2]')

# ------------------------------------------------------------- recorder
R = 'figkd_mmrazor/recorders/logits_recorder.py'
bug('recorder-detaches-logits', R,
    'return logits.float()', 'return logits.detach().float()',
    'tests/test_logits_recorder.py::'
    'test_record_keeps_the_graph_so_the_loss_reaches_the_model')
bug('recorder-detaches-logits-seen-in-a-training-step', R,
    'return logits.float()', 'return logits.detach().float()',
    'tests/test_distill_gradient.py::test_distillation_loss_trains_the_'
    'student_and_only_the_student[configs/demo/figkd.py]')
bug('recorder-default-source-not-the-head', R,
    "def __init__(self, source: str = 'head')",
    "def __init__(self, source: str = 'neck')",
    'tests/test_logits_recorder.py::'
    'test_records_the_head_output_of_mmpretrain_classifiers')

# ----------------------------------------- checkpoints, preflight, hooks
T = 'tests/test_checkpoints.py::'
C = 'figkd_mmrazor/checkpoints.py'
P = 'figkd_mmrazor/preflight.py'
bug('checkpoint-unpickles-code', C,
    "            return torch.load(source, map_location=map_location,\n"
    "                              weights_only=True)",
    "            return torch.load(source, map_location=map_location,\n"
    "                              weights_only=False)",
    T + 'test_local_checkpoint_with_pickled_callable_is_refused')
bug('url-checkpoint-unpickles-code', C,
    "    return _torch_load(cached, map_location, "
    "f'{url} (cached as {cached})')",
    "    return torch.load(cached, map_location=map_location, "
    "weights_only=False)",
    T + 'test_url_checkpoint_with_pickled_callable_is_refused')
bug('fit-compares-shapes-only', C,
    "    if not (missing or unexpected or mis_shaped):\n        return",
    "    if not mis_shaped:\n        return",
    T + 'test_teacher_checkpoint_is_matched_key_by_key')
bug('fit-loads-a-non-tensor-weight', C,
    "            if not isinstance(value, torch.Tensor):",
    "            if False:",
    T + 'test_teacher_checkpoint_is_matched_key_by_key')
bug('fit-leaves-mis-shaped-weights-to-torch', C,
    "            elif value.shape != tensor.shape:",
    "            elif False:",
    T + 'test_teacher_checkpoint_is_matched_key_by_key')
bug('fit-without-mmengine-revise-keys', C,
    "MMENGINE_REVISE_KEYS = ((r'^module\\.', ''), )",
    "MMENGINE_REVISE_KEYS = ()",
    T + 'test_teacher_checkpoint_is_matched_key_by_key')
bug('classifier-is-first-head-weight', C,
    "    return found[-1]", "    return found[0]",
    T + 'test_split_and_classifier_of_a_distillation_state')
bug('student-checkpoint-keeps-teacher-keys', C,
    "    return dict(meta=meta, state_dict=student)",
    "    return dict(meta=meta, state_dict={**state_dict_of(checkpoint), "
    "**student})",
    T + 'test_student_checkpoint_is_exactly_the_student')
bug('teacher-init-cfg-unchecked', P,
    "    init = model['teacher'].get('init_cfg')", "    init = None",
    T + 'test_distillation_teacher_taken_by_prefix_is_checked_and_loads')
bug('url-teacher-never-checked', P,
    "    if '://' in path and int(os.environ.get('LOCAL_RANK', 0)) != 0:",
    "    if '://' in path:",
    T + 'test_uncached_url_teacher_is_fetched_once_and_checked')
bug('test-checkpoint-unchecked', P,
    "    check_checkpoint_to_test(cfg)\n", "    pass\n",
    T + 'test_checkpoint_to_test_must_fit_the_config')
bug('converter-writes-the-whole-checkpoint', 'tools/convert_to_student.py',
    'atomic_save(student, args.out)', 'atomic_save(checkpoint, args.out)',
    T + 'test_converter_equals_an_independent_construction')
bug('converter-overwrites-without-force', 'tools/convert_to_student.py',
    'if existing and not args.force:', 'if existing and False:',
    T + 'test_converter_equals_an_independent_construction')

# ---------------------------------------------------- training tool, runs
TR, RU = 'tools/train.py', 'figkd_mmrazor/runs.py'
bug('train-ignores-resume', TR,
    "    if args.resume == 'auto':\n        cfg.resume = True",
    "    if args.resume == 'auto':\n        cfg.resume = False",
    'tests/test_reliability.py::'
    'test_killed_and_resumed_run_equals_uninterrupted_run')
bug('train-resume-path-ignored', TR,
    '        cfg.load_from = args.resume\n', '        cfg.load_from = None\n',
    'tests/test_runs.py::'
    'test_extending_max_epochs_continues_the_configured_schedule')
# The processes form a group (the sampler splits the data) but the model
# is not wrapped in DDP: no gradient is shared, each trains its own copy.
bug('train-launcher-not-passed-to-the-runner', TR,
    '    cfg.launcher = args.launcher\n', "    cfg.launcher = 'none'\n",
    'tests/test_reliability.py::'
    'test_two_processes_with_batch_b_equal_one_with_batch_2b')
bug('train-skips-start-up-checks', TR,
    '    check_before_training(cfg)\n', '',
    'tests/test_datasets.py::'
    'test_train_refuses_a_bad_label_before_the_work_dir_exists')
bug('train-no-validate-ignored', TR,
    '    if args.no_validate:\n', '    if False:\n',
    'tests/test_training.py::test_auto_scale_lr_and_no_validate')
bug('runs-rerun-overwrites-the-work-dir', RU,
    '        check_fresh_start(work_dir)\n', '        pass\n',
    'tests/test_runs.py::'
    'test_rerun_without_resume_refuses_and_start_over_keeps_the_old_run')
bug('runs-resume-config-unchecked', RU,
    'for key, old, new in check_resume(cfg, path, allow_changes):',
    'for key, old, new in []:',
    'tests/test_runs.py::'
    'test_resuming_a_figkd_run_with_the_kd_config_is_refused')
bug('runs-work-dir-not-locked', RU,
    '        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)\n',
    '        pass\n',
    'tests/test_runs.py::test_a_work_dir_is_held_by_one_run_until_it_ends')
bug('runs-save-not-atomic', RU,
    '    atomic_write(path, lambda f: torch.save(obj, f))',
    '    torch.save(obj, path)',
    'tests/test_runs.py::'
    'test_atomic_save_keeps_the_old_file_when_a_save_fails')
bug('runs-no-non-finite-loss-guard', RU,
    "        hooks.append(dict(type='NonFiniteLossHook'))", '        pass',
    'tests/test_runs.py::'
    'test_diverged_run_stops_at_the_step_and_saves_nothing')
bug('runs-checkpoint-hook-not-atomic', RU,
    "        checkpoint['type'] = 'AtomicCheckpointHook'", '        pass',
    'tests/test_reliability.py::'
    'test_kill_while_a_checkpoint_is_written_keeps_the_previous_one')
AH = 'figkd_mmrazor/hooks/atomic_checkpoint_hook.py'
KILL = ('tests/test_reliability.py::'
        'test_kill_while_a_checkpoint_is_written_keeps_the_previous_one')
bug('checkpoint-hook-deletes-before-it-writes', AH,
    '        super().__init__(*args, max_keep_ckpts=-1, **kwargs)',
    '        super().__init__(*args, max_keep_ckpts=max_keep_ckpts, **kwargs)',
    KILL)
bug('checkpoint-backend-writes-in-place', AH,
    '        super().put(obj, partial)\n'
    '        replace_durably(partial, str(filepath))',
    '        super().put(obj, str(filepath))', KILL)
bug('checkpoint-hook-keeps-every-checkpoint', AH,
    '        for step in steps[:-self.keep]:',
    '        for step in steps[:0]:', KILL)

# ------------------------------------------------------------- datasets
D, TD = 'figkd_mmrazor/datasets.py', 'tests/test_datasets.py::'
bug('dataset-label-equal-to-num-classes-accepted', D,
    'and label >= top):', 'and label > top):',
    TD + 'test_cub_test_label_above_head_is_not_a_silent_miss')
bug('dataset-only-training-labels-checked', D,
    '    for key in loaders:\n',
    "    for key in [k for k in loaders if k == 'train_dataloader']:\n",
    TD + 'test_cub_test_label_above_head_is_not_a_silent_miss')
bug('dataset-class-id-zero-accepted', D,
    'if label is not None and (label < 0 or top',
    'if label is not None and (label < -1 or top',
    TD + 'test_cub_class_id_zero_is_refused_without_a_head')
bug('dataset-teacher-head-ignored', D,
    "    for key in ('', 'architecture', 'teacher'):",
    "    for key in ('', 'architecture'):",
    TD + 'test_distillation_bounds_labels_by_the_smaller_head')
bug('dataset-cub-repeated-id-kept', D,
    '            if image_id in out:\n', '            if False:\n',
    TD + 'test_cub_duplicate_image_id')
bug('dataset-image-twice-in-a-split', D,
    '        if key in seen:\n', '        if False:\n',
    TD + 'test_cub_same_image_twice_in_a_split')
bug('dataset-train-test-leak-unseen', D,
    '            image = next((k for k in seen if k in trained), None)',
    '            image = None',
    TD + 'test_cub_test_id_pointing_at_a_training_image_is_a_leak')
bug('dataset-empty-split-passes', D,
    '    if not samples:\n        raise c.empty(why_empty)',
    '    if False:\n        raise c.empty(why_empty)',
    TD + 'test_cub_empty_split')
bug('dataset-cub-split-flag-any-value', D,
    "    if text not in ('0', '1'):", '    if False:',
    TD + 'test_cub_split_values_and_id_mismatch')
bug('dataset-flowers-image-zero-wraps', D,
    '            if not 1 <= image <= len(labels):',
    '            if not 0 <= image <= len(labels):',
    TD + 'test_flowers102_content')

# ------------------------------------- teacher cache, keyed augmentation
RS, RF, RD = ('figkd_mmrazor/replay/store.py',
              'figkd_mmrazor/replay/fingerprint.py',
              'figkd_mmrazor/replay/distiller.py')
TRp = 'tests/test_replay.py::'
bug('cache-rows-put-back-in-sorted-order', RS,
    '            out[name][index] = rows',
    '            out[name][np.sort(index)] = rows',
    TRp + 'test_replay_skips_the_teacher_and_feeds_the_recorded_logits')
bug('cache-fingerprint-ignores-the-teacher-checkpoint', RF,
    "        teacher_checkpoint_sha256=teacher_sha256(model['teacher_ckpt']),",
    '        teacher_checkpoint_sha256=None,',
    TRp + 'test_changed_teacher_checkpoint_is_refused')
bug('cache-fingerprint-ignores-the-train-pipeline', RF,
    "        train_pipeline=dataset.get('pipeline'),",
    '        train_pipeline=None,',
    TRp + 'test_changed_pipeline_is_refused_naming_the_setting')
bug('cache-float16-recording-run-trains-on-unrounded-logits', RD,
    "rounded[name] = logits if self.dtype == 'float32' else",
    'rounded[name] = logits if True else',
    TRp + 'test_float16_cache_rounds_the_teacher_and_stays_close')
bug('cache-checksum-skipped', RS,
    "        if hashlib.sha256(data).hexdigest() != entry['sha256']:",
    '        if False:',
    TRp + 'test_a_damaged_shard_is_refused_before_replay_naming_it'
    '[bit-flipped]',
    TRp + 'test_a_cache_replaced_while_a_run_replays_it_stops_the_run')
bug('cache-shard-header-not-checked', RS,
    '    if held != (epoch, rank, world):',
    '    if False:',
    TRp + 'test_a_damaged_shard_is_refused_before_replay_naming_it'
    '[pointed-with-checksum]')
bug('cache-not-verified-at-start', RD,
    '            store.verify(self.dir, manifest, range(first, needed))\n',
    '',
    TRp + 'test_train_refuses_a_damaged_cache_before_the_first_step')
bug('cache-replay-rereads-the-manifest', RD,
    '            self.loaded = (epoch, store.load_epoch(self.dir, '
    'self.manifest,',
    '            self.loaded = (epoch, store.load_epoch(self.dir, '
    'store.read_manifest(self.dir),',
    TRp + 'test_a_cache_replaced_while_a_run_replays_it_stops_the_run')
bug('cache-stale-data-fingerprint', RF,
    "                value = file_sha256(value, save=False)",
    "                value = osp.basename(value)",
    TRp + 'test_images_regenerated_in_place_are_stale')
bug('cache-fingerprint-compares-the-head-loss', RF,
    "NOT_HEAD_ANSWERS = ('loss', 'topk', 'cal_acc')",
    "NOT_HEAD_ANSWERS = ('topk', 'cal_acc')",
    TRp + 'test_differences_that_cannot_change_a_logit_replay')
bug('cache-refuses-mmrazor-module-outputs', RF,
    "LOGIT_RECORDERS = ('Logits', 'LogitsRecorder', 'ModuleOutputs',",
    "LOGIT_RECORDERS = ('Logits', 'LogitsRecorder', 'ModuleOutputsX',",
    TRp + 'test_mmrazor_module_outputs_on_the_head_replays_like_logits')
K, TK = ('figkd_mmrazor/replay/keyed_views.py',
         'tests/test_keyed_augmentation.py::')
bug('keyed-view-ignores-the-epoch', K,
    '[int(data_seed), int(epoch), int(index)]',
    '[int(data_seed), 0, int(index)]',
    TK + 'test_view_depends_on_key_only_and_leaves_global_generators_alone')
bug('keyed-numpy-generator-not-restored', K,
    '            np.random.set_state(saved[1])\n', '            pass\n',
    TK + 'test_view_depends_on_key_only_and_leaves_global_generators_alone')
bug('keyed-sampler-keeps-epoch-0', K,
    '        self.epoch = int(epoch)\n', '        self.epoch = 0\n',
    TK + 'test_views_do_not_depend_on_workers_or_sampler_order')

# ------------------------------------------- comparison and the demo study
CM = 'figkd_mmrazor/analysis/comparison.py'
TA = 'tests/test_analysis.py::'
bug('comparison-mixes-teachers', CM,
    '        if len(groups) > 1:',
    '        if False:',
    TA + 'test_a_comparison_never_pairs_runs_of_two_teachers')
bug('comparison-forgets-an-earlier-runs-teacher', CM,
    '                k: v for k, v in stored[run.work_dir].items()',
    '                k: v for k, v in {}.items()',
    TA + 'test_a_comparison_never_pairs_runs_of_two_teachers')
bug('comparison-overwrites-the-earlier-report', CM,
    '    if earlier:\n', '    if False:\n',
    TA + 'test_a_new_report_sets_the_earlier_one_aside')
bug('comparison-plan-builds-nothing', CM,
    '    check_recipes_build(runs)\n', '',
    TA + 'test_a_config_error_stops_the_plan_before_anything_trains')
bug('comparison-unreplayable-recipe-fails-the-plan', CM,
    '    except NotReplayableError as err:',
    '    except ZeroDivisionError as err:',
    TA + 'test_a_recipe_whose_teacher_cannot_be_replayed_trains_it_live')
bug('comparison-table-shows-the-max-as-the-mean', CM,
    "f\"{_num(row['mean'])} +- {_num(row['std'])} | \"",
    "f\"{_num(row['max'])} +- {_num(row['std'])} | \"",
    'tests/test_analysis.py::test_summary_report_values_and_files')
bug('comparison-paired-against-the-wrong-recipe', CM,
    '                top1[name], top1[reference], confidence)',
    '                top1[name], top1[recipes[-1]], confidence)',
    'tests/test_analysis.py::test_summary_report_values_and_files')
bug('demo-study-table-not-its-runs', CM,
    '        if top1[name]:\n            row.update(summarize_values(',
    '        if top1[name]:\n            top1[name].pop(min(top1[name]))\n'
    '        if top1[name]:\n            row.update(summarize_values(',
    'tests/test_demo_study.py::test_study_table_is_its_runs_results')
bug('study-control-one-order-for-every-seed', 'tools/demo_study.py',
    '    random.Random(seed).shuffle(order)',
    '    random.Random(0).shuffle(order)',
    'tests/test_demo_study.py::'
    'test_control_is_figkd_with_one_shuffled_order_per_seed')

bug('analysis-train-views-from-the-global-generators',
    'figkd_mmrazor/analysis/classifier_logits.py',
    "    if split == 'train':\n", "    if False:\n",
    'tests/test_analysis.py::'
    'test_train_split_views_repeat_whatever_the_workers')

# -------------------------------------------------------------- configs
TC = 'tests/test_configs.py::'
bug('config-one-recipe-changes-the-schedule', 'configs/figkd/cub_r50_r18.py',
    'model = dict(distiller={{_base_.distiller}})',
    'model = dict(distiller={{_base_.distiller}})\n'
    'train_cfg = dict(max_epochs=50)',
    TC + 'test_algorithms_of_one_experiment_differ_only_in_the_loss'
    '[cub_r50_r18]')
bug('config-distillation-compares-teacher-with-itself',
    'configs/_base_/distill/figkd.py',
    "preds_S=dict(from_student=True, recorder='logits')",
    "preds_S=dict(from_student=False, recorder='logits')",
    TC + 'test_config_builds_offline[configs/demo/figkd.py]')
bug('config-student-head-class-count-differs',
    'configs/_base_/experiments/cub_r50_r18.py',
    'architecture=dict(head=dict(num_classes=200))',
    'architecture=dict(head=dict(num_classes=201))',
    TC + 'test_config_parses_with_consistent_classes_and_data'
    '[configs/figkd/cub_r50_r18.py]')


def copy_repository(dest: Path) -> None:
    """The tracked and untracked-not-ignored files (no venv, no work dirs)."""
    files = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(copy: Path, tests,
              stop_early=True) -> subprocess.CompletedProcess:
    # PYTHONPATH puts the copy ahead of the editable install of the
    # repository, in pytest and in every process a test starts (tools/*.py,
    # torchrun), so the planted package is the one used. No bytecode is
    # written: a restored file must never meet a stale .pyc.
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE='1')
    return subprocess.run(
        [sys.executable, '-m', 'pytest', *(['-x'] if stop_early else []),
         '-q', '-rfE', '-p', 'no:cacheprovider', *tests],
        cwd=copy, env=env, capture_output=True, text=True)


def plant(copy: Path, path, old, new) -> str:
    """Make the one replacement; return the file's original text."""
    target = copy / path
    text = target.read_text()
    count = text.count(old)
    if count != 1:
        raise ValueError(f'{path}: the text to replace occurs {count} '
                         f'times (must be once): {old!r}. Update '
                         'tests/plant_bugs.py.')
    target.write_text(text.replace(old, new))
    return text


class Worker:
    """One copy of the repository; bugs are planted in it one at a time and
    the file is restored after each, so the copy is made once per job."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='plant_')
        self.copy = Path(self.tmp.name)
        copy_repository(self.copy)

    def baseline(self, tests) -> subprocess.CompletedProcess:
        return run_tests(self.copy, tests, stop_early=False)

    def planted(self, name) -> subprocess.CompletedProcess:
        path, old, new, tests = BUGS[name]
        original = plant(self.copy, path, old, new)
        try:
            return run_tests(self.copy, tests)
        finally:
            (self.copy / path).write_text(original)


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else result.stderr.strip()[-200:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('names', nargs='*',
                        help='bugs to plant (default: all)')
    parser.add_argument('--list', action='store_true', help='list the bugs')
    parser.add_argument('--jobs', type=int, default=1,
                        help='bugs tested at once, each in its own copy '
                        '(default: 1)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip running each test selection on the '
                        'unplanted copy first')
    args = parser.parse_args()
    if args.list:
        for name, (path, _, _, tests) in BUGS.items():
            print(f'{name:40} {path:40} {" ".join(tests)}')
        return 0
    unknown = sorted(set(args.names) - set(BUGS))
    if unknown:
        raise SystemExit(f'Unknown bugs {unknown}; see --list.')
    names = args.names or list(BUGS)
    # A stale entry fails before any test runs.
    for name in names:
        path, old, _, _ = BUGS[name]
        count = (ROOT / path).read_text().count(old)
        if count != 1:
            raise SystemExit(f'{name}: the text to replace occurs {count} '
                             f'times in {path} (must be once): {old!r}. '
                             'Update tests/plant_bugs.py.')
    start_all = time.time()
    workers = queue.Queue()
    for _ in range(max(1, args.jobs)):
        workers.put(Worker())

    def with_worker(fn, *args):
        worker = workers.get()
        try:
            return fn(worker, *args)
        finally:
            workers.put(worker)

    # The tests of every selection run once, together, on the unplanted
    # copy (one pytest start-up): a later failure is then the bug's doing.
    selections = {BUGS[name][3] for name in names}
    broken = set()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        if not args.no_baseline:
            started = time.time()
            every = sorted({test for tests in selections for test in tests})
            clean = with_worker(Worker.baseline, every)
            failed = [line.split()[1] for line in clean.stdout.splitlines()
                      if line.startswith(('FAILED ', 'ERROR '))]
            if clean.returncode != 0:
                broken = {tests for tests in selections if not failed or any(
                    f.startswith(test) for f in failed for test in tests)}
                print(f'BASELINE FAILS (fix these tests first): {failed}\n'
                      f'{clean.stdout[-2000:]}')
            print(f'baseline (unplanted, {len(every)} node ids in one run): '
                  f'{len(selections) - len(broken)} of {len(selections)} '
                  f'selections pass ({time.time() - started:.0f} s)',
                  flush=True)

        def one(name):
            started = time.time()
            result = with_worker(Worker.planted, name)
            return name, result, time.time() - started

        todo = [n for n in names if BUGS[n][3] not in broken]
        missed = [n for n in names if BUGS[n][3] in broken]
        for name, result, seconds in pool.map(one, todo):
            caught = result.returncode != 0
            if not caught:
                missed.append(name)
            print(f'{"caught" if caught else "MISSED":7} {name:40} '
                  f'{seconds:5.0f} s  {" ".join(BUGS[name][3])}  '
                  f'[{_last_line(result)}]', flush=True)
    print(f'{len(names) - len(missed)} caught of {len(names)} in '
          f'{time.time() - start_all:.0f} s'
          + (f'; missed or unchecked: {missed}' if missed else ''))
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
