"""mmengine's CheckpointHook, made safe against kills during a write."""
import re

from mmengine.dist import is_main_process
from mmengine.fileio import get_file_backend, register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..runs import partial_name, remove_partial_files, replace_durably

ATOMIC_BACKEND = 'figkd_atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` never leaves a
    half-written file under the final name: the bytes go to
    ``.NAME.partial``, are flushed and renamed into place."""

    def put(self, obj: bytes, filepath) -> None:
        partial = partial_name(str(filepath))
        super().put(obj, partial)
        replace_durably(partial, str(filepath))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints are never half-written, and
    whose oldest checkpoint goes only once the newest is complete.

    mmengine 0.10 deletes the oldest checkpoint (``max_keep_ckpts``) before
    it writes the new one, into its final name: a kill during that write
    leaves no usable checkpoint. Here mmengine keeps every checkpoint and
    writes through :class:`AtomicLocalBackend` (local files only; other
    backends write as mmengine does), and after each save the hook deletes
    all but the newest ``max_keep_ckpts`` files named by ``filename_tmpl``,
    counted from the folder, so a resumed run prunes the same way.
    ``last_checkpoint`` is written by mmengine after the checkpoint is
    complete. Same arguments as ``CheckpointHook``.
    """

    def __init__(self, *args, max_keep_ckpts: int = -1, **kwargs):
        super().__init__(*args, max_keep_ckpts=-1, **kwargs)
        self.keep = max_keep_ckpts

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.backend_args is None and self.file_client_args is None and \
                isinstance(self.file_backend, LocalBackend):
            self.backend_args = dict(backend=ATOMIC_BACKEND)
            self.file_backend = get_file_backend(
                self.out_dir, backend_args=self.backend_args)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            remove_partial_files(self.out_dir)

    def after_train_epoch(self, runner) -> None:
        super().after_train_epoch(runner)
        self.remove_outdated()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        self.remove_outdated()

    def remove_outdated(self) -> None:
        """Delete all but the newest ``keep`` checkpoints of this hook."""
        if self.keep <= 0 or not is_main_process():
            return
        pattern = re.compile(
            re.escape(self.filename_tmpl).replace(r'\{\}', r'(\d+)') + '$')
        steps = sorted(
            int(found.group(1)) for found in map(
                pattern.match,
                self.file_backend.list_dir_or_file(self.out_dir,
                                                   list_dir=False))
            if found)
        for step in steps[:-self.keep]:
            self.file_backend.remove(self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(step)))
