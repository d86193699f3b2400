"""Hooks that let a test see inside a training process, and a runner that
puts them on the path of tools/train.py and tools/test.py.

A config gets them through ``with_probes`` (``custom_imports`` plus
``custom_hooks``); nothing in the package knows about them.
"""
import json
import os
import signal
import subprocess
import sys

from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from tiny import ROOT, free_port

TESTS = os.path.dirname(os.path.abspath(__file__))


@HOOKS.register_module()
class RecordWorldSize(Hook):
    """Each process writes ``world_<train|test>_rank<R>.json``: the process
    group it is in, as torch.distributed and the Runner see it."""

    def _record(self, runner, mode: str) -> None:
        import torch.distributed as dist
        rank = dist.get_rank() if dist.is_initialized() else 0
        path = os.path.join(runner.work_dir, f'world_{mode}_rank{rank}.json')
        with open(path, 'w') as f:
            json.dump(dict(
                rank=rank, pid=os.getpid(),
                world_size=dist.get_world_size() if dist.is_initialized()
                else 1, runner_world_size=runner.world_size), f)

    def before_train(self, runner) -> None:
        self._record(runner, 'train')

    def before_test(self, runner) -> None:
        self._record(runner, 'test')


@HOOKS.register_module()
class KillDuringCheckpointWrite(Hook):
    """SIGKILL this process halfway through writing the checkpoint of
    ``epoch``: half of its bytes are on disk, as after a real kill."""

    def __init__(self, epoch: int = 2):
        self.epoch = epoch

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        if checkpoint['meta']['epoch'] != self.epoch:
            return

        def put(backend, obj, filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        LocalBackend.put = put


def world_seen(work_dir, mode='train'):
    """{rank: world size} as each process of a run reported it."""
    seen = {}
    for path in work_dir.glob(f'world_{mode}_rank*.json'):
        info = json.loads(path.read_text())
        assert info['world_size'] == info['runner_world_size'], info
        seen[info['rank']] = info['world_size']
    return seen


def with_probes(cfg_path, *hooks, out_path=None):
    """Add probe hooks (dicts) to a config file; returns the new path."""
    cfg = Config.fromfile(cfg_path)
    imports = dict(cfg.get('custom_imports') or dict(imports=[]))
    imports['imports'] = list(imports['imports']) + ['run_probes']
    cfg.custom_imports = imports
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + list(hooks)
    out_path = out_path or cfg_path
    cfg.dump(str(out_path))
    return out_path


def probe_env(**extra):
    """The environment tools run in, with the probes importable."""
    return dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{TESTS}',
                OMP_NUM_THREADS='1',
                PATH=os.path.dirname(sys.executable) + os.pathsep +
                os.environ.get('PATH', ''), **extra)


def run(*args, nproc=None, check=True, timeout=600, env=None):
    """Run a tool (``.py`` with this Python, else as a program)."""
    args = [str(arg) for arg in args]
    if nproc:
        cmd = [sys.executable, '-m', 'torch.distributed.run',
               f'--nproc_per_node={nproc}', f'--master_port={free_port()}',
               *args]
    elif args[0].endswith('.py'):
        cmd = [sys.executable, *args]
    else:
        cmd = args
    proc = subprocess.run(cmd, cwd=ROOT, env=env or probe_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed:\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')
    return proc
