"""Repeat the reliability test's 2-process run under CPU load.

Runs ``torchrun --nproc_per_node=2 tools/train.py`` on the setting of
test_reliability.py's 2-process test (``batch_configs``: KD, 1 epoch,
batch 2 per process, tiny generated CUB) N times, while ``--load`` busy
processes run beside it, and reports how many runs exited 0
with both processes reporting a world size of 2. Slow (about a minute a run
on 2 busy cores), so not part of the suite:

    nice -n 5 .venv/bin/python tests/stress_two_process.py --runs 20
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_probes import probe_env, world_seen
from test_reliability import batch_configs
from tiny import ROOT, free_port, tiny_cub

BUSY = 'while True: pass'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--load', type=int, default=os.cpu_count(),
                        help='busy processes beside the runs (default: one '
                        'per CPU)')
    parser.add_argument('--out', help='write the results as JSON here')
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix='stress_two_process_'))
    _, two = batch_configs(tiny_cub(tmp / 'cub'), tmp)
    busy = [subprocess.Popen([sys.executable, '-c', BUSY])
            for _ in range(args.load)]
    results = []
    try:
        for index in range(args.runs):
            work = tmp / f'run_{index}'
            start, load_before = time.time(), os.getloadavg()[0]
            proc = subprocess.run(
                [sys.executable, '-m', 'torch.distributed.run',
                 '--nproc_per_node=2', f'--master_port={free_port()}',
                 'tools/train.py', str(two), '--work-dir', str(work),
                 '--launcher', 'pytorch'],
                cwd=ROOT, env=probe_env(), capture_output=True, text=True,
                timeout=900)
            ok = (proc.returncode == 0 and world_seen(work) == {0: 2, 1: 2}
                  and (work / 'epoch_1.pth').is_file())
            results.append(dict(
                run=index + 1, returncode=proc.returncode, ok=ok,
                seconds=round(time.time() - start, 1),
                load_1min=round(max(load_before, os.getloadavg()[0]), 2),
                aborted='terminate called' in proc.stderr))
            print(json.dumps(results[-1]), flush=True)
            if not ok:
                print(proc.stderr[-3000:], file=sys.stderr)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    loads = [r['load_1min'] for r in results]
    summary = dict(
        runs=len(results), exited_0=sum(r['returncode'] == 0 for r in results),
        ok=sum(r['ok'] for r in results), busy_processes=args.load,
        cpus=os.cpu_count(), load_1min_min=min(loads),
        load_1min_max=max(loads),
        date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
        command=' '.join(sys.argv))
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps(dict(
            summary=summary, runs=results), indent=1) + '\n')
    return 0 if summary['ok'] == summary['runs'] else 1


if __name__ == '__main__':
    sys.exit(main())
